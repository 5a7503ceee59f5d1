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

// attemptLinger is how long attempt records wait to be gathered before they
// join the writer. Every delivery records its attempt separately; without
// this, at a steady rate nearly every one would pay for a commit of its own
// and keep the writer busy while webhooks wait for it. Deliveries are not in
// a hurry for the answer; webhooks are.
const attemptLinger = 5 * time.Millisecond

// writer group-commits Ops.
type writer struct {
	ops      *groupcommit.Committer[*op]
	attempts *groupcommit.Committer[[]*switchboard.AttemptResult]
}

// newWriter starts a writer whose batches flush writes in one transaction.
func newWriter(flush groupcommit.FlushFunc[*op], opts groupcommit.Options) *writer {
	w := &writer{}
	w.ops = groupcommit.New(func(ctx context.Context, batch []*op) error {
		if err := flush(ctx, batch); err != nil {
			return err
		}
		for _, op := range batch {
			if op.Publish != nil {
				op.Publish()
			}
		}
		return nil
	}, opts)
	w.attempts = groupcommit.Stage(w.ops, attemptLinger, 256, func(batch [][]*switchboard.AttemptResult) *op {
		merged := &op{}
		for _, results := range batch {
			merged.Attempts = append(merged.Attempts, results...)
		}
		return merged
	})
	return w
}

// Ingest stores items, group-committed with concurrent writes.
func (w *writer) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	if err := w.ops.Submit(ctx, &op{Ingests: items}); err != nil {
		return fmt.Errorf("ingest %d requests: %w", len(items), err)
	}
	return nil
}

// RecordAttempts stores results, group-committed with concurrent writes
// after lingering for attemptLinger.
func (w *writer) RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error {
	if err := w.attempts.Submit(ctx, results); err != nil {
		return fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	return nil
}

// Close flushes everything queued and stops.
func (w *writer) Close() {
	w.attempts.Close()
	w.ops.Close()
}
