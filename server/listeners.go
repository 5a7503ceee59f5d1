package server

import (
	"context"
	"log/slog"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/listener"
	"github.com/switchboard-dev/switchboard/metrics"
)

// newListenerHub builds the hub of the listeners the routes name. Its
// sessions deliver through *d, the Deliverer that is built after it (the
// Deliverer asks the hub for tunnels, the hub's sessions ask the
// Deliverer to deliver).
func newListenerHub(cfg *config.Config, store switchboard.Store, d **deliver.Deliverer, m *metrics.Metrics, logger *slog.Logger) *listener.Hub {
	return listener.NewHub(listener.HubOptions{
		Store:     store,
		Deliverer: lateDeliverer{d},
		Routes:    cfg.ListenerRoutes(),
		Connected: func(name string, n int) { m.ListenersConnected.WithLabelValues(name).Set(float64(n)) },
		Logger:    logger,
	})
}

// lateDeliverer is a Deliverer known once built.
type lateDeliverer struct{ d **deliver.Deliverer }

func (l lateDeliverer) DeliverThrough(ctx context.Context, ev *switchboard.Event, t deliver.Tunnel) (*switchboard.AttemptResult, error) {
	return (*l.d).DeliverThrough(ctx, ev, t)
}

// listenerKeys are the [[listeners]] keys by name.
func listenerKeys(cfg *config.Config) map[string]string {
	keys := make(map[string]string, len(cfg.Listeners))
	for _, l := range cfg.Listeners {
		keys[l.Name] = l.Key
	}
	return keys
}
