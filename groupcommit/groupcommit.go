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
	flush FlushFunc[T]
	opts  Options
	queue chan *pending[T]

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
	c := &Committer[T]{
		flush:   flush,
		opts:    opts,
		queue:   make(chan *pending[T], opts.QueueSize),
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
	p := &pending[T]{item: item, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.queue <- p:
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
		c.mu.Unlock()
	})
	c.wg.Wait()
}

func (c *Committer[T]) run() {
	defer c.wg.Done()
	batch := make([]*pending[T], 0, c.opts.MaxBatch)
	items := make([]T, 0, c.opts.MaxBatch)
	for {
		first, ok := <-c.queue
		if !ok {
			return
		}
		batch = c.fill(append(batch[:0], first))
		items = items[:0]
		for _, p := range batch {
			items = append(items, p.item)
		}
		c.commit(batch, items)
	}
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
	for len(batch) < c.opts.MaxBatch {
		select {
		case p, ok := <-c.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
			continue
		default:
		}
		if deadline == nil {
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
	return batch
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
