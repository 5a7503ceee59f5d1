package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

var demoConsoleLine = regexp.MustCompile(`^console\s+http://(\S+?)/console/`)

// demoListening returns the gateway's address in switchboard demo's
// "console" line.
func demoListening(line []byte) string {
	if m := demoConsoleLine.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	return ""
}

var demoFinalLine = regexp.MustCompile(`(?m)^final  events delivered (\d+) .* messages created \d+, sent (\d+), delivered \d+ · traffic errors \d+ \(after`)

// checkDemoFinal checks the final summary: events reached the app and
// messages were sent.
func checkDemoFinal(t *testing.T, out string) {
	t.Helper()
	m := demoFinalLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no final summary line:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no event delivered to the app:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[2]); n == 0 {
		t.Errorf("no message sent:\n%s", out)
	}
}

// TestDemoDuration is issue 17's done-when: `demo --duration 20s` exits 0
// with events delivered and messages sent, its console serving meanwhile.
func TestDemoDuration(t *testing.T) {
	t.Parallel()
	out := newLogBuffer(demoListening)
	p := launch(t, "switchboard demo", out, "demo", "--duration", "20s")
	p.waitListening(t)
	resp, err := http.Get(p.url("/console/"))
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Errorf("console: %s", resp.Status)
	}
	select {
	case <-p.exited:
	case <-time.After(20*time.Second + 2*time.Minute):
		t.Fatalf("demo --duration 20s still running 2m after its duration:\n%s", out.tail(16<<10))
	}
	if p.waitErr != nil {
		t.Fatalf("demo --duration 20s: %v\n%s", p.waitErr, out.tail(16<<10))
	}
	checkDemoFinal(t, out.String())
}

// TestDemoInterrupted: without --duration the demo runs until SIGINT, then
// shuts down gracefully, prints its final summary and exits 0.
func TestDemoInterrupted(t *testing.T) {
	t.Parallel()
	out := newLogBuffer(demoListening)
	p := launch(t, "switchboard demo", out, "demo", "--summary-every", "500ms")
	p.waitListening(t)
	// A summary counting a sent message: traffic has gone all the way.
	deadline := time.Now().Add(2 * time.Minute)
	sent := regexp.MustCompile(`(?m)^\S+  events delivered [1-9]\d* .* sent [1-9]`)
	for !sent.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no summary with events delivered and a message sent:\n%s", out.tail(16<<10))
		}
		out.waitFor(t, time.Until(deadline), "events delivered")
		select {
		case <-p.exited:
			t.Fatalf("demo exited by itself (%v):\n%s", p.waitErr, out.tail(16<<10))
		case <-time.After(100 * time.Millisecond): // the next summary
		}
	}
	p.signal(syscall.SIGINT)
	p.wait(t)
	if p.waitErr != nil {
		t.Fatalf("demo after SIGINT: %v\n%s", p.waitErr, out.tail(16<<10))
	}
	checkDemoFinal(t, out.String())
}
