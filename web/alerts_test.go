package web_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/web"
)

// newAlertFixture serves the API with the default alert rules over a store
// holding what seed adds.
func newAlertFixture(t *testing.T, opts ...web.Option) (*fixture, *alertStore) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &alertStore{Store: db}
	opts = append([]web.Option{web.WithAlerts(switchboard.DefaultAlertRules())}, opts...)
	srv := httptest.NewServer(web.New(store, token, nil, nil, opts...))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv}, store
}

// seedAlerts stores: webhook-dead-letters firing on /sms and resolved on
// /voice, twilio-429-storm firing on pool main, queue-lag resolved.
func seedAlerts(s *alertStore) {
	now := time.Now().UTC()
	s.seed(
		switchboard.AlertState{Rule: "webhook-dead-letters", Key: "/voice", Status: switchboard.AlertOK, Value: 0, Seq: 1,
			FiredAt: now.Add(-time.Hour), ResolvedAt: now.Add(-30 * time.Minute), UpdatedAt: now.Add(-30 * time.Minute)},
		switchboard.AlertState{Rule: "webhook-dead-letters", Key: "/sms", Status: switchboard.AlertFiring, Value: 3, Seq: 2,
			Summary: "3 events of /sms dead-lettered in 15m", FiredAt: now.Add(-time.Minute), UpdatedAt: now.Add(-time.Minute)},
		switchboard.AlertState{Rule: "twilio-429-storm", Key: "main", Status: switchboard.AlertFiring, Value: 40, Seq: 1,
			FiredAt: now.Add(-2 * time.Minute), UpdatedAt: now.Add(-2 * time.Minute)},
		switchboard.AlertState{Rule: "queue-lag", Status: switchboard.AlertOK, Seq: 4, UpdatedAt: now.Add(-time.Hour)},
	)
}

func listAlerts(t *testing.T, f *fixture) web.AlertsJSON {
	t.Helper()
	resp, body := f.get(t, "/api/v1/alerts")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/alerts = %d %s", resp.StatusCode, body)
	}
	return decodeJSON[web.AlertsJSON](t, body)
}

func ruleOf(t *testing.T, l web.AlertsJSON, name string) web.AlertRuleJSON {
	t.Helper()
	i := slices.IndexFunc(l.Rules, func(r web.AlertRuleJSON) bool { return r.Name == name })
	if i < 0 {
		t.Fatalf("no rule %s in %+v", name, l)
	}
	return l.Rules[i]
}

func TestAlertsList(t *testing.T) {
	t.Parallel()
	f, s := newAlertFixture(t)
	seedAlerts(s)
	l := listAlerts(t, f)
	var names []string
	for _, r := range l.Rules {
		names = append(names, r.Name)
	}
	if len(names) != len(switchboard.DefaultAlertRules()) {
		t.Errorf("rules %v, want every configured one", names)
	}
	// Firing first, critical before warning.
	if !slices.Equal(names[:2], []string{"webhook-dead-letters", "twilio-429-storm"}) {
		t.Errorf("order %v", names)
	}
	dl := ruleOf(t, l, "webhook-dead-letters")
	if dl.Status != "firing" || dl.Window != "15m0s" || dl.Severity != "critical" || dl.Runbook != "dead-letters" || dl.Condition != "dead_letters" {
		t.Errorf("rule %+v", dl)
	}
	if len(dl.Alerts) != 2 || dl.Alerts[0].Key != "/sms" || dl.Alerts[0].Status != "firing" || dl.Alerts[1].Key != "/voice" || dl.Alerts[1].Status != "ok" {
		t.Errorf("alerts %+v, want /sms firing first", dl.Alerts)
	}
	if a := dl.Alerts[0]; a.Value != 3 || a.Seq != 2 || a.Summary == "" || a.FiredAt.IsZero() || a.Version != 1 {
		t.Errorf("alert %+v", a)
	}
	if r := ruleOf(t, l, "ack-latency-slo"); r.Status != "ok" || r.Alerts == nil || len(r.Alerts) != 0 || r.For != "5m0s" {
		t.Errorf("a rule with no state: %+v", r)
	}
}

func TestAlertsWithoutRules(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := httptest.NewServer(web.New(&alertStore{Store: db}, token, nil, nil))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	resp, body := f.get(t, "/api/v1/alerts")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{\n  \"rules\": []\n}" {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := f.post(t, "/api/v1/alerts/queue-lag/ack", `{"key":""}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ack with no rules: %d", resp.StatusCode)
	}
}

func TestAlertAcknowledge(t *testing.T) {
	t.Parallel()
	f, s := newAlertFixture(t)
	seedAlerts(s)
	tests := []struct {
		name, path, body string
		want             int
		wantBy           string
	}{
		{"firing", "/api/v1/alerts/webhook-dead-letters/ack", `{"key":"/sms"}`, http.StatusOK, "api"},
		{"again", "/api/v1/alerts/webhook-dead-letters/ack", `{"key":"/sms","by":"bob"}`, http.StatusConflict, ""},
		{"named", "/api/v1/alerts/twilio-429-storm/ack", `{"key":"main","by":"  alice\r\nINFO forged=1 "}`, http.StatusOK, "aliceINFO forged=1"},
		{"resolved", "/api/v1/alerts/webhook-dead-letters/ack", `{"key":"/voice"}`, http.StatusBadRequest, ""},
		{"keyless resolved", "/api/v1/alerts/queue-lag/ack", `{}`, http.StatusBadRequest, ""},
		{"unknown key", "/api/v1/alerts/webhook-dead-letters/ack", `{"key":"/nowhere"}`, http.StatusNotFound, ""},
		{"unknown rule", "/api/v1/alerts/no-such-rule/ack", `{"key":"/sms"}`, http.StatusNotFound, ""},
		{"rule-wide", "/api/v1/alerts/webhook-dead-letters/ack", `{"key":"*"}`, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		resp, body := f.post(t, tt.path, tt.body)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, resp.StatusCode, body, tt.want)
			continue
		}
		if tt.want != http.StatusOK {
			if e := decodeJSON[map[string]string](t, body); e["error"] == "" || strings.Contains(e["error"], "idempotency") {
				t.Errorf("%s: error %q", tt.name, e["error"])
			}
			continue
		}
		a := decodeJSON[web.AlertJSON](t, body)
		if a.AckedBy != tt.wantBy || a.AckedAt.IsZero() || a.Status != "firing" || a.Version != 2 {
			t.Errorf("%s: %+v", tt.name, a)
		}
	}
	// Refusals changed nothing: one acknowledgement each, by whom it was.
	dl := ruleOf(t, listAlerts(t, f), "webhook-dead-letters")
	if dl.Alerts[0].AckedBy != "api" || dl.Alerts[1].AckedBy != "" {
		t.Errorf("alerts %+v", dl.Alerts)
	}
	resp, body := f.get(t, "/api/v1/alerts/webhook-dead-letters/history?key=/sms")
	h := decodeJSON[web.AlertHistoryJSON](t, body)
	if resp.StatusCode != http.StatusOK || len(h.Items) != 2 || h.Items[0].What != "acknowledged" || h.Items[0].Note != "api" || h.Items[1].What != "firing" {
		t.Errorf("history %d %+v", resp.StatusCode, h)
	}
}

func TestAlertSilence(t *testing.T) {
	t.Parallel()
	f, s := newAlertFixture(t)
	seedAlerts(s)
	silence := func(t *testing.T, rule, body string, want int) web.AlertJSON {
		t.Helper()
		resp, b := f.post(t, "/api/v1/alerts/"+rule+"/silence", body)
		if resp.StatusCode != want {
			t.Fatalf("silence %s %s: %d %s, want %d", rule, body, resp.StatusCode, b, want)
		}
		if want != http.StatusOK {
			return web.AlertJSON{}
		}
		return decodeJSON[web.AlertJSON](t, b)
	}

	before := time.Now()
	a := silence(t, "webhook-dead-letters", `{"key":"/sms","for":"2h"}`, http.StatusOK)
	if a.SilencedUntil.Before(before.Add(2*time.Hour).Truncate(time.Second)) || a.SilencedUntil.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("for 2h: silenced until %v", a.SilencedUntil)
	}
	until := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	a = silence(t, "webhook-dead-letters", `{"key":"/sms","until":"`+until.Format(time.RFC3339)+`","by":"ops"}`, http.StatusOK)
	if !a.SilencedUntil.Equal(until) {
		t.Errorf("until: silenced until %v, want %v", a.SilencedUntil, until)
	}
	if a = silence(t, "webhook-dead-letters", `{"key":"/sms","until":null}`, http.StatusOK); !a.SilencedUntil.IsZero() {
		t.Errorf("until null: silenced until %v", a.SilencedUntil)
	}
	silence(t, "webhook-dead-letters", `{"key":"/sms","for":"1h"}`, http.StatusOK)
	if a = silence(t, "webhook-dead-letters", `{"key":"/sms","for":"0s"}`, http.StatusOK); !a.SilencedUntil.IsZero() {
		t.Errorf("for 0s: silenced until %v", a.SilencedUntil)
	}

	// A whole rule, and a key never stored.
	if a = silence(t, "twilio-429-storm", `{"for":"4h"}`, http.StatusOK); a.Key != switchboard.AlertAllKeys || a.SilencedUntil.IsZero() {
		t.Errorf("rule-wide: %+v", a)
	}
	if a = silence(t, "delivery-rate-drop", `{"key":"pool-b","for":"1h"}`, http.StatusOK); a.Key != "pool-b" || a.Status != "ok" {
		t.Errorf("new key: %+v", a)
	}
	l := listAlerts(t, f)
	storm := ruleOf(t, l, "twilio-429-storm")
	if storm.SilencedUntil.IsZero() || len(storm.Alerts) != 1 || !storm.Alerts[0].SilencedUntil.Equal(storm.SilencedUntil) {
		t.Errorf("the rule's silence is not its alerts': %+v", storm)
	}
	if r := ruleOf(t, l, "webhook-dead-letters"); !r.Alerts[0].SilencedUntil.IsZero() || !r.SilencedUntil.IsZero() {
		t.Errorf("unsilenced: %+v", r)
	}

	for _, body := range []string{
		`{"key":"/sms","for":"721h"}`,
		`{"key":"/sms","until":"9999-01-01T00:00:00Z"}`,
		`{"key":"/sms","for":"-1h"}`,
		`{"key":"/sms","for":"soon"}`,
		`{"key":"/sms","until":"tomorrow"}`,
		`{"key":"/sms","until":1234}`,
		`{"key":"/sms","until":"2026-01-01T00:00:00Z","for":"1h"}`,
		`{"key":"/sms"}`,
		`{"key":"` + strings.Repeat("k", switchboard.MaxAlertKey+1) + `","for":"1h"}`,
		`{"key":"a\u0000b","for":"1h"}`,
	} {
		silence(t, "webhook-dead-letters", body, http.StatusBadRequest)
	}
	silence(t, "no-such-rule", `{"for":"1h"}`, http.StatusNotFound)
	if r := ruleOf(t, listAlerts(t, f), "webhook-dead-letters"); !r.Alerts[0].SilencedUntil.IsZero() {
		t.Errorf("a refused silence took: %+v", r.Alerts[0])
	}
}

func TestAlertHistory(t *testing.T) {
	t.Parallel()
	f, s := newAlertFixture(t)
	seedAlerts(s)
	for range 3 {
		f.post(t, "/api/v1/alerts/webhook-dead-letters/silence", `{"key":"/voice","for":"1h"}`)
	}
	tests := []struct {
		query string
		want  int
		whats []string
	}{
		{"", http.StatusOK, []string{"silenced", "silenced", "silenced", "firing", "resolved"}},
		{"?key=/voice", http.StatusOK, []string{"silenced", "silenced", "silenced", "resolved"}},
		{"?key=/voice&limit=2", http.StatusOK, []string{"silenced", "silenced"}},
		{"?limit=100000", http.StatusOK, []string{"silenced", "silenced", "silenced", "firing", "resolved"}},
		{"?key=/nowhere", http.StatusOK, []string{}},
		{"?limit=0", http.StatusBadRequest, nil},
		{"?limit=-1", http.StatusBadRequest, nil},
		{"?limit=ten", http.StatusBadRequest, nil},
		{"?key=" + strings.Repeat("k", switchboard.MaxAlertKey+1), http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		resp, body := f.get(t, "/api/v1/alerts/webhook-dead-letters/history"+tt.query)
		if resp.StatusCode != tt.want {
			t.Errorf("%q: %d %s", tt.query, resp.StatusCode, body)
			continue
		}
		if tt.want != http.StatusOK {
			continue
		}
		whats := []string{}
		for _, e := range decodeJSON[web.AlertHistoryJSON](t, body).Items {
			whats = append(whats, e.What)
		}
		if !slices.Equal(whats, tt.whats) {
			t.Errorf("%q: %v, want %v", tt.query, whats, tt.whats)
		}
	}
	if resp, _ := f.get(t, "/api/v1/alerts/no-such-rule/history"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown rule: %d", resp.StatusCode)
	}
}

func TestAlertEndpointsRefuseHostileCalls(t *testing.T) {
	t.Parallel()
	f, s := newAlertFixture(t)
	seedAlerts(s)
	paths := []call{
		{method: http.MethodGet, path: "/api/v1/alerts"},
		{method: http.MethodGet, path: "/api/v1/alerts/webhook-dead-letters/history"},
		{method: http.MethodPost, path: "/api/v1/alerts/webhook-dead-letters/ack", body: `{"key":"/sms"}`},
		{method: http.MethodPost, path: "/api/v1/alerts/webhook-dead-letters/silence", body: `{"key":"/sms","for":"1h"}`},
	}
	for _, c := range paths {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + token, "Bearer"} {
			c.auth = auth
			if resp, _ := f.do(t, c); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401", c.method, c.path, auth, resp.StatusCode)
			}
		}
	}
	huge := `{"key":"/sms","by":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, body := range []string{huge, `{"key":`, `not json`, `{"key":"/sms"} {"key":"/voice"}`, `{"key":"/sms","admin":true}`, `[]`, ``} {
		for _, action := range []string{"ack", "silence"} {
			resp, b := f.post(t, "/api/v1/alerts/webhook-dead-letters/"+action, body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %.40q: %d %s", action, body, resp.StatusCode, b)
			}
		}
	}
	if a := ruleOf(t, listAlerts(t, f), "webhook-dead-letters").Alerts[0]; !a.AckedAt.IsZero() || !a.SilencedUntil.IsZero() {
		t.Errorf("a refused call acted: %+v", a)
	}
}

func TestAlertsRedacted(t *testing.T) {
	t.Parallel()
	f, s := newAlertFixture(t, web.WithRedaction())
	s.seed(switchboard.AlertState{Rule: "twilio-debugger-errors", Key: "11200", Status: switchboard.AlertFiring, Value: 12, Seq: 1,
		Summary: "12 errors 11200, last for https://app.example.com/sms?From=%2B15550001111 to +15550001111", UpdatedAt: time.Now()})
	if resp, body := f.post(t, "/api/v1/alerts/twilio-debugger-errors/ack", `{"key":"11200","by":"+15550002222"}`); resp.StatusCode != http.StatusOK ||
		strings.Contains(string(body), "5550002222") {
		t.Errorf("ack: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/api/v1/alerts", "/api/v1/alerts/twilio-debugger-errors/history"} {
		resp, body := f.get(t, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if b := string(body); strings.Contains(b, "5550001111") || strings.Contains(b, "5550002222") || !strings.Contains(b, "11200") ||
			!strings.Contains(b, "app.example.com/sms") {
			t.Errorf("%s: %s", path, b)
		}
	}
}
