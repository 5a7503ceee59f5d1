package config

import (
	"net/url"

	"github.com/switchboard-dev/switchboard"
)

// Listener is one [[listeners]] entry: a key that lets a listener
// (switchboard listen) connect under its name, and nothing else. The admin
// token connects any listener; a listener's key is what a developer's
// laptop should hold instead.
type Listener struct {
	Name string `koanf:"name"`
	// Key is the listener's secret, presented as a bearer token; at least
	// MinListenerKeyBytes long.
	Key string `koanf:"key"`
}

// MinListenerKeyBytes is the shortest listener key accepted: 128 bits as
// 32 hexadecimal digits, too long to guess online.
const MinListenerKeyBytes = 32

// validateRouteListener checks a route that goes through a listener.
func validateRouteListener(bad func(string, ...any), i int, r Route) {
	if !switchboard.ValidListenerName(r.Listener) {
		bad("routes[%d].listener %q: want 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit", i, r.Listener)
	}
	if r.Target != "" {
		bad("routes[%d]: target and listener both set; a route's events go to one of them", i)
	}
	if r.Mode == ModeStatic {
		bad("routes[%d].listener: a static route delivers to no app", i)
	}
}

// validateListeners checks the [[listeners]] keys.
func (c *Config) validateListeners(bad func(string, ...any)) {
	named := map[string]bool{}
	for _, r := range c.Routes {
		named[r.Listener] = true
	}
	seen := map[string]bool{}
	for i, l := range c.Listeners {
		switch {
		case !switchboard.ValidListenerName(l.Name):
			bad("listeners[%d].name %q: want 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit", i, l.Name)
		case seen[l.Name]:
			bad("listeners[%d].name %q: listed twice", i, l.Name)
		case !named[l.Name]:
			bad("listeners[%d].name %q: no route names this listener", i, l.Name)
		}
		seen[l.Name] = true
		if len(l.Key) < MinListenerKeyBytes {
			bad("listeners[%d].key: at least %d characters (openssl rand -hex 16)", i, MinListenerKeyBytes)
		}
	}
}

// validateSimulatorURL checks admin.simulator_url: the console's phone
// posts to it.
func (c *Config) validateSimulatorURL(bad func(string, ...any)) {
	if c.Admin.SimulatorURL == "" {
		return
	}
	u, err := url.Parse(c.Admin.SimulatorURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		bad("admin.simulator_url %q: want an absolute http(s) URL without user info", c.Admin.SimulatorURL)
	}
}

// ListenerRoutes maps each listener's name to the paths of the routes that
// name it.
func (c *Config) ListenerRoutes() map[string][]string {
	m := map[string][]string{}
	for _, r := range c.Routes {
		if r.Listener != "" {
			m[r.Listener] = append(m[r.Listener], r.Path)
		}
	}
	return m
}
