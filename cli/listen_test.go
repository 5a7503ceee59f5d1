package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/listener"
)

func TestListenLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 4, 14, 3, 7, 250e6, time.UTC)
	base := listener.Delivery{At: at, EventID: "0195", Route: "/sms", Kind: "message", SID: "SM0123456789abcdef0123456789abcdef", Attempt: 1, Status: 200, Latency: 12 * time.Millisecond}
	with := func(f func(*listener.Delivery)) listener.Delivery { d := base; f(&d); return d }
	for _, tc := range []struct {
		name   string
		d      listener.Delivery
		colour bool
		want   string
	}{
		{"2xx plain", base, false,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef                    200  12 ms"},
		{"2xx green", base, true,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef                    \x1b[32m200\x1b[0m  12 ms"},
		{"retry of a 4xx, yellow", with(func(d *listener.Delivery) { d.Attempt, d.Status = 3, 404 }), true,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef  attempt 3         \x1b[33m404\x1b[0m  12 ms"},
		{"3xx yellow", with(func(d *listener.Delivery) { d.Status = 302 }), true,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef                    \x1b[33m302\x1b[0m  12 ms"},
		{"live call, 5xx red", with(func(d *listener.Delivery) {
			d.Route, d.Kind, d.SID, d.Live, d.Status = "/voice", "voice", "CA0123456789abcdef0123456789abcdef", true, 503
		}), true,
			"14:03:07  /voice  voice                CA0123456789abcdef0123456789abcdef              live  \x1b[31m503\x1b[0m  12 ms"},
		{"no answer, error red", with(func(d *listener.Delivery) {
			d.Status, d.Error, d.Latency = 0, "dial tcp 127.0.0.1:3000: connection refused", 0
		}), true,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef                    \x1b[31merror: dial tcp 127.0.0.1:3000: connection refused\x1b[0m  0 ms"},
		{"no answer, plain", with(func(d *listener.Delivery) { d.Status, d.Error = 0, "" }), false,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef                    no answer  12 ms"},
		{"no SID, long latency", with(func(d *listener.Delivery) { d.SID, d.Latency = "", 14800*time.Millisecond }), false,
			"14:03:07  /sms    message              -                                                     200  14.8s"},
		{"control characters in the error are escaped", with(func(d *listener.Delivery) { d.Status, d.Error = 0, "bad\x1b[2Jthing\nnext" }), false,
			"14:03:07  /sms    message              SM0123456789abcdef0123456789abcdef                    error: bad\\x1b[2Jthing next  12 ms"},
	} {
		var out bytes.Buffer
		p := &listenPrinter{w: &out, paint: newPainter(tc.colour), loc: time.UTC}
		p.setRoutes([]string{"/sms", "/voice"})
		p.event(tc.d)
		if got := strings.TrimSuffix(out.String(), "\n"); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestListenLineAligns checks that a route longer than the others widens
// the column for every line after the connection that named it.
func TestListenLineAligns(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &listenPrinter{w: &out, loc: time.UTC}
	p.setRoutes([]string{"/sms", "/twilio/status"})
	for _, r := range []string{"/sms", "/twilio/status"} {
		p.event(listener.Delivery{Route: r, Kind: "message", Status: 200})
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.Index(lines[0], "message") != strings.Index(lines[1], "message") {
		t.Errorf("columns not aligned:\n%s", out.String())
	}
}

func TestListenJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &listenPrinter{w: &out, json: true, paint: newPainter(true), loc: time.UTC}
	at := time.Date(2025, 3, 4, 14, 3, 7, 250e6, time.FixedZone("X", 3600))
	p.event(listener.Delivery{At: at, EventID: "0195-e", Route: "/voice", Kind: "voice", SID: "CA1", Attempt: 2, Live: true, Status: 200, Latency: 1500 * time.Microsecond})
	p.event(listener.Delivery{At: at, EventID: "0195-f", Route: "/sms", Kind: "message", Attempt: 1, Error: "timeout"})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per event:\n%s", out.String())
	}
	want := []string{
		`{"time":"2025-03-04T13:03:07.25Z","event_id":"0195-e","route":"/voice","kind":"voice","sid":"CA1","attempt":2,"live":true,"status":200,"error":"","latency_ms":1.5}`,
		`{"time":"2025-03-04T13:03:07.25Z","event_id":"0195-f","route":"/sms","kind":"message","sid":"","attempt":1,"live":false,"status":0,"error":"timeout","latency_ms":0}`,
	}
	for i, line := range lines {
		if line != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, line, want[i])
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not JSON", i)
		}
	}
}

func TestListenReadyLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		forwardTo string
		routes    []string
		want      string
	}{
		{"http://localhost:3000", []string{"/sms", "/voice"},
			"Ready! Forwarding events of routes /sms, /voice to /sms → http://localhost:3000/sms, /voice → http://localhost:3000/voice (listener dev). Ctrl-C to stop."},
		{"http://localhost:3000/hooks", []string{"/sms", "/voice"},
			"Ready! Forwarding events of routes /sms, /voice to http://localhost:3000/hooks (listener dev). Ctrl-C to stop."},
		{"http://localhost:3000", []string{"/sms"},
			"Ready! Forwarding events of routes /sms to http://localhost:3000/sms (listener dev). Ctrl-C to stop."},
		{"http://localhost:3000", nil,
			`Connected as listener dev, but no route names it: add listener = "dev" to a route in the server's configuration.`},
		// The routes come from the server: a hostile one's escape codes
		// are shown, not obeyed by the terminal.
		{"http://localhost:3000/hooks", []string{"/sms\x1b]0;pwned\x07\x1b[2J"},
			`Ready! Forwarding events of routes /sms\x1b]0;pwned\a\x1b[2J to http://localhost:3000/hooks (listener dev). Ctrl-C to stop.`},
	} {
		if got := readyLine("dev", tc.forwardTo, tc.routes); got != tc.want {
			t.Errorf("%s %v:\n got %q\nwant %q", tc.forwardTo, tc.routes, got, tc.want)
		}
	}
}

// TestListenRefusesBadFlags checks each bad option fails before any
// connection, saying which flag, and never echoes the token.
func TestListenRefusesBadFlags(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	const secret = "s3cr3t-t0k3n-never-printed-0123456789"
	ok := []string{"listen", "--server", srv.URL, "--forward-to", "http://localhost:3000"}
	for _, tc := range []struct {
		args    []string
		env     []string
		wantErr string
	}{
		{[]string{"listen", "--server", srv.URL}, []string{"SWITCHBOARD_TOKEN=" + secret}, "--forward-to is required"},
		{append(ok[:3:3], "--forward-to", "localhost:3000"), []string{"SWITCHBOARD_TOKEN=" + secret}, "--forward-to"},
		{append(ok[:3:3], "--forward-to", "ftp://localhost/x"), []string{"SWITCHBOARD_TOKEN=" + secret}, "--forward-to"},
		{append(ok[:3:3], "--forward-to", "http://user:pw@localhost:3000"), []string{"SWITCHBOARD_TOKEN=" + secret}, "--forward-to"},
		{ok, nil, "no token"},
		{append(ok, "--listener", "Bad Name"), []string{"SWITCHBOARD_TOKEN=" + secret}, "--listener"},
		{append(ok, "--kind", "message,sms"), []string{"SWITCHBOARD_TOKEN=" + secret}, `--kind "sms"`},
		{append(ok, "--kind", "message", "--kind", "nope"), []string{"SWITCHBOARD_TOKEN=" + secret}, `--kind "nope"`},
		{append(ok, "--timeout", "0s"), []string{"SWITCHBOARD_LISTENER_KEY=" + secret}, "--timeout"},
		{[]string{"listen", "--server", "http://switchboard.example.com", "--forward-to", "http://localhost:3000", "--token", secret}, nil, "unencrypted"},
		{[]string{"listen", "--server", "localhost:8080", "--forward-to", "http://localhost:3000", "--token", secret}, nil, "--server"},
		{[]string{"listen", "--forward-to", "http://localhost:3000", "--token", secret}, []string{"SWITCHBOARD_SERVER=nope"}, `--server "nope"`},
	} {
		var stdout, stderr bytes.Buffer
		c := &CLI{Stdout: &stdout, Stderr: &stderr, Environ: tc.env}
		err := c.Run(context.Background(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: got %v, want an error with %q", tc.args, err, tc.wantErr)
			continue
		}
		if strings.Contains(err.Error()+stdout.String()+stderr.String(), secret) {
			t.Errorf("%v: the token was printed", tc.args)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was asked %d times before the options were checked", n)
	}
}

// TestListenRefused runs listen against a server that refuses the token
// at the handshake, as the admin API does: listen must stop, not retry,
// and say what to check, without printing the token.
func TestListenRefused(t *testing.T) {
	t.Parallel()
	const secret = "wrong-token-0123456789abcdef0123456789"
	var sawBearer atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+secret {
			sawBearer.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"unauthorized","message":"the token is neither the admin token nor listener laptop's key"}`))
	}))
	defer srv.Close()
	// A listen that wrongly retried a refusal would run until this ends,
	// then return nil: the test fails on that, not on time.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := &CLI{Stdout: &stdout, Stderr: &stderr, Environ: []string{"SWITCHBOARD_LISTENER_KEY=" + secret}}
	err := c.Run(ctx, []string{"listen", "--server", srv.URL, "--listener", "laptop", "--forward-to", "http://127.0.0.1:3000"})
	if !errors.Is(err, listener.ErrRefused) {
		t.Fatalf("got %v, want ErrRefused\nstderr:\n%s", err, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatal("listen ran until the test's deadline")
	}
	for _, want := range []string{"hint:", `listener = "laptop"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error()+stdout.String()+stderr.String(), secret) {
		t.Error("the token was printed")
	}
	if !sawBearer.Load() {
		t.Error("the key from $SWITCHBOARD_LISTENER_KEY was not sent as a bearer token")
	}
}
