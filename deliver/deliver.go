// Package deliver forwards stored events to the app: byte-exact, re-signed
// for the app's own URL, with retries, backoff, a circuit breaker per target
// and a dead-letter state, recording every attempt.
package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Route is where one webhook route's events go and how hard to try.
type Route struct {
	Path        string
	Target      string
	SignToken   string // the account's first auth token; re-signs forwarded requests
	MaxAttempts int
	MaxAge      time.Duration

	// Proxy mode (see Proxy): the failures after which a proxied event is
	// delivered again (twilio.ErrorClass names, or 3xx, 4xx, 5xx), and the
	// most proxied requests in flight to Target (0: no limit).
	RedeliverOn []string
	MaxInFlight int

	// Notify, when set, makes the route a notifier's (see package
	// notify): each attempt of an event is a call of Notify instead of a
	// forward to Target, under the same breaker, retry policy, limits,
	// metrics and attempt records. Target then names the notifier's
	// destination without secrets (an origin, or smtp://host:port): its
	// breaker's key.
	Notify func(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, attempt int) NotifyOutcome

	// Listener, when set, names the listener (switchboard listen) the
	// route's events go through instead of a Target: they wait, parked,
	// while none of that name is connected, and its session delivers them
	// in order (DeliverThrough). A proxy route answers Twilio with what
	// the app behind a connected listener answers.
	Listener string

	// via, when set, makes the requests instead of the Deliverer's own
	// clients: a listener's tunnel (DeliverThrough, Proxy).
	via *http.Client
}

// NotifyOutcome is what one attempt of a Route.Notify produced.
type NotifyOutcome struct {
	// Target is where the attempt went, without secrets (recorded as the
	// attempt's TargetURL); empty: the route's Target.
	Target string
	// Status is the answer's HTTP status or SMTP reply code; 0 when there
	// was no answer.
	Status int
	// Header is an HTTP answer's header: a Retry-After with a 429 or 503
	// is heeded.
	Header http.Header
	// Excerpt is the start of the answer (recorded, cut to 4 KiB).
	Excerpt []byte
	// Err is nil when the notification was delivered; otherwise what went
	// wrong, with no secret in it.
	Err error
	// Class is the kind of failure, as deliveries classify theirs
	// (twilio.ClassConnect, ClassHTTPStatus, …); empty when none fits.
	Class twilio.ErrorClass
	// Permanent says the target refused this notification for good (an
	// HTTP 410, an SMTP 5xx): it is dead-lettered without retry.
	Permanent bool
	// Unhealthy says the failure is the target's (no answer, an HTTP 5xx
	// or 429, an SMTP 4xx): it counts towards the target's breaker.
	Unhealthy bool
}

// Options configure a Deliverer.
type Options struct {
	Routes          []Route
	ConnectTimeout  time.Duration
	Timeout         time.Duration           // a whole attempt, connect included
	Policy          switchboard.RetryPolicy // when a failed delivery is tried again
	BreakerFailures int
	BreakerOpenFor  time.Duration
	Workers         int // concurrent deliveries; sizes the connection pool
	Metrics         *metrics.Metrics
	Logger          *slog.Logger
	Now             func() time.Time
	// Egress is where events with a Target (URLs API callers chose, such
	// as a message's status webhook) may connect. The zero Policy refuses
	// every internal address; route targets, the operator's own
	// configuration, are not subject to it.
	Egress egress.Policy
	// Listeners are the listeners connected to this process, for routes
	// with a Listener; nil: none ever is.
	Listeners Listeners
	// Pauses says how long this process was not running in a span of
	// time (a *pausewatch.Watcher); nil: it never stalls.
	Pauses Pauses
	// Lease, when set, fences deliveries among replicas: none is made
	// unless the lease was held throughout (ErrLeaseLost). nil: one
	// process delivers.
	Lease Lease
}

// Pauses measures the time this process was not running.
type Pauses interface {
	PausedBetween(from, to time.Time) time.Duration
}

// Headers forwarded from Twilio's request as they arrived. Everything else
// (hop-by-hop headers, the old signature, proxies' additions) is dropped.
var forwardedHeaders = []string{"Content-Type", "User-Agent", "Accept", "I-Twilio-Idempotency-Token", "X-Home-Region"}

const (
	excerptBytes = 4 << 10  // response body kept with each attempt
	drainBytes   = 64 << 10 // read past the excerpt so the connection can be reused
)

// Store is what a Deliverer needs of switchboard.Store: the event and its
// request to deliver, and where each attempt's outcome is recorded.
type Store interface {
	Event(ctx context.Context, id string) (*switchboard.Event, error)
	Request(ctx context.Context, id string) (*switchboard.Request, error)
	RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error
	Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error)
}

// Deliverer implements switchboard.Deliverer over HTTP.
type Deliverer struct {
	store     Store
	routes    map[string]routeTarget
	client    *http.Client // to route targets
	callers   *http.Client // to events' own Targets, URLs API callers chose: under Options.Egress
	timeout   time.Duration
	policy    switchboard.RetryPolicy
	openFor   time.Duration
	breakers  *breakers
	listeners Listeners // nil: no listener ever connects
	pauses    Pauses    // nil: no stall is ever seen
	lease     Lease     // nil: this process alone delivers
	opened    openSince // when each breaker not closed left closed
	metrics   *metrics.Metrics
	logger    *slog.Logger
	now       func() time.Time
}

var _ switchboard.Deliverer = (*Deliverer)(nil)

// New returns a Deliverer that reads events from store and records attempts
// in it.
func New(store Store, o Options) *Deliverer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Deliverer{
		store:     store,
		routes:    map[string]routeTarget{},
		timeout:   o.Timeout,
		policy:    o.Policy,
		openFor:   o.BreakerOpenFor,
		metrics:   o.Metrics,
		logger:    o.Logger,
		now:       o.Now,
		listeners: o.Listeners,
		pauses:    o.Pauses,
		lease:     o.Lease,
	}

	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	d.client = newClient(o, dialer)
	d.callers = newClient(o, o.Egress.Dialer(dialer))
	d.breakers = newBreakers(o.BreakerFailures, o.BreakerOpenFor, func(target string, from, to gobreaker.State) {
		d.logger.Warn("circuit breaker", "target", target, "from", from.String(), "to", to.String())
		d.opened.change(target, to, d.now())
	})
	slots := map[string]chan struct{}{}
	for _, r := range o.Routes {
		if r.MaxInFlight > cap(slots[r.Target]) {
			slots[r.Target] = make(chan struct{}, r.MaxInFlight)
		}
	}
	for _, r := range o.Routes {
		var breaker *gobreaker.CircuitBreaker[*outcome]
		switch {
		case r.Notify != nil:
			breaker = d.breakers.named(r.Path)
		case r.Listener != "":
			breaker = d.breakers.named(ListenerBreaker(r.Listener))
		default:
			breaker = d.breakers.get(r.Target)
		}
		d.routes[r.Path] = routeTarget{Route: r, breaker: breaker, slots: slots[r.Target]}
	}
	return d
}

// newClient is the HTTP client of deliveries, connecting with dialer.
func newClient(o Options, dialer *net.Dialer) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// The app is reached directly, never through an environment
			// proxy, which would also connect where the dialer refuses to.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   o.ConnectTimeout,
			MaxIdleConns:          max(o.Workers, 16) * 2,
			MaxIdleConnsPerHost:   max(o.Workers, 16),
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: o.Timeout,
			ForceAttemptHTTP2:     true,
		},
		// A redirect is the app's answer, recorded as a failure like Twilio
		// would; following it could send the event somewhere unintended.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// routeTarget is a route with its target's circuit breaker, resolved once
// rather than on every attempt.
type routeTarget struct {
	Route
	breaker *gobreaker.CircuitBreaker[*outcome]
	slots   chan struct{} // proxied requests in flight to the target; nil: no limit
}

var (
	// errUnhealthy tells the breaker an attempt found the target unhealthy
	// (network failure, 5xx, 429); other answers prove it is up.
	errUnhealthy = errors.New("target unhealthy")
	// errInterrupted tells the breaker an attempt was cut short by our own
	// shutdown, which says nothing about the target.
	errInterrupted = errors.New("interrupted by shutdown")
	// errDenied tells the breaker the egress policy refused the target's
	// address: no request was made, which says nothing about its health.
	errDenied = errors.New("destination denied")
	// errStalled tells the breaker an attempt timed out because this
	// process stalled (see stalledThrough), which says nothing about the
	// target.
	errStalled = errors.New("process stalled")
)

const (
	// ClassInterrupted marks an attempt cut short by Switchboard's own
	// shutdown: not the app's failure, so it spends no retry budget.
	ClassInterrupted = "interrupted"
	// ClassDenied marks an attempt the egress policy refused to connect
	// (Options.Egress): permanent, so the event is dead at once.
	ClassDenied = "denied"
)

// Deliver makes one delivery attempt of an event, if the event still has
// the attempt count its job was scheduled with, and records the outcome.
func (d *Deliverer) Deliver(ctx context.Context, eventID string, attempts int) error {
	begun := time.Now() // before the read the delivery is decided on
	ev, err := d.store.Event(ctx, eventID)
	if errors.Is(err, switchboard.ErrNotFound) {
		d.logger.Error("delivery job for an unknown event", "event", eventID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load event %s: %w", eventID, err)
	}
	if ev.State.Terminal() || ev.Attempts != attempts {
		return nil // delivered, dead, or moved on since this job was made: a stale job
	}
	return d.deliverLoaded(ctx, ev, nil, begun)
}

// DeliverLoaded makes one delivery attempt of ev, as loaded or as just
// committed, and records the outcome. req is ev's request, or nil to load
// it. Unlike Deliver it does not check that ev is still due: the caller
// hands over an event it knows to be (see package dispatch). Neither ev
// nor req is modified.
func (d *Deliverer) DeliverLoaded(ctx context.Context, ev *switchboard.Event, req *switchboard.Request) error {
	return d.deliverLoaded(ctx, ev, req, time.Now())
}

// deliverLoaded is DeliverLoaded of an event read no earlier than begun,
// on the lease's clock (whatever d.now is): the lease must have been held
// since then, or what was read may be stale.
func (d *Deliverer) deliverLoaded(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, begun time.Time) error {
	rt, ok := d.routes[ev.Route]
	route, breaker := rt.Route, rt.breaker
	if !ok {
		// Fail closed: with no configured target there is nowhere safe to send it.
		d.eventLog(ev).Error("event's route is no longer configured; dead-lettered")
		return d.record(ctx, &switchboard.AttemptResult{
			Attempt:  switchboard.Attempt{EventID: ev.ID, StartedAt: d.now(), Error: "route no longer configured"},
			State:    switchboard.StateDead,
			Attempts: ev.Attempts,
		})
	}
	if ev.Target != "" {
		// A fan-out event (switchboard.Ingest.Fanout): its own target,
		// re-signed for it, with its own circuit breaker, under the
		// route's retry policy and token.
		route.Target, breaker = ev.Target, d.breakers.get(ev.Target)
	}
	if route.Listener != "" && ev.Target == "" {
		// Only the listener's session delivers these, in order
		// (DeliverThrough); a worker parks them.
		return d.park(ctx, route, ev)
	}
	if route.Target == "" && route.Notify == nil {
		// A static route with no app: stored and answered is all there is.
		return d.record(ctx, &switchboard.AttemptResult{
			Attempt:  switchboard.Attempt{EventID: ev.ID, StartedAt: d.now()},
			State:    switchboard.StateDelivered,
			Attempts: ev.Attempts,
		})
	}
	if req == nil {
		var err error
		if req, err = d.store.Request(ctx, ev.RequestID); err != nil {
			return fmt.Errorf("load request of event %s: %w", ev.ID, err)
		}
	}

	// Fails closed: with the lease lapsed since this delivery began,
	// another replica may have taken its job; nothing is sent or recorded.
	if d.lease != nil && !d.lease.HeldSince(begun) {
		return fmt.Errorf("event %s: %w", ev.ID, ErrLeaseLost)
	}
	number := ev.Attempts + 1
	var paused time.Duration
	out, err := breaker.Execute(func() (*outcome, error) {
		var o *outcome
		if route.Notify != nil {
			o = d.notify(ctx, route, ev, req, number)
		} else {
			o = d.send(ctx, route, ev, req, number)
		}
		switch {
		case ctx.Err() != nil:
			return o, errInterrupted
		case errors.Is(o.err, egress.ErrDenied):
			return o, errDenied
		case d.stalledThrough(o, d.timeout, &paused):
			return o, errInterrupted // our stall: nothing about the app
		case o.unhealthy():
			return o, errUnhealthy
		}
		return o, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return d.circuitOpen(ctx, d.eventLog(ev), route, ev)
	}

	var result *switchboard.AttemptResult
	switch {
	case errors.Is(err, errInterrupted):
		result = d.interrupted(out, paused)
	case errors.Is(err, errDenied):
		result = denied(out)
	default:
		result = d.decide(route, ev, out)
	}
	d.metrics.Attempts.WithLabelValues(ev.Route, resultLabel(result.State), strconv.Itoa(result.Attempt.TwilioCode)).Inc()
	d.metrics.DeliverySeconds.WithLabelValues(ev.Route).Observe(out.latency.Seconds())
	if err := d.record(ctx, result); err != nil {
		return err
	}
	switch result.State {
	case switchboard.StateDelivered:
		if d.logger.Enabled(ctx, slog.LevelDebug) {
			d.eventLog(ev).Debug("delivered", "attempt", number, "status", out.status, "latency", out.latency)
		}
	case switchboard.StateDead:
		d.eventLog(ev).Warn("dead-lettered", "attempt", number, "status", out.status, "error", result.Attempt.Error, "twilio_code", result.Attempt.TwilioCode)
	case switchboard.StateRetrying:
		d.eventLog(ev).Info("delivery failed; will retry", "attempt", number, "status", out.status,
			"error", result.Attempt.Error, "twilio_code", result.Attempt.TwilioCode, "next", result.NextAttemptAt)
	}
	return nil
}

// eventLog is the logger of ev's lines. It is made only where a line is
// written: a logger's With formats its attributes at once, which on every
// delivery cost more than the lines. A fan-out event's URL may carry a
// secret in its query, so logs name only its origin.
func (d *Deliverer) eventLog(ev *switchboard.Event) *slog.Logger {
	log := d.logger.With("event", ev.ID, "route", ev.Route, "message_sid", ev.MessageSID, "call_sid", ev.CallSID)
	if ev.Target != "" {
		log = log.With("target", origin(ev.Target))
	}
	return log
}

// interrupted records an attempt cut short by shutdown. The request may have
// reached the app, so it is on record; but the failure is ours, so it is
// due again at once and never dead-letters the event.
//
// paused, when positive, says the interruption was a stall of this
// process (see stalledThrough), not a shutdown.
func (d *Deliverer) interrupted(o *outcome, paused time.Duration) *switchboard.AttemptResult {
	a := o.attempt
	a.ErrorClass, a.TwilioCode = ClassInterrupted, 0
	if paused > 0 {
		a.Error = fmt.Sprintf("this process was not running for %s of the attempt (a stall, not the app's timeout): %s",
			paused.Round(time.Millisecond), a.Error)
	} else {
		a.Error = "interrupted by shutdown: " + a.Error
	}
	return &switchboard.AttemptResult{Attempt: a, State: switchboard.StateRetrying, NextAttemptAt: d.now(), Attempts: a.Number}
}

// denied dead-letters an event whose target the egress policy refused:
// the refusal is permanent, so retrying it would only spend attempts. The
// error names the address and its class, not the URL, whose query may
// hold a secret.
func denied(o *outcome) *switchboard.AttemptResult {
	a := o.attempt
	a.ErrorClass, a.TwilioCode = ClassDenied, 0
	var de *egress.DeniedError
	if errors.As(o.err, &de) {
		a.Error = de.Error()
	}
	a.Error += "; not retried"
	return &switchboard.AttemptResult{Attempt: a, State: switchboard.StateDead, Attempts: a.Number}
}

// circuitOpen handles an attempt the breaker refused: no request was sent,
// so no attempt is counted; the event waits for the breaker's next trial,
// unless it is already past its route's max age.
func (d *Deliverer) circuitOpen(ctx context.Context, log *slog.Logger, route Route, ev *switchboard.Event) error {
	result := d.circuitOpenResult(route, ev)
	if result.State == switchboard.StateDead {
		log.Warn("dead-lettered: max age reached while the target's circuit is open")
	}
	return d.record(ctx, result)
}

// circuitOpenResult is the result of an attempt a breaker refused: no
// attempt counted, the event's state kept and its next look spread over
// the open period (circuitWait), or dead past its route's max age.
func (d *Deliverer) circuitOpenResult(route Route, ev *switchboard.Event) *switchboard.AttemptResult {
	d.metrics.Attempts.WithLabelValues(ev.Route, "circuit_open", "0").Inc()
	now := d.now()
	result := &switchboard.AttemptResult{
		Attempt:  switchboard.Attempt{EventID: ev.ID, StartedAt: now, Error: "circuit open: no request made"},
		State:    ev.State,
		Attempts: ev.Attempts,
	}
	if now.Sub(ev.CreatedAt) > route.MaxAge {
		result.State, result.Attempt.Error = switchboard.StateDead, "circuit open; max age reached"
		return result
	}
	result.NextAttemptAt = now.Add(d.circuitWait(now.Sub(ev.CreatedAt)))
	return result
}

// circuitWait is how long an event refused by an open circuit waits before
// it looks again. Waits are spread over the open period (the retry
// policy's jitter over a delay of openFor) so the trial request is not
// followed by a stampede, and grow with the event's age (a tenth of it, up
// to the backoff cap), so that a long outage with a large backlog does not
// turn into constant re-checking, while the app, once back, gets an event
// within a tenth of the time it was down.
func (d *Deliverer) circuitWait(age time.Duration) time.Duration {
	spread := switchboard.RetryPolicy{Base: d.openFor, Max: d.openFor, Rand: d.policy.Rand}
	wait := spread.Backoff(1)
	return max(wait, min(age/10, d.policy.Max))
}

// record stores an attempt's outcome (group-committed by the store). It
// must outlive a shutdown's cancellation: the attempt happened and has to
// be on record.
func (d *Deliverer) record(ctx context.Context, r *switchboard.AttemptResult) error {
	if err := d.store.RecordAttempts(context.WithoutCancel(ctx), []*switchboard.AttemptResult{r}); err != nil {
		return fmt.Errorf("record attempt %d of event %s: %w", r.Attempt.Number, r.Attempt.EventID, err)
	}
	return nil
}

// decide turns an attempt's outcome into the event's next state.
func (d *Deliverer) decide(route Route, ev *switchboard.Event, o *outcome) *switchboard.AttemptResult {
	a := o.attempt
	r := &switchboard.AttemptResult{Attempt: a, Attempts: a.Number}
	switch {
	case o.notify != nil && o.notify.Err == nil:
		r.State = switchboard.StateDelivered
		return r
	case o.notify != nil && o.notify.Permanent:
		r.State = switchboard.StateDead
		r.Attempt.Error += "; refused for good: not retried"
		return r
	case o.err == nil && o.status >= 200 && o.status < 300:
		r.State = switchboard.StateDelivered
		return r
	case o.unsigned:
		r.State = switchboard.StateDead
		r.Attempt.Error += "; never delivered"
		return r
	case o.err == nil && o.status == http.StatusGone:
		r.State = switchboard.StateDead
		r.Attempt.Error += "; app answered 410 Gone: not retried"
		return r
	case a.Number >= route.MaxAttempts:
		r.State = switchboard.StateDead
		r.Attempt.Error += fmt.Sprintf("; max attempts (%d) reached", route.MaxAttempts)
		return r
	}
	now := d.now()
	var asked time.Duration // the app's Retry-After, heeded only with the statuses that define it
	if o.status == http.StatusTooManyRequests || o.status == http.StatusServiceUnavailable {
		asked, _ = switchboard.ParseRetryAfter(o.header.Get("Retry-After"), now)
	}
	next := now.Add(d.policy.Delay(a.Number, asked))
	if next.Sub(ev.CreatedAt) > route.MaxAge {
		r.State = switchboard.StateDead
		r.Attempt.Error += fmt.Sprintf("; max age (%s) reached", route.MaxAge)
		return r
	}
	r.State, r.NextAttemptAt = switchboard.StateRetrying, next
	return r
}

func resultLabel(s switchboard.State) string {
	if s == switchboard.StateRetrying {
		return "retry"
	}
	return string(s)
}

// outcome is what one HTTP attempt produced.
type outcome struct {
	attempt switchboard.Attempt
	status  int
	header  http.Header
	body    []byte // the start of the answer's body, as much as was kept
	err     error
	latency time.Duration
	// unsigned is set when nothing was sent because the stored request
	// carries content its signature did not cover: it is never sent, and
	// says nothing about the target.
	unsigned bool
	// notify is a notifier's outcome (Route.Notify), which judges itself.
	notify *NotifyOutcome
}

func (o *outcome) unhealthy() bool {
	switch {
	case o.unsigned:
		return false
	case o.notify != nil:
		return o.notify.Unhealthy && !o.notify.Permanent
	}
	return o.err != nil || o.status >= 500 || o.status == http.StatusTooManyRequests
}

// send forwards the stored request to the route's target once, without
// following redirects, keeping an excerpt of the answer.
func (d *Deliverer) send(ctx context.Context, route Route, ev *switchboard.Event, req *switchboard.Request, number int) *outcome {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.forward(ctx, route, ev, req, number, 0, excerptBytes)
}

// notify makes one attempt of a notifier's event (Route.Notify), within
// the delivery timeout.
func (d *Deliverer) notify(ctx context.Context, route Route, ev *switchboard.Event, req *switchboard.Request, number int) *outcome {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	start := d.now()
	n := route.Notify(ctx, ev, req, number)
	if n.Target == "" {
		n.Target = route.Target
	}
	o := &outcome{notify: &n, status: n.Status, header: n.Header, err: n.Err, latency: d.now().Sub(start)}
	o.attempt = switchboard.Attempt{
		EventID: ev.ID, Number: number, StartedAt: start, TargetURL: n.Target, StatusCode: n.Status,
		Latency: o.latency, ResponseHeader: n.Header, ResponseExcerpt: n.Excerpt[:min(len(n.Excerpt), excerptBytes)],
	}
	if n.Err != nil {
		o.attempt.Error = n.Err.Error()
		o.attempt.ErrorClass, o.attempt.TwilioCode = string(n.Class), int(n.Class.Code())
	}
	return o
}

// forward sends the stored request to the route's target: same method and
// body, Twilio's headers, a signature for the target URL, and Switchboard's
// event id and attempt number. It follows up to follow redirects to http(s)
// URLs, re-signing each hop (a 301, 302 or 303 turns a POST into a bodiless
// GET, as browsers and Twilio do), and keeps up to keep bytes of the final
// answer's body, reading a little past them so the connection can be
// reused. ctx bounds the whole exchange.
func (d *Deliverer) forward(ctx context.Context, route Route, ev *switchboard.Event, req *switchboard.Request, number, follow, keep int) *outcome {
	start := d.now()
	o := &outcome{attempt: switchboard.Attempt{EventID: ev.ID, Number: number, StartedAt: start, TargetURL: route.Target}}
	fail := func(class twilio.ErrorClass, err error) *outcome {
		o.err = err
		o.attempt.ErrorClass, o.attempt.TwilioCode, o.attempt.Error = string(class), int(class.Code()), err.Error()
		o.latency = d.now().Sub(start)
		o.attempt.Latency = o.latency
		return o
	}

	client := d.client
	switch {
	case route.via != nil:
		client = route.via
	case ev.Target != "":
		// Fails closed: any event with a URL of its own connects under
		// the egress policy, whoever stored it.
		client = d.callers
	}
	method, contentType := req.Method, req.Header.Get("Content-Type")
	// Only what a signature covered is signed again (intake refuses the
	// rest; a request stored before it did, or written by other means,
	// stops here). Fails closed: such a request is never sent.
	if err := twilio.Covered(twilio.Request{Method: method, URL: req.URL, ContentType: contentType, Body: req.Body}); err != nil {
		o.unsigned = true
		return fail(twilio.ClassProtocol, fmt.Errorf("not signed again: %w", err))
	}
	received, body, twilioSID, err := asTheAppKnowsIt(ev, req)
	if err != nil {
		return fail(twilio.ClassProtocol, err)
	}
	target, err := withQuery(route.Target, received)
	if err != nil {
		return fail(twilio.ClassProtocol, err)
	}
	var resp *http.Response
	for hop := 0; ; hop++ {
		signedURL, signature, err := twilio.SignRequest(route.SignToken, target, contentType, body)
		if err != nil {
			return fail(twilio.ClassProtocol, fmt.Errorf("sign request: %w", err))
		}
		o.attempt.TargetURL = signedURL
		httpReq, err := http.NewRequestWithContext(ctx, method, signedURL, bytes.NewReader(body))
		if err != nil {
			return fail(twilio.ClassProtocol, fmt.Errorf("build request: %w", err))
		}
		if len(body) == 0 {
			httpReq.Body, httpReq.ContentLength = http.NoBody, 0
		}
		for _, h := range forwardedHeaders {
			if v := req.Header.Values(h); len(v) > 0 {
				httpReq.Header[h] = v
			}
		}
		if contentType == "" {
			httpReq.Header.Del("Content-Type")
		}
		// Marks the request replayable without sending a header (a nil
		// value is not written): net/http then sends it again on a fresh
		// connection when a kept-alive one turns out closed by the app
		// before it answered, a race a busy machine loses. Without it
		// that EOF was a protocol failure the app "may have processed",
		// and a live call got the fallback for a request the app never
		// read.
		httpReq.Header["Idempotency-Key"] = nil
		httpReq.Header.Set("X-Twilio-Signature", signature)
		httpReq.Header.Set("X-Switchboard-Event-Id", ev.ID)
		httpReq.Header.Set("X-Switchboard-Attempt", strconv.Itoa(number))
		if twilioSID != "" {
			httpReq.Header.Set(TwilioSIDHeader, twilioSID)
		}

		resp, err = client.Do(httpReq)
		if err != nil {
			return fail(twilio.ClassifyError(err), err)
		}
		loc := resp.Header.Get("Location")
		if hop == follow || !isRedirect(resp.StatusCode) || loc == "" {
			break
		}
		next, err := resp.Request.URL.Parse(loc)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		resp.Body.Close()
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Host == "" {
			o.status, o.attempt.StatusCode = resp.StatusCode, resp.StatusCode
			return fail(twilio.ClassHTTPStatus, fmt.Errorf("HTTP %d redirect to %q, not an http(s) URL", resp.StatusCode, loc))
		}
		target = next.String()
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
			method, contentType, body = http.MethodGet, "", nil
		}
	}
	defer resp.Body.Close()
	kept, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(keep)))
	if readErr == nil {
		_, readErr = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	}
	o.status, o.header, o.body = resp.StatusCode, resp.Header, kept
	o.attempt.StatusCode, o.attempt.ResponseHeader = resp.StatusCode, resp.Header
	o.attempt.ResponseExcerpt = kept[:min(len(kept), excerptBytes)]
	if readErr != nil {
		return fail(twilio.ClassifyError(readErr), fmt.Errorf("read response: %w", readErr))
	}
	o.latency = d.now().Sub(start)
	o.attempt.Latency = o.latency
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		o.attempt.ErrorClass = string(twilio.ClassHTTPStatus)
		o.attempt.TwilioCode = int(twilio.ClassHTTPStatus.Code())
		o.attempt.Error = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return o
}

// origin is a URL's scheme and host, without the path or query that may
// carry a secret; what breakers are keyed by.
func origin(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// withQuery appends the raw query of the URL Twilio called to the target,
// so GET webhooks keep their parameters and JSON webhooks their bodySHA256.
func withQuery(target, received string) (string, error) {
	u, err := url.Parse(received)
	if err != nil {
		return "", fmt.Errorf("parse received URL: %w", err)
	}
	if u.RawQuery == "" {
		return target, nil
	}
	t, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("parse target URL: %w", err)
	}
	if t.RawQuery != "" {
		t.RawQuery += "&" + u.RawQuery
	} else {
		t.RawQuery = u.RawQuery
	}
	return t.String(), nil
}

// stalledThrough reports whether o timed out because this process stalled
// (a SIGSTOP, a frozen VM, a long pause) rather than because the app was
// slow: the process was not running for so much of the attempt that the
// app had less than half of budget of the process's running time to
// answer (a margin, so that a scheduler's hiccup on a busy machine is
// still the app's timeout, while a SIGSTOP or a frozen VM is not). It then
// sets *paused to how long the process was not running. Such a failure is
// recorded as interrupted, due again at once, and never moves the
// target's breaker. It fails toward the app: a stall is seen only when
// Pauses saw it, and an attempt that had its whole budget of running time
// is the app's timeout.
func (d *Deliverer) stalledThrough(o *outcome, budget time.Duration, paused *time.Duration) bool {
	if d.pauses == nil || o.attempt.ErrorClass != string(twilio.ClassTimeout) {
		return false
	}
	start := o.attempt.StartedAt
	p := d.pauses.PausedBetween(start, start.Add(o.latency))
	if p <= 0 || o.latency-p >= budget/2 {
		return false
	}
	*paused = p
	return true
}
