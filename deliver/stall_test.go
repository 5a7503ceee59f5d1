package deliver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// fixedPauses says the process was not running for a fixed share of any
// span asked about: a stall during every attempt.
type fixedPauses struct{ share float64 }

func (p fixedPauses) PausedBetween(from, to time.Time) time.Duration {
	return time.Duration(float64(to.Sub(from)) * p.share)
}

// hang answers nothing until the client gives up.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// A timeout during which this process itself was stalled is not the app's:
// the attempt is interrupted, due again at once, and the breaker does not
// move; the same timeout with no stall is the app's.
func TestStallIsNotTheAppsTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		pauses      deliver.Pauses
		wantClass   string
		wantBreaker bool // the breaker opened
	}{
		{"stalled for most of the attempt", fixedPauses{share: 0.9}, deliver.ClassInterrupted, false},
		{"no stall", fixedPauses{}, string(twilio.ClassTimeout), true},
		{"no watcher", nil, string(twilio.ClassTimeout), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, hang)
			clock := newClock()
			clock.Set(time.Now()) // events made now, as the real clock the attempt runs on says
			h := newHarness(t, clock, []deliver.Route{route("/app", a.URL)}, func(o *deliver.Options) {
				o.Timeout, o.BreakerFailures, o.Pauses = 300*time.Millisecond, 1, tc.pauses
				o.Now = time.Now // latency on the real clock, as the watcher sees it
			})
			id := h.ingest(t, "/app", nil)
			wantNoError(t, h.deliver(t.Context(), id))
			att := h.onlyAttempt(t, id)
			if att.ErrorClass != tc.wantClass {
				t.Errorf("attempt class %q (%s), want %q", att.ErrorClass, att.Error, tc.wantClass)
			}
			if tc.wantClass == deliver.ClassInterrupted && !strings.Contains(att.Error, "not running") {
				t.Errorf("attempt error %q does not say the process stalled", att.Error)
			}
			ev := h.event(t, id)
			if ev.State != switchboard.StateRetrying {
				t.Errorf("event %s, want retrying", ev.State)
			}
			open := false
			for _, s := range h.d.Breakers() {
				open = open || s.State != "closed"
			}
			if open != tc.wantBreaker {
				t.Errorf("breaker open = %v, want %v", open, tc.wantBreaker)
			}
		})
	}
}
