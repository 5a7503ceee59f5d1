// Package rollup keeps the dashboard's data up to date (see
// switchboard.Store.RollUp and Dashboard). A Worker runs the store's
// rollup passes, which compute the per-minute aggregates from the rows the
// store keeps, and writes what its Sampler gathered of what only the
// process sees (the time to answer webhooks, Twilio's 429s, the queue's
// depth and lag as read from the store).
//
// A pass is idempotent and recomputes the minutes still open, so a crash
// loses nothing of the aggregates, and replicas may run passes side by
// side. Samples are written every Interval, the minute still running
// included (written again, it is replaced by its fuller self), so a crash
// loses at most an Interval of them.
package rollup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Store is what a Worker needs of switchboard.Store.
type Store interface {
	RollUp(ctx context.Context, now time.Time) (switchboard.RollUpResult, error)
	RecordSamples(ctx context.Context, samples []switchboard.Sample) error
	Stats(ctx context.Context) (*switchboard.Stats, error)
}

// DefaultInterval is the default time between runs: the dashboard's
// newest minute is that far behind at most. Each pass recomputes the
// minutes still open, about four, so each row is read about four times.
const DefaultInterval = time.Minute

// DefaultTimeout is the default bound of each of a run's calls to the
// store: far above what a pass over an hour of a million events takes.
const DefaultTimeout = 5 * time.Minute

// maxPasses bounds the passes of one run catching up (an hour of minutes
// each); the next run goes on.
const maxPasses = 24

// Options configure a Worker.
type Options struct {
	// Interval is the time between the starts of two runs; default
	// DefaultInterval.
	Interval time.Duration
	// Node names this process in its samples; default the host's name,
	// the process id and a random suffix, unique to each process.
	Node string
	// Timeout bounds each of a run's calls to the store (reading the
	// queue, writing samples, one pass); default DefaultTimeout. A store
	// that stops answering (a database gone without closing its
	// connections) fails the run, which is logged and tried again, rather
	// than holding the worker for good.
	Timeout time.Duration
	// Now is the clock of the passes and samples; default time.Now. The
	// interval and the pauses are real time.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
}

// Worker runs rollup passes and writes samples, every Interval once
// started.
type Worker struct {
	store   Store
	opts    Options
	sampler *Sampler
	// pause waits d or until ctx is done, between the passes of a run
	// catching up; tests replace it.
	pause func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	cancel context.CancelFunc // of the running loop; nil when stopped
	done   chan struct{}
}

// New returns a Worker over store; Start runs it.
func New(store Store, o Options) *Worker {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Node == "" {
		o.Node = defaultNode()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Worker{store: store, opts: o, sampler: NewSampler(o.Node), pause: sleep}
}

// defaultNode is the host's name, the process id and a random suffix: no
// two processes share it, so the samples of each are counted once.
func defaultNode() string {
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	node := host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(suffix)
	if len(node) > switchboard.MaxSampleNode {
		node = node[len(node)-switchboard.MaxSampleNode:]
	}
	// A cut may split a character of a non-ASCII host name, which
	// PostgreSQL would refuse in every sample: drop the pieces.
	return strings.ToValidUTF8(node, "")
}

// Sampler is where the process's components record their samples.
func (w *Worker) Sampler() *Sampler { return w.sampler }

// RunOnce reads the queue's depth and lag, writes the samples held, and
// runs rollup passes until the aggregates are up to date (at most
// maxPasses, pausing after each as long as it took, so that catching up
// leaves the store to others half the time). A failed step is reported
// and the others still run: the error joins every step's.
func (w *Worker) RunOnce(ctx context.Context) error {
	now := w.opts.Now()
	var errs []error
	if err := w.sampleQueue(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if err := w.writeSamples(ctx, now); err != nil {
		errs = append(errs, err)
	}
	for range maxPasses {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		res, err := w.store.RollUp(pctx, now)
		cancel()
		if err != nil {
			errs = append(errs, err)
			break
		}
		if !res.Behind {
			break
		}
		w.opts.Logger.Info("rollup: catching up", "from", res.From, "until", res.Until)
		if err := w.pause(ctx, time.Since(start)); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}

// sampleQueue records the queue's depth (events pending or retrying) and
// lag (how long the oldest due one has waited) as gauges.
func (w *Worker) sampleQueue(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	st, err := w.store.Stats(ctx)
	if err != nil {
		return fmt.Errorf("rollup: read the queue: %w", err)
	}
	depth := st.EventsByState[switchboard.StatePending] + st.EventsByState[switchboard.StateRetrying]
	lag := 0.0
	if !st.OldestDue.IsZero() {
		lag = max(now.Sub(st.OldestDue).Seconds(), 0)
	}
	w.sampler.Gauge(now, switchboard.SampleQueueDepth, float64(depth))
	w.sampler.Gauge(now, switchboard.SampleQueueLag, lag)
	return nil
}

// writeSamples writes the samples held and forgets the minutes over once
// they are stored; on a failure they are kept for the next run.
func (w *Worker) writeSamples(ctx context.Context, now time.Time) error {
	samples, finished := w.sampler.Samples(now)
	for len(samples) > 0 {
		batch := samples[:min(len(samples), switchboard.MaxSamples)]
		if err := w.record(ctx, batch); err != nil {
			return fmt.Errorf("rollup: write samples: %w", err)
		}
		samples = samples[len(batch):]
	}
	w.sampler.Forget(finished)
	return nil
}

// record writes one batch of samples within the timeout.
func (w *Worker) record(ctx context.Context, batch []switchboard.Sample) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	return w.store.RecordSamples(ctx, batch)
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start runs the worker in the background, a first run at once and then
// every Interval, until Stop. It does nothing when already started.
func (w *Worker) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.loop(ctx, w.done)
}

func (w *Worker) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		if err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.opts.Logger.Warn("rollup: run failed; the next one tries again", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Stop ends the background runs, cancelling one in progress, and writes
// the samples held, the running minute's so far included, within ctx.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done = nil, nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return w.writeSamples(ctx, w.opts.Now())
}
