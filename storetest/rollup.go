package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// The rollups are computed from the stored rows, so they are tested
// against rows of known times. Some rows take the store's own clock (an
// opt-out's, a cancel's), so the facts are laid half an hour before now,
// and each pass runs at the real time.

// rollupFacts is a scenario of known facts from minute m0 on, and the
// dashboard they make.
type rollupFacts struct {
	m0     time.Time
	events map[string]*switchboard.Event
}

func minuteAfter(m0 time.Time, minutes int, seconds int) time.Time {
	return m0.Add(time.Duration(minutes)*time.Minute + time.Duration(seconds)*time.Second)
}

// seedRollupFacts stores the scenario's facts:
//
//	minute 0: webhooks accepted 3 (/sms 2, /voice 1), duplicate 1, rejected 1;
//	          /sms attempts: 500 in 20 ms (code 11200), 204 in 5 ms;
//	          messages sent: p1/otp to the US, p2/none to Canada; the first
//	          delivered 30 s after it was sent (and its receipt repeated);
//	minute 1: webhook accepted 1 (/sms); /sms attempt 200 in 5 ms; /voice
//	          attempt failed to connect in 3 s (code 11205); the Canadian
//	          message undelivered (30003); p1/otp to Britain refused at
//	          send (21211);
//	now:      an opt-out, a refusal (no opt-out), a canceled message.
func seedRollupFacts(t *testing.T, s switchboard.Store) *rollupFacts {
	t.Helper()
	ctx := context.Background()
	f := &rollupFacts{m0: time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute), events: map[string]*switchboard.Event{}}
	at := func(minutes, seconds int) time.Time { return minuteAfter(f.m0, minutes, seconds) }

	accept := func(name, route string, when time.Time) {
		it := NewItem(route, "rollup-"+name, when)
		ingest(t, s, it)
		f.events[name] = it.Event
	}
	accept("a", "/sms", at(0, 1))
	accept("b", "/sms", at(0, 2))
	accept("c", "/voice", at(0, 3))
	accept("d", "/sms", at(1, 0))
	dup := NewItem("/sms", "rollup-a", at(0, 30))
	ingest(t, s, dup)
	if !dup.Duplicate {
		t.Fatal("the repeated webhook was not a duplicate")
	}
	rej := NewItem("/sms", "rollup-rejected", at(0, 40))
	rej.Request.Outcome, rej.Request.Reason, rej.Event = switchboard.OutcomeRejected, "bad signature", nil
	ingest(t, s, rej)

	record := func(ev string, n int, started time.Time, status int, latency time.Duration, code int, state switchboard.State) {
		next := time.Time{}
		if !state.Terminal() {
			next = started.Add(time.Hour)
		}
		a := switchboard.Attempt{EventID: f.events[ev].ID, Number: n, StartedAt: started, TargetURL: "http://app/x",
			StatusCode: status, Latency: latency, TwilioCode: code, ResponseHeader: http.Header{}, ResponseExcerpt: []byte("x")}
		if code != 0 {
			a.ErrorClass, a.Error = "failure", "failed"
		}
		if err := s.RecordAttempts(ctx, []*switchboard.AttemptResult{{Attempt: a, State: state, NextAttemptAt: next, Attempts: n}}); err != nil {
			t.Fatalf("RecordAttempts: %v", err)
		}
	}
	record("a", 1, at(0, 10), 500, 20*time.Millisecond, 11200, switchboard.StateRetrying)
	record("b", 1, at(0, 20), 204, 5*time.Millisecond, 0, switchboard.StateDelivered)
	record("a", 2, at(1, 5), 200, 5*time.Millisecond, 0, switchboard.StateDelivered)
	record("c", 1, at(1, 1), 0, 3*time.Second, 11205, switchboard.StateDead)

	message := func(key, pool, template, to string) *switchboard.OutboundMessage {
		m := NewMessage("rollup-"+key, to, at(0, 0))
		m.Pool, m.Template = pool, template
		createMessage(t, s, m)
		return m
	}
	send := func(m *switchboard.OutboundMessage, r switchboard.SendResult) {
		r.MessageID = m.ID
		if err := s.RecordSend(ctx, r); err != nil {
			t.Fatalf("RecordSend %s: %v", m.IdempotencyKey, err)
		}
	}
	status := func(m *switchboard.OutboundMessage, st string, code int, when time.Time) {
		if _, err := s.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "TW" + m.ID,
			Status: st, ErrorCode: code, At: when, Source: "callback"}); err != nil {
			t.Fatalf("UpdateMessageStatus %s: %v", m.IdempotencyKey, err)
		}
	}
	us := message("us", "p1", "otp", "+14155550100")
	send(us, switchboard.SendResult{Attempts: 1, State: switchboard.MessageSending, At: at(0, 4)})
	send(us, switchboard.SendResult{Attempts: 1, State: switchboard.MessageSent, TwilioSID: "TW" + us.ID, TwilioStatus: "queued", At: at(0, 5)})
	status(us, "sent", 0, at(0, 10))
	status(us, "delivered", 0, at(0, 35))
	status(us, "delivered", 0, at(0, 50)) // repeated: not applied, not counted
	ca := message("ca", "p2", "", "+14165550123")
	send(ca, switchboard.SendResult{Attempts: 1, State: switchboard.MessageSent, TwilioSID: "TW" + ca.ID, TwilioStatus: "queued", At: at(0, 6)})
	status(ca, "undelivered", 30003, at(1, 10))
	gb := message("gb", "p1", "otp", "+447700900123")
	send(gb, switchboard.SendResult{Attempts: 1, State: switchboard.MessageFailed, ErrorCode: 21211, Error: "invalid To", At: at(1, 20)})
	withdrawn := message("canceled", "p1", "otp", "+14155550101")
	if _, err := s.CancelMessage(ctx, "AC1", withdrawn.ID); err != nil {
		t.Fatalf("CancelMessage: %v", err)
	}

	if err := s.Suppress(ctx, "AC1", "+14155550102", "STOP"); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, "AC1", "+14155550103", switchboard.RefusalReason(21610)); err != nil {
		t.Fatal(err)
	}
	return f
}

// rollupSamples are two processes' samples of minute 0.
func rollupSamples(m0 time.Time) []switchboard.Sample {
	fast, slow := switchboard.NewLatencyHistogram(), switchboard.NewLatencyHistogram()
	for range 3 {
		fast.Observe(2 * time.Millisecond)
	}
	slow.Observe(100 * time.Millisecond)
	return []switchboard.Sample{
		{Minute: m0, Node: "a", Series: switchboard.SampleAck, Value: 3, Latency: fast},
		{Minute: m0, Node: "b", Series: switchboard.SampleAck, Value: 1, Latency: slow},
		{Minute: m0, Node: "a", Series: switchboard.SampleThrottled, Key: "p1", Value: 2},
		{Minute: m0, Node: "b", Series: switchboard.SampleThrottled, Key: "p1", Value: 3},
		{Minute: m0, Node: "a", Series: switchboard.SampleQueueDepth, Value: 10},
		{Minute: m0, Node: "b", Series: switchboard.SampleQueueDepth, Value: 12},
		{Minute: m0, Node: "a", Series: switchboard.SampleQueueLag, Value: 1.5},
		{Minute: m0, Node: "b", Series: switchboard.SampleQueueLag, Value: 0.5},
		{Minute: m0, Node: "a", Series: switchboard.SampleUnrecorded, Key: string(switchboard.OutcomeDuplicate), Value: 4},
	}
}

// rollUp runs passes at now until one is not behind.
func rollUp(t *testing.T, s switchboard.Store, now time.Time) switchboard.RollUpResult {
	t.Helper()
	for range 2000 {
		res, err := s.RollUp(context.Background(), now)
		if err != nil {
			t.Fatalf("RollUp: %v", err)
		}
		if !res.Behind {
			return res
		}
	}
	t.Fatal("RollUp still behind after 2000 passes")
	return switchboard.RollUpResult{}
}

// dashboardOf reads the dashboard of the scenario's first 40 minutes, by
// the minute.
func dashboardOf(t *testing.T, s switchboard.Store, m0 time.Time) *switchboard.Dashboard {
	t.Helper()
	d, err := s.Dashboard(context.Background(), switchboard.DashboardQuery{Since: m0, Until: m0.Add(40 * time.Minute), Step: time.Minute})
	if err != nil {
		t.Fatalf("Dashboard: %v", err)
	}
	return d
}

// ms is the dashboard's figure for durations observed alone in a
// histogram: the upper bound of their quantile's bucket, in ms.
func ms(q float64, ds ...time.Duration) float64 {
	h := switchboard.NewLatencyHistogram()
	for _, d := range ds {
		h.Observe(d)
	}
	return float64(h.Quantile(q)) / float64(time.Millisecond)
}

func quantileOf(q float64, ds ...time.Duration) time.Duration {
	h := switchboard.NewLatencyHistogram()
	for _, d := range ds {
		h.Observe(d)
	}
	return h.Quantile(q)
}

// same reports whether a and b are equal, NaN equal to NaN.
func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// checkSeries checks a series of 40 buckets: the first hold want, and
// the others rest.
func checkSeries(t *testing.T, name string, got []float64, rest float64, want ...float64) {
	t.Helper()
	if len(got) != 40 {
		t.Errorf("%s: %d buckets, want 40", name, len(got))
		return
	}
	for i, g := range got {
		w := rest
		if i < len(want) {
			w = want[i]
		}
		if !same(g, w) {
			t.Errorf("%s[%d] = %v, want %v (series %v)", name, i, g, w, got[:min(len(got), 4)])
			return
		}
	}
}

// checkScenario checks the dashboard of seedRollupFacts and
// rollupSamples, and of one more webhook accepted in bucket late (none
// when it is -1).
func checkScenario(t *testing.T, d *switchboard.Dashboard, m0 time.Time, late int) {
	t.Helper()
	nan := math.NaN()
	perMinute := func(n float64) float64 { return n / 60 }
	if !d.Since.Equal(m0) || d.Step != time.Minute || len(d.Times) != 40 || !d.Times[1].Equal(m0.Add(time.Minute)) {
		t.Fatalf("dashboard of %s by %s with %d buckets, want 40 from %s by the minute", d.Since, d.Step, len(d.Times), m0)
	}
	accepted := make([]float64, 40)
	accepted[0], accepted[1] = perMinute(3), perMinute(1)
	if late >= 0 && late < len(accepted) {
		accepted[late] += perMinute(1)
	}
	checkSeries(t, "Accepted", d.Accepted, 0, accepted...)
	checkSeries(t, "Duplicate", d.Duplicate, 0, perMinute(1+4))
	checkSeries(t, "Rejected", d.Rejected, 0, perMinute(1))
	checkSeries(t, "AckP50", d.AckP50, nan, ms(0.5, 2*time.Millisecond))
	checkSeries(t, "AckP95", d.AckP95, nan, ms(0.5, 100*time.Millisecond))
	checkSeries(t, "AckP99", d.AckP99, nan, ms(0.5, 100*time.Millisecond))
	checkSeries(t, "QueueDepth", d.QueueDepth, nan, 12)
	checkSeries(t, "QueueLag", d.QueueLag, nan, 1.5)

	if len(d.Routes) != 2 || d.Routes[0].Route != "/sms" || d.Routes[1].Route != "/voice" {
		t.Fatalf("routes %+v, want /sms and /voice", d.Routes)
	}
	sms, voice := d.Routes[0], d.Routes[1]
	checkSeries(t, "/sms Attempts", sms.Attempts, 0, perMinute(2), perMinute(1))
	checkSeries(t, "/sms Failed", sms.Failed, 0, perMinute(1), 0)
	checkSeries(t, "/sms SuccessRate", sms.SuccessRate, nan, 0.5, 1)
	checkSeries(t, "/sms P50", sms.P50, nan, ms(0.5, 5*time.Millisecond, 20*time.Millisecond), ms(0.5, 5*time.Millisecond))
	checkSeries(t, "/sms P95", sms.P95, nan, ms(0.95, 5*time.Millisecond, 20*time.Millisecond), ms(0.95, 5*time.Millisecond))
	if sms.TotalAttempts != 3 || sms.TotalFailed != 1 ||
		sms.TotalP50 != quantileOf(0.5, 5*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond) ||
		sms.TotalP95 != quantileOf(0.95, 20*time.Millisecond) {
		t.Errorf("/sms totals: %d attempts, %d failed, p50 %s, p95 %s", sms.TotalAttempts, sms.TotalFailed, sms.TotalP50, sms.TotalP95)
	}
	checkSeries(t, "/voice Attempts", voice.Attempts, 0, 0, perMinute(1))
	checkSeries(t, "/voice SuccessRate", voice.SuccessRate, nan, nan, 0)
	// /voice's event died at the end of its attempt, in minute 1.
	checkSeries(t, "/voice Dead", voice.Dead, 0, 0, 1)
	checkSeries(t, "/sms Dead", sms.Dead, 0)
	if voice.TotalDead != 1 || sms.TotalDead != 0 {
		t.Errorf("dead totals: /voice %d, /sms %d; want 1 and 0", voice.TotalDead, sms.TotalDead)
	}
	if voice.TotalAttempts != 1 || voice.TotalFailed != 1 || voice.TotalP50 != quantileOf(0.5, 3*time.Second) {
		t.Errorf("/voice totals: %+v", voice)
	}
	if got := fmt.Sprint(d.TwilioCodes); got != "[{11200 1} {11205 1}]" {
		t.Errorf("TwilioCodes = %s", got)
	}

	if len(d.Pools) != 2 || d.Pools[0].Pool != "p1" || d.Pools[1].Pool != "p2" {
		t.Fatalf("pools %+v, want p1 and p2", d.Pools)
	}
	p1, p2 := d.Pools[0], d.Pools[1]
	checkSeries(t, "p1 Sent", p1.Sent, 0, perMinute(1))
	checkSeries(t, "p1 Throttled", p1.Throttled, 0, perMinute(5))
	checkSeries(t, "p1 DeliveryRate", p1.DeliveryRate, nan, 1, 0)
	checkSeries(t, "p1 P50", p1.P50, nan, ms(0.5, 30*time.Second))
	if p1.TotalSent != 1 || p1.TotalDelivered != 1 || p1.TotalFailed != 1 || p1.TotalThrottled != 5 {
		t.Errorf("p1 totals: %+v", p1)
	}
	checkSeries(t, "p2 DeliveryRate", p2.DeliveryRate, nan, nan, 0)
	if p2.TotalSent != 1 || p2.TotalDelivered != 0 || p2.TotalFailed != 1 || p2.TotalThrottled != 0 {
		t.Errorf("p2 totals: %+v", p2)
	}
	thirty := quantileOf(0.5, 30*time.Second)
	if got, want := fmt.Sprint(d.Templates), fmt.Sprint([]switchboard.MessageBreakdown{
		{Key: "otp", Sent: 1, Delivered: 1, Failed: 1, P50: thirty, P95: thirty}, {Key: "", Sent: 1, Failed: 1}}); got != want {
		t.Errorf("Templates = %s\nwant %s", got, want)
	}
	if got, want := fmt.Sprint(d.Countries), fmt.Sprint([]switchboard.MessageBreakdown{
		{Key: "CA", Sent: 1, Failed: 1}, {Key: "US", Sent: 1, Delivered: 1, P50: thirty, P95: thirty}, {Key: "GB", Failed: 1}}); got != want {
		t.Errorf("Countries = %s\nwant %s", got, want)
	}
	if got := fmt.Sprint(d.MessageStatuses); got != "[{canceled 1} {delivered 1} {sent 1} {undelivered 1}]" {
		t.Errorf("MessageStatuses = %s", got)
	}
	if got := fmt.Sprint(d.MessageCodes); got != "[{21211 1} {30003 1}]" {
		t.Errorf("MessageCodes = %s", got)
	}
	if d.OptOuts != 1 {
		t.Errorf("OptOuts = %d, want 1", d.OptOuts)
	}
	// The opt-out took the store's clock: about 30 minutes after m0, in
	// one bucket.
	var optOuts float64
	for i, n := range d.OptOutSeries {
		if n != 0 && (i < 29 || n != 1) {
			t.Errorf("OptOutSeries[%d] = %v, want the opt-out about 30 minutes in", i, n)
		}
		optOuts += n
	}
	if len(d.OptOutSeries) != 40 || optOuts != 1 {
		t.Errorf("OptOutSeries = %v, want one opt-out in 40 buckets", d.OptOutSeries)
	}
}

// render renders a dashboard for comparing two, NaN included.
func render(d *switchboard.Dashboard) string { return fmt.Sprintf("%+v", *d) }

func testRollUpCountsKnownFacts(t *testing.T, o Opened) {
	ctx := context.Background()
	f := seedRollupFacts(t, o.Store)
	if err := o.Store.RecordSamples(ctx, rollupSamples(f.m0)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res := rollUp(t, o.Store, now)
	cur := now.UTC().Truncate(time.Minute)
	if res.Until != cur.Add(time.Minute) || !res.Final.Equal(cur.Add(-3*time.Minute)) {
		t.Errorf("pass %+v: want it to end after now's minute, final up to three minutes before it", res)
	}
	first := dashboardOf(t, o.Store, f.m0)
	checkScenario(t, first, f.m0, -1)

	// A pass run again changes nothing.
	rollUp(t, o.Store, now)
	if again := dashboardOf(t, o.Store, f.m0); render(again) != render(first) {
		t.Errorf("a second pass changed the dashboard:\n%s\nwas\n%s", render(again), render(first))
	}
}

// A pass that did not run (the process crashed before it) is made up for
// by the next one, in another process: minutes still open are recomputed
// from the rows, late ones included; final ones are kept as they were,
// even once retention has deleted their rows.
func testRollUpAfterCrash(t *testing.T, o Opened) {
	ctx := context.Background()
	f := seedRollupFacts(t, o.Store)
	if err := o.Store.RecordSamples(ctx, rollupSamples(f.m0)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rollUp(t, o.Store, now)

	// Landed after the pass, in a minute still open.
	open := now.UTC().Truncate(time.Minute).Add(-time.Minute)
	late := NewItem("/sms", "rollup-late", open.Add(time.Second))
	ingest(t, o.Store, late)
	// Retention deletes the delivered events of minutes 0 and 1, now final.
	if n := prune(t, o.Store, switchboard.PruneDelivered, now, 100); n != 2 {
		t.Fatalf("pruned %d delivered events, want 2", n)
	}

	next := restart(t, o)
	rollUp(t, next, now.Add(30*time.Second))
	checkScenario(t, dashboardOf(t, next, f.m0), f.m0, int(open.Sub(f.m0)/time.Minute))
}

// restart returns another store over o's database: a replica, or else the
// same store opened again.
func restart(t *testing.T, o Opened) switchboard.Store {
	t.Helper()
	switch {
	case o.Replica != nil:
		return o.Replica(t)
	case o.Reopen != nil:
		return o.Reopen(t)
	}
	t.Fatal("the engine's Opener sets neither Replica nor Reopen")
	return nil
}

// Passes run at once, by one process or by replicas, write what one
// would have.
func testRollUpConcurrentPasses(t *testing.T, o Opened) {
	f := seedRollupFacts(t, o.Store)
	if err := o.Store.RecordSamples(context.Background(), rollupSamples(f.m0)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Two passes at once in one process, and on an engine with replicas
	// two more in others.
	stores := []switchboard.Store{o.Store, o.Store}
	if o.Replica != nil {
		stores = append(stores, o.Replica(t), o.Replica(t))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*3)
	for _, s := range stores {
		wg.Go(func() {
			for range 3 {
				if _, err := s.RollUp(context.Background(), now); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent RollUp: %v", err)
	}
	checkScenario(t, dashboardOf(t, o.Store, f.m0), f.m0, -1)
}

// Rollups and samples go after RollupRetention, whatever is left of the
// rows.
func testRollUpRetention(t *testing.T, o Opened) {
	f := seedRollupFacts(t, o.Store)
	if err := o.Store.RecordSamples(context.Background(), rollupSamples(f.m0)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rollUp(t, o.Store, now)
	checkScenario(t, dashboardOf(t, o.Store, f.m0), f.m0, -1)
	res := rollUp(t, o.Store, now.Add(switchboard.RollupRetention+time.Hour))
	if res.From.Before(now.Add(time.Hour).UTC().Truncate(time.Minute)) {
		t.Errorf("a pass after a long stop started at %s, before what is kept", res.From)
	}
	d := dashboardOf(t, o.Store, f.m0)
	if d.Accepted[0] != 0 || len(d.Routes) != 0 || len(d.Pools) != 0 || !math.IsNaN(d.AckP50[0]) || d.OptOuts != 0 {
		t.Errorf("rollups older than their retention are kept: %s", render(d))
	}
}

// Keys that come from outside (templates, codes) are kept to
// MaxDashboardKeys, the rarest counted together.
func testRollUpBoundsKeys(t *testing.T, o Opened) {
	ctx := context.Background()
	m0 := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	n := switchboard.MaxDashboardKeys + 20
	for i := range n {
		m := NewMessage(fmt.Sprintf("bound-%d", i), "+14155550100", m0)
		m.Template = fmt.Sprintf("t%03d", i)
		createMessage(t, o.Store, m)
		if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageFailed,
			ErrorCode: 30000 + i, At: m0.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	rollUp(t, o.Store, time.Now())
	d, err := o.Store.Dashboard(ctx, switchboard.DashboardQuery{Since: m0, Until: m0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Templates) != switchboard.MaxDashboardKeys || d.Templates[len(d.Templates)-1].Key != switchboard.OtherKey {
		t.Errorf("%d templates, the last %+v; want %d, the last %q", len(d.Templates), d.Templates[len(d.Templates)-1],
			switchboard.MaxDashboardKeys, switchboard.OtherKey)
	}
	var failed int64
	for _, b := range d.Templates {
		failed += b.Failed
	}
	if failed != int64(n) {
		t.Errorf("templates count %d failures, want %d", failed, n)
	}
	var codes int64
	for _, c := range d.MessageCodes {
		codes += c.Count
	}
	if len(d.MessageCodes) != switchboard.MaxDashboardKeys || d.MessageCodes[len(d.MessageCodes)-1].Code != 0 || codes != int64(n) {
		t.Errorf("%d message codes counting %d, want %d counting %d, the last code 0", len(d.MessageCodes), codes,
			switchboard.MaxDashboardKeys, n)
	}
}

func testDashboardRefusesInvalid(t *testing.T, o Opened) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		name string
		q    switchboard.DashboardQuery
	}{
		{"no range", switchboard.DashboardQuery{}},
		{"no since", switchboard.DashboardQuery{Until: now}},
		{"no until", switchboard.DashboardQuery{Since: now}},
		{"empty", switchboard.DashboardQuery{Since: now, Until: now}},
		{"backwards", switchboard.DashboardQuery{Since: now, Until: now.Add(-time.Hour)}},
		{"too long", switchboard.DashboardQuery{Since: now.Add(-switchboard.MaxDashboardRange - time.Minute), Until: now}},
		{"the whole calendar", switchboard.DashboardQuery{Since: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"negative step", switchboard.DashboardQuery{Since: now.Add(-time.Hour), Until: now, Step: -time.Minute}},
		{"step under a minute", switchboard.DashboardQuery{Since: now.Add(-time.Hour), Until: now, Step: 30 * time.Second}},
		{"step of a nanosecond", switchboard.DashboardQuery{Since: now.Add(-time.Hour), Until: now, Step: 1}},
		{"step not whole minutes", switchboard.DashboardQuery{Since: now.Add(-time.Hour), Until: now, Step: 90 * time.Second}},
		{"step too long", switchboard.DashboardQuery{Since: now.Add(-time.Hour), Until: now, Step: switchboard.MaxDashboardRange + time.Minute}},
		{"too many buckets", switchboard.DashboardQuery{Since: now.Add(-24 * time.Hour), Until: now, Step: time.Minute}},
	} {
		if _, err := o.Store.Dashboard(context.Background(), tc.q); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	for _, q := range []switchboard.DashboardQuery{
		{Since: now.Add(-24 * time.Hour), Until: now},
		{Since: now.Add(-switchboard.MaxDashboardRange), Until: now},
		{Since: now.Add(-time.Hour), Until: now, Step: switchboard.MaxDashboardRange},
	} {
		d, err := o.Store.Dashboard(context.Background(), q)
		if err != nil {
			t.Errorf("%s to %s by %s: %v", q.Since, q.Until, q.Step, err)
			continue
		}
		if len(d.Times) == 0 || len(d.Times) > switchboard.MaxDashboardBuckets || len(d.Accepted) != len(d.Times) ||
			len(d.QueueDepth) != len(d.Times) {
			t.Errorf("%s to %s by %s: %d buckets", q.Since, q.Until, q.Step, len(d.Times))
		}
	}
}

func testRecordSamplesRefusesInvalid(t *testing.T, o Opened) {
	ctx := context.Background()
	m0 := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	good := switchboard.Sample{Minute: m0, Node: "n", Series: switchboard.SampleThrottled, Key: "p1", Value: 1}
	for _, tc := range []struct {
		name string
		edit func(*switchboard.Sample)
	}{
		{"no minute", func(s *switchboard.Sample) { s.Minute = time.Time{} }},
		{"minute not whole", func(s *switchboard.Sample) { s.Minute = m0.Add(time.Second) }},
		{"no node", func(s *switchboard.Sample) { s.Node = "" }},
		{"long node", func(s *switchboard.Sample) { s.Node = strings.Repeat("n", switchboard.MaxSampleNode+1) }},
		{"unknown series", func(s *switchboard.Sample) { s.Series = "'; DROP TABLE samples; --" }},
		{"long key", func(s *switchboard.Sample) { s.Key = strings.Repeat("k", switchboard.MaxSampleKey+1) }},
		{"NaN", func(s *switchboard.Sample) { s.Value = math.NaN() }},
		{"infinite", func(s *switchboard.Sample) { s.Value = math.Inf(1) }},
		{"negative", func(s *switchboard.Sample) { s.Value = -1 }},
		{"histogram of another shape", func(s *switchboard.Sample) { s.Latency = make(switchboard.LatencyHistogram, 3) }},
	} {
		bad := good
		tc.edit(&bad)
		// The good sample goes first: nothing of a refused call is stored.
		if err := o.Store.RecordSamples(ctx, []switchboard.Sample{good, bad}); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	many := make([]switchboard.Sample, switchboard.MaxSamples+1)
	for i := range many {
		many[i] = good
	}
	if err := o.Store.RecordSamples(ctx, many); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("%d samples: %v, want ErrInvalid", len(many), err)
	}
	d, err := o.Store.Dashboard(ctx, switchboard.DashboardQuery{Since: m0, Until: m0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Pools) != 0 {
		t.Errorf("a refused call stored samples: %+v", d.Pools)
	}

	// A key is a value, whatever it holds; a sample again replaces it.
	hostile := good
	hostile.Key = "p1'); DELETE FROM samples; --"
	for _, v := range []float64{7, 3} {
		hostile.Value = v
		if err := o.Store.RecordSamples(ctx, []switchboard.Sample{hostile}); err != nil {
			t.Fatal(err)
		}
	}
	d, err = o.Store.Dashboard(ctx, switchboard.DashboardQuery{Since: m0, Until: m0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Pools) != 1 || d.Pools[0].Pool != hostile.Key || d.Pools[0].TotalThrottled != 3 {
		t.Errorf("pools %+v, want %q with the last sample's 3", d.Pools, hostile.Key)
	}
}
