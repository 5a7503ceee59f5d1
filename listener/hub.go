package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
)

// Store is what a Hub reads of switchboard.Store.
type Store interface {
	WaitingEvents(ctx context.Context, f switchboard.WaitingFilter) ([]*switchboard.Event, error)
}

// Deliverer delivers an event through a listener and records the outcome;
// *deliver.Deliverer is one.
type Deliverer interface {
	DeliverThrough(ctx context.Context, ev *switchboard.Event, t deliver.Tunnel) (*switchboard.AttemptResult, error)
}

// HubOptions configure a Hub.
type HubOptions struct {
	Store     Store
	Deliverer Deliverer
	// Routes maps each listener's name to the paths of the routes that
	// name it (deliver.Route.Listener).
	Routes map[string][]string
	// PollInterval is how often a session reads the store when nothing
	// woke it (an event stored by another replica). Default 1 s.
	PollInterval time.Duration
	// Connected, when set, is told how many listeners of a name are
	// connected to this process whenever that changes (a metric).
	Connected func(name string, n int)
	Logger    *slog.Logger
	Now       func() time.Time
}

// Errors Serve returns before the connection is upgraded; the caller maps
// them to an HTTP answer.
var (
	// ErrUnknownListener: no route names the listener.
	ErrUnknownListener = errors.New("no route is served by this listener")
)

// Hub holds the listeners connected to this process. It implements
// deliver.Listeners.
type Hub struct {
	o HubOptions

	mu       sync.Mutex
	sessions map[string]*session // the one session of each name
	closed   bool
	ctx      context.Context // ends when the Hub closes
	cancel   context.CancelFunc
	running  sync.WaitGroup // Serve calls past the upgrade
}

var _ deliver.Listeners = (*Hub)(nil)

// errReplaced ends a session when a newer connection of its listener
// takes over: a restarted listener must not wait for its old connection
// to time out.
var errReplaced = errors.New("replaced by a newer connection of the listener")

// errHubClosed ends the sessions of a closed Hub.
var errHubClosed = errors.New("listener hub closed")

// NewHub returns a Hub with no listener connected.
func NewHub(o HubOptions) *Hub {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{o: o, sessions: make(map[string]*session), ctx: ctx, cancel: cancel}
}

// Tunnel returns the listener connected under name, if one is.
func (h *Hub) Tunnel(name string) (deliver.Tunnel, bool) {
	h.mu.Lock()
	s := h.sessions[name]
	h.mu.Unlock()
	// Not before the hello: the listener would take a request first as a
	// protocol violation and drop the connection.
	if s == nil || s.tun.isGone() || !s.tun.isReady() {
		return nil, false
	}
	return s.tun, true
}

// Waiting wakes the session of listener name, if one is connected here.
func (h *Hub) Waiting(name string) {
	h.mu.Lock()
	s := h.sessions[name]
	h.mu.Unlock()
	if s != nil {
		s.wakeUp()
	}
}

// Serve upgrades r to the WebSocket of listener name and runs its session
// until the listener disconnects, ctx ends or the Hub closes. The caller
// has authorized the request for name (package web). Before upgrading it
// returns ErrUnknownListener or an error wrapping switchboard.ErrInvalid
// (a bad forward_to or kind) without writing to w; after, nil or why the
// session ended. A failed upgrade (not a WebSocket handshake, or an Origin
// other than the request's host) is answered on w by the upgrade itself.
//
// A listener has one session per process: a new connection of a name
// ends the older one, whose in-flight request fails with
// switchboard.ErrListenerGone, and starts delivering once that session
// has stopped, so the two never deliver side by side.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, name string) error {
	routes := h.o.Routes[name]
	if len(routes) == 0 {
		return fmt.Errorf("listener %q: %w", name, ErrUnknownListener)
	}
	q := r.URL.Query()
	forwardTo := q.Get(ParamForwardTo)
	for _, route := range routes {
		if _, err := ForwardURL(forwardTo, route); err != nil {
			return fmt.Errorf("listener %q: %w", name, err)
		}
	}
	kinds, err := parseKinds(q[ParamKind])
	if err != nil {
		return fmt.Errorf("listener %q: %w", name, err)
	}

	// Origin check on (the default): a CLI sends no Origin and passes; a
	// browser page of another site is refused, so a console session's
	// cookie cannot be used to open a listener from elsewhere.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return fmt.Errorf("listener %q: upgrade: %w", name, err)
	}
	conn.SetReadLimit(MaxFrameBytes)

	s := newSession(h, name, routes, kinds, newTunnel(conn, forwardTo))
	prev, ok := h.register(s)
	if !ok {
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		return errHubClosed
	}
	defer h.running.Done()
	defer h.unregister(s)
	return s.run(prev)
}

// parseKinds checks the kind parameters, without repeats.
func parseKinds(params []string) ([]switchboard.Kind, error) {
	var kinds []switchboard.Kind
	for _, p := range params {
		k := switchboard.Kind(p)
		if !k.Valid() {
			return nil, fmt.Errorf("%w: kind %q", switchboard.ErrInvalid, p)
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// register makes s the session of its name, ending the one it replaces,
// which it returns. It fails once the Hub is closed.
func (h *Hub) register(s *session) (prev *session, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	h.running.Add(1)
	prev = h.sessions[s.name]
	h.sessions[s.name] = s
	if prev != nil {
		prev.stop(errReplaced)
	}
	if h.o.Connected != nil {
		h.o.Connected(s.name, 1)
	}
	return prev, true
}

// unregister removes s, unless a newer session replaced it.
func (h *Hub) unregister(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.name] != s {
		return
	}
	delete(h.sessions, s.name)
	if h.o.Connected != nil {
		h.o.Connected(s.name, 0)
	}
}

// Close ends every session; Serve calls return.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, s := range h.sessions {
		s.stop(errHubClosed)
	}
	h.mu.Unlock()
	h.cancel()
	h.running.Wait()
}
