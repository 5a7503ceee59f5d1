package deliver

import (
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// A breaker that half-opens and opens again is one outage: it stays open
// since it first left closed, until it closes.
func TestOpenSinceSpansHalfOpenUntilClosed(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	d := &Deliverer{}
	const target = "https://app.example"
	for i, step := range []struct {
		to   gobreaker.State
		want time.Time // zero: not listed
	}{
		{gobreaker.StateOpen, t0},
		{gobreaker.StateHalfOpen, t0},
		{gobreaker.StateOpen, t0},
		{gobreaker.StateClosed, time.Time{}},
		{gobreaker.StateOpen, t0.Add(4 * time.Minute)},
	} {
		d.opened.change(target, step.to, t0.Add(time.Duration(i)*time.Minute))
		open := d.BreakersOpen()
		switch {
		case step.want.IsZero() && len(open) != 0:
			t.Errorf("step %d (%s): %v, want none open", i, step.to, open)
		case !step.want.IsZero() && (len(open) != 1 || open[0].Target != target || !open[0].OpenSince.Equal(step.want)):
			t.Errorf("step %d (%s): %v, want open since %s", i, step.to, open, step.want)
		}
	}
}
