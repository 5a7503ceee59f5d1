package server

import (
	"fmt"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/notify"
)

// notifierRoutes are the delivery routes of the configured notifiers: a
// notification is an event of its notifier's route
// (switchboard.NotifierRoute), delivered by the notifier with the retries,
// breaker and dead letter of any delivery. Their targets are the
// operator's own configuration, so the egress policy does not apply.
func notifierRoutes(cfg *config.Config, o notify.Options) ([]deliver.Route, error) {
	var routes []deliver.Route
	for _, c := range cfg.Notifiers {
		n, err := notify.New(c, o)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", c.Name, err)
		}
		routes = append(routes, deliver.Route{Path: switchboard.NotifierRoute(c.Name), Target: n.Target(),
			MaxAttempts: c.MaxAttempts, MaxAge: c.MaxAge, Notify: n.Notify})
	}
	return routes, nil
}
