package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

// syncBuffer is an output written by one goroutine and read by another;
// changed is signalled after each write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appRequest is one request the test's app received.
type appRequest struct {
	path, contentType, signature string
	body                         []byte
}

// TestDevRuns runs dev in-process in front of a test app, texts and calls
// its simulator's number with sim sms and sim call given only --sim (the
// account, token and number are their defaults), and checks that the app
// got the SMS signed for its own URL and that its TwiML answered the call.
func TestDevRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole gateway")
	}
	got := make(chan appRequest, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		got <- appRequest{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Twilio-Signature"), body}
		w.Header().Set("Content-Type", "text/xml")
		if r.URL.Path == "/voice" {
			_, _ = io.WriteString(w, `<Response><Say>Hello from the app under test</Say></Response>`)
			return
		}
		_, _ = io.WriteString(w, `<Response/>`)
	}))
	defer app.Close()

	dir := filepath.Join(t.TempDir(), "project")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		c := &CLI{Stdout: out, Stderr: stderr}
		done <- c.Run(ctx, []string{"dev", "--app", app.URL, "--dir", dir, "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0"})
	}()
	tryLine := regexp.MustCompile(`switchboard sim sms --sim (\S+) --from \+15550001111 --to (\S+) "hello"`)
	var m []string
	deadline := time.After(time.Minute)
	for m == nil {
		select {
		case <-out.changed:
			m = tryLine.FindStringSubmatch(out.String())
		case err := <-done:
			t.Fatalf("dev ended: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
		case <-deadline:
			t.Fatalf("dev printed no sim sms command:\n%s", out.String())
		}
	}
	simURL, number := m[1], m[2]
	acct := sim.DemoConfig(demoAccountSeed).Accounts[0]
	if number != acct.Numbers[0].Number {
		t.Errorf("number %s, want the default account's first, %s", number, acct.Numbers[0].Number)
	}
	if !strings.Contains(out.String(), "/console/") || !strings.Contains(out.String(), "auth token "+acct.AuthTokens[0]) {
		t.Errorf("dev does not say where the console is or which token signs:\n%s", out.String())
	}

	phone := func(args ...string) string {
		t.Helper()
		var pout, perr bytes.Buffer
		c := &CLI{Stdout: &pout, Stderr: &perr}
		if err := c.Run(ctx, append(args, "--sim", simURL, "--from", "+15550001111")); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, perr.String())
		}
		return pout.String()
	}
	phone("sim", "sms", "hello")
	sms := waitApp(t, got, "/sms")
	if !strings.Contains(string(sms.body), "Body=hello") {
		t.Errorf("the app got %q, not the text", sms.body)
	}
	if err := twilio.ValidateRequest(acct.AuthTokens, app.URL+"/sms", sms.contentType, sms.body, sms.signature); err != nil {
		t.Errorf("the SMS is not signed for the app's URL: %v", err)
	}

	call := phone("sim", "call")
	if !strings.Contains(call, "Hello from the app under test") {
		t.Errorf("the call was not answered with the app's TwiML:\n%s", call)
	}
	voice := waitApp(t, got, "/voice")
	if err := twilio.ValidateRequest(acct.AuthTokens, app.URL+"/voice", voice.contentType, voice.body, voice.signature); err != nil {
		t.Errorf("the call is not signed for the app's URL: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev: %v\nstderr:\n%s", err, stderr.String())
	}
	// The token is kept for the next run: the console's sign-in survives.
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil || !strings.Contains(out.String(), "token     "+strings.TrimSpace(string(token))) {
		t.Errorf("admin token not kept (%v):\n%s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "switchboard.db")); err != nil {
		t.Errorf("database: %v", err)
	}
}

// waitApp returns the next request the app got on path, skipping others
// (status callbacks).
func waitApp(t *testing.T, got <-chan appRequest, path string) appRequest {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case r := <-got:
			if r.path == path {
				return r
			}
		case <-deadline:
			t.Fatalf("the app got nothing on %s", path)
		}
	}
}

func TestDevAdminToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, made, err := devAdminToken(dir)
	if err != nil || !made || len(first) < 32 {
		t.Fatalf("first run: %q made=%v err=%v", first, made, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v, mode %v; want 0600", err, fi.Mode())
	}
	again, made, err := devAdminToken(dir)
	if err != nil || made || again != first {
		t.Errorf("second run: %q made=%v err=%v; want the first token kept", again, made, err)
	}

	// A damaged file fails rather than being silently replaced.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "admin-token"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devAdminToken(bad); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Errorf("short token: %v", err)
	}
}

func TestDevRefusesBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"dev", "--duration", "-1s"},
		{"dev", "--app", "localhost:3000"},
		{"dev", "--app", "ftp://localhost"},
		{"dev", "--app", "http://localhost:3000/?x=1"},
		{"dev", "--listen", "nonsense", "--dir", dir},
	} {
		var out bytes.Buffer
		c := &CLI{Stdout: &out, Stderr: &out}
		if err := c.Run(context.Background(), args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestDevSimConfig checks the simulator's number sends where dev's
// routes are, and that its account is the one sim sms assumes.
func TestDevSimConfig(t *testing.T) {
	t.Parallel()
	cfg := devSimConfig("http://127.0.0.1:8080")
	n := cfg.Accounts[0].Numbers[0]
	if n.SMSURL != "http://127.0.0.1:8080/sms" || n.VoiceURL != "http://127.0.0.1:8080/voice" {
		t.Errorf("number's webhooks: %s, %s", n.SMSURL, n.VoiceURL)
	}
	if want := sim.DemoConfig(1).Accounts[0]; cfg.Accounts[0].SID != want.SID || cfg.Accounts[0].AuthTokens[0] != want.AuthTokens[0] {
		t.Error("not the account sim sms assumes without flags")
	}
}
