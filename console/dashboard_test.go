package console_test

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

var nan = math.NaN()

func dashboardFixture() *switchboard.Dashboard {
	return &switchboard.Dashboard{
		Step:     time.Minute,
		Times:    []time.Time{base.Add(-2 * time.Minute), base.Add(-time.Minute)},
		Accepted: []float64{1.5, 2}, Duplicate: []float64{0, 0.1}, Rejected: []float64{0, 0},
		AckP50: []float64{nan, 3.2}, AckP99: []float64{nan, 9.8},
		QueueDepth: []float64{4, 0}, QueueLag: []float64{1.5, nan},
		Routes: []switchboard.RouteSeries{{Route: "/sms", Attempts: []float64{1, 2}, Failed: []float64{0, 1}, SuccessRate: []float64{1, 0.5},
			P50: []float64{12, nan}, P95: []float64{40, nan}, TotalAttempts: 180, TotalFailed: 60, TotalP50: 12 * time.Millisecond, TotalP95: -1}},
		TwilioCodes: []switchboard.CodeCount{{Code: 11200, Count: 60}},
		Pools: []switchboard.PoolSeries{{Pool: "main", Sent: []float64{8, 9.5}, Throttled: []float64{0, 0.2}, DeliveryRate: []float64{nan, 0.97},
			P50: []float64{nan, 2000}, P95: []float64{nan, 5000}, TotalSent: 1050, TotalDelivered: 1000, TotalFailed: 10, TotalThrottled: 12}},
		Templates:       []switchboard.MessageBreakdown{{Key: "receipt", Sent: 1050, Delivered: 1000, Failed: 10, P50: 2 * time.Second, P95: -1}},
		Countries:       []switchboard.MessageBreakdown{{Key: "US", Sent: 1050, Delivered: 1000, Failed: 10, P50: 2 * time.Second, P95: 5 * time.Second}},
		MessageStatuses: []switchboard.KeyCount{{Key: "delivered", Count: 1000}},
		MessageCodes:    []switchboard.CodeCount{{Code: 30003, Count: 10}},
		OptOuts:         3,
	}
}

func TestDashboardJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.store.dashboard = dashboardFixture()
	s := f.signIn()
	w := f.do("GET", "/console/dashboard.json?range=6h", nil, s.cookie)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, %s", w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.Contains(body, "NaN") {
		t.Fatalf("NaN in JSON: %s", body)
	}
	var d console.DashboardJSON
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if p50 := raw["ack_p50_ms"].([]any); p50[0] != nil || p50[1] != 3.2 {
		t.Errorf("ack_p50_ms %v, want [null 3.2]", p50)
	}
	route := raw["routes"].([]any)[0].(map[string]any)
	if route["total_p95_ms"] != nil || route["total_p50_ms"] != 12.0 || route["p50_ms"].([]any)[1] != nil {
		t.Errorf("route %v", route)
	}
	if d.Range != "6h" || d.StepSeconds != 60 || len(d.Times) != 2 || d.Times[1] != base.Add(-time.Minute).Unix() {
		t.Errorf("range %q step %v times %v", d.Range, d.StepSeconds, d.Times)
	}
	// The live state: the pool's configured rate, its brownout, breakers.
	pool := raw["pools"].([]any)[0].(map[string]any)
	if pool["rate"] != 10.0 || pool["brownout"] != true {
		t.Errorf("pool %v", pool)
	}
	if d.Live == nil || len(d.Live.Breakers) != 1 || d.Live.Breakers[0].State != "open" {
		t.Errorf("live %+v", d.Live)
	}
	if len(d.TwilioCodes) != 1 || d.TwilioCodes[0].Description != "HTTP retrieval failure" || d.TwilioCodes[0].Fix == "" {
		t.Errorf("codes %+v", d.TwilioCodes)
	}
	// A named range ends with the minute under way.
	q := f.store.dashQueries[len(f.store.dashQueries)-1]
	if !q.Until.Equal(base.Add(time.Minute)) || !q.Since.Equal(base.Add(time.Minute-6*time.Hour)) {
		t.Errorf("query %v to %v", q.Since, q.Until)
	}
}

func TestDashboardRanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	for _, tc := range []struct {
		query        string
		since, until time.Time
	}{
		{"", base.Add(time.Minute - time.Hour), base.Add(time.Minute)},
		{"range=1h", base.Add(time.Minute - time.Hour), base.Add(time.Minute)},
		{"range=24h", base.Add(time.Minute - 24*time.Hour), base.Add(time.Minute)},
		{"range=7d", base.Add(time.Minute - 7*24*time.Hour), base.Add(time.Minute)},
		{"since=2026-02-28T00:00:00Z&until=2026-03-01T00:00:00Z", base.Add(-36 * time.Hour), base.Add(-12 * time.Hour)},
		{"since=2026-03-01T11:30:00", base.Add(-30 * time.Minute), base.Add(time.Minute)},
	} {
		f.get(s, "/console/dashboard.json?"+tc.query, http.StatusOK)
		q := f.store.dashQueries[len(f.store.dashQueries)-1]
		if !q.Since.Equal(tc.since) || !q.Until.Equal(tc.until) {
			t.Errorf("%q: %v to %v, want %v to %v", tc.query, q.Since, q.Until, tc.since, tc.until)
		}
	}
	for _, query := range []string{"range=2h", "range=1h&since=2026-03-01T00:00:00Z", "since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z",
		"since=2026-03-01T00:00:00Z&until=2026-03-01T00:00:30Z"} {
		w := f.do("GET", "/console/dashboard.json?"+query, nil, s.cookie)
		var e map[string]string
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || e["error"] == "" {
			t.Errorf("%q: status %d %s, want 400 with an error", query, w.Code, w.Body)
		}
	}
}

func TestDashboardPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.store.dashboard = dashboardFixture()
	s := f.signIn()
	page := f.get(s, "/console/dashboard?range=24h", http.StatusOK)
	doc := parseHTML(t, page)
	section := byID(doc, "dashboard")
	if attr(section, "data-json") != "/console/dashboard.json?range=24h" {
		t.Errorf("data-json %q", attr(section, "data-json"))
	}
	charts := all(section, func(n *html.Node) bool { return n.Data == "figure" && hasAttr(n, "data-chart") })
	if len(charts) < 10 {
		t.Errorf("%d charts", len(charts))
	}
	// The charts' data is in the page, as JSON the CSP lets a script read.
	data := byID(doc, "dashboard-data")
	if attr(data, "type") != "application/json" {
		t.Fatalf("data block type %q", attr(data, "type"))
	}
	var d console.DashboardJSON
	if err := json.Unmarshal([]byte(data.FirstChild.Data), &d); err != nil {
		t.Fatalf("embedded data: %v\n%s", err, data.FirstChild.Data)
	}
	if len(d.Pools) != 1 || d.Pools[0].Pool != "main" || d.Range != "24h" {
		t.Errorf("embedded %+v", d)
	}
	for id, want := range map[string]string{
		"codes-table": "11200", "pools-table": "10.0/s", "routes-table": "12.0 ms", "breakers-table": "open",
		"statuses-table": "delivered", "message-codes-table": "30003", "opt-outs": "3",
	} {
		if got := text(byID(doc, id)); !strings.Contains(got, want) {
			t.Errorf("#%s: %q lacks %q", id, got, want)
		}
	}
	// uPlot is loaded on this page only.
	if !strings.Contains(page, "uPlot.iife.min.js") || strings.Contains(f.get(s, "/console/events", http.StatusOK), "uPlot") {
		t.Error("uPlot is not loaded where the charts are, or elsewhere too")
	}
}

func TestDashboardWithoutLiveState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *console.Options) { o.Live = nil })
	f.store.dashboard = dashboardFixture()
	s := f.signIn()
	var d map[string]any
	if err := json.Unmarshal([]byte(f.get(s, "/console/dashboard.json", http.StatusOK)), &d); err != nil {
		t.Fatal(err)
	}
	if _, ok := d["live"]; ok {
		t.Error("live state without a Live")
	}
	if _, ok := d["pools"].([]any)[0].(map[string]any)["rate"]; ok {
		t.Error("a rate without a Live")
	}
	f.get(s, "/console/dashboard", http.StatusOK)
}
