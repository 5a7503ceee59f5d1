package console

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/twilio"
)

// dashboardRanges are the ranges the dashboard offers by name.
var dashboardRanges = []struct {
	Name string
	D    time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

// dashboardQuery reads range (1h, 6h, 24h, 7d; default 1h), or since and
// until, into the store's query. A named range ends at the end of the
// current minute, so that the minute under way shows.
func (c *Console) dashboardQuery(v url.Values) (switchboard.DashboardQuery, string, error) {
	since, until, err := timeRange(v)
	if err != nil {
		return switchboard.DashboardQuery{}, "", err
	}
	name := v.Get("range")
	if !since.IsZero() || !until.IsZero() {
		if name != "" {
			return switchboard.DashboardQuery{}, "", badRequest("Give a range or since and until, not both.")
		}
		if until.IsZero() {
			until = c.now().Truncate(time.Minute).Add(time.Minute)
		}
		if since.IsZero() {
			since = until.Add(-time.Hour)
		}
		switch d := until.Sub(since); {
		case d < time.Minute:
			return switchboard.DashboardQuery{}, "", badRequest("The range must be a minute or longer.")
		case d > switchboard.MaxDashboardRange:
			return switchboard.DashboardQuery{}, "", badRequest("The range must be at most %d days.", int(switchboard.MaxDashboardRange/(24*time.Hour)))
		}
		return switchboard.DashboardQuery{Since: since, Until: until}, "", nil
	}
	if name == "" {
		name = "1h"
	}
	for _, r := range dashboardRanges {
		if r.Name == name {
			until := c.now().Truncate(time.Minute).Add(time.Minute)
			return switchboard.DashboardQuery{Since: until.Add(-r.D), Until: until}, name, nil
		}
	}
	return switchboard.DashboardQuery{}, "", badRequest("range: want 1h, 6h, 24h or 7d.")
}

// series is a dashboard series in JSON: NaN (no data) and infinities are
// null, which uPlot draws as a gap.
type series []float64

func (s series) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(s)*6)
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNumber(b, v)
	}
	return append(b, ']'), nil
}

// scalar is one number in JSON, null when NaN or infinite.
type scalar float64

func (v scalar) MarshalJSON() ([]byte, error) { return appendNumber(nil, float64(v)), nil }

func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// ms is a duration in milliseconds; a negative one (a quantile of
// nothing) is null.
func ms(d time.Duration) scalar {
	if d < 0 {
		return scalar(math.NaN())
	}
	return scalar(float64(d) / float64(time.Millisecond))
}

// DashboardJSON is GET /console/dashboard.json: Store.Dashboard's series,
// with Times in Unix seconds and latencies in milliseconds, plus the live
// state. A bucket without data is null.
type DashboardJSON struct {
	Range       string    `json:"range,omitempty"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	StepSeconds float64   `json:"step_seconds"`
	Times       []int64   `json:"times"`

	Accepted   series `json:"accepted"`
	Duplicate  series `json:"duplicate"`
	Rejected   series `json:"rejected"`
	AckP50     series `json:"ack_p50_ms"`
	AckP99     series `json:"ack_p99_ms"`
	QueueDepth series `json:"queue_depth"`
	QueueLag   series `json:"queue_lag_seconds"`

	Routes          []RouteJSON     `json:"routes"`
	Pools           []PoolJSON      `json:"pools"`
	TwilioCodes     []CodeJSON      `json:"twilio_codes"`
	MessageStatuses []KeyCountJSON  `json:"message_statuses"`
	MessageCodes    []CodeJSON      `json:"message_codes"`
	Templates       []BreakdownJSON `json:"templates"`
	Countries       []BreakdownJSON `json:"countries"`
	OptOuts         int64           `json:"opt_outs"`

	// Live is the state of breakers and pools now; absent without one.
	Live *LiveState `json:"live,omitempty"`
	// Replicas are the processes sharing a PostgreSQL store; absent on
	// SQLite (one process) or when they could not be read.
	Replicas *ReplicasJSON `json:"replicas,omitempty"`
}

// RouteJSON is one route's delivery series.
type RouteJSON struct {
	Route         string `json:"route"`
	Attempts      series `json:"attempts"`
	Failed        series `json:"failed"`
	SuccessRate   series `json:"success_rate"`
	P50           series `json:"p50_ms"`
	P95           series `json:"p95_ms"`
	TotalAttempts int64  `json:"total_attempts"`
	TotalFailed   int64  `json:"total_failed"`
	TotalP50      scalar `json:"total_p50_ms"`
	TotalP95      scalar `json:"total_p95_ms"`
}

// PoolJSON is one outbound pool's series, with its configured rate when
// the live state knows it.
type PoolJSON struct {
	Pool           string  `json:"pool"`
	Sent           series  `json:"sent"`
	Throttled      series  `json:"throttled"`
	DeliveryRate   series  `json:"delivery_rate"`
	P50            series  `json:"p50_ms"`
	P95            series  `json:"p95_ms"`
	TotalSent      int64   `json:"total_sent"`
	TotalDelivered int64   `json:"total_delivered"`
	TotalFailed    int64   `json:"total_failed"`
	TotalThrottled int64   `json:"total_throttled"`
	Rate           *scalar `json:"rate,omitempty"`
	Brownout       bool    `json:"brownout"`
}

// CodeJSON is how often an error code occurred, with what it means and,
// for a delivery's code, how to fix it.
type CodeJSON struct {
	Code        int    `json:"code"`
	Count       int64  `json:"count"`
	Description string `json:"description"`
	Fix         string `json:"fix,omitempty"`
}

// KeyCountJSON is how often something occurred.
type KeyCountJSON struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// BreakdownJSON is outbound delivery for one template or country.
type BreakdownJSON struct {
	Key       string `json:"key"`
	Sent      int64  `json:"sent"`
	Delivered int64  `json:"delivered"`
	Failed    int64  `json:"failed"`
	P50       scalar `json:"p50_ms"`
	P95       scalar `json:"p95_ms"`
}

func dashboardJSON(d *switchboard.Dashboard, name string, live *LiveState) *DashboardJSON {
	out := &DashboardJSON{
		Range: name, Since: d.Since, Until: d.Until, StepSeconds: d.Step.Seconds(), Times: make([]int64, len(d.Times)),
		Accepted: d.Accepted, Duplicate: d.Duplicate, Rejected: d.Rejected, AckP50: d.AckP50, AckP99: d.AckP99,
		QueueDepth: d.QueueDepth, QueueLag: d.QueueLag, OptOuts: d.OptOuts, Live: live,
		Routes: []RouteJSON{}, Pools: []PoolJSON{}, TwilioCodes: []CodeJSON{}, MessageStatuses: []KeyCountJSON{},
		MessageCodes: []CodeJSON{}, Templates: []BreakdownJSON{}, Countries: []BreakdownJSON{},
	}
	for i, t := range d.Times {
		out.Times[i] = t.Unix()
	}
	for _, r := range d.Routes {
		out.Routes = append(out.Routes, RouteJSON{Route: r.Route, Attempts: r.Attempts, Failed: r.Failed, SuccessRate: r.SuccessRate,
			P50: r.P50, P95: r.P95, TotalAttempts: r.TotalAttempts, TotalFailed: r.TotalFailed, TotalP50: ms(r.TotalP50), TotalP95: ms(r.TotalP95)})
	}
	pools := map[string]PoolState{}
	if live != nil {
		for _, p := range live.Pools {
			pools[p.Pool] = p
		}
	}
	for _, p := range d.Pools {
		pj := PoolJSON{Pool: p.Pool, Sent: p.Sent, Throttled: p.Throttled, DeliveryRate: p.DeliveryRate, P50: p.P50, P95: p.P95,
			TotalSent: p.TotalSent, TotalDelivered: p.TotalDelivered, TotalFailed: p.TotalFailed, TotalThrottled: p.TotalThrottled}
		if st, ok := pools[p.Pool]; ok {
			rate := scalar(st.Rate)
			pj.Rate, pj.Brownout = &rate, st.Brownout
		}
		out.Pools = append(out.Pools, pj)
	}
	for _, c := range d.TwilioCodes {
		out.TwilioCodes = append(out.TwilioCodes, CodeJSON{Code: c.Code, Count: c.Count, Description: twilio.Code(c.Code).String(),
			Fix: doctor.Fix("", twilio.Code(c.Code))})
	}
	for _, c := range d.MessageCodes {
		out.MessageCodes = append(out.MessageCodes, CodeJSON{Code: c.Code, Count: c.Count, Description: twilio.Code(c.Code).String()})
	}
	for _, k := range d.MessageStatuses {
		out.MessageStatuses = append(out.MessageStatuses, KeyCountJSON{Key: k.Key, Count: k.Count})
	}
	breakdown := func(in []switchboard.MessageBreakdown) []BreakdownJSON {
		out := []BreakdownJSON{}
		for _, b := range in {
			out = append(out, BreakdownJSON{Key: b.Key, Sent: b.Sent, Delivered: b.Delivered, Failed: b.Failed, P50: ms(b.P50), P95: ms(b.P95)})
		}
		return out
	}
	out.Templates, out.Countries = breakdown(d.Templates), breakdown(d.Countries)
	return out
}

// loadDashboard reads the dashboard, the live state and the replicas;
// the live state or the replicas failing leaves them out rather than the
// page.
func (c *Console) loadDashboard(ctx context.Context, v url.Values) (*DashboardJSON, error) {
	q, name, err := c.dashboardQuery(v)
	if err != nil {
		return nil, err
	}
	d, err := c.store.Dashboard(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read the dashboard: %w", err)
	}
	var live *LiveState
	if c.o.Live != nil {
		if live, err = c.o.Live.LiveState(ctx); err != nil {
			c.logger.Warn("console: live state", "err", err)
			live = nil
		}
	}
	out := dashboardJSON(d, name, live)
	node := ""
	if live != nil {
		node = live.Node
	}
	if out.Replicas, err = c.replicasJSON(ctx, node); err != nil {
		c.logger.Warn("console: replicas", "err", err)
	}
	return out, nil
}

// dashboardPage is the dashboard: charts drawn from Data, and tables.
type dashboardPage struct {
	Data   *DashboardJSON
	Ranges []string
	Range  string
	Since  string
	Until  string
	// JSONURL is where the charts refresh from.
	JSONURL string
	// OneProcess is whether the store is one process's (SQLite's).
	OneProcess bool
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) error {
	data, err := c.loadDashboard(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	p := dashboardPage{Data: data, Range: data.Range, JSONURL: Prefix + "dashboard.json", OneProcess: c.oneProcess()}
	for _, rg := range dashboardRanges {
		p.Ranges = append(p.Ranges, rg.Name)
	}
	if data.Range == "" {
		p.Since, p.Until = inputValue(data.Since), inputValue(data.Until)
	}
	if q := r.URL.Query().Encode(); q != "" {
		p.JSONURL += "?" + q
	}
	return c.render(w, s, http.StatusOK, "dashboard", "Dashboard", p)
}

func (c *Console) dashboardJSON(w http.ResponseWriter, r *http.Request, s *session) error {
	data, err := c.loadDashboard(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, data)
	return nil
}
