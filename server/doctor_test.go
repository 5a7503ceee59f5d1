package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/web"
)

const testAccount = "AC00000000000000000000000000000001"

// localApp is an app on loopback that counts the requests it gets.
func localApp(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response/>`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func testDoctor(target string, allowPrivate bool, allow ...netip.Prefix) *routeDoctor {
	cfg := &config.Config{
		Accounts: []config.Account{{SID: testAccount, AuthTokens: []string{"token"}}},
		Routes:   []config.Route{{Path: "/sms", Account: testAccount, Target: target, Kind: "auto"}},
		Doctor:   config.Doctor{AllowPrivate: allowPrivate},
	}
	return &routeDoctor{cfg: cfg, logger: slog.New(slog.DiscardHandler), egress: egress.New(allow...)}
}

// By default the doctor endpoint refuses to probe an internal address (a
// 400) and the app there gets nothing; doctor.allow_private, or the
// address on egress.allow, lets it probe. Route checks probe the
// operator's own targets, internal or not.
func TestDoctorEndpointRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	app, hits := localApp(t)
	port := app.URL[strings.LastIndex(app.URL, ":")+1:]

	d := testDoctor(app.URL+"/sms", false)
	for _, u := range []string{app.URL + "/sms", " " + app.URL + "/sms", "http://localhost:" + port + "/sms", "http://[::ffff:127.0.0.1]:" + port + "/sms"} {
		_, err := d.Probe(t.Context(), web.ProbeRequestJSON{URL: u})
		if !errors.Is(err, switchboard.ErrInvalid) || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Probe(%s) = %v, want an invalid request naming loopback", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the internal app got %d probes, want none", n)
	}

	for name, d := range map[string]*routeDoctor{
		"doctor.allow_private": testDoctor(app.URL+"/sms", true),
		"egress.allow":         testDoctor(app.URL+"/sms", false, netip.MustParsePrefix("127.0.0.0/8")),
	} {
		before := hits.Load()
		report, err := d.Probe(t.Context(), web.ProbeRequestJSON{URL: app.URL + "/sms"})
		if err != nil || report.Failed() || hits.Load() != before+1 {
			t.Errorf("with %s: Probe = %v, %v; app got %d probes; want a passing probe", name, report, err, hits.Load()-before)
		}
	}

	before := hits.Load()
	routes := d.CheckRoutes(t.Context())
	if len(routes) != 1 || routes[0].Failed || hits.Load() != before+1 {
		t.Errorf("CheckRoutes = %+v, app got %d probes; want the route's internal target probed once", routes, hits.Load()-before)
	}
}
