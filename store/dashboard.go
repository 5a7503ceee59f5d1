package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Dashboard reads the dashboard's series from the rollups and the
// processes' samples of q's range, in two reads that sum them by bucket:
// at most a row per bucket of each series and key, however many events
// and messages the range saw. It refuses what DashboardQuery.Buckets
// refuses.
func (s *Store) Dashboard(ctx context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error) {
	since, until, step, n, err := q.Buckets()
	if err != nil {
		return nil, err
	}
	r := s.driver.Read()
	rows, err := r.Rollups(ctx, since, until, step)
	if err != nil {
		return nil, fmt.Errorf("dashboard: read rollups: %w", err)
	}
	samples, err := r.Samples(ctx, since, until, step)
	if err != nil {
		return nil, fmt.Errorf("dashboard: read samples: %w", err)
	}
	b := newBoard(since, until, step, n)
	for i := range rows {
		b.addRow(&rows[i])
	}
	b.addSamples(samples)
	return b.dashboard(), nil
}

// board gathers rollups and samples into a dashboard's buckets.
type board struct {
	since, until time.Time
	step         time.Duration
	n            int

	accepted, duplicate, rejected []int64
	ack                           []switchboard.LatencyHistogram
	routes                        map[string]*routeSums
	pools                         map[string]*poolSums
	templates, countries          map[string]*breakdownSums
	attemptCodes, messageCodes    map[string]int64
	statuses                      map[string]int64
	debuggerCodes                 map[string]int64 // Twilio's Debugger alerts
	optOuts                       int64
	optOutSeries                  []int64
	depth, lag                    []float64
}

type routeSums struct {
	attempts, failed, dead []int64
	latency                []switchboard.LatencyHistogram
}

type poolSums struct {
	sent, delivered, failed, throttled []int64
	latency                            []switchboard.LatencyHistogram
}

type breakdownSums struct {
	sent, delivered, failed int64
	latency                 switchboard.LatencyHistogram
}

func newBoard(since, until time.Time, step time.Duration, n int) *board {
	b := &board{since: since, until: until, step: step, n: n,
		accepted: make([]int64, n), duplicate: make([]int64, n), rejected: make([]int64, n),
		ack: make([]switchboard.LatencyHistogram, n), routes: map[string]*routeSums{}, pools: map[string]*poolSums{},
		templates: map[string]*breakdownSums{}, countries: map[string]*breakdownSums{},
		attemptCodes: map[string]int64{}, messageCodes: map[string]int64{}, statuses: map[string]int64{},
		optOutSeries: make([]int64, n), debuggerCodes: map[string]int64{}, depth: nan(n), lag: nan(n)}
	return b
}

// bucket is the index of the bucket holding minute, or -1 outside the
// range.
func (b *board) bucket(minute time.Time) int {
	if minute.Before(b.since) || !minute.Before(b.until) {
		return -1
	}
	return int(minute.Sub(b.since) / b.step)
}

func (b *board) addRow(row *RollupRow) {
	i := b.bucket(row.Minute)
	if i < 0 {
		return
	}
	switch row.Series {
	case seriesWebhooks:
		switch switchboard.Outcome(row.Key) {
		case switchboard.OutcomeAccepted:
			b.accepted[i] += row.N
		case switchboard.OutcomeDuplicate:
			b.duplicate[i] += row.N
		case switchboard.OutcomeRejected:
			b.rejected[i] += row.N
		}
	case seriesAttempts:
		rs := b.route(row.Key)
		rs.attempts[i] += row.N
		rs.failed[i] += row.Failed
		addLatency(&rs.latency[i], row.Latency)
	case seriesAttemptCodes:
		b.attemptCodes[row.Key] += row.N
	case seriesPools:
		ps := b.pool(row.Key)
		ps.sent[i] += row.N
		ps.delivered[i] += row.OK
		ps.failed[i] += row.Failed
		addLatency(&ps.latency[i], row.Latency)
	case seriesTemplates, seriesCountries:
		m := b.templates
		if row.Series == seriesCountries {
			m = b.countries
		}
		bs, ok := m[row.Key]
		if !ok {
			bs = &breakdownSums{}
			m[row.Key] = bs
		}
		bs.sent += row.N
		bs.delivered += row.OK
		bs.failed += row.Failed
		addLatency(&bs.latency, row.Latency)
	case seriesStatuses:
		b.statuses[row.Key] += row.N
	case seriesMessageCodes:
		b.messageCodes[row.Key] += row.N
	case seriesDebuggerCodes:
		b.debuggerCodes[row.Key] += row.N
	case seriesOptOuts:
		b.optOuts += row.N
		b.optOutSeries[i] += row.N
	case seriesDead:
		b.route(row.Key).dead[i] += row.N
	}
}

// addSamples adds the processes' samples, combined by bucket: counters
// summed, gauges the highest of every process and minute.
func (b *board) addSamples(samples []switchboard.Sample) {
	for _, sm := range samples {
		i := b.bucket(sm.Minute)
		if i < 0 {
			continue
		}
		switch sm.Series {
		case switchboard.SampleAck:
			addLatency(&b.ack[i], sm.Latency)
		case switchboard.SampleThrottled:
			b.pool(sm.Key).throttled[i] += int64(sm.Value)
		case switchboard.SampleUnrecorded:
			switch switchboard.Outcome(sm.Key) {
			case switchboard.OutcomeDuplicate:
				b.duplicate[i] += int64(sm.Value)
			case switchboard.OutcomeRejected:
				b.rejected[i] += int64(sm.Value)
			}
		case switchboard.SampleQueueDepth:
			b.depth[i] = sm.Value
		case switchboard.SampleQueueLag:
			b.lag[i] = sm.Value
		}
	}
}

func (b *board) route(name string) *routeSums {
	rs, ok := b.routes[name]
	if !ok {
		rs = &routeSums{attempts: make([]int64, b.n), failed: make([]int64, b.n), dead: make([]int64, b.n), latency: make([]switchboard.LatencyHistogram, b.n)}
		b.routes[name] = rs
	}
	return rs
}

func (b *board) pool(name string) *poolSums {
	ps, ok := b.pools[name]
	if !ok {
		ps = &poolSums{sent: make([]int64, b.n), delivered: make([]int64, b.n), failed: make([]int64, b.n),
			throttled: make([]int64, b.n), latency: make([]switchboard.LatencyHistogram, b.n)}
		b.pools[name] = ps
	}
	return ps
}

// dashboard turns the sums into series: rates per second of each
// bucket's own length (the last may be shorter), ratios and quantiles.
func (b *board) dashboard() *switchboard.Dashboard {
	d := &switchboard.Dashboard{Since: b.since, Until: b.until, Step: b.step, Times: make([]time.Time, b.n)}
	seconds := make([]float64, b.n)
	for i := range b.n {
		d.Times[i] = b.since.Add(time.Duration(i) * b.step)
		seconds[i] = earlier(b.until, d.Times[i].Add(b.step)).Sub(d.Times[i]).Seconds()
	}
	rate := func(counts []int64) []float64 {
		out := make([]float64, len(counts))
		for i, c := range counts {
			out[i] = float64(c) / seconds[i]
		}
		return out
	}
	d.Accepted, d.Duplicate, d.Rejected = rate(b.accepted), rate(b.duplicate), rate(b.rejected)
	d.AckP50, d.AckP95, d.AckP99 = quantiles(b.ack, 0.5), quantiles(b.ack, 0.95), quantiles(b.ack, 0.99)
	d.QueueDepth, d.QueueLag = b.depth, b.lag

	for _, name := range sortedKeys(b.routes) {
		rs := b.routes[name]
		total := switchboard.NewLatencyHistogram()
		series := switchboard.RouteSeries{Route: name, Attempts: rate(rs.attempts), Failed: rate(rs.failed),
			SuccessRate: make([]float64, b.n), P50: quantiles(rs.latency, 0.5), P95: quantiles(rs.latency, 0.95),
			Dead: make([]float64, b.n)}
		for i := range b.n {
			series.Dead[i] = float64(rs.dead[i])
			series.TotalDead += rs.dead[i]
			series.SuccessRate[i] = ratio(rs.attempts[i]-rs.failed[i], rs.attempts[i])
			series.TotalAttempts += rs.attempts[i]
			series.TotalFailed += rs.failed[i]
			total.Add(rs.latency[i])
		}
		series.TotalP50, series.TotalP95 = quantile(total, 0.5), quantile(total, 0.95)
		d.Routes = append(d.Routes, series)
	}
	for _, name := range sortedKeys(b.pools) {
		ps := b.pools[name]
		series := switchboard.PoolSeries{Pool: name, Sent: rate(ps.sent), Throttled: rate(ps.throttled),
			DeliveryRate: make([]float64, b.n), P50: quantiles(ps.latency, 0.5), P95: quantiles(ps.latency, 0.95)}
		for i := range b.n {
			series.DeliveryRate[i] = ratio(ps.delivered[i], ps.delivered[i]+ps.failed[i])
			series.TotalSent += ps.sent[i]
			series.TotalDelivered += ps.delivered[i]
			series.TotalFailed += ps.failed[i]
			series.TotalThrottled += ps.throttled[i]
		}
		d.Pools = append(d.Pools, series)
	}
	d.Templates, d.Countries = breakdown(b.templates), breakdown(b.countries)
	d.TwilioCodes, d.MessageCodes = codeCounts(b.attemptCodes), codeCounts(b.messageCodes)
	d.DebuggerCodes = codeCounts(b.debuggerCodes)
	for k, c := range b.statuses {
		d.MessageStatuses = append(d.MessageStatuses, switchboard.KeyCount{Key: k, Count: c})
	}
	slices.SortFunc(d.MessageStatuses, func(a, b switchboard.KeyCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	d.OptOuts = b.optOuts
	d.OptOutSeries = make([]float64, b.n)
	for i, c := range b.optOutSeries {
		d.OptOutSeries[i] = float64(c)
	}
	return d
}

// breakdown returns the sums by key, most messages first, at most
// MaxDashboardKeys of them: the rest are counted under OtherKey, last.
func breakdown(sums map[string]*breakdownSums) []switchboard.MessageBreakdown {
	keys := sortedKeys(sums)
	volume := func(k string) int64 { return sums[k].sent + sums[k].delivered + sums[k].failed }
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(volume(b), volume(a)) })
	other, hasOther := sums[switchboard.OtherKey]
	kept := keys[:0]
	for _, k := range keys {
		switch {
		case k == switchboard.OtherKey:
		case len(kept) < switchboard.MaxDashboardKeys-1 || len(keys) <= switchboard.MaxDashboardKeys && !hasOther:
			kept = append(kept, k)
		default:
			if other == nil {
				other = &breakdownSums{}
			}
			s := sums[k]
			other.sent, other.delivered, other.failed = other.sent+s.sent, other.delivered+s.delivered, other.failed+s.failed
			addLatency(&other.latency, s.latency)
		}
	}
	keys = kept
	if other != nil {
		sums[switchboard.OtherKey] = other
		keys = append(keys, switchboard.OtherKey)
	}
	out := make([]switchboard.MessageBreakdown, 0, len(keys))
	for _, k := range keys {
		s := sums[k]
		out = append(out, switchboard.MessageBreakdown{Key: k, Sent: s.sent, Delivered: s.delivered, Failed: s.failed,
			P50: quantile(s.latency, 0.5), P95: quantile(s.latency, 0.95)})
	}
	return out
}

// codeCounts returns the counts by code, most first, at most
// MaxDashboardKeys of them: the rest are counted under code 0.
func codeCounts(counts map[string]int64) []switchboard.CodeCount {
	var out []switchboard.CodeCount
	var other int64
	for k, c := range counts {
		code, err := strconv.Atoi(k)
		if err != nil || code == 0 {
			other += c
			continue
		}
		out = append(out, switchboard.CodeCount{Code: code, Count: c})
	}
	slices.SortFunc(out, func(a, b switchboard.CodeCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	if len(out) >= switchboard.MaxDashboardKeys {
		for _, c := range out[switchboard.MaxDashboardKeys-1:] {
			other += c.Count
		}
		out = out[:switchboard.MaxDashboardKeys-1]
	}
	if other > 0 {
		out = append(out, switchboard.CodeCount{Code: 0, Count: other})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// addLatency adds h to *dst, making it on first use.
func addLatency(dst *switchboard.LatencyHistogram, h switchboard.LatencyHistogram) {
	if h == nil {
		return
	}
	if *dst == nil {
		*dst = switchboard.NewLatencyHistogram()
	}
	dst.Add(h)
}

// quantiles is the q-th quantile of each histogram in milliseconds, NaN
// for an empty one.
func quantiles(hs []switchboard.LatencyHistogram, q float64) []float64 {
	out := make([]float64, len(hs))
	for i, h := range hs {
		out[i] = math.NaN()
		if h.Count() > 0 {
			out[i] = float64(h.Quantile(q)) / float64(time.Millisecond)
		}
	}
	return out
}

// quantile is h's q-th quantile, 0 for an empty h.
func quantile(h switchboard.LatencyHistogram, q float64) time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return h.Quantile(q)
}

// ratio is part/whole, NaN for a whole of none.
func ratio(part, whole int64) float64 {
	if whole == 0 {
		return math.NaN()
	}
	return float64(part) / float64(whole)
}

func nan(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}
