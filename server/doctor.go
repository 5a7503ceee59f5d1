package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/web"
)

// routeDoctor probes URLs and route targets for the admin API, signing with
// the configured accounts' tokens.
type routeDoctor struct {
	cfg    *config.Config
	logger *slog.Logger
	// egress limits the URLs an API caller asks to probe, unless
	// doctor.allow_private is set; route targets, the operator's own, are
	// probed wherever they are.
	egress egress.Policy
}

var _ web.Doctor = (*routeDoctor)(nil)

func (d *routeDoctor) Probe(ctx context.Context, req web.ProbeRequestJSON) (*doctor.Report, error) {
	o := doctor.Options{URL: req.URL, Kind: doctor.Kind(req.Kind), Method: req.Method}
	if !d.cfg.Doctor.AllowPrivate {
		// A probe's report (status, headers, timing, TLS) would map the
		// private network for whoever holds the API token: internal
		// addresses are refused, literals at once, names as they resolve.
		if err := d.egress.CheckURL(strings.TrimSpace(req.URL)); errors.Is(err, egress.ErrDenied) {
			return nil, fmt.Errorf("%w: url: %v (doctor.allow_private probes internal addresses)", switchboard.ErrInvalid, err)
		}
		o.Allow = d.egress.Check
	}
	if req.Account != "" {
		acct, ok := d.cfg.Account(req.Account)
		if !ok {
			return nil, fmt.Errorf("%w: account %q is not configured", switchboard.ErrInvalid, req.Account)
		}
		o.AccountSID, o.AuthToken = acct.SID, acct.AuthTokens[0]
	}
	report, err := doctor.Probe(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", switchboard.ErrInvalid, err)
	}
	return report, nil
}

// CheckRoutes probes every route's target at once, each as the kind of
// webhook the route receives, signed as deliveries are.
func (d *routeDoctor) CheckRoutes(ctx context.Context) []web.RouteReportJSON {
	var routes []config.Route
	for _, r := range d.cfg.Routes {
		if r.Target != "" { // a static route may have no app to probe
			routes = append(routes, r)
		}
	}
	out := make([]web.RouteReportJSON, len(routes))
	var wg sync.WaitGroup
	for i, r := range routes {
		wg.Go(func() {
			acct, _ := d.cfg.Account(r.Account)
			report, err := doctor.Probe(ctx, doctor.Options{
				URL: r.Target, Kind: probeKind(r.Kind), AccountSID: acct.SID, AuthToken: acct.AuthTokens[0],
			})
			if err != nil { // config validation makes this unreachable: targets are absolute http(s) URLs
				report = &doctor.Report{URL: r.Target, Findings: []doctor.Finding{{Check: "url", Status: doctor.StatusFail, Message: err.Error()}}}
			}
			out[i] = web.RouteReportJSON{Route: r.Path, Target: r.Target, Failed: report.Failed(), Report: report}
		})
	}
	wg.Wait()
	return out
}

// logRouteChecks probes every route's target and logs what Twilio would
// make of each.
func (d *routeDoctor) logRouteChecks(ctx context.Context) {
	for _, rr := range d.CheckRoutes(ctx) {
		var problems []string
		for _, f := range rr.Report.Findings {
			if f.Status != doctor.StatusPass {
				problems = append(problems, fmt.Sprintf("%s %s (%d): %s", f.Status, f.Check, f.Code, f.Message))
			}
		}
		if rr.Failed {
			d.logger.Warn("route target check: Twilio would log an error", "route", rr.Route, "target", rr.Target, "findings", problems)
		} else {
			d.logger.Info("route target check", "route", rr.Route, "target", rr.Target, "findings", problems)
		}
	}
}

// probeKind is the kind of webhook to probe a route's target with.
func probeKind(routeKind string) doctor.Kind {
	switch switchboard.Kind(routeKind) {
	case switchboard.KindVoice:
		return doctor.Kind("voice")
	case switchboard.KindMessageStatus, switchboard.KindCallStatus:
		return doctor.Kind("status")
	case switchboard.KindClientNotification:
		return doctor.Kind("client-notification")
	}
	return doctor.Kind("sms")
}
