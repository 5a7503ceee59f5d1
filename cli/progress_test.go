package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim/traffic"
)

// writes hands each Write to the test, so that it waits on the progress
// goroutine's output rather than on time.
type writes chan string

func (w writes) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

func TestShowProgress(t *testing.T) {
	t.Parallel()
	var m traffic.Meter
	out := make(writes)
	ticks, done, exited := make(chan time.Time), make(chan struct{}), make(chan struct{})
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	go func() {
		defer close(exited)
		showProgress(out, &m, start, ticks, done)
	}()
	line := regexp.MustCompile(`^\r\x1b\[K(\d+s)  (\d+) req/s  accepted (\d+)  errors (\d+)  p50 (\S+)  p99 (\S+)$`)
	tick := func(at time.Duration) []string {
		t.Helper()
		ticks <- start.Add(at)
		got := <-out
		f := line.FindStringSubmatch(got)
		if f == nil {
			t.Fatalf("progress line %q does not match %s", got, line)
		}
		return f[1:]
	}
	near := func(shown string, want time.Duration) bool {
		d, err := time.ParseDuration(shown)
		return err == nil && d >= want-want/16 && d <= want+want/16
	}

	for range 10 {
		m.Answer(2*time.Millisecond, true)
	}
	m.NoAnswer()
	f := tick(time.Second)
	if f[0] != "1s" || f[1] != "11" || f[2] != "10" || f[3] != "1" || !near(f[4], 2*time.Millisecond) || !near(f[5], 2*time.Millisecond) {
		t.Errorf("first second: %q; want 1s, 11 req/s, 10 accepted, 1 error, p50 and p99 ~2ms", f)
	}

	// The rate and latencies are the last interval's; the counts, the
	// run's so far.
	for range 3 {
		m.Answer(40*time.Millisecond, false)
	}
	f = tick(3 * time.Second)
	if f[0] != "3s" || f[1] != "2" || f[2] != "10" || f[3] != "4" || !near(f[4], 40*time.Millisecond) {
		t.Errorf("after 3s: %q; want 3s, 2 req/s (3 in 2s, rounded), 10 accepted, 4 errors, p50 ~40ms", f)
	}

	f = tick(4 * time.Second)
	if f[1] != "0" || f[4] != "-" || f[5] != "-" {
		t.Errorf("a second with no answers: %q; want 0 req/s and no latency", f)
	}

	close(done)
	if got := <-out; got != "\r\x1b[K" {
		t.Errorf("at the end: %q; want the line cleared", got)
	}
	<-exited
}

func TestShowProgressNothingDrawnNothingCleared(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	done := make(chan struct{})
	close(done)
	showProgress(&buf, new(traffic.Meter), time.Now(), nil, done)
	if buf.Len() != 0 {
		t.Errorf("a run ended before its first tick printed %q", buf.String())
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, w := range map[string]interface{ Write([]byte) (int, error) }{"buffer": &bytes.Buffer{}, "file": f} {
		if isTerminal(w) {
			t.Errorf("isTerminal(%s) = true", name)
		}
	}
	var c CLI
	c.Stdout = &strings.Builder{}
	opts := traffic.Options{}
	c.live(&opts)()
	if opts.Meter != nil {
		t.Error("off a terminal, live set a Meter: the run would count for nothing")
	}
}
