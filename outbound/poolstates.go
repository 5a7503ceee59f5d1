package outbound

import (
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard"
)

// PoolStates returns each pool's configuration and, as this process sees
// it now, its queue delay and brownout state, by pool name.
func (s *Sender) PoolStates() []switchboard.PoolState {
	now := s.now()
	states := make([]switchboard.PoolState, 0, len(s.pools))
	for name, pl := range s.pools {
		delay, brownout := pl.sched.state(now)
		states = append(states, switchboard.PoolState{Pool: name, Rate: pl.Rate, Senders: len(pl.Senders),
			Brownout: brownout, QueueDelay: max(delay, 0)})
	}
	slices.SortFunc(states, func(a, b switchboard.PoolState) int { return strings.Compare(a.Pool, b.Pool) })
	return states
}
