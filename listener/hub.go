package listener

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

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
}

var _ deliver.Listeners = (*Hub)(nil)

// NewHub returns a Hub with no listener connected.
func NewHub(o HubOptions) *Hub { return &Hub{o: o} }

// Tunnel returns the listener connected under name, if one is.
func (h *Hub) Tunnel(name string) (deliver.Tunnel, bool) { return nil, false }

// Waiting wakes the session of listener name, if one is connected here.
func (h *Hub) Waiting(name string) {}

// Serve upgrades r to the WebSocket of listener name and runs its session
// until the listener disconnects, ctx ends or the Hub closes. The caller
// has authorized the request for name (package web). Before upgrading it
// returns ErrUnknownListener or an error wrapping switchboard.ErrInvalid
// (a bad forward_to or kind) without writing to w; after, nil or why the
// session ended.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, name string) error {
	return errors.New("listener hub: not implemented yet")
}

// Close ends every session; Serve calls return.
func (h *Hub) Close() {}
