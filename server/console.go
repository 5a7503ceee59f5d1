package server

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/console"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/sim"
)

// newConsole builds the web console over the server's store, or returns
// nil when admin.console is off.
func (s *Server) newConsole(cfg *config.Config, messages console.Messages) *console.Console {
	if !cfg.Admin.Console {
		return nil
	}
	routes := make([]console.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = console.Route{Path: r.Path, Proxy: ingest.Mode(r.Mode) == ingest.ModeProxy}
	}
	return console.New(s.store, console.Options{
		Token: cfg.Admin.Token, Redact: cfg.Admin.Redact, PublicURL: cfg.PublicURL, SessionTTL: cfg.Admin.SessionTTL,
		Routes: routes, Messages: messages, Prober: s.doctor, Live: liveState{s}, Logger: s.logger,
		Alerts: cfg.AlertRules(), RunbookBase: cfg.Alerting.RunbookBase, Phones: phones(cfg),
	})
}

// phones are the console's way to act as a handset through the simulator
// at admin.simulator_url, one per account, authenticated with the
// account's first token (the simulator switchboard dev runs shares the
// accounts). No simulator URL: no phone.
func phones(cfg *config.Config) []*sim.PhoneClient {
	if cfg.Admin.SimulatorURL == "" {
		return nil
	}
	var out []*sim.PhoneClient
	for _, a := range cfg.Accounts {
		if len(a.AuthTokens) == 0 {
			continue
		}
		out = append(out, &sim.PhoneClient{URL: cfg.Admin.SimulatorURL, Account: a.SID, Token: a.AuthTokens[0]})
	}
	return out
}

// ProbeRoute probes the target of the route at path as its deliveries
// reach it: signed with its account's token, as the kind of webhook it
// receives. Route targets are the operator's own, so they are probed
// wherever they are.
func (d *routeDoctor) ProbeRoute(ctx context.Context, path string) (*doctor.Report, error) {
	for _, r := range d.cfg.Routes {
		if r.Path != path {
			continue
		}
		if r.Target == "" {
			return nil, fmt.Errorf("%w: route %s has no target to probe", switchboard.ErrNotFound, path)
		}
		acct, _ := d.cfg.Account(r.Account) // Validate guarantees it exists
		report, err := doctor.Probe(ctx, doctor.Options{URL: r.Target, Kind: probeKind(r.Kind), AccountSID: acct.SID, AuthToken: acct.AuthTokens[0]})
		if err != nil {
			return nil, fmt.Errorf("probe route %s: %w", path, err)
		}
		return report, nil
	}
	return nil, fmt.Errorf("%w: no route %s", switchboard.ErrNotFound, path)
}

// liveState is what this process's delivery and sending machinery shows
// the dashboard, and which process it is.
type liveState struct{ s *Server }

func (l liveState) LiveState(context.Context) (*console.LiveState, error) {
	st := &console.LiveState{Node: l.s.node, Rescued: l.s.metrics.RescuedSoFar()}
	for _, b := range l.s.deliverer.Breakers() {
		st.Breakers = append(st.Breakers, console.BreakerState{Target: b.Target, State: b.State})
	}
	if l.s.sender != nil {
		for _, p := range l.s.sender.PoolStates() {
			st.Pools = append(st.Pools, console.PoolState{Pool: p.Pool, Rate: p.Rate * float64(p.Senders), Brownout: p.Brownout, Delay: p.QueueDelay})
		}
	}
	return st, nil
}
