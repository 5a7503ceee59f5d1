package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/dispatch"
	"github.com/switchboard-dev/switchboard/jobs"
)

// table is a fake events table: each event's attempt count and due time
// (zero: not waiting), and a delivery that records an attempt as the
// store would: delivered, or due again after retryAfter.
type table struct {
	mu       sync.Mutex
	attempts map[string]int
	due      map[string]time.Time
	failRead error // DueEvents fails with it while set

	calls    map[string]int
	running  map[string]bool
	overlaps int
	fail     map[string]int           // event → internal failures before it works
	retry    map[string]time.Duration // event → delivered again after this once
	block    chan struct{}            // when set, deliveries wait on it (or their ctx)
	started  chan string
	canceled int
}

func newTable() *table {
	return &table{attempts: map[string]int{}, due: map[string]time.Time{}, calls: map[string]int{},
		running: map[string]bool{}, fail: map[string]int{}, retry: map[string]time.Duration{},
		started: make(chan string, 1024)}
}

func (tb *table) add(id string, at time.Time) jobs.Due {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.due[id] = at
	return jobs.Due{EventID: id, Attempts: tb.attempts[id]}
}

func (tb *table) DueEvents(_ context.Context, now time.Time, limit int) ([]jobs.Due, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.failRead != nil {
		return nil, tb.failRead
	}
	var out []jobs.Due
	for id, at := range tb.due {
		if !at.After(now) {
			out = append(out, jobs.Due{EventID: id, Attempts: tb.attempts[id]})
		}
	}
	slices.SortFunc(out, func(a, b jobs.Due) int { return tb.due[a.EventID].Compare(tb.due[b.EventID]) })
	return out[:min(len(out), limit)], nil
}

func (tb *table) NextDue(_ context.Context, after time.Time) (time.Time, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var next time.Time
	for _, at := range tb.due {
		if at.After(after) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, nil
}

// Deliver is the Deliverer: it skips a stale hand-over like the real one.
func (tb *table) Deliver(ctx context.Context, id string, attempts int) error {
	tb.mu.Lock()
	if tb.running[id] {
		tb.overlaps++
	}
	tb.running[id] = true
	block := tb.block
	tb.mu.Unlock()
	defer func() {
		tb.mu.Lock()
		tb.running[id] = false
		tb.mu.Unlock()
	}()
	tb.started <- id
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			tb.mu.Lock()
			tb.canceled++
			tb.mu.Unlock()
			return nil // recorded as interrupted; still due
		}
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if _, waiting := tb.due[id]; !waiting || tb.attempts[id] != attempts {
		return nil // stale
	}
	if tb.fail[id] > 0 {
		tb.fail[id]--
		return errors.New("store unavailable")
	}
	tb.calls[id]++
	tb.attempts[id]++
	if d, ok := tb.retry[id]; ok {
		delete(tb.retry, id)
		tb.due[id] = time.Now().Add(d)
		return nil
	}
	delete(tb.due, id)
	return nil
}

// loadedTable is a table whose Deliverer also takes events handed over
// in memory, counting them.
type loadedTable struct {
	*table
	loaded map[string]int
}

func (lt *loadedTable) DeliverLoaded(ctx context.Context, ev *switchboard.Event, _ *switchboard.Request) error {
	lt.mu.Lock()
	lt.loaded[ev.ID]++
	lt.mu.Unlock()
	return lt.Deliver(ctx, ev.ID, ev.Attempts)
}

func (tb *table) delivered(id string) int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.calls[id]
}

// advance moves the fake clock of the test's synctest bubble on by d and
// waits until every goroutine in it is blocked again: no real time passes.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func start(t *testing.T, tb *table, o dispatch.Options) *dispatch.Dispatcher {
	t.Helper()
	d := dispatch.New(tb, tb, o)
	d.Start()
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

func TestDispatch(t *testing.T) {
	t.Run("LeftWaitingByAPredecessorIsFoundAtStart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			for _, id := range []string{"a", "b", "c"} {
				tb.add(id, time.Now().Add(-time.Minute))
			}
			start(t, tb, dispatch.Options{})
			synctest.Wait()
			for _, id := range []string{"a", "b", "c"} {
				if n := tb.delivered(id); n != 1 {
					t.Errorf("%s delivered %d times, want 1", id, n)
				}
			}
		})
	})
	t.Run("HandedOverIsDeliveredWithoutWaitingForThePoll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			d := start(t, tb, dispatch.Options{PollInterval: time.Hour})
			synctest.Wait()
			due := tb.add("new", time.Now())
			d.Notify([]jobs.Scheduled{{Events: []jobs.Due{due}}})
			synctest.Wait()
			if n := tb.delivered("new"); n != 1 {
				t.Errorf("delivered %d times, want 1 at once", n)
			}
		})
	})
	t.Run("RetryRunsAtItsTimeNotBefore", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			d := start(t, tb, dispatch.Options{PollInterval: time.Hour})
			synctest.Wait()
			at := time.Now().Add(30 * time.Second)
			due := tb.add("later", at)
			d.Notify([]jobs.Scheduled{{Events: []jobs.Due{due}, At: at}})
			advance(29 * time.Second)
			if n := tb.delivered("later"); n != 0 {
				t.Fatalf("delivered %d times before it was due", n)
			}
			advance(time.Second)
			if n := tb.delivered("later"); n != 1 {
				t.Errorf("delivered %d times once due, want 1", n)
			}
		})
	})
	t.Run("RetryScheduledByTheDeliveryItself", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.retry["r"] = 10 * time.Second
			tb.add("r", time.Now())
			d := start(t, tb, dispatch.Options{PollInterval: time.Hour})
			synctest.Wait()
			// The store hands over the retry its attempt record scheduled.
			d.Notify([]jobs.Scheduled{{Events: []jobs.Due{{EventID: "r", Attempts: 1}}, At: time.Now().Add(10 * time.Second)}})
			advance(10 * time.Second)
			if n := tb.delivered("r"); n != 2 {
				t.Errorf("delivered %d times, want 2: the first attempt and its retry", n)
			}
		})
	})
	t.Run("ScheduledElsewhereIsFoundByThePoll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			start(t, tb, dispatch.Options{PollInterval: time.Second})
			synctest.Wait()
			tb.add("cli-replay", time.Now()) // no Notify: another process
			advance(time.Second)
			if n := tb.delivered("cli-replay"); n != 1 {
				t.Errorf("delivered %d times, want 1 after one poll", n)
			}
		})
	})
	t.Run("OverflowingHandOversAreFoundByAScan", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.block = make(chan struct{})
			d := start(t, tb, dispatch.Options{Workers: 2, MaxQueued: 3, PollInterval: time.Hour})
			synctest.Wait()
			var all []jobs.Due
			for i := range 20 {
				all = append(all, tb.add(string(rune('a'+i)), time.Now()))
			}
			d.Notify([]jobs.Scheduled{{Events: all}})
			synctest.Wait()
			close(tb.block)
			synctest.Wait()
			for _, due := range all {
				if n := tb.delivered(due.EventID); n != 1 {
					t.Errorf("%s delivered %d times, want 1", due.EventID, n)
				}
			}
		})
	})
	t.Run("HandedOverAndScannedIsDeliveredOnce", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.block = make(chan struct{})
			due := tb.add("both", time.Now().Add(-time.Second))
			d := start(t, tb, dispatch.Options{PollInterval: time.Second})
			<-tb.started // the start-up scan found it; it is in flight
			for range 3 {
				d.Notify([]jobs.Scheduled{{Events: []jobs.Due{due}}})
				advance(time.Second) // polls while it is in flight
			}
			close(tb.block)
			synctest.Wait()
			tb.mu.Lock()
			defer tb.mu.Unlock()
			if tb.calls["both"] != 1 || tb.overlaps != 0 {
				t.Errorf("delivered %d times with %d overlapping, want once", tb.calls["both"], tb.overlaps)
			}
		})
	})
	t.Run("InternalFailureIsTriedAgainAfterAPause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.fail["f"] = 2
			tb.add("f", time.Now())
			start(t, tb, dispatch.Options{PollInterval: time.Hour, RetryAfter: 5 * time.Second})
			synctest.Wait()
			if got := len(tb.started); got != 1 {
				t.Fatalf("handed over %d times at once, want 1 (no hot loop)", got)
			}
			advance(5 * time.Second)
			if tb.delivered("f") != 0 || len(tb.started) != 2 {
				t.Fatalf("after one pause: %d deliveries, %d hand-overs; want 0 and 2", tb.delivered("f"), len(tb.started))
			}
			advance(10 * time.Second) // the second pause is twice the first
			if n := tb.delivered("f"); n != 1 {
				t.Errorf("delivered %d times after two failures, want 1", n)
			}
		})
	})
	t.Run("FailedScanIsTriedAgainAtThePoll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.failRead = errors.New("database is locked")
			tb.add("s", time.Now())
			start(t, tb, dispatch.Options{PollInterval: time.Second})
			synctest.Wait()
			tb.mu.Lock()
			tb.failRead = nil
			tb.mu.Unlock()
			advance(time.Second)
			if n := tb.delivered("s"); n != 1 {
				t.Errorf("delivered %d times, want 1 once the store answers", n)
			}
		})
	})
	t.Run("WorkersBoundTheDeliveriesInFlight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.block = make(chan struct{})
			for i := range 10 {
				tb.add(string(rune('a'+i)), time.Now())
			}
			start(t, tb, dispatch.Options{Workers: 3})
			synctest.Wait()
			if got := len(tb.started); got != 3 {
				t.Errorf("%d deliveries in flight, want 3", got)
			}
			close(tb.block)
		})
	})
	t.Run("HandedOverInMemoryWithinItsBound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			lt := &loadedTable{table: tb, loaded: map[string]int{}}
			tb.block = make(chan struct{})
			// Room for two hand-overs' worth (a kibibyte each).
			d := dispatch.New(tb, lt, dispatch.Options{Workers: 2, PollInterval: time.Hour, MaxPreloaded: 2 << 10})
			d.Start()
			defer d.Stop(context.Background())
			var all []jobs.Due
			for i := range 6 {
				due := tb.add(string(rune('a'+i)), time.Now())
				due.Event, due.Request = &switchboard.Event{ID: due.EventID}, &switchboard.Request{}
				all = append(all, due)
			}
			d.Notify([]jobs.Scheduled{{Events: all}})
			synctest.Wait()
			close(tb.block)
			synctest.Wait()
			lt.mu.Lock()
			defer lt.mu.Unlock()
			// The first two fit: they keep what was handed over; the
			// rest are read back in their turn.
			for i, due := range all {
				want := 0
				if i < 2 {
					want = 1
				}
				if lt.loaded[due.EventID] != want || tb.calls[due.EventID] != 1 {
					t.Errorf("%s: handed over in memory %d times (want %d), delivered %d times",
						due.EventID, lt.loaded[due.EventID], want, tb.calls[due.EventID])
				}
			}
		})
	})
	t.Run("StopWaitsThenCancels", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newTable()
			tb.block = make(chan struct{})
			tb.add("slow", time.Now())
			d := dispatch.New(tb, tb, dispatch.Options{})
			d.Start()
			<-tb.started
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := d.Stop(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Stop = %v, want the deadline after cancelling", err)
			}
			tb.mu.Lock()
			defer tb.mu.Unlock()
			if tb.canceled != 1 {
				t.Errorf("%d deliveries cancelled, want the one in flight", tb.canceled)
			}
			// Stopped: nothing more is taken.
			tb.due["after"] = time.Now()
		})
	})
}
