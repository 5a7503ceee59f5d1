// Package retention deletes what Switchboard has kept long enough (see
// switchboard.Retention), so that a store on a fixed disk holds a bounded
// window of traffic however long it runs.
//
// A Pruner works every kind of data in turn, in small batches (one
// transaction each, Store.Prune), until nothing older than its cutoff is
// left, at a Pacing that suits the store. On SQLite intake shares the one
// writer with it, so a webhook arriving during a batch waits for that
// batch's commit; SharedWriter keeps that wait short and rare. A batch is
// sized to take about Pacing.BatchTime: one that takes longer halves the
// next (down to a tenth of Options.BatchSize), one that takes less than
// half of it doubles the next, up to Options.BatchSize. And after each batch the pruner pauses
// Pacing.PauseFactor times as long as the batch took, which leaves the
// writer to intake at least three quarters of the time while a backlog is
// pruned. (Pausing only as long as the batch took pruned faster on SQLite,
// but raised intake's ack latency more; see docs/benchmarks.md.) On
// PostgreSQL a batch locks only the rows it deletes, which intake does not
// wait on, and Concurrent lets batches keep their size and run half the
// time.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
)

// Store is what a Pruner needs of a store: switchboard.Store.Prune.
type Store interface {
	Prune(ctx context.Context, kind switchboard.PruneKind, before time.Time, limit int) (int, error)
}

// Defaults of Options.
const (
	DefaultInterval  = time.Minute
	DefaultBatchSize = 500
)

// Pacing is how hard a Pruner works a store.
type Pacing struct {
	// BatchTime is how long a batch should take at most; batches are
	// sized to it (see the package comment).
	BatchTime time.Duration
	// PauseFactor is how many times as long as a batch took the pruner
	// pauses after it.
	PauseFactor int
}

// The pacings of the two engines.
var (
	// SharedWriter is for a store whose writes take turns on one writer
	// (SQLite): short batches, and three quarters of the time left to
	// intake.
	SharedWriter = Pacing{BatchTime: 25 * time.Millisecond, PauseFactor: 3}
	// Concurrent is for a store whose writers run side by side
	// (PostgreSQL): batches keep their full size on a busy machine, whose
	// every commit may take tens of milliseconds, and run half the time.
	Concurrent = Pacing{BatchTime: time.Second, PauseFactor: 1}
)

// MaxPause bounds the pause after a batch, however long it took.
const MaxPause = 3 * time.Second

// Options configure a Pruner.
type Options struct {
	// Retention is how long each kind is kept; a kind kept forever (0) is
	// not pruned.
	Retention switchboard.Retention
	// Interval is the time from the end of one run to the start of the
	// next; default DefaultInterval.
	Interval time.Duration
	// BatchSize is the most items one transaction deletes, and the size
	// of each kind's first batch; default DefaultBatchSize.
	BatchSize int
	// Pacing is how hard the store is worked; default SharedWriter, the
	// gentler.
	Pacing Pacing
	// Now is the clock ages are measured against; default time.Now. The
	// pauses and the interval are real time.
	Now     func() time.Time
	Metrics *metrics.Metrics // nil: none
	Logger  *slog.Logger     // nil: slog.Default()
}

// Pruner deletes old data from a store, every Interval once started.
type Pruner struct {
	store Store
	opts  Options
	// pause waits d or until ctx is done, and since measures a batch;
	// tests replace them.
	pause func(ctx context.Context, d time.Duration) error
	since func(time.Time) time.Duration

	sizeMu sync.Mutex
	sizes  map[switchboard.PruneKind]int // each kind's next batch size

	mu     sync.Mutex
	cancel context.CancelFunc // of the running loop; nil when stopped
	done   chan struct{}      // closed when the running loop has returned
}

// New returns a Pruner of store; Start runs it.
func New(store Store, o Options) *Pruner {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Pacing.BatchTime <= 0 || o.Pacing.PauseFactor <= 0 {
		o.Pacing = SharedWriter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if m := o.Metrics; m != nil {
		// Every kind pruned has its series from the start, at 0.
		for _, k := range switchboard.PruneKinds {
			if o.Retention.Of(k) > 0 {
				m.RetentionPruned.WithLabelValues(string(k))
				m.RetentionErrors.WithLabelValues(string(k))
			}
		}
	}
	return &Pruner{store: store, opts: o, pause: sleep, since: time.Since, sizes: map[switchboard.PruneKind]int{}}
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run is what one run deleted, by kind, and how long it took.
type Run struct {
	Pruned map[switchboard.PruneKind]int
	Took   time.Duration
}

// RunOnce prunes every kind with a retention, each until nothing older
// than its cutoff (now minus its retention, fixed for the run) is left.
// A kind whose batch fails is left until the next run, and the others are
// still pruned: the error returned joins every kind's. It stops early, with
// ctx's error, when ctx is done.
func (p *Pruner) RunOnce(ctx context.Context) (Run, error) {
	start := time.Now()
	run := Run{Pruned: map[switchboard.PruneKind]int{}}
	var errs []error
	for _, kind := range switchboard.PruneKinds {
		keep := p.opts.Retention.Of(kind)
		if keep <= 0 {
			continue
		}
		n, err := p.pruneKind(ctx, kind, p.opts.Now().Add(-keep))
		run.Pruned[kind] = n
		if err != nil {
			if ctx.Err() != nil {
				errs = append(errs, ctx.Err())
				break
			}
			errs = append(errs, fmt.Errorf("%s: %w", kind, err))
			if m := p.opts.Metrics; m != nil {
				m.RetentionErrors.WithLabelValues(string(kind)).Inc()
			}
		}
	}
	run.Took = time.Since(start)
	err := errors.Join(errs...)
	if ctx.Err() != nil {
		// Stopped: the run is cut short, not failed.
		p.opts.Logger.Info("retention: stopped during a run", p.attrs(run)...)
		return run, err
	}
	if m := p.opts.Metrics; m != nil {
		m.RetentionLastRun.Set(float64(p.opts.Now().UnixNano()) / 1e9)
		m.RetentionRunSeconds.Set(run.Took.Seconds())
	}
	p.log(run, err)
	return run, err
}

// pruneKind deletes kind's items older than before, batch after batch,
// each sized to take about the pacing's BatchTime, pausing after each
// PauseFactor times as long as it took.
func (p *Pruner) pruneKind(ctx context.Context, kind switchboard.PruneKind, before time.Time) (int, error) {
	total := 0
	for {
		size := p.batchSize(kind)
		start := time.Now()
		n, err := p.store.Prune(ctx, kind, before, size)
		took := p.since(start)
		if err != nil {
			return total, err
		}
		p.resize(kind, size, took)
		p.opts.Logger.Debug("retention: batch", "kind", string(kind), "limit", size, "pruned", n, "took", took)
		total += n
		if m := p.opts.Metrics; m != nil && n > 0 {
			m.RetentionPruned.WithLabelValues(string(kind)).Add(float64(n))
		}
		if n < size {
			return total, nil
		}
		if err := p.pause(ctx, min(time.Duration(p.opts.Pacing.PauseFactor)*took, MaxPause)); err != nil {
			return total, err
		}
	}
}

// batchSize is the size of kind's next batch: BatchSize at first, then as
// resize left it, across runs.
func (p *Pruner) batchSize(kind switchboard.PruneKind) int {
	p.sizeMu.Lock()
	defer p.sizeMu.Unlock()
	if n, ok := p.sizes[kind]; ok {
		return n
	}
	return p.opts.BatchSize
}

// resize sets kind's next batch size from how long a batch of size took:
// halved when it took longer than the pacing's BatchTime, down to a tenth
// of BatchSize, doubled (up to BatchSize) when it took less than half of
// it. The time includes the wait for the store's writer, which a smaller
// batch does not shorten: under heavy intake the floor keeps each batch
// worth its transaction.
func (p *Pruner) resize(kind switchboard.PruneKind, size int, took time.Duration) {
	switch {
	case took > p.opts.Pacing.BatchTime:
		size = max(size/2, p.opts.BatchSize/10, 1)
	case took < p.opts.Pacing.BatchTime/2:
		size = min(size*2, p.opts.BatchSize)
	}
	p.sizeMu.Lock()
	p.sizes[kind] = size
	p.sizeMu.Unlock()
}

// log writes one line per run: at info when something was deleted, at
// error when a kind failed, at debug when there was nothing to do.
func (p *Pruner) log(run Run, err error) {
	attrs, total := p.attrs(run), 0
	for _, n := range run.Pruned {
		total += n
	}
	switch {
	case err != nil:
		p.opts.Logger.Error("retention: run failed", append(attrs, "err", err)...)
	case total > 0:
		p.opts.Logger.Info("retention: pruned", attrs...)
	default:
		p.opts.Logger.Debug("retention: nothing to prune", attrs...)
	}
}

// attrs are a run's log attributes: its time and its count of each kind.
func (p *Pruner) attrs(run Run) []any {
	attrs := []any{"took", run.Took.Round(time.Millisecond).String()}
	for _, k := range switchboard.PruneKinds {
		if n, ok := run.Pruned[k]; ok {
			attrs = append(attrs, string(k), n)
		}
	}
	return attrs
}

// Start runs the pruner in the background, every Interval, the first run
// one Interval from now, until Stop. It does nothing when no kind has a
// retention, or when already started.
func (p *Pruner) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil || !p.enabled() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.loop(ctx, p.done)
}

func (p *Pruner) enabled() bool {
	for _, k := range switchboard.PruneKinds {
		if p.opts.Retention.Of(k) > 0 {
			return true
		}
	}
	return false
}

func (p *Pruner) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		if err := sleep(ctx, p.opts.Interval); err != nil {
			return
		}
		// RunOnce logs and counts its own failures; the next run tries
		// again.
		_, _ = p.RunOnce(ctx)
	}
}

// Stop ends the background runs, cancelling a batch in progress (its
// transaction rolls back, deleting nothing), and returns once the
// pruner has stopped.
func (p *Pruner) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
