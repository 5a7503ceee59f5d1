// Package console serves Switchboard's web console under /console/: an
// inspector of the webhooks received and their deliveries, an event page
// with every attempt, the outbound messages with their status timelines,
// replays, a dashboard of the golden signals, the alerts with their
// history, to acknowledge and silence, and, with a Twilio simulator, a
// phone that texts and calls the app through it. Pages are rendered on
// the server with html/template; htmx and its SSE extension add live rows
// and in-page actions, uPlot draws the charts. Every asset is embedded:
// the console loads nothing from elsewhere, and its Content-Security-Policy
// allows nothing else.
//
// Access takes the admin token once, at sign-in; the browser then holds a
// session cookie whose secret the store never sees (it keeps a hash).
// Every POST carries a CSRF token derived from the session's secret.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/sim"
)

// Prefix is the path the console is served under: mount the Console at it
// (mux.Handle(console.Prefix, c)).
const Prefix = "/console/"

// Store is what the console reads and changes in switchboard.Store.
type Store interface {
	ListEvents(ctx context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error)
	Event(ctx context.Context, id string) (*switchboard.Event, error)
	Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error)
	ListRequests(ctx context.Context, f switchboard.RequestFilter) (*switchboard.Page[*switchboard.Request], error)
	Request(ctx context.Context, id string) (*switchboard.Request, error)
	Replay(ctx context.Context, f switchboard.ReplayFilter) (int, error)
	ReplayCount(ctx context.Context, f switchboard.ReplayFilter) (int, error)

	CreateSession(ctx context.Context, s *switchboard.ConsoleSession) error
	Session(ctx context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error)
	DeleteSession(ctx context.Context, id string, now time.Time) error

	Dashboard(ctx context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error)

	ListOutboundMessages(ctx context.Context, f switchboard.OutboundFilter) (*switchboard.Page[*switchboard.OutboundMessage], error)
	OutboundMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error)
	MessageHistory(ctx context.Context, messageID string) ([]switchboard.StatusChange, error)

	switchboard.AlertActions
	AlertHistory(ctx context.Context, rule, key string, limit int) ([]switchboard.AlertEvent, error)
}

// Messages replays failed outbound messages (web.Messages and
// *outbound.Service are ones): a message that is not replayable is
// switchboard.ErrConflict, an unknown one switchboard.ErrNotFound.
type Messages interface {
	Replay(ctx context.Context, id string) (*switchboard.OutboundMessage, error)
}

// Prober probes a route's target as Twilio would call it, with the doctor.
type Prober interface {
	// ProbeRoute probes the target of the route with this path;
	// switchboard.ErrNotFound when there is no such route or it has no
	// target. What the probe found is in the report.
	ProbeRoute(ctx context.Context, route string) (*doctor.Report, error)
}

// Live reports the state the dashboard shows beside the stored series:
// what this process knows now, not what the store recorded.
type Live interface {
	LiveState(ctx context.Context) (*LiveState, error)
}

// LiveState is the delivery and sending machinery as it stands.
type LiveState struct {
	Breakers []BreakerState `json:"breakers"`
	Pools    []PoolState    `json:"pools"`
	// Node is this process's name among replicas, and Rescued how many
	// jobs, by kind (delivery, send), it has taken over from processes
	// that stopped since it started (switchboard_rescued_total).
	Node    string           `json:"node,omitempty"`
	Rescued map[string]int64 `json:"rescued,omitempty"`
}

// BreakerState is one delivery target's circuit breaker.
type BreakerState struct {
	Target string `json:"target"` // the target's origin (scheme://host:port)
	State  string `json:"state"`  // closed, open or half-open
}

// PoolState is one outbound pool.
type PoolState struct {
	Pool string `json:"pool"`
	// Rate is the pool's configured messages per second, drawn on the
	// dashboard as a line over what it sent.
	Rate float64 `json:"rate"`
	// Brownout is whether the pool is delaying marketing messages because
	// its queue is behind, and Delay how long the oldest waits.
	Brownout bool          `json:"brownout"`
	Delay    time.Duration `json:"delay_ns"`
}

// Route is a configured webhook route as the console shows it.
type Route struct {
	Path string
	// Proxy is whether the route forwards webhooks live (ingest's proxy
	// mode): the answer Twilio got was the app's, or the route's fallback
	// when the first attempt failed.
	Proxy bool
}

// Options configure the console. Store-backed features need only the
// Store; the rest are optional and their pages say when one is missing.
type Options struct {
	// Token is the admin token (admin.token) that signs in. Empty refuses
	// every sign-in: the console fails closed.
	Token string
	// Redact (admin.redact) hides phone numbers and bodies on every page:
	// request and message bodies, URL query strings, response excerpts,
	// numbers in errors.
	Redact bool
	// PublicURL is the URL Switchboard is reached at (public_url). When it
	// is https the session cookie is Secure even if TLS ends in front of
	// Switchboard, and its origin is trusted for POSTs.
	PublicURL string
	// SessionTTL is how long a session lasts after sign-in; default 12h.
	SessionTTL time.Duration
	// Routes are the configured routes: the inspector offers their paths,
	// and the event page knows which answered Twilio live (Route.Proxy).
	Routes []Route

	Messages Messages // replays failed messages; nil hides the button
	Prober   Prober   // probes a route's target; nil hides the button
	Live     Live     // breakers, pools and this process on the dashboard; nil shows none

	// Phones act as a handset through the Twilio simulator
	// (admin.simulator_url), one per account the phone may use, the first
	// by default. None: no Phone page, and no link to it.
	Phones []*sim.PhoneClient
	// PhoneTimeout bounds the wait for the simulator's answer to a text
	// or call; default DefaultPhoneTimeout.
	PhoneTimeout time.Duration

	// Alerts are the configured alert rules the alerts page lists.
	Alerts []switchboard.AlertRule
	// RunbookBase is the runbooks' page, each rule's runbook an anchor
	// of it; default DefaultRunbookBase.
	RunbookBase string

	Logger *slog.Logger
	// Now and Rand default to time.Now and crypto/rand.Reader.
	Now  func() time.Time
	Rand io.Reader

	// RequestTimeout bounds a page's or JSON answer's work; default 10s.
	RequestTimeout time.Duration
	// ProbeTimeout bounds a probe; default 25s, within the server's write
	// timeout.
	ProbeTimeout time.Duration
	// MaxStreams bounds the live streams open at once (503 beyond);
	// default 32. StreamFor ends each after a while (the browser
	// reconnects), default 30m; StreamEvery is how often a stream asks the
	// store for new events, default 1s.
	MaxStreams  int
	StreamFor   time.Duration
	StreamEvery time.Duration
}

// Defaults of Options.
const (
	DefaultSessionTTL     = 12 * time.Hour
	DefaultRequestTimeout = 10 * time.Second
	DefaultProbeTimeout   = 25 * time.Second
	DefaultMaxStreams     = 32
	DefaultStreamFor      = 30 * time.Minute
	DefaultStreamEvery    = time.Second
)

// Console is the web console, an http.Handler for paths under Prefix.
type Console struct {
	store     Store
	o         Options
	logger    *slog.Logger
	now       func() time.Time
	rand      io.Reader
	tokenHash [32]byte
	secure    bool // session cookies are Secure whatever the request's scheme
	routes    map[string]Route
	cop       *http.CrossOriginProtection
	limiter   *signInLimiter
	streams   chan struct{} // one slot per open stream
	pages     *pages
	assets    *assets
	mux       *http.ServeMux
}

// New returns the console over store.
func New(store Store, o Options) *Console {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.PhoneTimeout <= 0 {
		o.PhoneTimeout = DefaultPhoneTimeout
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.StreamFor <= 0 {
		o.StreamFor = DefaultStreamFor
	}
	if o.StreamEvery <= 0 {
		o.StreamEvery = DefaultStreamEvery
	}
	c := &Console{
		store: store, o: o, logger: o.Logger, now: o.Now, rand: o.Rand,
		routes:  map[string]Route{},
		cop:     http.NewCrossOriginProtection(),
		limiter: newSignInLimiter(signInBurst, signInEvery, maxSignInSources),
		streams: make(chan struct{}, o.MaxStreams),
		assets:  newAssets(),
		mux:     http.NewServeMux(),
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if o.Token != "" {
		c.tokenHash = sha256.Sum256([]byte(o.Token))
	}
	if u, err := url.Parse(o.PublicURL); err == nil && u.Scheme == "https" && u.Host != "" {
		c.secure = true
		// Behind a proxy that rewrites Host, the browser's Origin is the
		// public one.
		_ = c.cop.AddTrustedOrigin("https://" + u.Host)
	}
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusForbidden, "This form was sent from another site, so it was refused.")
	}))
	for _, r := range o.Routes {
		c.routes[r.Path] = r
	}
	c.pages = newPages(c.assets)

	c.mux.HandleFunc("GET "+Prefix+"login", c.loginForm)
	c.mux.Handle("POST "+Prefix+"login", c.cop.Handler(http.HandlerFunc(c.signIn)))
	c.post("logout", c.signOut)
	c.page("{$}", c.events)
	c.page("events", c.events)
	c.mux.HandleFunc("GET "+Prefix+"events/stream", c.withSession(c.stream, false))
	c.page("events/{id}", c.event)
	c.post("events/{id}/replay", c.replayEvent)
	// A probe waits as long as Twilio would, longer than a page.
	c.postWithin("events/{id}/probe", o.ProbeTimeout, c.probeEvent)
	c.page("requests", c.requests)
	c.page("requests/{id}", c.request)
	c.page("replay", c.replayForm)
	c.post("replay", c.replayFilter)
	c.page("messages", c.messages)
	c.page("messages/{id}", c.message)
	c.post("messages/{id}/replay", c.replayMessage)
	c.page("dashboard", c.dashboard)
	c.page("alerts", c.alerts)
	c.page("alerts/{rule}", c.alert)
	c.post("alerts/{rule}/ack", c.ackAlert)
	c.post("alerts/{rule}/silence", c.silenceAlert)
	c.post("alerts/{rule}/unsilence", c.unsilenceAlert)
	c.page("debugger", c.debugger)
	c.page("phone", c.phoneForm)
	// The phone waits for the simulator, then looks for the event; its
	// form's text is longer than checked lets through (phoneChecked).
	c.mux.Handle("POST "+Prefix+"phone", c.cop.Handler(http.HandlerFunc(c.withSession(
		timed(o.PhoneTimeout+phoneLookupTimeout, c.phoneChecked(c.csrfChecked(c.phoneSend))), true))))
	c.mux.HandleFunc("GET "+Prefix+"dashboard.json", c.withSession(timed(o.RequestTimeout, c.checked(c.dashboardJSON)), false))
	c.mux.Handle("GET "+Prefix+"static/{file...}", c.assets)
	c.page("", func(w http.ResponseWriter, r *http.Request, s *session) error {
		return errNoPage
	})
	return c
}

// ServeHTTP serves the console's pages under Prefix, with its security
// headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows the console's own scripts, styles and
// images, and nothing inline or from elsewhere: htmx runs without eval
// (its htmx-config meta), and no page has an inline script or style.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// handler is a console page or action: it writes its answer or returns an
// error for errorPage to map.
type handler func(w http.ResponseWriter, r *http.Request, s *session) error

// page registers a GET page that needs a session.
func (c *Console) page(path string, h handler) {
	c.mux.HandleFunc("GET "+Prefix+path, c.withSession(timed(c.o.RequestTimeout, c.checked(h)), true))
}

// post registers an action: it needs a session, a same-origin request and
// the session's CSRF token.
func (c *Console) post(path string, h handler) { c.postWithin(path, c.o.RequestTimeout, h) }

// postWithin registers an action whose work d bounds.
func (c *Console) postWithin(path string, d time.Duration, h handler) {
	c.mux.Handle("POST "+Prefix+path, c.cop.Handler(http.HandlerFunc(
		c.withSession(timed(d, c.checked(c.csrfChecked(h))), true))))
}

// timed bounds a handler's work by d.
func timed(d time.Duration, h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		return h(w, r.WithContext(ctx), s)
	}
}

// checked refuses a request whose query or form is hostile (see
// checkParams) before a handler reads it.
func (c *Console) checked(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		if err := checkParams(r.URL.Query()); err != nil {
			return err
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				return badRequest("the form could not be read")
			}
			if err := checkParams(r.PostForm); err != nil {
				return err
			}
		}
		return h(w, r, s)
	}
}

// maxFormBytes bounds a POSTed form: the console's forms are small.
const maxFormBytes = 16 << 10
