package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-dev/switchboard/sim/traffic"
	"github.com/switchboard-dev/switchboard/twilio"
)

// runCLI runs one command line in-process and returns what it printed.
func runCLI(ctx context.Context, args ...string) (output string, err error) {
	var out, errOut bytes.Buffer
	c := &CLI{Stdout: &out, Stderr: &errOut}
	err = c.Run(ctx, args)
	return out.String() + errOut.String(), err
}

// answering returns a local server answering every request with status,
// Content-Type and body.
func answering(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSimTraffic(t *testing.T) {
	t.Parallel()
	const twiml = `<?xml version="1.0" encoding="UTF-8"?><Response/>`
	tests := []struct {
		name    string
		server  func(t *testing.T) *httptest.Server
		args    []string
		want    []string
		notWant []string
	}{
		{
			name:   "accepted",
			server: func(t *testing.T) *httptest.Server { return answering(t, 200, "application/xml", twiml) },
			args:   []string{"--kind", "voice"},
			want: []string{
				"voice webhooks to http://127.0.0.1:", "sent 20: accepted 20, no Twilio errors; HTTP 200×20",
				"accepted/s; latency p50",
			},
			notWant: []string{"reference", "docs/errors"},
		},
		{
			name:   "server error",
			server: func(t *testing.T) *httptest.Server { return answering(t, 500, "text/plain", "boom") },
			want: []string{
				"sent 20: accepted 0, Twilio errors 11200×20; HTTP 500×20",
				"11200: HTTP retrieval failure, https://www.twilio.com/docs/errors/11200",
			},
		},
		{
			name:   "TwiML as plain text",
			server: func(t *testing.T) *httptest.Server { return answering(t, 200, "text/plain", twiml) },
			want:   []string{"Twilio errors 12300×20; HTTP 200×20", "12300: invalid Content-Type"},
		},
		{
			name:   "client notification without a binding",
			server: func(t *testing.T) *httptest.Server { return answering(t, 404, "text/plain", "") },
			args:   []string{"--kind", "client-notification"},
			want:   []string{"sent 20: accepted 20, no Twilio errors; HTTP 404×20"},
		},
		{
			name:   "with the reference",
			server: func(t *testing.T) *httptest.Server { return answering(t, 200, "application/xml", twiml) },
			args:   []string{"--reference", "--rate", "1000"},
			want: []string{
				"reference (static TwiML handler):\n  sent 20: accepted 20",
				"sms webhooks to", "target/reference throughput:",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tt.server(t)
			args := append([]string{"sim", "traffic", "--target", srv.URL + "/hook", "--auth-token", "secret",
				"--max-requests", "20", "--concurrency", "4", "--duration", "1m"}, tt.args...)
			out, err := runCLI(t.Context(), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			// Off a terminal (here a buffer) no live progress is drawn:
			// only the report is printed.
			for _, notWant := range append(tt.notWant, "\r", "\x1b", "req/s") {
				if strings.Contains(out, notWant) {
					t.Errorf("output has %q:\n%s", notWant, out)
				}
			}
		})
	}
}

// TestSimTrafficRoute checks that --route signs requests the way the
// configured Switchboard checks them: for the public URL, path prefix
// included, with the account's token.
func TestSimTrafficRoute(t *testing.T) {
	t.Parallel()
	const (
		public = "https://hooks.example.com/base"
		token  = "route-token"
	)
	var valid, invalid atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ct := r.Header.Get("Content-Type")
		if err := twilio.ValidateRequest([]string{token}, public+r.RequestURI, ct, body, r.Header.Get("X-Twilio-Signature")); err != nil {
			invalid.Add(1)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		valid.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	cfg := filepath.Join(t.TempDir(), "switchboard.toml")
	err := os.WriteFile(cfg, []byte(`listen = "`+srv.Listener.Addr().String()+`"
public_url = "`+public+`/"

[[accounts]]
sid = "AC00000000000000000000000000000001"
auth_tokens = ["`+token+`", "older-token"]

[[routes]]
path = "/notify"
account = "AC00000000000000000000000000000001"
target = "http://127.0.0.1:1/app"
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t.Context(), "sim", "traffic", "-c", cfg, "--route", "/notify", "--kind", "client-notification",
		"--max-requests", "10", "--duration", "1m")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if valid.Load() != 10 || invalid.Load() != 0 {
		t.Errorf("%d requests verified, %d refused; want 10 and 0\n%s", valid.Load(), invalid.Load(), out)
	}
	if !strings.Contains(out, "sent 10: accepted 10") || !strings.Contains(out, "(signed for "+public+"/notify)") {
		t.Errorf("output:\n%s", out)
	}
}

func TestSimTrafficUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"--auth-token", "x"}, "need --target"},
		{"no token", []string{"--target", "http://127.0.0.1:1/sms"}, "need --target"},
		{"not loopback", []string{"--target", "http://10.0.0.1/sms", "--auth-token", "x"}, "not a loopback address"},
		{"unknown kind", []string{"--target", "http://127.0.0.1:1/sms", "--auth-token", "x", "--kind", "fax"}, `kind "fax"`},
		{"long duration", []string{"--target", "http://127.0.0.1:1/sms", "--auth-token", "x", "--duration", "1h"}, "duration"},
		{"argument", []string{"--target", "http://127.0.0.1:1/sms", "--auth-token", "x", "extra"}, "unknown command"},
		{"route without config", []string{"--route", "/sms"}, "route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runCLI(t.Context(), append([]string{"sim", "traffic"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one containing %q\n%s", err, tt.want, out)
			}
		})
	}
}

// TestSimTrafficInterrupted checks that a run cut short fails, after
// printing what it saw.
func TestSimTrafficInterrupted(t *testing.T) {
	t.Parallel()
	srv := answering(t, 200, "application/xml", "<Response/>")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out, err := runCLI(ctx, "sim", "traffic", "--target", srv.URL, "--auth-token", "x", "--duration", "1m")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled\n%s", err, out)
	}
	if !strings.Contains(out, "sent ") {
		t.Errorf("no report printed:\n%s", out)
	}
}

func TestSimHelp(t *testing.T) {
	t.Parallel()
	out, err := runCLI(t.Context(), "sim")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "traffic") || !strings.Contains(out, "Twilio simulator") {
		t.Errorf("sim help:\n%s", out)
	}
	out, err = runCLI(t.Context(), "sim", "traffic", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range traffic.Kinds() {
		if !strings.Contains(out, kind) {
			t.Errorf("sim traffic --help lacks kind %s:\n%s", kind, out)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	for listen, want := range map[string]string{
		"127.0.0.1:8181": "127.0.0.1:8181",
		"localhost:8080": "localhost:8080",
		"[::1]:8080":     "[::1]:8080",
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "127.0.0.1:8080",
	} {
		if got := loopbackAddr(listen); got != want {
			t.Errorf("loopbackAddr(%q) = %q; want %q", listen, got, want)
		}
	}
}
