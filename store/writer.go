package store

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
)

// op is one caller's share of a group commit.
type op struct {
	Ingests  []*switchboard.Ingest
	Attempts []*switchboard.AttemptResult
	// Publish, when a store sets it while writing, is called once the
	// batch has committed: ingest results must not be visible before then.
	Publish func()
}

// writer group-commits ops. A delivery is not in a hurry for its attempt
// record; a webhook is for its answer. How attempts keep out of webhooks'
// way depends on the engine:
//
//   - with one writer (SQLite), attempts ride along (SubmitRider): they join
//     the commits webhooks start rather than cost commits of their own,
//     each of which webhooks would wait behind. Without webhooks arriving
//     they commit a few milliseconds after the first of them, or once a
//     worker pool's worth gathers;
//   - with concurrent writers (PostgreSQL), attempts gather for a few
//     milliseconds in a committer of their own, whose commits run beside
//     webhooks' instead of making them larger.
type writer struct {
	ops      *groupcommit.Committer[*op]
	attempts *groupcommit.Committer[*op] // nil: attempts ride along on ops
}

// attemptLinger is how long attempt records gather before a commit of
// their own (concurrent writers).
const attemptLinger = 5 * time.Millisecond

// newWriter starts a writer whose batches flush writes in one transaction.
// apart gives attempt records a committer of their own.
func newWriter(flush groupcommit.FlushFunc[*op], opts groupcommit.Options, apart bool) *writer {
	publishing := func(ctx context.Context, batch []*op) error {
		if err := flush(ctx, batch); err != nil {
			return err
		}
		for _, op := range batch {
			if op.Publish != nil {
				op.Publish()
			}
		}
		return nil
	}
	w := &writer{ops: groupcommit.New(publishing, opts)}
	if apart {
		w.attempts = groupcommit.New(flush, groupcommit.Options{
			Linger: attemptLinger, MaxBatch: 256, QueueSize: opts.QueueSize, Fatal: opts.Fatal,
		})
	}
	return w
}

// Ingest stores items, group-committed with concurrent writes.
func (w *writer) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	if err := w.ops.Submit(ctx, &op{Ingests: items}); err != nil {
		return fmt.Errorf("ingest %d requests: %w", len(items), err)
	}
	return nil
}

// RecordAttempts stores results, riding along with the next commit or in
// one of their own (see writer).
func (w *writer) RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error {
	submit := w.ops.SubmitRider
	if w.attempts != nil {
		submit = w.attempts.Submit
	}
	if err := submit(ctx, &op{Attempts: results}); err != nil {
		return fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	return nil
}

// Close flushes everything queued and stops.
func (w *writer) Close() {
	if w.attempts != nil {
		w.attempts.Close()
	}
	w.ops.Close()
}
