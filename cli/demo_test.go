package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemoRuns runs the demo for a few seconds in-process: it must end by
// itself, exit cleanly, and report events delivered to the app and
// messages sent, the sample app having checked every delivery's signature.
func TestDemoRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole gateway for seconds")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	c := &CLI{Stdout: &stdout, Stderr: &stderr}
	err := c.Run(context.Background(), []string{"demo", "--duration", "5s", "--summary-every", "1s", "--dir", dir})
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"/console/", "token ", "final  events delivered "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	final := regexp.MustCompile(`(?m)^final  events delivered (\d+) .* messages created \d+, sent (\d+), delivered \d+ · traffic errors \d+ \(after`).FindStringSubmatch(out)
	if final == nil {
		t.Fatalf("no final summary line:\n%s", out)
	}
	if n, _ := strconv.Atoi(final[1]); n == 0 {
		t.Errorf("no event delivered:\n%s", out)
	}
	if n, _ := strconv.Atoi(final[2]); n == 0 {
		t.Errorf("no message sent:\n%s", out)
	}
	// --dir keeps the database for a look afterwards.
	if _, err := os.Stat(filepath.Join(dir, "switchboard.db")); err != nil {
		t.Errorf("--dir: %v", err)
	}
}

func TestDemoVerdict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    demoSummary
		want []string // in the error; nil: no error
	}{
		{"delivered and sent", demoSummary{delivered: 1, sent: 1}, nil},
		{"nothing happened", demoSummary{}, []string{"no event was delivered", "no message was sent"}},
		{"messages taken but none sent", demoSummary{delivered: 3, created: 4}, []string{"no message was sent"}},
		{"sent but nothing delivered", demoSummary{sent: 2, inbound: 2}, []string{"no event was delivered"}},
	} {
		err := tc.s.verdict()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestDemoRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"demo", "--rate", "0"},
		{"demo", "--rate", "1000"},
		{"demo", "--duration", "-1s"},
		{"demo", "--summary-every", "0s"},
		{"demo", "--listen", "nonsense"},
	} {
		var out bytes.Buffer
		c := &CLI{Stdout: &out, Stderr: &out}
		if err := c.Run(context.Background(), args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
