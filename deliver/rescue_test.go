package deliver_test

import (
	"errors"
	"time"

	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
)

// A delivery taken over from a stopped process says so: the attempt that
// process may have made is on record as interrupted, and the app gets the
// event again as attempt 2, from the job that record scheduled, and only
// from it: the takeover itself sends nothing, or it would race that job.
func TestDeliverRescuedIsAttemptTwo(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/app", a.URL)}, nil)
	id := h.ingest(t, "/app", nil)
	wantNoError(t, h.d.DeliverRescued(t.Context(), id, 0))
	if n := a.hits.Load(); n != 0 {
		t.Fatalf("the app got %d requests from the takeover itself, want none", n)
	}
	ev := h.event(t, id)
	if ev.State != switchboard.StateRetrying || ev.Attempts != 1 || ev.NextAttemptAt.After(h.clock.Now()) {
		t.Fatalf("event %s after %d attempts, next at %v; want retrying after 1, due now (%v)", ev.State, ev.Attempts, ev.NextAttemptAt, h.clock.Now())
	}
	wantNoError(t, h.deliver(t.Context(), id))

	atts := h.attempts(t, id)
	if len(atts) != 2 || atts[0].Number != 1 || atts[0].ErrorClass != deliver.ClassInterrupted || atts[1].Number != 2 || atts[1].StatusCode != 204 {
		t.Fatalf("attempts %+v, want 1 interrupted then 2 delivered", atts)
	}
	if got := a.last(t).header.Get("X-Switchboard-Attempt"); got != "2" {
		t.Errorf("the app saw attempt %q, want 2", got)
	}
	ev = h.event(t, id)
	if ev.State != switchboard.StateDelivered || ev.Attempts != 2 {
		t.Errorf("event %s after %d attempts, want delivered after 2", ev.State, ev.Attempts)
	}
}

// A job whose process did record its attempt before stopping is stale: the
// event is not delivered again.
func TestDeliverRescuedLeavesARecordedEventAlone(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/app", a.URL)}, nil)
	id := h.ingest(t, "/app", nil)
	wantNoError(t, h.deliver(t.Context(), id))
	wantNoError(t, h.d.DeliverRescued(t.Context(), id, 0))
	if n := a.hits.Load(); n != 1 {
		t.Errorf("the app got %d requests, want 1", n)
	}
	if n := len(h.attempts(t, id)); n != 1 {
		t.Errorf("%d attempts on record, want 1", n)
	}
}

// lapsed is a lease that lapsed: another replica may have the job.
type lapsed struct{}

func (lapsed) HeldSince(time.Time) bool { return false }

// Without the lease nothing is sent or recorded: the job fails internally
// and the attempt count decides later whether it is still due.
func TestNoDeliveryOnALostLease(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/app", a.URL)}, func(o *deliver.Options) { o.Lease = lapsed{} })
	id := h.ingest(t, "/app", nil)
	if err := h.deliver(t.Context(), id); !errors.Is(err, deliver.ErrLeaseLost) {
		t.Errorf("Deliver = %v, want ErrLeaseLost", err)
	}
	if err := h.d.DeliverRescued(t.Context(), id, 0); !errors.Is(err, deliver.ErrLeaseLost) {
		t.Errorf("DeliverRescued = %v, want ErrLeaseLost", err)
	}
	if n := a.hits.Load(); n != 0 {
		t.Errorf("the app got %d requests", n)
	}
	if n := len(h.attempts(t, id)); n != 0 {
		t.Errorf("%d attempts recorded", n)
	}
}
