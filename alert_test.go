package switchboard

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)

// board is a dashboard of the 5 minutes up to t0, by the minute.
func board() *Dashboard {
	nan := math.NaN()
	since := t0.Truncate(time.Minute).Add(-5 * time.Minute)
	d := &Dashboard{Since: since, Until: t0.Truncate(time.Minute).Add(time.Minute), Step: time.Minute}
	for i := range 6 {
		d.Times = append(d.Times, since.Add(time.Duration(i)*time.Minute))
	}
	d.AckP95 = []float64{nan, 1500, 1200, nan, 1100, nan}
	d.QueueLag = []float64{nan, 12, 400, 3, nan, nan}
	d.Routes = []RouteSeries{
		{Route: "/sms", TotalAttempts: 40, TotalFailed: 30, TotalDead: 2, P95: []float64{10, 10, 10, 10, 10, nan}},
		{Route: "/voice", TotalAttempts: 4, TotalFailed: 4, P95: []float64{nan, nan, 900, 2000, 3000, nan}},
		{Route: "notify:ops", TotalAttempts: 20, TotalFailed: 20, TotalDead: 1, P95: []float64{5000, 5000, 5000, 5000, 5000, nan}},
	}
	d.Pools = []PoolSeries{
		{Pool: "p1", TotalThrottled: 11, TotalDelivered: 18, TotalFailed: 4},
		{Pool: "p2", TotalThrottled: 10, TotalDelivered: 50, TotalFailed: 0},
		{Pool: "p3", TotalDelivered: 1, TotalFailed: 9},
	}
	d.Templates = []MessageBreakdown{{Key: "otp", Delivered: 10, Failed: 30}}
	d.Countries = []MessageBreakdown{{Key: "US", Delivered: 99, Failed: 1}, {Key: "GB", Delivered: 5, Failed: 5}}
	d.TwilioCodes = []CodeCount{{11200, 7}, {11205, 1}}
	d.MessageCodes = []CodeCount{{30007, 12}, {11200, 2}}
	d.DebuggerCodes = []CodeCount{{30007, 3}, {11200, 4}}
	d.OptOuts = 51
	return d
}

// render shows observations as "key=value!" (! breaching, ? unjudged).
func render(obs []AlertObservation) string {
	var out []string
	for _, o := range obs {
		mark := ""
		switch {
		case !o.Judged:
			mark = "?"
		case o.Breaching:
			mark = "!"
		}
		out = append(out, fmt.Sprintf("%s=%s%s", o.Key, strings.TrimSuffix(fmt.Sprintf("%.3f", o.Value), ".000"), mark))
		if o.Summary == "" {
			out = append(out, "(no summary)")
		}
	}
	return strings.Join(out, " ")
}

func TestObserveEachCondition(t *testing.T) {
	breakers := []BreakerOpen{{Target: "https://a.example", OpenSince: t0.Add(-6 * time.Minute)},
		{Target: "https://b.example", OpenSince: t0.Add(-time.Minute)}, {Target: "notify:ops", OpenSince: t0.Add(-time.Hour)}}
	rule := func(c AlertCondition, threshold float64, f func(*AlertRule)) AlertRule {
		r := AlertRule{Name: "r", Condition: c, Window: 5 * time.Minute, Threshold: threshold, Severity: "warning"}
		if f != nil {
			f(&r)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		rule AlertRule
		want string
	}{
		{"any code from anywhere", rule(AlertErrorCode, 10, nil), "11200=13! 11205=1 30007=15!"},
		{"one code from delivery", rule(AlertErrorCode, 5, func(r *AlertRule) { r.Code, r.Source = 11200, CodeSourceDelivery }), "11200=7!"},
		{"one code unseen", rule(AlertErrorCode, 0, func(r *AlertRule) { r.Code = 21610 }), "21610=0"},
		{"message codes", rule(AlertErrorCode, 10, func(r *AlertRule) { r.Source = CodeSourceMessage }), "11200=2 30007=12!"},
		{"debugger codes", rule(AlertErrorCode, 3, func(r *AlertRule) { r.Source = CodeSourceDebugger }), "11200=4! 30007=3"},
		{"throttled", rule(AlertThrottled, 10, nil), "p1=11! p2=10 p3=0"},
		{"throttled matched", rule(AlertThrottled, 10, func(r *AlertRule) { r.Match = "p2" }), "p2=10"},
		{"delivery failure", rule(AlertDeliveryFailure, 0.5, func(r *AlertRule) { r.MinCount = 10 }), "/sms=0.750! /voice=1?"},
		{"delivery failure without min", rule(AlertDeliveryFailure, 0.5, nil), "/sms=0.750! /voice=1!"},
		{"delivery rate by pool", rule(AlertDeliveryRate, 0.9, func(r *AlertRule) { r.By, r.MinCount = ByPool, 20 }), "p1=0.818! p2=1 p3=0.100?"},
		{"delivery rate by template", rule(AlertDeliveryRate, 0.9, func(r *AlertRule) { r.By = ByTemplate }), "otp=0.250!"},
		{"delivery rate by country", rule(AlertDeliveryRate, 0.9, func(r *AlertRule) { r.By = ByCountry }), "US=0.990 GB=0.500!"},
		// Minutes 1, 2 and 4 have acks; the last 3 minutes hold only minute 4.
		{"ack latency every minute of For", rule(AlertAckLatency, 1000, func(r *AlertRule) { r.For = 5 * time.Minute }), "=1100!"},
		{"ack latency one slow minute", rule(AlertAckLatency, 1150, func(r *AlertRule) { r.For = 5 * time.Minute }), "=1100"},
		{"ack latency last minutes", rule(AlertAckLatency, 1150, func(r *AlertRule) { r.For = 2 * time.Minute }), "=1100"},
		{"ack latency For 0 is the window", rule(AlertAckLatency, 1000, nil), "=1100!"},
		{"delivery latency", rule(AlertDeliveryLatency, 1000, func(r *AlertRule) { r.For = 2 * time.Minute }), "/sms=10 /voice=2000!"},
		{"delivery latency longer For", rule(AlertDeliveryLatency, 1000, func(r *AlertRule) { r.For = 5 * time.Minute }), "/sms=10 /voice=900"},
		{"dead letters", rule(AlertDeadLetters, 0, nil), "/sms=2! /voice=0"},
		// A notifier's route and breaker only when named: no alert about
		// a notifier notified through itself.
		{"a notifier's failures named", rule(AlertDeliveryFailure, 0.5, func(r *AlertRule) { r.Match = "notify:ops" }), "notify:ops=1!"},
		{"a notifier's dead letters named", rule(AlertDeadLetters, 0, func(r *AlertRule) { r.Match = "notify:ops" }), "notify:ops=1!"},
		{"a notifier's breaker named", rule(AlertBreakerOpen, 0, func(r *AlertRule) { r.Match = "notify:ops" }), "notify:ops=3600!"},
		{"queue lag", rule(AlertQueueLag, 300, nil), "=400!"},
		{"breaker open", rule(AlertBreakerOpen, 0, func(r *AlertRule) { r.For = 5 * time.Minute }), "https://a.example=360! https://b.example=60"},
		{"breaker matched", rule(AlertBreakerOpen, 0, func(r *AlertRule) { r.Match = "https://b.example" }), "https://b.example=60!"},
		{"opt-outs", rule(AlertOptOuts, 50, nil), "=51!"},
		{"disabled", rule(AlertOptOuts, 50, func(r *AlertRule) { r.Disabled = true }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(tc.rule.Observe(board(), breakers, t0)); got != tc.want {
				t.Errorf("Observe = %q, want %q", got, tc.want)
			}
		})
	}
}

// A dashboard of nothing (no traffic) breaches nothing, and gives no
// number that is not one.
func TestObserveEmptyDashboard(t *testing.T) {
	d := &Dashboard{Since: t0.Add(-5 * time.Minute), Until: t0, Step: time.Minute}
	for _, r := range DefaultAlertRules() {
		for _, o := range r.Observe(d, nil, t0) {
			if o.Breaching || math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
				t.Errorf("%s on an empty dashboard: %+v", r.Name, o)
			}
		}
	}
	// A rate of nothing is NaN in the series and never a judgement.
	d.Routes = []RouteSeries{{Route: "/sms"}}
	r := AlertRule{Name: "f", Condition: AlertDeliveryFailure, Window: 5 * time.Minute, Severity: "warning"}
	if got := render(r.Observe(d, nil, t0)); got != "/sms=0?" {
		t.Errorf("a route without attempts: %q", got)
	}
}

func TestDefaultAlertRulesAreValid(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range DefaultAlertRules() {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
		if seen[r.Name] {
			t.Errorf("%s twice", r.Name)
		}
		seen[r.Name] = true
	}
	bad := AlertRule{Name: "Bad Name", Condition: AlertOptOuts, Window: time.Minute, Severity: "warning"}
	if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate of a bad name = %v", err)
	}
}

// step is one evaluation in a lifecycle scenario: at minute m (from
// t0), an observation (b breaching, c clear, ? unjudged), and the
// transition expected ("" none).
type step struct {
	m    float64
	obs  byte
	want string
}

func runSteps(t *testing.T, r *AlertRule, st *AlertState, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(time.Duration(s.m * float64(time.Minute)))
		obs := AlertObservation{Key: "k", Value: 1, Judged: s.obs != '?', Breaching: s.obs == 'b', Summary: "s"}
		ev := st.Step(r, obs, now)
		got := ""
		if ev != nil {
			got = ev.What
			if !ev.At.Equal(now) || ev.Seq != st.Seq || ev.Rule != r.Name || ev.Key != "k" || !ev.Notified {
				t.Errorf("step %d (minute %v): event %+v", i, s.m, ev)
			}
		}
		if got != s.want {
			t.Fatalf("step %d (minute %v, %c): transition %q, want %q (state %+v)", i, s.m, s.obs, got, s.want, st)
		}
	}
}

func TestStepLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  AlertRule
		steps []step
		seq   int64
	}{
		{"fires once for many breaching evaluations, resolves once",
			AlertRule{Name: "a", ClearFor: time.Minute},
			[]step{{0, 'b', "firing"}, {0.5, 'b', ""}, {1, 'b', ""}, {2, 'c', ""}, {2.5, 'c', ""}, {3, 'c', "resolved"}, {4, 'c', ""}}, 1},
		{"for: fires once the breach held that long",
			AlertRule{Name: "a", For: 2 * time.Minute, ClearFor: time.Minute},
			[]step{{0, 'b', ""}, {1, 'b', ""}, {1.9, 'b', ""}, {2, 'b', "firing"}, {3, 'b', ""}}, 1},
		{"for: a clear evaluation restarts the breach",
			AlertRule{Name: "a", For: 2 * time.Minute, ClearFor: time.Minute},
			[]step{{0, 'b', ""}, {1, 'c', ""}, {2, 'b', ""}, {3.5, 'b', ""}, {4, 'b', "firing"}}, 1},
		{"unjudged changes nothing",
			AlertRule{Name: "a", For: time.Minute, ClearFor: time.Minute},
			[]step{{0, 'b', ""}, {0.5, '?', ""}, {1, 'b', "firing"}, {1.5, 'c', ""}, {2, '?', ""}, {2.5, 'c', "resolved"}}, 1},
		{"breaching again while clearing keeps it firing",
			AlertRule{Name: "a", ClearFor: 2 * time.Minute},
			[]step{{0, 'b', "firing"}, {1, 'c', ""}, {2, 'b', ""}, {3, 'c', ""}, {4.5, 'c', ""}, {5, 'c', "resolved"}}, 1},
		{"latency conditions fire as they breach: For is in the observation",
			AlertRule{Name: "a", Condition: AlertAckLatency, For: 5 * time.Minute, ClearFor: time.Minute},
			[]step{{0, 'b', "firing"}}, 1},
		// Flapping: clear_for 1m, times the firings of the last hour.
		{"flapping is damped",
			AlertRule{Name: "a", ClearFor: time.Minute},
			[]step{
				{0, 'b', "firing"}, {1, 'c', ""}, {2, 'c', "resolved"}, // 1 firing: 1m clear
				{3, 'b', "firing"}, {4, 'c', ""}, {5, 'c', ""}, {6, 'c', "resolved"}, // 2 firings: 2m
				{7, 'b', "firing"}, {8, 'c', ""}, {10, 'c', ""}, {10.9, 'c', ""}, {11, 'c', "resolved"}, // 3: 3m
				// Breaching again every few minutes, now it stays firing.
				{12, 'b', "firing"}, {13, 'c', ""}, {16, 'b', ""}, {17, 'c', ""}, {20.9, 'c', ""}, {21, 'c', "resolved"}, // 4: 4m
				// An hour after those firings it waits ClearFor again.
				{90, 'b', "firing"}, {91, 'c', ""}, {92, 'c', "resolved"},
			}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &AlertState{}
			runSteps(t, &tc.rule, st, tc.steps)
			if st.Seq != tc.seq {
				t.Errorf("Seq = %d, want %d", st.Seq, tc.seq)
			}
		})
	}
}

func TestStepFiringClearsAckAndBoundsFirings(t *testing.T) {
	r := &AlertRule{Name: "a", ClearFor: 0}
	st := &AlertState{}
	for i := range MaxRecentFirings + 5 {
		now := t0.Add(time.Duration(i) * time.Minute)
		if ev := st.Step(r, AlertObservation{Key: "k", Judged: true, Breaching: true}, now); ev == nil {
			t.Fatalf("firing %d: no transition", i)
		}
		if st.AckedBy != "" || !st.AckedAt.IsZero() {
			t.Fatalf("firing %d kept the acknowledgement", i)
		}
		st.AckedAt, st.AckedBy = now, "ops"
		if ev := st.Step(r, AlertObservation{Key: "k", Judged: true}, now.Add(time.Second)); ev == nil || ev.What != AlertWhatResolved {
			t.Fatalf("firing %d: no resolve with clear_for 0: %+v", i, ev)
		}
	}
	if len(st.Firings) != MaxRecentFirings || !st.Firings[len(st.Firings)-1].Equal(t0.Add((MaxRecentFirings+4)*time.Minute)) {
		t.Errorf("Firings = %v, want the newest %d", st.Firings, MaxRecentFirings)
	}
	if st.AckedBy != "ops" {
		t.Errorf("resolving cleared the acknowledgement")
	}
}

func TestClearForAtIsCapped(t *testing.T) {
	r := &AlertRule{ClearFor: 15 * time.Minute}
	st := &AlertState{}
	for i := range 10 {
		st.Firings = append(st.Firings, t0.Add(time.Duration(i)*time.Minute))
	}
	if got := st.ClearForAt(r, t0.Add(10*time.Minute)); got != MaxFlapClearFor {
		t.Errorf("ClearForAt with 10 firings = %s, want the cap %s", got, MaxFlapClearFor)
	}
	if got := st.ClearForAt(r, t0.Add(2*time.Hour)); got != 15*time.Minute {
		t.Errorf("ClearForAt with no firing in the hour = %s, want clear_for", got)
	}
	long := &AlertRule{ClearFor: 2 * time.Hour}
	if got := st.ClearForAt(long, t0.Add(10*time.Minute)); got != 2*time.Hour {
		t.Errorf("ClearForAt of a clear_for over the cap = %s", got)
	}
}
