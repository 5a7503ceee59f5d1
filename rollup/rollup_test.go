package rollup

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// fakeStore records what a Worker asks of it.
type fakeStore struct {
	mu                                 sync.Mutex
	passes                             []time.Time
	behind                             int // passes to answer Behind before catching up
	samples                            []switchboard.Sample
	stats                              switchboard.Stats
	failRollUp, failSamples, failStats error
	// hang makes every call wait for its context's end, as a database
	// gone without closing its connections does.
	hang bool
}

func (f *fakeStore) hung(ctx context.Context) (bool, error) {
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if !hang {
		return false, nil
	}
	<-ctx.Done()
	return true, ctx.Err()
}

func (f *fakeStore) RollUp(ctx context.Context, now time.Time) (switchboard.RollUpResult, error) {
	if hung, err := f.hung(ctx); hung {
		return switchboard.RollUpResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRollUp != nil {
		return switchboard.RollUpResult{}, f.failRollUp
	}
	f.passes = append(f.passes, now)
	behind := f.behind > 0
	if behind {
		f.behind--
	}
	return switchboard.RollUpResult{Behind: behind}, nil
}

func (f *fakeStore) RecordSamples(ctx context.Context, samples []switchboard.Sample) error {
	if hung, err := f.hung(ctx); hung {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSamples != nil {
		return f.failSamples
	}
	f.samples = append(f.samples, samples...)
	return nil
}

func (f *fakeStore) Stats(ctx context.Context) (*switchboard.Stats, error) {
	if hung, err := f.hung(ctx); hung {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStats != nil {
		return nil, f.failStats
	}
	st := f.stats
	return &st, nil
}

func (f *fakeStore) recorded() (passes []time.Time, samples []switchboard.Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.passes...), append([]switchboard.Sample(nil), f.samples...)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newWorker(st *fakeStore, now *time.Time) *Worker {
	w := New(st, Options{Node: "n1", Now: func() time.Time { return *now }, Logger: quiet})
	w.pause = func(context.Context, time.Duration) error { return nil }
	return w
}

// sampleOf returns the last sample of series and minute written.
func sampleOf(samples []switchboard.Sample, series switchboard.SampleSeries, minute time.Time) (switchboard.Sample, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		if s := samples[i]; s.Series == series && s.Minute.Equal(minute) {
			return s, true
		}
	}
	return switchboard.Sample{}, false
}

func TestRunOnceSamplesTheQueueWritesSamplesAndRollsUp(t *testing.T) {
	now := m0.Add(30 * time.Second)
	st := &fakeStore{stats: switchboard.Stats{
		EventsByState: map[switchboard.State]int64{switchboard.StatePending: 4, switchboard.StateRetrying: 3, switchboard.StateDead: 100},
		OldestDue:     now.Add(-90 * time.Second)}}
	w := newWorker(st, &now)
	w.Sampler().Throttled(now, "p1")
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	passes, samples := st.recorded()
	if len(passes) != 1 || !passes[0].Equal(now) {
		t.Errorf("passes %v, want one at %s", passes, now)
	}
	depth, _ := sampleOf(samples, switchboard.SampleQueueDepth, m0)
	lag, _ := sampleOf(samples, switchboard.SampleQueueLag, m0)
	throttled, _ := sampleOf(samples, switchboard.SampleThrottled, m0)
	if depth.Value != 7 || lag.Value != 90 || throttled.Value != 1 || throttled.Node != "n1" {
		t.Errorf("depth %v, lag %v, throttled %v; want 7, 90 s, 1", depth.Value, lag.Value, throttled.Value)
	}

	// The running minute, written again, is written whole; once over, it
	// is written a last time and forgotten.
	w.Sampler().Throttled(now, "p1")
	now = m0.Add(time.Minute + time.Second)
	st.stats.OldestDue = time.Time{}
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, samples = st.recorded()
	if throttled, _ := sampleOf(samples, switchboard.SampleThrottled, m0); throttled.Value != 2 {
		t.Errorf("the minute over was written with %v 429s, want 2: %+v", throttled.Value, samples)
	}
	if lag, ok := sampleOf(samples, switchboard.SampleQueueLag, m0.Add(time.Minute)); !ok || lag.Value != 0 {
		t.Errorf("an empty queue's lag: %+v", lag)
	}
	held, _ := w.Sampler().Samples(now)
	for _, s := range held {
		if s.Minute.Equal(m0) {
			t.Errorf("the minute over is still held: %+v", s)
		}
	}
}

// A run catches up pass after pass, up to maxPasses; the next run goes on.
func TestRunOnceCatchesUpInBoundedPasses(t *testing.T) {
	now := m0
	st := &fakeStore{behind: maxPasses + 5}
	w := newWorker(st, &now)
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if passes, _ := st.recorded(); len(passes) != maxPasses {
		t.Errorf("%d passes in one run, want %d", len(passes), maxPasses)
	}
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if passes, _ := st.recorded(); len(passes) != maxPasses+6 {
		t.Errorf("%d passes in two runs, want %d", len(passes), maxPasses+6)
	}
}

// A step that fails leaves the others to run, and samples not written are
// written by a later run.
func TestRunOnceFailuresAreReportedAndRetried(t *testing.T) {
	now := m0.Add(10 * time.Second)
	errStore := errors.New("store down")
	st := &fakeStore{failSamples: errStore, failStats: errStore}
	w := newWorker(st, &now)
	w.Sampler().Throttled(now, "p1")
	err := w.RunOnce(context.Background())
	if !errors.Is(err, errStore) {
		t.Fatalf("RunOnce: %v, want the store's failure", err)
	}
	if passes, _ := st.recorded(); len(passes) != 1 {
		t.Errorf("%d passes, want the pass run despite the failures", len(passes))
	}
	st.mu.Lock()
	st.failSamples, st.failStats, st.failRollUp = nil, nil, errStore
	st.mu.Unlock()
	now = m0.Add(2 * time.Minute)
	if err := w.RunOnce(context.Background()); !errors.Is(err, errStore) {
		t.Errorf("RunOnce: %v, want the pass's failure", err)
	}
	if _, samples := st.recorded(); len(samples) == 0 {
		t.Error("the samples kept from the failed run were not written")
	} else if s, ok := sampleOf(samples, switchboard.SampleThrottled, m0); !ok || s.Value != 1 {
		t.Errorf("samples written: %+v", samples)
	}
}

// Started, a worker runs at once and then every Interval; stopped, it
// runs no more and writes what it holds.
func TestWorkerRunsEveryIntervalUntilStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{}
		w := New(st, Options{Node: "n1", Interval: time.Minute, Logger: quiet})
		w.Start()
		w.Start() // already started: nothing more
		synctest.Wait()
		if passes, _ := st.recorded(); len(passes) != 1 {
			t.Fatalf("%d passes at start, want 1", len(passes))
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if passes, _ := st.recorded(); len(passes) != 4 {
			t.Errorf("%d passes after 3 intervals, want 4", len(passes))
		}
		w.Sampler().Throttled(time.Now(), "p1")
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Minute)
		passes, samples := st.recorded()
		if len(passes) != 4 {
			t.Errorf("%d passes after Stop, want 4", len(passes))
		}
		if s, ok := sampleOf(samples, switchboard.SampleThrottled, time.Now().UTC().Truncate(time.Minute).Add(-3*time.Minute)); !ok || s.Value != 1 {
			t.Errorf("Stop did not write the running minute's samples: %+v", samples)
		}
	})
}

// A store that stops answering fails a run within the timeout of each
// call, and the next run, once it answers again, writes what was held.
func TestRunOnceIsBoundedWhenTheStoreHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
		st := &fakeStore{hang: true}
		w := New(st, Options{Node: "n1", Now: func() time.Time { return now }, Logger: quiet, Timeout: time.Minute})
		w.Sampler().ObserveAck(now, 5*time.Millisecond)
		start := time.Now()
		err := w.RunOnce(t.Context())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RunOnce over a hung store: %v, want a deadline exceeded", err)
		}
		if took := time.Since(start); took != 3*time.Minute {
			t.Errorf("RunOnce took %s, want 3 calls of 1m", took)
		}
		st.mu.Lock()
		st.hang = false
		st.mu.Unlock()
		if err := w.RunOnce(t.Context()); err != nil {
			t.Fatalf("RunOnce once the store answers: %v", err)
		}
		if _, samples := st.recorded(); len(samples) == 0 {
			t.Error("the samples held were not written once the store answered")
		}
	})
}
