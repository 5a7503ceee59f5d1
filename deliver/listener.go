package deliver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"

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
	// with (connect, timeout, …). The request's context carries what it is
	// about (TunnelRequestOf).
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

// TunnelRequest is what a request sent through a Tunnel is about, for the
// listener to show.
type TunnelRequest struct {
	Event *switchboard.Event
	// Live says Twilio waits for the answer (a proxy route).
	Live bool
}

type tunnelRequestKey struct{}

// TunnelRequestOf returns what the request whose context is ctx is about,
// when a Deliverer sends it through a Tunnel.
func TunnelRequestOf(ctx context.Context) (TunnelRequest, bool) {
	tr, ok := ctx.Value(tunnelRequestKey{}).(TunnelRequest)
	return tr, ok
}

// WithTunnelRequest returns ctx carrying what a request sent through a
// Tunnel with it is about.
func WithTunnelRequest(ctx context.Context, tr TunnelRequest) context.Context {
	return context.WithValue(ctx, tunnelRequestKey{}, tr)
}

// ListenerBreaker names the circuit breaker of the deliveries through the
// listener name: one per listener, whatever its local URL, so a laptop's
// app that is down stops the attempts through that listener only.
func ListenerBreaker(name string) string { return "listener:" + name }

// tunnelClient makes requests through t, following no redirect (forward
// follows them itself, re-signing each hop).
func tunnelClient(t Tunnel) *http.Client {
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// park leaves an event of a listener's route waiting for the listener's
// session, which alone delivers it (DeliverThrough), and wakes that
// session if it is connected here. No attempt is counted. The event comes
// back to a worker after switchboard.ListenerPark, or at its route's max
// age, when it is dead-lettered as an open circuit's events are. The park
// is recorded with the attempt count the event was loaded with, so if the
// session delivered it meanwhile the store ignores the park (see
// switchboard.Store.RecordAttempts): a park never undoes a delivery.
func (d *Deliverer) park(ctx context.Context, route Route, ev *switchboard.Event) error {
	if d.listeners != nil {
		d.listeners.Waiting(route.Listener)
	}
	d.metrics.Attempts.WithLabelValues(ev.Route, "listener_wait", "0").Inc()
	now := d.now()
	result := &switchboard.AttemptResult{
		Attempt:  switchboard.Attempt{EventID: ev.ID, StartedAt: now},
		State:    ev.State,
		Attempts: ev.Attempts,
	}
	deadline := ev.CreatedAt.Add(route.MaxAge)
	if !now.Before(deadline) {
		d.eventLog(ev).Warn("dead-lettered: max age reached while waiting for a listener", "listener", route.Listener)
		result.State = switchboard.StateDead
		result.Attempt.Error = fmt.Sprintf("no listener %q delivered it before max age (%s)", route.Listener, route.MaxAge)
		return d.record(ctx, result)
	}
	result.NextAttemptAt = parkedUntil(now, deadline)
	return d.record(ctx, result)
}

// parkedUntil is when a worker looks again at an event parked at now for
// a listener: after switchboard.ListenerPark, or at deadline (its route's
// max age) if that comes first.
func parkedUntil(now, deadline time.Time) time.Time {
	if next := now.Add(switchboard.ListenerPark); next.Before(deadline) {
		return next
	}
	return deadline
}

// DeliverThrough makes one delivery attempt of ev, an event of a route
// with a Listener, through t, records its outcome, and returns it. A
// listener's session calls it for each waiting event in order; the
// delivery workers never deliver such an event themselves (they park it).
// The attempt goes under the listener's circuit breaker and the route's
// retry policy; when the listener goes away before the app's answer
// reaches it, the attempt is on record as interrupted (the app may have
// got the request) and the event is due again at once, which parks it
// until a listener connects. It returns an error only for an internal
// failure (the event's request could not be read, the outcome not
// recorded).
func (d *Deliverer) DeliverThrough(ctx context.Context, ev *switchboard.Event, t Tunnel) (*switchboard.AttemptResult, error) {
	rt, ok := d.routes[ev.Route]
	if !ok || rt.Listener == "" || ev.Target != "" {
		return nil, fmt.Errorf("%w: event %s is not one of a listener's routes", switchboard.ErrInvalid, ev.ID)
	}
	req, err := d.store.Request(ctx, ev.RequestID)
	if err != nil {
		return nil, fmt.Errorf("load request of event %s: %w", ev.ID, err)
	}
	route := rt.Route
	route.Target, route.via = t.Target(ev.Route), tunnelClient(t)
	number := ev.Attempts + 1
	sendCtx := WithTunnelRequest(ctx, TunnelRequest{Event: ev})
	var paused time.Duration
	out, err := rt.breaker.Execute(func() (*outcome, error) {
		o := d.send(sendCtx, route, ev, req, number)
		switch {
		case ctx.Err() != nil, errors.Is(o.err, switchboard.ErrListenerGone), d.stalledThrough(o, d.timeout, &paused):
			return o, errInterrupted // the listener's doing or ours: nothing about the app
		case o.unhealthy():
			return o, errUnhealthy
		}
		return o, nil
	})
	var result *switchboard.AttemptResult
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		result = d.circuitOpenResult(route, ev)
	case errors.Is(err, errInterrupted):
		result = d.interrupted(out, paused)
		if errors.Is(out.err, switchboard.ErrListenerGone) {
			result.Attempt.Error = "listener went away before the app's answer reached it: " + out.err.Error()
		}
	default:
		if number >= route.MaxAttempts {
			route.MaxAttempts += d.interruptions(ctx, ev.ID)
		}
		result = d.decide(route, ev, out)
	}
	if result.Attempt.Number > 0 {
		d.metrics.Attempts.WithLabelValues(ev.Route, resultLabel(result.State), strconv.Itoa(result.Attempt.TwilioCode)).Inc()
		d.metrics.DeliverySeconds.WithLabelValues(ev.Route).Observe(out.latency.Seconds())
	}
	if err := d.record(ctx, result); err != nil {
		return nil, err
	}
	return result, nil
}

// interruptions counts the attempts of an event that were interrupted
// (a listener gone, a shutdown): not the app's failures, so they do not
// spend the route's max_attempts. It is read only when an event reaches
// its limit. A store error counts none: the limit stands as numbered.
func (d *Deliverer) interruptions(ctx context.Context, eventID string) int {
	attempts, err := d.store.Attempts(ctx, eventID)
	if err != nil {
		d.logger.Warn("count interrupted attempts", "event", eventID, "err", err)
		return 0
	}
	n := 0
	for _, a := range attempts {
		if a.ErrorClass == ClassInterrupted {
			n++
		}
	}
	return n
}

// listenerRoute is rt made to proxy through its connected listener, or
// false when none is connected here.
func (d *Deliverer) listenerRoute(rt routeTarget, ev *switchboard.Event) (Route, bool) {
	if d.listeners == nil {
		return Route{}, false
	}
	t, ok := d.listeners.Tunnel(rt.Listener)
	if !ok {
		return Route{}, false
	}
	route := rt.Route
	route.Target, route.via = t.Target(ev.Route), tunnelClient(t)
	return route, true
}
