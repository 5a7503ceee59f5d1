package switchboard

import (
	"errors"
	"regexp"
	"time"
)

// A listener is a `switchboard listen` process connected out to a running
// Switchboard, usually from a developer's machine behind NAT: routes whose
// Listener names it deliver their events through its connection to the app
// on that machine (see package listener). While no listener of that name
// is connected the events wait, stored; one that connects gets every event
// it missed, oldest first, then the live ones.

// listenerName is what a listener may be called: short, and safe in a
// URL, a log line and a metric label.
var listenerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidListenerName reports whether name can name a listener: 1 to 63
// lower-case letters, digits, '-' and '_', starting with a letter or digit.
func ValidListenerName(name string) bool { return listenerName.MatchString(name) }

// ListenerPark is the longest an event of a listener's route waits, parked,
// before its delivery job looks at it again while no listener is
// connected: a listener that connects takes waiting events at once (see
// Store.WaitingEvents), so the job only needs to come back to dead-letter
// the event at its route's max age.
const ListenerPark = time.Hour

// ErrListenerGone is the error of a delivery through a listener whose
// connection closed before it answered: the listener's failure, not the
// app's, so it spends no retry budget and moves no circuit breaker.
var ErrListenerGone = errors.New("listener disconnected")

// WaitingFilter selects the events a listener is to deliver (see
// Store.WaitingEvents).
type WaitingFilter struct {
	// Routes are the paths of the listener's routes; empty selects none.
	Routes []string
	// Kinds, when not empty, selects events of these kinds only.
	Kinds []Kind
	// After is the ID of the last event of the previous page; empty
	// starts at the oldest.
	After string
	// Limit bounds the page: LimitOrDefault.
	Limit int
}
