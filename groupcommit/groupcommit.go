// Package groupcommit batches concurrent writes into shared transactions, so
// that many callers pay for one commit (and one fsync) instead of one each.
//
// Batching is natural, not timed: while a flush is running, new submissions
// queue up, and the next flush takes everything queued (up to MaxBatch). An
// idle system therefore commits a lone item at once, with no added delay, and
// a busy one commits in ever larger batches.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("group committer closed")

// ErrQueueFull is returned by Submit when the queue stays full until the
// caller's context ends; the caller should shed load (answer 503).
var ErrQueueFull = errors.New("group commit queue full")

// FlushFunc writes a batch in one transaction. It returns nil only when every
// item is durable.
type FlushFunc[T any] func(ctx context.Context, batch []T) error

// Options tune a Committer.
type Options struct {
	// MaxBatch caps the items in one flush. Default 512.
	MaxBatch int
	// QueueSize bounds the items waiting for a flush. Default 8192.
	QueueSize int
	// Flushers is how many flushes may run at once: 1 for a single-writer
	// engine such as SQLite, a few for PostgreSQL. Default 1.
	Flushers int
	// Linger, when set, makes a flush wait up to this long after its first
	// item for more to arrive (until MaxBatch). For writes that nobody is
	// waiting on, trading a little latency for far fewer commits.
	Linger time.Duration
	// RiderWait and RiderBatch govern items submitted with SubmitRider:
	// such an item joins the next flush that other items start, and
	// starts one itself only once it has waited RiderWait (default 5 ms)
	// or RiderBatch riders (default 64) wait.
	RiderWait  time.Duration
	RiderBatch int
	// Observe, when set, is told the size of every batch flushed and how
	// long the flush took.
	Observe func(batch int, took time.Duration)
	// Fatal, when set, reports flush errors after which no item of the
	// failed batch is retried alone: each gets the batch's error. A store
	// sets it for storage faults, where a retried commit could report
	// success for data that never reached the disk (the kernel reports a
	// failed fsync once).
	Fatal func(error) bool
}

type pending[T any] struct {
	item T
	done chan error
}

// Committer groups submitted items into batches and flushes them.
type Committer[T any] struct {
	flush  FlushFunc[T]
	opts   Options
	queue  chan *pending[T]
	riders chan *pending[T]

	closeOnce sync.Once
	closing   chan struct{}
	mu        sync.RWMutex // held for reading while submitting, for writing to close
	closed    bool
	wg        sync.WaitGroup
}

// New starts a Committer that writes with flush.
func New[T any](flush FlushFunc[T], opts Options) *Committer[T] {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.Flushers <= 0 {
		opts.Flushers = 1
	}
	if opts.RiderWait <= 0 {
		opts.RiderWait = 5 * time.Millisecond
	}
	if opts.RiderBatch <= 0 {
		opts.RiderBatch = 64
	}
	c := &Committer[T]{
		flush:   flush,
		opts:    opts,
		queue:   make(chan *pending[T], opts.QueueSize),
		riders:  make(chan *pending[T], opts.QueueSize),
		closing: make(chan struct{}),
	}
	for range opts.Flushers {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// Submit queues item and waits until it is committed. It returns the flush's
// error if the item's batch (and the item's own retry) failed, ErrQueueFull
// if ctx ended before the item could be queued, or ctx's error if ctx ended
// while the flush was running — in which case the item may or may not have
// been committed, and the caller must not report it as stored.
func (c *Committer[T]) Submit(ctx context.Context, item T) error {
	return c.submit(ctx, c.queue, item)
}

// SubmitRider is Submit for an item nobody is in a hurry for: instead of
// starting a flush (a commit) of its own, it rides along with the next
// one that Submit's items start, unless none starts within
// Options.RiderWait or Options.RiderBatch riders gather first. Under load
// riders cost no commit at all; idle, they wait at most RiderWait.
func (c *Committer[T]) SubmitRider(ctx context.Context, item T) error {
	return c.submit(ctx, c.riders, item)
}

func (c *Committer[T]) submit(ctx context.Context, queue chan *pending[T], item T) error {
	p := &pending[T]{item: item, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case queue <- p:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting items, flushes everything already queued and waits
// for the flushers to finish.
func (c *Committer[T]) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		close(c.queue)
		close(c.riders)
		c.mu.Unlock()
	})
	c.wg.Wait()
}

func (c *Committer[T]) run() {
	defer c.wg.Done()
	batch := make([]*pending[T], 0, c.opts.MaxBatch)
	items := make([]T, 0, c.opts.MaxBatch)
	queue, riders := c.queue, c.riders // nil once closed and drained
	for queue != nil || riders != nil {
		batch = batch[:0]
		select {
		case p, ok := <-queue:
			if !ok {
				queue = nil
				continue
			}
			batch = c.fill(append(batch, p))
		case p, ok := <-riders:
			if !ok {
				riders = nil
				continue
			}
			batch = c.gatherRiders(append(batch, p), queue == nil)
		}
		batch = c.addRiders(batch)
		items = items[:0]
		for _, p := range batch {
			items = append(items, p.item)
		}
		c.commit(batch, items)
	}
}

// gatherRiders waits, for a batch that a rider began, until an item
// submitted with Submit arrives, RiderBatch riders wait, or RiderWait has
// passed, whichever comes first, or at once when closing.
func (c *Committer[T]) gatherRiders(batch []*pending[T], closing bool) []*pending[T] {
	if closing {
		return batch
	}
	t := time.NewTimer(c.opts.RiderWait)
	defer t.Stop()
	for len(batch) < min(c.opts.RiderBatch, c.opts.MaxBatch) {
		select {
		case p, ok := <-c.riders:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case p, ok := <-c.queue:
			if !ok {
				return batch
			}
			return c.fill(append(batch, p))
		case <-t.C:
			return batch
		}
	}
	return batch
}

// addRiders adds the riders already waiting to batch, up to MaxBatch.
func (c *Committer[T]) addRiders(batch []*pending[T]) []*pending[T] {
	batch, _ = c.takeWaiting(c.riders, batch)
	return batch
}

// takeWaiting adds the items already waiting on ch to batch, up to
// MaxBatch, without waiting for more; closed reports that ch is closed.
func (c *Committer[T]) takeWaiting(ch chan *pending[T], batch []*pending[T]) (_ []*pending[T], closed bool) {
	for len(batch) < c.opts.MaxBatch {
		select {
		case p, ok := <-ch:
			if !ok {
				return batch, true
			}
			batch = append(batch, p)
		default:
			return batch, false
		}
	}
	return batch, false
}

// fill adds queued items to batch: those already waiting, and with Linger
// those arriving within it.
func (c *Committer[T]) fill(batch []*pending[T]) []*pending[T] {
	var deadline <-chan time.Time
	if c.opts.Linger > 0 {
		t := time.NewTimer(c.opts.Linger)
		defer t.Stop()
		deadline = t.C
	}
	for {
		var closed bool
		batch, closed = c.takeWaiting(c.queue, batch)
		if closed || deadline == nil || len(batch) >= c.opts.MaxBatch {
			return batch
		}
		select {
		case p, ok := <-c.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-deadline:
			return batch
		}
	}
}

// commit flushes a batch. If a batch of several fails, each item is retried
// alone, so that one bad item cannot fail the requests it happened to share
// a transaction with; a fault that hits every item (disk full, database down)
// still fails each of them. An error Options.Fatal reports fails every item
// without a retry.
func (c *Committer[T]) commit(batch []*pending[T], items []T) {
	// Flushes run to completion even when submitters give up: abandoning a
	// transaction midway would only waste the work already done.
	ctx := context.Background()
	start := time.Now()
	err := c.flush(ctx, items)
	if c.opts.Observe != nil {
		c.opts.Observe(len(items), time.Since(start))
	}
	if err == nil || len(batch) == 1 || (c.opts.Fatal != nil && c.opts.Fatal(err)) {
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	for i, p := range batch {
		p.done <- c.flush(ctx, items[i:i+1])
	}
}
