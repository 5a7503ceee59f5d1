package deliver

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/switchboard-dev/switchboard"
)

// Breakers returns the state of each target's circuit breaker in this
// process, by target. Breakers are per process: another replica may see
// the same target otherwise.
func (d *Deliverer) Breakers() []switchboard.BreakerState {
	d.breakers.mu.Lock()
	states := make([]switchboard.BreakerState, 0, len(d.breakers.m))
	for target, cb := range d.breakers.m {
		if strings.HasSuffix(target, "://") {
			continue // a route without a target (static) has a breaker that never runs
		}
		states = append(states, switchboard.BreakerState{Target: target, State: cb.State().String()})
	}
	d.breakers.mu.Unlock()
	slices.SortFunc(states, func(a, b switchboard.BreakerState) int { return strings.Compare(a.Target, b.Target) })
	return states
}

// openSince remembers when each breaker left closed, from its state
// changes. It has a lock of its own: the changes are reported under the
// breaker's lock, so reading them must not take that one.
type openSince struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (o *openSince) change(target string, to gobreaker.State, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if to == gobreaker.StateClosed {
		delete(o.m, target)
		return
	}
	if o.m == nil {
		o.m = map[string]time.Time{}
	}
	if _, ok := o.m[target]; !ok { // half-open and open again: still the same outage
		o.m[target] = at
	}
}

// BreakersOpen returns the targets whose circuit breaker is open or
// half-open in this process, each with when it left closed, by target.
func (d *Deliverer) BreakersOpen() []switchboard.BreakerOpen {
	d.opened.mu.Lock()
	out := make([]switchboard.BreakerOpen, 0, len(d.opened.m))
	for target, at := range d.opened.m {
		out = append(out, switchboard.BreakerOpen{Target: target, OpenSince: at})
	}
	d.opened.mu.Unlock()
	slices.SortFunc(out, func(a, b switchboard.BreakerOpen) int { return strings.Compare(a.Target, b.Target) })
	return out
}
