package deliver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// DeliverRescued is Deliver for a job taken over from a process that
// stopped while running it (see jobs.RescuedDeliverer). That process may
// have sent the event and died before recording the outcome, so the
// attempt it may have made is recorded as interrupted, which schedules
// the next attempt, due at once, as for any attempt that failed: the job
// of that attempt delivers the event, in whichever replica takes it, and
// the app sees X-Switchboard-Attempt 2, the inspector both attempts. It is
// not delivered here as well: that job would race this delivery, and both
// could find the event still at one attempt and send attempt 2. An event
// that moved on since the job was made (the process did record) is left
// alone, as Deliver leaves it.
func (d *Deliverer) DeliverRescued(ctx context.Context, eventID string, attempts int) error {
	ev, err := d.store.Event(ctx, eventID)
	if errors.Is(err, switchboard.ErrNotFound) {
		d.logger.Error("rescued delivery job for an unknown event", "event", eventID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load event %s: %w", eventID, err)
	}
	if ev.State.Terminal() || ev.Attempts != attempts {
		return nil // the stopped process recorded its attempt, or the job is stale
	}
	if d.lease != nil && !d.lease.HeldSince(time.Now()) {
		return fmt.Errorf("event %s: %w", ev.ID, ErrLeaseLost)
	}
	if rt, ok := d.routes[ev.Route]; ok && rt.Listener != "" && ev.Target == "" {
		return d.DeliverLoaded(ctx, ev, nil) // only a listener's session delivers these
	}
	now := d.now()
	lost := &switchboard.AttemptResult{
		Attempt: switchboard.Attempt{EventID: ev.ID, Number: ev.Attempts + 1, StartedAt: now, ErrorClass: ClassInterrupted,
			Error: "the process making this attempt stopped before recording its outcome; the app may have received it"},
		State: switchboard.StateRetrying, NextAttemptAt: now, Attempts: ev.Attempts + 1,
	}
	if err := d.record(ctx, lost); err != nil {
		return err
	}
	d.metrics.Attempts.WithLabelValues(ev.Route, "interrupted", "0").Inc()
	d.eventLog(ev).Info("delivery taken over from a stopped process; delivering again", "attempt", ev.Attempts+2)
	return nil
}
