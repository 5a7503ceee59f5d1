package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
)

// fakeStore answers Prune from a script of how many items each kind has
// left, and records every call.
type fakeStore struct {
	mu    sync.Mutex
	left  map[switchboard.PruneKind]int
	fail  map[switchboard.PruneKind]error
	calls []call
	// block, when set, makes Prune wait for ctx, as a long delete would.
	block chan struct{}
}

type call struct {
	kind   switchboard.PruneKind
	before time.Time
	limit  int
}

func (f *fakeStore) Prune(ctx context.Context, kind switchboard.PruneKind, before time.Time, limit int) (int, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{kind, before, limit})
	block := f.block
	f.mu.Unlock()
	if block != nil {
		close(block)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[kind]; err != nil {
		return 0, err
	}
	n := min(f.left[kind], limit)
	f.left[kind] -= n
	return n, nil
}

func (f *fakeStore) callsOf(kind switchboard.PruneKind) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.kind == kind {
			out = append(out, c)
		}
	}
	return out
}

var now = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

// A run prunes each kind with a retention in batches of BatchSize, from
// the cutoff its retention gives on the injected clock, until a batch
// comes back short, pausing after every full batch; kinds kept forever
// are not touched.
func TestRunOncePrunesEachKindInBatches(t *testing.T) {
	t.Parallel()
	store := &fakeStore{left: map[switchboard.PruneKind]int{
		switchboard.PruneRejected: 25, switchboard.PruneDelivered: 10, switchboard.PruneDead: 3,
		switchboard.PruneMessages: 7, switchboard.PruneStickySenders: 100,
	}}
	m := metrics.New()
	p := New(store, Options{
		Retention: switchboard.Retention{Rejected: 7 * 24 * time.Hour, Delivered: 30 * 24 * time.Hour,
			Dead: 90 * 24 * time.Hour, Messages: 90 * 24 * time.Hour},
		BatchSize: 10, Now: func() time.Time { return now }, Metrics: m, Logger: slog.New(slog.DiscardHandler),
	})
	var pauses int
	p.pause = func(context.Context, time.Duration) error { pauses++; return nil }
	p.since = func(time.Time) time.Duration { return time.Millisecond } // well within the batch time
	run, err := p.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind    switchboard.PruneKind
		keep    time.Duration
		batches int
		pruned  int
	}{
		{switchboard.PruneRejected, 7 * 24 * time.Hour, 3, 25},
		{switchboard.PruneDelivered, 30 * 24 * time.Hour, 2, 10}, // a full batch, then an empty one
		{switchboard.PruneDead, 90 * 24 * time.Hour, 1, 3},
		{switchboard.PruneMessages, 90 * 24 * time.Hour, 1, 7},
		{switchboard.PruneStickySenders, 0, 0, 0},
	}
	for _, tc := range tests {
		calls := store.callsOf(tc.kind)
		if len(calls) != tc.batches || run.Pruned[tc.kind] != tc.pruned {
			t.Errorf("%s: %d batches deleting %d, want %d deleting %d", tc.kind, len(calls), run.Pruned[tc.kind], tc.batches, tc.pruned)
		}
		for _, c := range calls {
			if !c.before.Equal(now.Add(-tc.keep)) || c.limit != 10 {
				t.Errorf("%s: Prune(before %v, limit %d), want before %v, limit 10", tc.kind, c.before, c.limit, now.Add(-tc.keep))
			}
		}
		if got := metricstest.Sample(t, m, "switchboard_retention_pruned_total", "kind", string(tc.kind)).GetCounter().GetValue(); int(got) != tc.pruned {
			t.Errorf("%s: pruned_total = %v, want %d", tc.kind, got, tc.pruned)
		}
	}
	// After each full batch: 2 of rejected, 1 of delivered.
	if pauses != 3 {
		t.Errorf("%d pauses, want one after each of the 3 full batches", pauses)
	}
	if got := metricstest.Sample(t, m, "switchboard_retention_last_run_timestamp_seconds").GetGauge().GetValue(); got != float64(now.Unix()) {
		t.Errorf("last run = %v, want %v", got, now.Unix())
	}
	if metricstest.Sample(t, m, "switchboard_retention_pruned_total", "kind", string(switchboard.PruneStickySenders)) != nil {
		t.Error("a kind kept forever has a pruned_total series")
	}
}

// A kind whose batch fails is counted and reported, and the kinds after it
// are pruned all the same.
func TestRunOnceGoesOnPastAFailingKind(t *testing.T) {
	t.Parallel()
	broken := errors.New("disk I/O error")
	store := &fakeStore{
		left: map[switchboard.PruneKind]int{switchboard.PruneDelivered: 4, switchboard.PruneMessages: 2},
		fail: map[switchboard.PruneKind]error{switchboard.PruneRejected: broken},
	}
	m := metrics.New()
	p := New(store, Options{
		Retention: switchboard.Retention{Rejected: time.Hour, Delivered: 24 * time.Hour, Messages: 24 * time.Hour},
		Now:       func() time.Time { return now }, Metrics: m, Logger: slog.New(slog.DiscardHandler),
	})
	p.since = func(time.Time) time.Duration { return time.Millisecond }
	run, err := p.RunOnce(context.Background())
	if !errors.Is(err, broken) {
		t.Fatalf("RunOnce: %v, want the rejected kind's error", err)
	}
	if run.Pruned[switchboard.PruneDelivered] != 4 || run.Pruned[switchboard.PruneMessages] != 2 {
		t.Errorf("pruned %v, want the other kinds pruned", run.Pruned)
	}
	if got := metricstest.Sample(t, m, "switchboard_retention_errors_total", "kind", "rejected").GetCounter().GetValue(); got != 1 {
		t.Errorf("errors_total{rejected} = %v, want 1", got)
	}
	if got := metricstest.Sample(t, m, "switchboard_retention_errors_total", "kind", "delivered").GetCounter().GetValue(); got != 0 {
		t.Errorf("errors_total{delivered} = %v, want 0", got)
	}
}

// Stop cancels a batch in progress and waits for the pruner to end; a
// pruner with nothing to prune never starts.
func TestStopCancelsABatchInProgress(t *testing.T) {
	t.Parallel()
	store := &fakeStore{left: map[switchboard.PruneKind]int{}, block: make(chan struct{})}
	p := New(store, Options{Retention: switchboard.Retention{Delivered: 24 * time.Hour}, Interval: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	p.Start()
	<-store.block // a batch is running
	p.Stop()      // returns only once the batch has given up
	p.Stop()      // and again at once

	idle := New(&fakeStore{}, Options{Interval: time.Millisecond})
	idle.Start()
	if idle.cancel != nil {
		t.Error("a pruner without any retention started")
	}
	idle.Stop()
}

// The pause after a batch is the pacing's PauseFactor times as long as the
// batch took, up to MaxPause.
func TestPauseIsTheBatchTime(t *testing.T) {
	t.Parallel()
	for _, pacing := range []Pacing{SharedWriter, Concurrent} {
		slow := &slowStore{took: 3 * time.Millisecond, left: 25}
		p := New(slow, Options{Retention: switchboard.Retention{Rejected: time.Hour}, BatchSize: 10, Pacing: pacing,
			Logger: slog.New(slog.DiscardHandler)})
		var pauses []time.Duration
		p.pause = func(_ context.Context, d time.Duration) error { pauses = append(pauses, d); return nil }
		p.since = func(time.Time) time.Duration { return slow.took } // as measured, whatever the machine's load
		if _, err := p.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(pauses) != 2 {
			t.Fatalf("%+v: %d pauses, want 2", pacing, len(pauses))
		}
		for _, d := range pauses {
			if d != time.Duration(pacing.PauseFactor)*slow.took {
				t.Errorf("%+v: paused %v after a batch of %v, want %d times that", pacing, d, slow.took, pacing.PauseFactor)
			}
		}
	}
}

// slowStore's batches take at least took each.
type slowStore struct {
	took time.Duration
	left int
}

func (s *slowStore) Prune(ctx context.Context, _ switchboard.PruneKind, _ time.Time, limit int) (int, error) {
	if err := sleep(ctx, s.took); err != nil {
		return 0, err
	}
	n := min(s.left, limit)
	s.left -= n
	return n, nil
}

// A batch that takes longer than the pacing's BatchTime (25 ms for
// SharedWriter, the default) halves the next, down to a tenth of
// BatchSize; one that takes less than half of it doubles the next, up to
// BatchSize; the size carries over to the next run.
func TestBatchesAreSizedToBatchTime(t *testing.T) {
	t.Parallel()
	store := &fakeStore{left: map[switchboard.PruneKind]int{switchboard.PruneDelivered: 10_000}}
	p := New(store, Options{Retention: switchboard.Retention{Delivered: 24 * time.Hour}, BatchSize: 400,
		Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	p.pause = func(context.Context, time.Duration) error { return nil }
	// Each item takes 0.1 ms to delete.
	p.since = func(time.Time) time.Duration {
		calls := store.callsOf(switchboard.PruneDelivered)
		return time.Duration(calls[len(calls)-1].limit) * 100 * time.Microsecond
	}
	if _, err := p.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var limits []int
	for _, c := range store.callsOf(switchboard.PruneDelivered)[:6] {
		limits = append(limits, c.limit)
	}
	// 400 take 40 ms, 200 take 20 ms (within 25), and so do the rest.
	if fmt.Sprint(limits) != "[400 200 200 200 200 200]" {
		t.Errorf("batch sizes %v, want [400 200 200 200 200 200]", limits)
	}

	// Faster deletes grow the batches again, up to BatchSize.
	store.mu.Lock()
	store.left[switchboard.PruneDelivered], store.calls = 10_000, nil
	store.mu.Unlock()
	p.since = func(time.Time) time.Duration { return time.Millisecond }
	if _, err := p.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	limits = nil
	for _, c := range store.callsOf(switchboard.PruneDelivered)[:3] {
		limits = append(limits, c.limit)
	}
	if fmt.Sprint(limits) != "[200 400 400]" {
		t.Errorf("batch sizes %v, want [200 400 400]: from the last run's size, doubled up to 400", limits)
	}

	// A writer busy with intake makes every batch slow, whatever its
	// size: batches shrink no further than a tenth of BatchSize.
	store.mu.Lock()
	store.left[switchboard.PruneDelivered], store.calls = 10_000, nil
	store.mu.Unlock()
	p.since = func(time.Time) time.Duration { return time.Second }
	if _, err := p.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	limits = nil
	for _, c := range store.callsOf(switchboard.PruneDelivered)[:6] {
		limits = append(limits, c.limit)
	}
	if fmt.Sprint(limits) != "[400 200 100 50 40 40]" {
		t.Errorf("batch sizes %v, want [400 200 100 50 40 40]", limits)
	}
}
