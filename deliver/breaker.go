package deliver

import (
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// breakers keeps one circuit breaker per target origin (scheme and host), so
// a down app stops burning attempts on every event addressed to it while
// other targets go on.
type breakers struct {
	failures uint32
	openFor  time.Duration
	onChange func(target string, from, to gobreaker.State)

	mu sync.Mutex
	m  map[string]*gobreaker.CircuitBreaker[*outcome]
}

func newBreakers(failures int, openFor time.Duration, onChange func(string, gobreaker.State, gobreaker.State)) *breakers {
	return &breakers{failures: uint32(max(failures, 1)), openFor: openFor, onChange: onChange, m: map[string]*gobreaker.CircuitBreaker[*outcome]{}}
}

func (b *breakers) get(target string) *gobreaker.CircuitBreaker[*outcome] {
	key := target
	if u, err := url.Parse(target); err == nil {
		key = u.Scheme + "://" + u.Host
	}
	return b.named(key)
}

// named returns the breaker of key, made on first use. A notifier's
// breaker is named after its route (switchboard.NotifierRoute), not its
// target's origin: a notifier that fails trips no app's breaker, two
// notifiers on one host (two Slack webhooks) do not stop each other, and
// its state says which notifier is down.
func (b *breakers) named(key string) *gobreaker.CircuitBreaker[*outcome] {
	b.mu.Lock()
	defer b.mu.Unlock()
	cb, ok := b.m[key]
	if !ok {
		cb = gobreaker.NewCircuitBreaker[*outcome](gobreaker.Settings{
			Name:        key,
			MaxRequests: 1, // one trial request when half-open
			Timeout:     b.openFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.failures },
			IsExcluded: func(err error) bool {
				return errors.Is(err, errInterrupted) || errors.Is(err, errDenied) || errors.Is(err, errStalled)
			},
			OnStateChange: func(name string, from, to gobreaker.State) {
				if b.onChange != nil {
					b.onChange(name, from, to)
				}
			},
		})
		b.m[key] = cb
	}
	return cb
}
