package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

var devTryLine = regexp.MustCompile(`switchboard sim sms --sim (\S+) --from`)

// devSimURL returns the simulator's URL in switchboard dev's "try" line,
// printed once everything listens.
func devSimURL(line []byte) string {
	if m := devTryLine.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	return ""
}

// TestDevSMS runs switchboard dev in front of an app, texts its number
// with switchboard sim sms, and checks the app gets the text signed for
// its own URL and dev exits 0 at the end of --duration.
func TestDevSMS(t *testing.T) {
	t.Parallel()
	acct := sim.DemoConfig(1).Accounts[0]
	verdicts := make(chan error, 8)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.URL.Path == "/sms" {
			verdicts <- twilio.ValidateRequest(acct.AuthTokens, "http://"+r.Host+"/sms", r.Header.Get("Content-Type"), body, r.Header.Get("X-Twilio-Signature"))
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, "<Response/>")
	}))
	defer app.Close()

	out := newLogBuffer(devSimURL)
	p := launchIn(t, "switchboard dev", t.TempDir(), nil, out,
		"dev", "--app", app.URL, "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--duration", "20s")
	p.waitListening(t)
	simURL := p.addr
	stdout := mustCLI(t, "", "sim", "sms", "--sim", simURL, "--from", "+15550001111", "hello")
	if !strings.Contains(stdout, "webhook POST") {
		t.Errorf("sim sms:\n%s", stdout)
	}
	select {
	case err := <-verdicts:
		if err != nil {
			t.Errorf("the app's signature check: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the app got no SMS")
	}
	select {
	case <-p.exited:
	case <-time.After(20*time.Second + 2*time.Minute):
		t.Fatalf("dev --duration 20s still running 2m after its duration")
	}
	if p.waitErr != nil {
		t.Fatalf("dev --duration 20s: %v", p.waitErr)
	}
}
