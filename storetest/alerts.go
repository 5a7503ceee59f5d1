package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// firingState is an alert state as a transition to firing leaves it.
func firingState(rule, key string, seq int64, at time.Time) switchboard.AlertState {
	return switchboard.AlertState{Rule: rule, Key: key, Status: switchboard.AlertFiring, Value: 0.75,
		Summary: "75% of attempts failed", BreachSince: at.Add(-time.Minute), Seq: seq, FiredAt: at,
		Firings: []time.Time{at}, UpdatedAt: at}
}

func putAlert(t *testing.T, s switchboard.Store, st *switchboard.AlertState, ev *switchboard.AlertEvent) {
	t.Helper()
	if err := s.PutAlertState(context.Background(), st, ev); err != nil {
		t.Fatalf("PutAlertState %s %q v%d: %v", st.Rule, st.Key, st.Version, err)
	}
}

func testAlertStateCompareAndSet(t *testing.T, o Opened) {
	ctx := context.Background()
	if states, err := o.Store.AlertStates(ctx); err != nil || len(states) != 0 {
		t.Fatalf("AlertStates of an empty store = %v, %v", states, err)
	}
	st := firingState("webhook-delivery-failing", "/sms", 1, base)
	ev := &switchboard.AlertEvent{Seq: 1, What: "firing", Value: 0.75, At: base, Notified: true, Note: "75% failed"}
	putAlert(t, o.Store, &st, ev)
	if st.Version != 1 || ev.ID == 0 || ev.Rule != st.Rule || ev.Key != "/sms" {
		t.Fatalf("after the first put: state version %d, event %+v", st.Version, ev)
	}
	// A second writer that read no state, or the version before, loses.
	stale := firingState("webhook-delivery-failing", "/sms", 1, base)
	if err := o.Store.PutAlertState(ctx, &stale, &switchboard.AlertEvent{What: "firing"}); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("a put of version 0 over version 1 = %v, want ErrConflict", err)
	}
	if stale.Version != 0 {
		t.Errorf("a refused put changed its state's version to %d", stale.Version)
	}
	resolved := st
	resolved.Status, resolved.ResolvedAt, resolved.ClearSince = switchboard.AlertOK, base.Add(5*time.Minute), time.Time{}
	putAlert(t, o.Store, &resolved, &switchboard.AlertEvent{Seq: 1, What: "resolved", At: base.Add(5 * time.Minute), Notified: true})
	if err := o.Store.PutAlertState(ctx, &st, nil); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("a put of version 1 over version 2 = %v, want ErrConflict", err)
	}
	states, err := o.Store.AlertStates(ctx)
	if err != nil || len(states) != 1 {
		t.Fatalf("AlertStates = %v, %v", states, err)
	}
	got := states[0]
	if got.Version != 2 || got.Status != switchboard.AlertOK || !got.ResolvedAt.Equal(base.Add(5*time.Minute)) ||
		!got.FiredAt.Equal(base) || got.Seq != 1 || len(got.Firings) != 1 || !got.Firings[0].Equal(base) ||
		got.Summary != st.Summary || got.Value != 0.75 {
		t.Errorf("stored state %+v", got)
	}
	hist, err := o.Store.AlertHistory(ctx, "webhook-delivery-failing", "/sms", 10)
	if err != nil || len(hist) != 2 || hist[0].What != "resolved" || hist[1].What != "firing" || !hist[1].Notified ||
		hist[1].Note != "75% failed" || !hist[1].At.Equal(base) || hist[1].ID != ev.ID {
		t.Errorf("history = %+v, %v; want resolved then firing", hist, err)
	}
}

// Replicas evaluating at once each try the same transition from the same
// version: exactly one stores it, once in the history.
func testAlertStateRace(t *testing.T, o Opened) {
	ctx := context.Background()
	stores := []switchboard.Store{o.Store}
	if o.Replica != nil {
		stores = append(stores, o.Replica(t), o.Replica(t))
	}
	for round := range 5 {
		key := fmt.Sprintf("pool-%d", round)
		start := make(chan struct{})
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			won, lost int
			other     []error
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := firingState("twilio-429-storm", key, 1, base)
				<-start
				err := stores[i%len(stores)].PutAlertState(ctx, &st, &switchboard.AlertEvent{Seq: 1, What: "firing", At: base, Note: fmt.Sprint(i)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, switchboard.ErrConflict):
					lost++
				default:
					other = append(other, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if won != 1 || lost != 7 || len(other) != 0 {
			t.Fatalf("round %d: %d won, %d lost, errors %v; want exactly one winner", round, won, lost, other)
		}
		hist, err := o.Store.AlertHistory(ctx, "twilio-429-storm", key, 10)
		if err != nil || len(hist) != 1 {
			t.Fatalf("round %d: history %+v, %v; want the winner's one entry", round, hist, err)
		}
	}
}

func testAlertHistoryOrderAndLimits(t *testing.T, o Opened) {
	ctx := context.Background()
	put := func(st *switchboard.AlertState, what string, at time.Time) {
		t.Helper()
		st.UpdatedAt = at
		putAlert(t, o.Store, st, &switchboard.AlertEvent{Seq: st.Seq, What: what, At: at, Notified: true})
	}
	a, b := firingState("queue-lag", "", 1, base), firingState("delivery-rate-drop", "p1", 1, base)
	c := firingState("delivery-rate-drop", "p2", 1, base)
	for i := range 3 {
		at := base.Add(time.Duration(i) * time.Minute)
		put(&a, fmt.Sprint("a", i), at)
		put(&b, fmt.Sprint("b", i), at)
		put(&c, fmt.Sprint("c", i), at.Add(time.Second))
	}
	whats := func(evs []switchboard.AlertEvent) string {
		var w []string
		for _, e := range evs {
			w = append(w, e.What)
		}
		return strings.Join(w, " ")
	}
	for _, tc := range []struct {
		rule, key string
		limit     int
		want      string
	}{
		{"queue-lag", "", 10, "a2 a1 a0"},
		{"delivery-rate-drop", "p1", 10, "b2 b1 b0"},
		{"delivery-rate-drop", "p1", 2, "b2 b1"},
		{"delivery-rate-drop", "", 4, "c2 b2 c1 b1"},
		{"delivery-rate-drop", "p3", 10, ""},
		{"no-such-rule", "", 10, ""},
	} {
		hist, err := o.Store.AlertHistory(ctx, tc.rule, tc.key, tc.limit)
		if err != nil || whats(hist) != tc.want {
			t.Errorf("AlertHistory(%s, %q, %d) = %q, %v; want %q", tc.rule, tc.key, tc.limit, whats(hist), err, tc.want)
		}
	}

	// At most MaxAlertHistory entries are kept per alert, the newest.
	for i := 3; i < switchboard.MaxAlertHistory+5; i++ {
		put(&b, fmt.Sprint("b", i), base.Add(time.Duration(i)*time.Second))
	}
	hist, err := o.Store.AlertHistory(ctx, "delivery-rate-drop", "p1", switchboard.MaxAlertHistory+10)
	if err != nil || len(hist) != switchboard.MaxAlertHistory ||
		hist[0].What != fmt.Sprint("b", switchboard.MaxAlertHistory+4) || hist[len(hist)-1].What != "b5" {
		t.Fatalf("history of %d entries from %q to %q (%v); want the newest %d", len(hist), hist[0].What, hist[len(hist)-1].What, err, switchboard.MaxAlertHistory)
	}
	if hist, _ := o.Store.AlertHistory(ctx, "delivery-rate-drop", "p2", 10); whats(hist) != "c2 c1 c0" {
		t.Errorf("trimming one alert's history took another's: %q", whats(hist))
	}
	// Entries older than RollupRetention go with the next write.
	late := base.Add(switchboard.RollupRetention + 90*time.Minute)
	put(&a, "a-late", late)
	if hist, _ := o.Store.AlertHistory(ctx, "queue-lag", "", 10); whats(hist) != "a-late" {
		t.Errorf("history after the retention = %q, want only the new entry", whats(hist))
	}
	if hist, _ := o.Store.AlertHistory(ctx, "delivery-rate-drop", "p2", 10); len(hist) != 0 {
		t.Errorf("another alert's entries older than the retention were kept: %d", len(hist))
	}
}

// Keys come from what the store counts, some of it from outside
// (templates, routes): each is only a value, stored and found as given.
func testAlertHostileKeys(t *testing.T, o Opened) {
	ctx := context.Background()
	keys := []string{
		"", "'; DROP TABLE alert_states; --", `"quoted" \ back`, "école ☎ 電話 🚨", "%_*?", strings.Repeat("k", 1024),
		"a\nb\tc",
	}
	for i, k := range keys {
		st := firingState("hostile", k, int64(i+1), base)
		putAlert(t, o.Store, &st, &switchboard.AlertEvent{Seq: int64(i + 1), What: "firing", Note: k})
	}
	states, err := o.Store.AlertStates(ctx)
	if err != nil || len(states) != len(keys) {
		t.Fatalf("AlertStates = %d states, %v; want %d", len(states), err, len(keys))
	}
	found := map[string]bool{}
	for i, st := range states {
		found[st.Key] = true
		if i > 0 && states[i-1].Key >= st.Key {
			t.Errorf("states out of order: %q before %q", states[i-1].Key, st.Key)
		}
	}
	for _, k := range keys {
		if !found[k] {
			t.Errorf("key %q not found", k)
		}
		hist, err := o.Store.AlertHistory(ctx, "hostile", k, 10)
		if k != "" && (err != nil || len(hist) != 1 || hist[0].Key != k || hist[0].Note != k) {
			t.Errorf("history of %q = %+v, %v", k, hist, err)
		}
	}
	for _, bad := range []switchboard.AlertState{
		firingState("hostile", strings.Repeat("k", 1025), 1, base),
		firingState("hostile", "nul\x00", 1, base),
		firingState("hostile", "\xff\xfe", 1, base),
		firingState("", "x", 1, base),
	} {
		if err := o.Store.PutAlertState(ctx, &bad, nil); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("PutAlertState of rule %q key %q = %v, want ErrInvalid", bad.Rule, bad.Key, err)
		}
	}
}

// An alert's state outlives the process: the next one (or a replica)
// reads what the last wrote, and carries on from its version.
func testAlertStateSurvivesRestart(t *testing.T, o Opened) {
	ctx := context.Background()
	st := firingState("circuit-open", "https://app.example.com", 3, base)
	st.AckedAt, st.AckedBy, st.SilencedUntil = base.Add(time.Minute), "ops", base.Add(time.Hour)
	putAlert(t, o.Store, &st, &switchboard.AlertEvent{Seq: 3, What: "firing", At: base})
	next := restart(t, o)
	states, err := next.AlertStates(ctx)
	if err != nil || len(states) != 1 {
		t.Fatalf("AlertStates after a restart = %+v, %v", states, err)
	}
	got := states[0]
	if got.Version != 1 || got.Seq != 3 || got.AckedBy != "ops" || !got.AckedAt.Equal(st.AckedAt) ||
		!got.SilencedUntil.Equal(st.SilencedUntil) || got.Status != switchboard.AlertFiring {
		t.Errorf("state after a restart %+v, want %+v", got, st)
	}
	got.Status = switchboard.AlertOK
	putAlert(t, next, &got, nil)
	if got.Version != 2 {
		t.Errorf("version after a put = %d, want 2", got.Version)
	}
}

// A state is deleted only at the version it was read at; its history
// stays, and the alert can be stored again from nothing.
func testAlertStateDelete(t *testing.T, o Opened) {
	ctx := context.Background()
	st := firingState("queue-lag", "", 3, base)
	putAlert(t, o.Store, &st, &switchboard.AlertEvent{Seq: 3, What: "firing", At: base, Notified: true})
	if err := o.Store.DeleteAlertState(ctx, "queue-lag", "", st.Version+1); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("delete at a version not stored = %v, want ErrConflict", err)
	}
	if err := o.Store.DeleteAlertState(ctx, "queue-lag", "", st.Version); err != nil {
		t.Fatalf("delete at the stored version: %v", err)
	}
	if err := o.Store.DeleteAlertState(ctx, "queue-lag", "", st.Version); !errors.Is(err, switchboard.ErrConflict) {
		t.Fatalf("delete of a deleted state = %v, want ErrConflict", err)
	}
	if states, err := o.Store.AlertStates(ctx); err != nil || len(states) != 0 {
		t.Fatalf("AlertStates after the delete = %v, %v; want none", states, err)
	}
	if h, err := o.Store.AlertHistory(ctx, "queue-lag", "", 10); err != nil || len(h) != 1 {
		t.Fatalf("history after the delete = %v, %v; want the firing kept", h, err)
	}
	again := firingState("queue-lag", "", 4, base.Add(time.Hour))
	putAlert(t, o.Store, &again, nil)
	if again.Version != 1 {
		t.Errorf("the alert stored again has version %d, want 1", again.Version)
	}
}
