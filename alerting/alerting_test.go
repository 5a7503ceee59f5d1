package alerting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/sqlite"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// boardStore is a real store whose dashboard the test sets: the
// evaluator's reads and writes of alerts and notifications go to SQLite.
type boardStore struct {
	switchboard.Store
	mu         sync.Mutex
	failures   int64                   // /sms's failed attempts of 20
	codes      []switchboard.CodeCount // the Debugger's codes
	reads      int
	failIngest error
}

func (b *boardStore) Dashboard(ctx context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	return &switchboard.Dashboard{Since: q.Since, Until: q.Until, Step: time.Minute,
		Routes:        []switchboard.RouteSeries{{Route: "/sms", TotalAttempts: 20, TotalFailed: b.failures}},
		DebuggerCodes: slices.Clone(b.codes)}, nil
}

func (b *boardStore) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	b.mu.Lock()
	err := b.failIngest
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.Store.Ingest(ctx, items)
}

func (b *boardStore) set(failures int64, failIngest error) {
	b.mu.Lock()
	b.failures, b.failIngest = failures, failIngest
	b.mu.Unlock()
}

func openStore(t *testing.T) *boardStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &boardStore{Store: st}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(m float64) {
	c.mu.Lock()
	c.now = t0.Add(time.Duration(m * float64(time.Minute)))
	c.mu.Unlock()
}

var failing = switchboard.AlertRule{Name: "webhook-delivery-failing", Condition: switchboard.AlertDeliveryFailure,
	Window: 5 * time.Minute, ClearFor: time.Minute, Threshold: 0.5, MinCount: 10, Severity: "critical", Runbook: "webhook-error-spike"}

func newEvaluator(st Store, c *clock, m *metrics.Metrics, notifiers ...string) *Evaluator {
	return New(Options{Store: st, Rules: []switchboard.AlertRule{failing}, Notifiers: notifiers, Now: c.Now,
		PublicURL: "https://sb.example/", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m})
}

// notifications lists the notification events stored for notifier.
func notifications(t *testing.T, st switchboard.Store, notifier string) []string {
	t.Helper()
	page, err := st.ListEvents(context.Background(), switchboard.EventFilter{Route: switchboard.NotifierRoute(notifier), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, ev := range page.Items {
		if ev.Kind != switchboard.KindNotification {
			t.Errorf("notification event of kind %s", ev.Kind)
		}
		keys = append([]string{ev.IdempotencyKey}, keys...)
	}
	return keys
}

func history(t *testing.T, st switchboard.Store) string {
	t.Helper()
	evs, err := st.AlertHistory(context.Background(), failing.Name, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("%s#%d:%v", evs[i].What, evs[i].Seq, evs[i].Notified))
	}
	return strings.Join(out, " ")
}

func run(t *testing.T, e *Evaluator) {
	t.Helper()
	if err := e.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
}

// Many evaluations of one outage make one firing and one resolved
// notification per notifier, and the history of both.
func TestOneNotificationPerTransition(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	m := metrics.New()
	e := newEvaluator(st, c, m, "slack", "pager")
	firing := func() float64 {
		t.Helper()
		families, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "switchboard_alerts_firing" {
				for _, g := range f.GetMetric() {
					if g.GetLabel()[0].GetValue() == failing.Name {
						return g.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	for i, s := range []struct {
		minute   float64
		failures int64
		firing   float64
	}{
		{0, 0, 0}, {0.5, 15, 1}, {1, 15, 1}, {1.5, 20, 1}, {2, 2, 1}, {2.5, 2, 1}, {3, 2, 0}, {3.5, 2, 0}, {4, 0, 0},
	} {
		c.Set(s.minute)
		st.set(s.failures, nil)
		run(t, e)
		if got := firing(); got != s.firing {
			t.Fatalf("evaluation %d (minute %v): switchboard_alerts_firing = %v, want %v", i, s.minute, got, s.firing)
		}
	}
	want := []string{
		switchboard.NotificationKey("slack", failing.Name, "/sms", 1, switchboard.AlertFiring),
		switchboard.NotificationKey("slack", failing.Name, "/sms", 1, switchboard.AlertOK),
	}
	if got := notifications(t, st, "slack"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slack notifications = %v, want %v", got, want)
	}
	if got := notifications(t, st, "pager"); len(got) != 2 {
		t.Errorf("pager notifications = %v, want 2", got)
	}
	if got := history(t, st); got != "firing#1:true resolved#1:true" {
		t.Errorf("history = %s", got)
	}
	states, err := st.AlertStates(context.Background())
	if err != nil || len(states) != 1 || states[0].Status != switchboard.AlertOK || !states[0].ResolvedAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("states = %+v, %v", states, err)
	}
	// The body is the Notification, with its links.
	page, _ := st.ListEvents(context.Background(), switchboard.EventFilter{Route: switchboard.NotifierRoute("slack"), Limit: 10})
	req, err := st.Request(context.Background(), page.Items[len(page.Items)-1].RequestID)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"status":"firing"`, `"runbook":"https://github.com/switchboard-dev/switchboard/blob/main/docs/runbooks.md#webhook-error-spike"`,
		`"console":"https://sb.example/console/alerts"`, `"severity":"critical"`, `"seq":1`} {
		if !strings.Contains(string(req.Body), w) {
			t.Errorf("notification body %s lacks %s", req.Body, w)
		}
	}
}

// Replicas evaluating the same store at the same time make each
// transition once and each notification once.
func TestReplicasNotifyOnce(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	replicas := []*Evaluator{newEvaluator(st, c, nil, "slack"), newEvaluator(st, c, nil, "slack"), newEvaluator(st, c, nil, "slack")}
	for _, s := range []struct {
		minute   float64
		failures int64
	}{{0, 15}, {0.5, 15}, {1, 0}, {2, 0}, {2.5, 0}, {3, 15}} {
		c.Set(s.minute)
		st.set(s.failures, nil)
		var wg sync.WaitGroup
		for _, e := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.RunOnce(context.Background()); err != nil {
					t.Errorf("RunOnce: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	if got := notifications(t, st, "slack"); len(got) != 3 {
		t.Errorf("notifications = %v, want firing, resolved and firing again", got)
	}
	if got := history(t, st); got != "firing#1:true resolved#1:true firing#2:true" {
		t.Errorf("history = %s", got)
	}
}

// A silenced alert's transitions are recorded, not notified.
func TestSilenceHoldsNotificationsBack(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	e := newEvaluator(st, c, nil, "slack")
	ctx := context.Background()
	silenced := switchboard.AlertState{Rule: failing.Name, Key: "/sms", Status: switchboard.AlertOK, SilencedUntil: t0.Add(time.Hour)}
	if err := st.PutAlertState(ctx, &silenced, &switchboard.AlertEvent{What: switchboard.AlertWhatSilenced, At: t0}); err != nil {
		t.Fatal(err)
	}
	st.set(15, nil)
	run(t, e)
	if got := notifications(t, st, "slack"); len(got) != 0 {
		t.Errorf("notifications while silenced: %v", got)
	}
	if got := history(t, st); got != "silenced#0:false firing#1:false" {
		t.Errorf("history = %s", got)
	}
	// After the silence, the resolve is notified.
	c.Set(61)
	st.set(0, nil)
	run(t, e)
	c.Set(62)
	run(t, e)
	if got := notifications(t, st, "slack"); len(got) != 1 || !strings.HasSuffix(got[0], ":ok:/sms") {
		t.Errorf("notifications after the silence = %v, want the resolve", got)
	}
}

// A rule-wide silence (switchboard.SilenceAlert with no key) holds back
// the notifications of every key of the rule, and is no alert itself.
func TestRuleSilenceHoldsEveryKeyBack(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	e := newEvaluator(st, c, nil, "slack")
	ctx := context.Background()
	if _, err := switchboard.SilenceAlert(ctx, st, failing.Name, "", t0.Add(time.Hour), "ops", t0); err != nil {
		t.Fatal(err)
	}
	st.set(15, nil)
	run(t, e)
	if got := notifications(t, st, "slack"); len(got) != 0 {
		t.Errorf("notifications under the rule's silence: %v", got)
	}
	states, err := st.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var firing []string
	for _, s := range states {
		if s.Status == switchboard.AlertFiring {
			firing = append(firing, s.Key)
		}
	}
	if !slices.Equal(firing, []string{"/sms"}) {
		t.Errorf("firing keys = %v, want only /sms (the silence is no alert)", firing)
	}
}

// A transition whose notifications could not be stored is not stored
// either: the next evaluation makes it again, and notifies it once.
func TestFailedIngestLosesNothing(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	e := newEvaluator(st, c, nil, "slack")
	st.set(15, errors.New("disk full"))
	if err := e.RunOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("RunOnce = %v, want the ingest's failure", err)
	}
	if got := history(t, st); got != "" {
		t.Errorf("history after a failed ingest = %s, want none", got)
	}
	c.Set(0.5)
	st.set(15, nil)
	run(t, e)
	run(t, e)
	if got := notifications(t, st, "slack"); len(got) != 1 {
		t.Errorf("notifications = %v, want one firing", got)
	}
	if got := history(t, st); got != "firing#1:true" {
		t.Errorf("history = %s", got)
	}
}

// A notification stored by a process that died before storing the
// transition is not sent twice: the next process's is the same one.
func TestCrashBetweenIngestAndPutDuplicatesNothing(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	e := newEvaluator(st, c, nil, "slack")
	// What the dead process left: the notification of firing #1, and
	// no state.
	r := failing
	dead := switchboard.AlertState{Rule: r.Name, Key: "/sms", Status: switchboard.AlertFiring, Seq: 1, Summary: "before"}
	n := e.Notification(&r, &dead, t0)
	it, err := switchboard.NotificationItem("slack", &n, "0190a000-0000-7000-8000-000000000001", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ingest(context.Background(), []*switchboard.Ingest{it}); err != nil {
		t.Fatal(err)
	}
	st.set(15, nil)
	run(t, e)
	if got := notifications(t, st, "slack"); len(got) != 1 {
		t.Errorf("notifications = %v, want the one", got)
	}
}

// Rules of one span share one dashboard read; unjudged volume stores
// nothing.
func TestOneDashboardReadPerSpan(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	rules := []switchboard.AlertRule{failing, failing, failing}
	rules[1].Name, rules[2].Name, rules[2].Window = "b", "c", 15*time.Minute
	e := New(Options{Store: st, Rules: rules, Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	st.set(5, nil)
	run(t, e)
	if st.reads != 2 {
		t.Errorf("%d dashboard reads for two spans", st.reads)
	}
	if states, _ := st.AlertStates(context.Background()); len(states) != 0 {
		t.Errorf("states stored for what never breached: %+v", states)
	}
}

// fakeStore counts evaluations, for the loop's timing.
type fakeStore struct {
	mu    sync.Mutex
	reads []time.Time
	hang  bool
}

func (f *fakeStore) DeleteAlertState(context.Context, string, string, int64) error { return nil }

func (f *fakeStore) Dashboard(ctx context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error) {
	return &switchboard.Dashboard{}, nil
}
func (f *fakeStore) AlertStates(ctx context.Context) ([]switchboard.AlertState, error) {
	f.mu.Lock()
	f.reads = append(f.reads, time.Now())
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, nil
}
func (f *fakeStore) PutAlertState(ctx context.Context, st *switchboard.AlertState, ev *switchboard.AlertEvent) error {
	return nil
}
func (f *fakeStore) Ingest(ctx context.Context, items []*switchboard.Ingest) error { return nil }

func TestStartEvaluatesEveryIntervalUntilStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStore{}
		e := New(Options{Store: f, Rules: []switchboard.AlertRule{failing}, Interval: 30 * time.Second,
			Logger: slog.New(slog.DiscardHandler)})
		start := time.Now()
		e.Start()
		e.Start() // a second Start does nothing
		time.Sleep(95 * time.Second)
		synctest.Wait()
		e.Stop()
		f.mu.Lock()
		reads := f.reads
		f.mu.Unlock()
		if len(reads) != 4 || reads[0] != start || reads[3].Sub(start) != 90*time.Second {
			t.Errorf("evaluations at %v, want at once and every 30s", reads)
		}
	})
}

// An evaluation that hangs (a store that stopped answering) is cut at
// Timeout, and the next one runs.
func TestEvaluationIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStore{hang: true}
		e := New(Options{Store: f, Interval: 30 * time.Second, Timeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		e.Start()
		time.Sleep(35 * time.Second)
		synctest.Wait()
		e.Stop()
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.reads) != 2 {
			t.Errorf("%d evaluations in 35s with a store hanging, want 2", len(f.reads))
		}
	})
}

// Keys come from outside (here, codes in signed Debugger webhooks): a
// rule keeps at most MaxAlertsPerRule alerts, forgets quiet ones after
// QuietAlertRetention, and an alert forgotten that fires again is
// notified again, under a Seq its rule never used.
func TestAlertKeysAreBoundedAndQuietOnesForgotten(t *testing.T) {
	st := openStore(t)
	c := &clock{}
	c.Set(0)
	codes := switchboard.AlertRule{Name: "debugger-codes", Condition: switchboard.AlertErrorCode, Source: switchboard.CodeSourceDebugger,
		Window: 5 * time.Minute, ClearFor: time.Minute, Severity: "warning", Runbook: "twilio-debugger-errors"}
	e := New(Options{Store: st, Rules: []switchboard.AlertRule{codes}, Notifiers: []string{"slack"}, Now: c.Now,
		Logger: slog.New(slog.DiscardHandler)})
	var many []switchboard.CodeCount
	for i := range switchboard.MaxAlertsPerRule + 50 {
		many = append(many, switchboard.CodeCount{Code: 30000 + i, Count: 1})
	}
	st.mu.Lock()
	st.codes = many
	st.mu.Unlock()
	run(t, e)
	if n := len(states(t, st)); n != switchboard.MaxAlertsPerRule {
		t.Fatalf("%d alerts stored for %d codes, want the bound %d", n, len(many), switchboard.MaxAlertsPerRule)
	}
	if n := len(allNotifications(t, st, "slack")); n != switchboard.MaxAlertsPerRule {
		t.Fatalf("%d notifications, want %d", n, switchboard.MaxAlertsPerRule)
	}
	// Quiet: every alert resolves, and a day later is forgotten, but for
	// the one holding the rule's highest Seq.
	st.mu.Lock()
	st.codes = nil
	st.mu.Unlock()
	c.Set(1)
	run(t, e)
	c.Set(3)
	run(t, e)
	c.Set(3 + switchboard.QuietAlertRetention.Minutes() + 1)
	run(t, e)
	left := states(t, st)
	if len(left) != 1 || left[0].Seq != switchboard.MaxAlertsPerRule {
		t.Fatalf("%d alerts left after a quiet day, want only the one with Seq %d", len(left), switchboard.MaxAlertsPerRule)
	}
	// A forgotten code fires again: a new notification, not a duplicate
	// of its first.
	st.mu.Lock()
	st.codes = many[:1]
	st.mu.Unlock()
	run(t, e)
	var again []string
	for _, k := range allNotifications(t, st, "slack") {
		if strings.HasSuffix(k, ":firing:30000") {
			again = append(again, k)
		}
	}
	if len(again) != 2 || again[0] == again[1] {
		t.Errorf("firings of 30000 notified: %v, want two, under different keys", again)
	}
}

func states(t *testing.T, st switchboard.Store) []switchboard.AlertState {
	t.Helper()
	list, err := st.AlertStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// allNotifications is notifications over every page.
func allNotifications(t *testing.T, st switchboard.Store, notifier string) []string {
	t.Helper()
	var keys []string
	f := switchboard.EventFilter{Route: switchboard.NotifierRoute(notifier), Limit: 100}
	for {
		page, err := st.ListEvents(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Items {
			keys = append(keys, ev.IdempotencyKey)
		}
		if page.Next == "" {
			return keys
		}
		f.Cursor = page.Next
	}
}
