package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCLI(t *testing.T) {
	forEachStore(t, testCLI)
}

func testCLI(t *testing.T, st store) {
	// The app refuses each event once with 410 Gone, which dead-letters
	// it at once, and takes it when it comes again.
	a := startApp(t, func(a *app) {
		a.respond = func(_ *delivery, previous int) int {
			if previous == 0 {
				return http.StatusGone
			}
			return http.StatusNoContent
		}
	})
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})

	t.Run("version", func(t *testing.T) {
		out := mustCLI(t, "", "version")
		if !strings.HasPrefix(out, "switchboard ") {
			t.Errorf("switchboard version printed %q; want it to start with %q", out, "switchboard ")
		}
	})

	t.Run("migrate", func(t *testing.T) {
		// The store is fresh; for SQLite, not even its directory exists.
		for range 2 { // and migrating again changes nothing
			if out := mustCLI(t, cfg, "migrate"); out != "migrations applied\n" {
				t.Errorf("switchboard migrate printed %q", out)
			}
		}
		if st.name == "sqlite" {
			if _, err := os.Stat(st.url); err != nil {
				t.Errorf("after migrate: %v", err)
			}
		}
		if events := listEvents(t, cfg); len(events) != 0 {
			t.Errorf("fresh store lists %d events", len(events))
		}
	})

	t.Run("replay refuses", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string // in stderr
		}{
			{[]string{"replay"}, "replay needs an event id"}, // never everything by accident
			{[]string{"replay", "01a20000-0000-7000-8000-000000000000"}, "not found"},
			{[]string{"replay", "--state", "pending"}, "only delivered or dead events"},
		} {
			stdout, stderr, err := runCLI(t, cfg, tc.args...)
			if exitCode(err) < 1 {
				t.Errorf("switchboard %s: %v; want a non-zero exit status", strings.Join(tc.args, " "), err)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("switchboard %s: stderr %q; want it to contain %q", strings.Join(tc.args, " "), stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("switchboard %s: stdout %q; want nothing", strings.Join(tc.args, " "), stdout)
			}
		}
	})

	t.Run("replay dead event", func(t *testing.T) {
		p := startServe(t, cfg)
		sid := mustReceive(t, newTwilio(t, p), "replay me ✓")
		a.waitFor(t, 30*time.Second, "first delivery", func() bool { return len(a.deliveries) >= 1 },
			func() string { return "no delivery" })
		first := a.snapshot()[0]
		if first.messageSID != sid || first.status != http.StatusGone {
			t.Fatalf("first delivery: message %s answered %d; want %s answered 410", first.messageSID, first.status, sid)
		}
		id := first.eventID

		eventually(t, 10*time.Second, func() (bool, string) {
			dead := listEvents(t, cfg, "--state", "dead", "--sid", sid)
			if len(dead) != 1 || dead[0].ID != id {
				return false, fmt.Sprintf("events list --state dead --sid %s: %+v; want event %s", sid, dead, id)
			}
			if dead[0].Attempts != 1 || !strings.Contains(dead[0].LastError, "410") {
				t.Errorf("dead event: %d attempts, last error %q; want 1 attempt failing with 410", dead[0].Attempts, dead[0].LastError)
			}
			return true, ""
		})

		if out := mustCLI(t, cfg, "replay", id); out != "scheduled 1 deliveries\n" {
			t.Errorf("switchboard replay %s printed %q", id, out)
		}
		a.waitFor(t, 30*time.Second, "replayed delivery", func() bool { return a.okByEvent[id] >= 1 },
			func() string { return fmt.Sprintf("%d deliveries", len(a.deliveries)) })
		deliveries := a.snapshot()
		if len(deliveries) != 2 {
			t.Fatalf("app got %d deliveries; want 2", len(deliveries))
		}
		second := deliveries[1]
		if second.eventID != id || second.attempt != "2" {
			t.Errorf("replayed delivery: event %s, attempt %q; want event %s, attempt 2", second.eventID, second.attempt, id)
		}
		if !bytes.Equal(second.body, first.body) {
			t.Errorf("replayed delivery: body %q; want %q", second.body, first.body)
		}
		if err := checkSignature(second); err != nil {
			t.Errorf("replayed delivery: X-Twilio-Signature: %v", err)
		}

		eventually(t, 10*time.Second, func() (bool, string) {
			ev := showEvent(t, cfg, id)
			if ev.Event.State != "delivered" {
				return false, fmt.Sprintf("event %s is %s after the replay", id, ev.Event.State)
			}
			var statuses []int
			for _, at := range ev.Attempts {
				statuses = append(statuses, at.StatusCode)
			}
			if fmt.Sprint(statuses) != "[410 204]" || ev.Event.Attempts != 2 {
				t.Errorf("events show %s: %d attempts answered %v; want 2, answered [410 204]", id, ev.Event.Attempts, statuses)
			}
			return true, ""
		})

		// Nothing is dead any more, so a bulk replay of dead events finds none.
		if out := mustCLI(t, cfg, "replay", "--state", "dead"); out != "scheduled 0 deliveries\n" {
			t.Errorf("switchboard replay --state dead printed %q", out)
		}
	})
}

// shownEvent is what switchboard events show prints.
type shownEvent struct {
	Event    cliEvent
	Attempts []struct {
		Number     int
		StatusCode int
		Error      string
	}
}

func showEvent(t *testing.T, cfg, id string) shownEvent {
	t.Helper()
	out := mustCLI(t, cfg, "events", "show", id)
	var ev shownEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events show %s: %v\n%s", id, err, out)
	}
	return ev
}

// exitCode returns a command's exit status: 0 for nil, -1 if it did not
// exit normally.
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		return -1
	}
}
