package deliver

import (
	"context"
	"errors"
	"net/http"

	"github.com/switchboard-dev/switchboard"
)

// Tunnel is a connected listener's way to the app on its machine (see
// package listener): requests sent through it are made there.
type Tunnel interface {
	// Target is the URL the listener forwards a route's events to: what
	// they are signed for.
	Target(route string) string
	// RoundTrip sends one request through the listener and returns the
	// app's answer. An error wrapping switchboard.ErrListenerGone says the
	// listener went away before it answered; an error with an
	// ErrorClass() method says what the app's side of the exchange failed
	// with (connect, timeout, …).
	http.RoundTripper
}

// Listeners are the listeners connected to this process.
type Listeners interface {
	// Tunnel returns the listener connected under name, if one is.
	Tunnel(name string) (Tunnel, bool)
	// Waiting tells the session of listener name, if one is connected to
	// this process, that an event of its routes is waiting: it reads the
	// store again without waiting for its next poll.
	Waiting(name string)
}

// DeliverThrough makes one delivery attempt of ev, an event of a route
// with a Listener, through t, records its outcome, and returns it. A
// listener's session calls it for each waiting event in order; the
// delivery workers never deliver such an event themselves (they park it:
// see switchboard.ListenerPark).
func (d *Deliverer) DeliverThrough(ctx context.Context, ev *switchboard.Event, t Tunnel) (*switchboard.AttemptResult, error) {
	return nil, errors.New("deliver through a listener: not implemented yet")
}
