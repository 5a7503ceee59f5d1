package ingest_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/sqlite"
)

const debuggerSid = "NO0123456789abcdef0123456789abcdef"

func newDebuggerFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sb.db")
	store, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	h := ingest.New(ingest.Options{
		Store:        store,
		Metrics:      m,
		PublicURL:    public,
		MaxBodyBytes: 64 << 10,
		AckTimeout:   5 * time.Second,
		Routes: []ingest.Route{
			{Path: "/debugger", AccountSID: account, Tokens: []string{token}, Kind: switchboard.KindDebugger, TwiML: []byte("<Response/>")},
			{Path: "/sms", AccountSID: account, Tokens: []string{token}, TwiML: []byte("<Response/>")},
		},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &fixture{store: store, srv: srv, path: path, metrics: m}
}

// debuggerForm is a Debugger webhook as Twilio sends it, with fields
// replaced (an empty value removes the field).
func debuggerForm(replace map[string]string) string {
	payload := `{"resource_sid":"SM11111111111111111111111111111111","service_sid":"","error_code":"11200",` +
		`"more_info":{"Msg":"Bad response","sourceComponent":"14100"},` +
		`"webhook":{"type":"application/json","request":{"url":"https://app.example.com/sms?x=1","method":"POST",` +
		`"headers":{},"parameters":{"From":"+15551230000","Body":"secret"}},` +
		`"response":{"status_code":"502","headers":{},"body":"+15551230000 not found"}}}`
	form := url.Values{
		"Sid":         {debuggerSid},
		"AccountSid":  {account},
		"Timestamp":   {"2026-11-01T12:00:00.123Z"},
		"Level":       {"Error"},
		"PayloadType": {"application/json"},
		"Payload":     {payload},
	}
	for k, v := range replace {
		if v == "" {
			form.Del(k)
		} else {
			form.Set(k, v)
		}
	}
	return form.Encode()
}

func TestDebuggerWebhookIsStoredOnceAndAnsweredEmpty(t *testing.T) {
	t.Parallel()
	f := newDebuggerFixture(t)
	body := debuggerForm(nil)
	var wg sync.WaitGroup
	for range 5 { // Twilio's retries of one alert, racing
		wg.Go(func() {
			resp, answer := f.send(t, webhook{path: "/debugger", body: body})
			if resp.StatusCode != 200 || answer != "" || resp.Header.Get("Content-Type") != "" {
				t.Errorf("answer %d %q (%s), want an empty 200", resp.StatusCode, answer, resp.Header.Get("Content-Type"))
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	page, err := f.store.ListEvents(ctx, switchboard.EventFilter{Route: "/debugger"})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("events of the debugger route: %v, %v; want 1", page, err)
	}
	ev := page.Items[0]
	if ev.Kind != switchboard.KindDebugger || ev.MessageSID != "SM11111111111111111111111111111111" ||
		ev.IdempotencyKey != "debugger:"+account+":"+debuggerSid || ev.AccountSID != account {
		t.Errorf("event %+v", ev)
	}
	alerts, err := f.store.DebuggerAlerts(ctx, switchboard.DebuggerFilter{ResourceSID: "SM11111111111111111111111111111111"})
	if err != nil || len(alerts.Items) != 1 {
		t.Fatalf("alerts: %v, %v; want 1", alerts, err)
	}
	a := alerts.Items[0]
	if a.EventID != ev.ID || a.ErrorCode != 11200 || a.Status != 502 || a.Method != "POST" ||
		a.URL != "https://app.example.com/sms?x=1" || a.Level != "Error" ||
		!a.Timestamp.Equal(time.Date(2026, 11, 1, 12, 0, 0, 123e6, time.UTC)) ||
		a.MoreInfo != "https://www.twilio.com/docs/errors/11200" {
		t.Errorf("alert %+v", a)
	}
	dups, _ := f.store.ListRequests(ctx, switchboard.RequestFilter{Outcome: switchboard.OutcomeDuplicate})
	if len(dups.Items) != 4 {
		t.Errorf("%d duplicates recorded, want 4", len(dups.Items))
	}
	if n := testutil.ToFloat64(f.metrics.DebuggerAlerts); n != 1 {
		t.Errorf("switchboard_debugger_alerts_total = %v, want 1: duplicates are not counted", n)
	}
}

func TestDebuggerWebhookRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		w      webhook
		status int
		reason string
	}{
		{"unsigned", webhook{path: "/debugger", body: debuggerForm(nil), signWith: "attacker"}, 403, "signature"},
		{"Sid not NO", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Sid": "SM0123456789abcdef0123456789abcdef"})}, 400, "Sid"},
		{"Sid too short", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Sid": "NO123"})}, 400, "Sid"},
		{"Sid missing", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Sid": ""})}, 400, "Sid"},
		{"another account", webhook{path: "/debugger", body: debuggerForm(map[string]string{"AccountSid": "AC99999999999999999999999999999999"})}, 403, "account"},
		{"no account", webhook{path: "/debugger", body: debuggerForm(map[string]string{"AccountSid": ""})}, 400, "AccountSid"},
		{"payload not JSON", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Payload": "{not json"})}, 400, "Payload"},
		{"payload not an object", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Payload": `["x"]`})}, 400, "Payload"},
		{"payload oversized", webhook{path: "/debugger", body: debuggerForm(map[string]string{
			"Payload": `{"resource_sid":"SM1","x":"` + strings.Repeat("a", 33<<10) + `"}`})}, 400, "limit"},
		{"bad timestamp", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Timestamp": "yesterday"})}, 400, "Timestamp"},
		{"no level", webhook{path: "/debugger", body: debuggerForm(map[string]string{"Level": ""})}, 400, "Level"},
		{"a message webhook", webhook{path: "/debugger", body: smsBody}, 400, "Sid"},
		{"JSON body", webhook{path: "/debugger", contentType: "application/json", body: `{"Sid":"` + debuggerSid + `"}`}, 400, "form POST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newDebuggerFixture(t)
			resp, answer := f.send(t, tc.w)
			if resp.StatusCode != tc.status || !strings.Contains(answer, tc.reason) {
				t.Fatalf("answer = %d %q, want %d mentioning %q", resp.StatusCode, answer, tc.status, tc.reason)
			}
			req := f.lastRequest(t)
			if req.Outcome != switchboard.OutcomeRejected || req.EventID != "" {
				t.Errorf("recorded as %s %q", req.Outcome, req.Reason)
			}
			alerts, err := f.store.DebuggerAlerts(context.Background(), switchboard.DebuggerFilter{})
			if err != nil || len(alerts.Items) != 0 {
				t.Errorf("a refused Debugger webhook stored %d alerts (%v)", len(alerts.Items), err)
			}
		})
	}
}

// A Debugger-shaped form on a route that is not of kind debugger is an
// ordinary webhook: no alert is made of it.
func TestDebuggerFormElsewhereIsNoAlert(t *testing.T) {
	t.Parallel()
	f := newDebuggerFixture(t)
	if resp, answer := f.send(t, webhook{path: "/sms", body: debuggerForm(nil)}); resp.StatusCode != 200 {
		t.Fatalf("answer %d %q", resp.StatusCode, answer)
	}
	alerts, err := f.store.DebuggerAlerts(context.Background(), switchboard.DebuggerFilter{})
	if err != nil || len(alerts.Items) != 0 {
		t.Errorf("%d alerts from a route of another kind (%v)", len(alerts.Items), err)
	}
}
