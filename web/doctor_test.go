package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/web"
)

// fakeDoctor answers probes without network, recording what it was asked.
type fakeDoctor struct{ asked []web.ProbeRequestJSON }

func (d *fakeDoctor) Probe(_ context.Context, req web.ProbeRequestJSON) (*doctor.Report, error) {
	d.asked = append(d.asked, req)
	if req.Account == "ACunknown" {
		return nil, fmt.Errorf("%w: account %q is not configured", switchboard.ErrInvalid, req.Account)
	}
	return &doctor.Report{URL: req.URL, Findings: []doctor.Finding{{Check: "status", Status: "fail", Code: 11200, Message: "HTTP 500"}}}, nil
}

func (d *fakeDoctor) CheckRoutes(context.Context) []web.RouteReportJSON {
	return []web.RouteReportJSON{{Route: "/sms", Target: "http://app/sms", Failed: true, Report: &doctor.Report{URL: "http://app/sms"}}}
}

func newDoctorFixture(t *testing.T, d web.Doctor) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var opts []web.Option
	if d != nil {
		opts = append(opts, web.WithDoctor(d))
	}
	srv := httptest.NewServer(web.New(store, token, nil, nil, opts...))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv}
}

func TestDoctorEndpoints(t *testing.T) {
	t.Parallel()
	d := &fakeDoctor{}
	f := newDoctorFixture(t, d)

	resp, body := f.post(t, "/api/v1/doctor", `{"url":"https://app.example/sms","kind":"voice","account":"AC1"}`)
	var report doctor.Report
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &report) != nil || len(report.Findings) != 1 || report.Findings[0].Code != 11200 {
		t.Fatalf("probe: %d %s", resp.StatusCode, body)
	}
	if len(d.asked) != 1 || d.asked[0].Kind != "voice" || d.asked[0].Account != "AC1" {
		t.Errorf("doctor asked %+v", d.asked)
	}
	for _, bad := range []string{`{"url":"x","token":"leak"}`, `not json`, `{"url":"https://a","account":"ACunknown"}`} {
		if resp, body := f.post(t, "/api/v1/doctor", bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	resp, body = f.post(t, "/api/v1/doctor/routes", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"failed": true`) {
		t.Errorf("routes: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, call{method: http.MethodPost, path: "/api/v1/doctor", body: `{"url":"https://a"}`}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", resp.StatusCode)
	}
}

func TestDoctorEndpointsAbsentWithoutDoctor(t *testing.T) {
	t.Parallel()
	f := newDoctorFixture(t, nil)
	if resp, _ := f.post(t, "/api/v1/doctor", `{"url":"https://a"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}
