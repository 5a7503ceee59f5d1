package deliver

import (
	"slices"
	"strings"

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
