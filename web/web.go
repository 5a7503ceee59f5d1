// Package web serves Switchboard's admin JSON API under /api/v1/, the
// Twilio-compatible send API under /2010-04-01/ and the operational
// endpoints /healthz, /readyz and /metrics.
package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/listener"
	"github.com/switchboard-dev/switchboard/outbound"
)

// Store is what the admin API needs of switchboard.Store: the webhook
// history it shows and replays, the outbound messages it shows, and what
// the messages service it builds unless given one (WithMessages) needs,
// and the alert states it lists and acts on.
type Store interface {
	ListEvents(ctx context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error)
	Event(ctx context.Context, id string) (*switchboard.Event, error)
	Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error)
	ListRequests(ctx context.Context, f switchboard.RequestFilter) (*switchboard.Page[*switchboard.Request], error)
	Request(ctx context.Context, id string) (*switchboard.Request, error)
	Replay(ctx context.Context, f switchboard.ReplayFilter) (int, error)
	OutboundMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error)
	MessageBySID(ctx context.Context, accountSID, sid string) (*switchboard.OutboundMessage, error)
	ListOutboundMessages(ctx context.Context, f switchboard.OutboundFilter) (*switchboard.Page[*switchboard.OutboundMessage], error)
	MessageHistory(ctx context.Context, messageID string) ([]switchboard.StatusChange, error)
	Ping(ctx context.Context) error
	switchboard.AlertActions
	AlertHistory(ctx context.Context, rule, key string, limit int) ([]switchboard.AlertEvent, error)
	outbound.ServiceStore
	twilioMessageStore
}

// Messages creates and replays outbound messages for both send APIs;
// *outbound.Service is one.
type Messages interface {
	Create(ctx context.Context, d outbound.Draft) (m *switchboard.OutboundMessage, created bool, err error)
	Replay(ctx context.Context, id string) (*switchboard.OutboundMessage, error)
}

// Server is the admin API.
type Server struct {
	store     Store
	messages  Messages
	redact    bool
	doctor    Doctor
	pools     []OutboundPool // for the messages service New builds
	egress    egress.Policy  // where status webhooks may point (WithEgress)
	tokenHash [32]byte
	hasToken  bool
	metrics   http.Handler
	logger    *slog.Logger
	mux       *http.ServeMux
	// twilioCreds authenticate the Twilio-compatible API
	// (WithTwilioAccounts).
	twilioCreds []twilioCredential
	passThrough *passThrough            // nil: nothing is passed through (WithPassThrough)
	alertRules  []switchboard.AlertRule // WithAlerts
	// listeners serves listener.Path (WithListeners); nil: 404.
	listeners    ListenerServer
	listenerKeys map[string][32]byte // name → hash of its key
	// draining reports a shutdown under way (WithDraining); nil: never.
	draining func() bool
}

// Option adjusts the admin API.
type Option func(*Server)

// WithRedaction hides request bodies, URL query strings and response
// excerpts (phone numbers, message text) from every admin API answer. The
// Twilio-compatible API answers an account its own messages unredacted,
// as Twilio does.
func WithRedaction() Option { return func(s *Server) { s.redact = true } }

// WithDraining makes /readyz answer 503 while draining reports true: the
// process is shutting down, and a load balancer should send it nothing
// new, although it still serves what it is sent.
func WithDraining(draining func() bool) Option { return func(s *Server) { s.draining = draining } }

// WithMessages makes the send APIs create and replay messages through m,
// whose pools then route them (WithOutbound's pools are not used).
func WithMessages(m Messages) Option { return func(s *Server) { s.messages = m } }

// New returns the admin API over store. An empty token disables every
// /api/v1 endpoint (401): admin access fails closed. Without WithMessages,
// messages are created through an outbound.Service over store with
// WithOutbound's pools.
func New(store Store, token string, metrics http.Handler, logger *slog.Logger, opts ...Option) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{store: store, metrics: metrics, logger: logger, mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	if s.messages == nil {
		s.messages = outbound.NewService(store, outbound.ServiceOptions{Pools: s.pools})
	}
	if token != "" {
		s.tokenHash, s.hasToken = sha256.Sum256([]byte(token)), true
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	if metrics != nil {
		s.mux.Handle("GET /metrics", metrics)
	}
	s.api("GET /api/v1/events", s.listEvents)
	s.api("GET /api/v1/events/{id}", s.getEvent)
	s.api("POST /api/v1/events/{id}/replay", s.replayEvent)
	s.api("POST /api/v1/replay", s.replayBulk)
	s.api("GET /api/v1/requests", s.listRequests)
	s.api("GET /api/v1/requests/{id}", s.getRequest)
	s.api("POST /api/v1/messages", s.createMessage)
	s.api("GET /api/v1/messages", s.listMessages)
	s.api("GET /api/v1/messages/{id}", s.getMessage)
	s.api("POST /api/v1/messages/{id}/replay", s.replayMessage)
	s.api("GET /api/v1/alerts", s.listAlerts)
	s.api("GET /api/v1/alerts/{rule}/history", s.alertHistory)
	s.api("POST /api/v1/alerts/{rule}/ack", s.ackAlert)
	s.api("POST /api/v1/alerts/{rule}/silence", s.silenceAlert)
	s.api("POST /api/v1/doctor", s.probe)
	s.api("GET /api/v1/debugger", s.listDebugger)
	s.api("POST /api/v1/doctor/routes", s.checkRoutes)
	// Authorized by the handler: a listener's own key opens it too.
	s.mux.HandleFunc("GET "+listener.Path, s.listen)
	s.twilioAPI("POST "+TwilioPrefix+"Accounts/{account}/Messages.json", s.twilioCreate)
	s.twilioAPI("GET "+TwilioPrefix+"Accounts/{account}/Messages/{file}", s.twilioFetch)
	s.twilioAPI("GET "+TwilioPrefix+"Accounts/{account}/Messages.json", s.twilioList)
	s.twilioAPI("POST "+TwilioPrefix+"Accounts/{account}/Messages/{file}", s.twilioUpdate)
	s.twilioAPI("DELETE "+TwilioPrefix+"Accounts/{account}/Messages/{file}", s.twilioDelete)
	// The pass-through takes what no pattern above does: a pattern that
	// names a method and more of the path is more specific, so
	// Switchboard's own endpoints keep precedence, whatever order they
	// are registered in. /{host}/ is the prefix naming another of
	// Twilio's hosts; /api/ and /2010-04-01/ are more specific than it.
	s.mux.HandleFunc(TwilioPrefix, s.passThroughHandler)
	s.mux.HandleFunc("/{host}/{path...}", s.passThroughHandler)
	s.mux.HandleFunc("/api/", s.authenticated(func(http.ResponseWriter, *http.Request) error {
		return errNoEndpoint
	}))
	return s
}

// ServeHTTP routes to the endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc is an API endpoint: it writes its answer or returns an error
// for writeError to map.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) api(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, s.authenticated(h))
}

var (
	errUnauthorized = errors.New("missing or invalid bearer token")
	errNoEndpoint   = errors.New("no such endpoint")
)

func (s *Server) authenticated(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		if s.authorized(r) {
			err = h(w, r)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
			err = errUnauthorized
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

// authorized compares hashes of the presented and configured tokens in
// constant time, so neither the token nor its length leaks through timing.
func (s *Server) authorized(r *http.Request) bool {
	if !s.hasToken {
		return false
	}
	scheme, presented, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") { // the scheme is case-insensitive (RFC 9110)
		return false
	}
	h := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// writeError is the one place API errors become HTTP answers: a status, a
// safe message, and for unexpected errors a log line with the detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, errUnauthorized):
		status, msg = http.StatusUnauthorized, err.Error()
	case errors.Is(err, errNoEndpoint), errors.Is(err, errNoListeners):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, switchboard.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, switchboard.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.As(err, new(*notReplayable)):
		status, msg = http.StatusConflict, err.Error()
	case errors.As(err, new(*alertConflict)):
		status, msg = http.StatusConflict, err.Error()
	case errors.Is(err, switchboard.ErrConflict):
		status, msg = http.StatusConflict, "idempotency key already used with a different payload"
	case errors.Is(err, outbound.ErrSuppressed):
		status, msg = http.StatusUnprocessableEntity, outbound.ErrSuppressed.Error()
		if refused := (*outbound.RecipientRefused)(nil); errors.As(err, &refused) {
			msg = refused.Error() // Twilio's code, never the recipient
		}
	default:
		s.logger.Error("admin API", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining != nil && s.draining() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.Warn("readiness: store unreachable", "err", err)
		http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}
