package store

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
)

// Op is one caller's share of a group commit.
type Op struct {
	Ingests  []*switchboard.Ingest
	Attempts []*switchboard.AttemptResult
	// Publish, when a store sets it while writing, is called once the
	// batch has committed: ingest results must not be visible before then.
	Publish func()
}

// AttemptLinger is how long attempt records wait to be gathered before they
// join the writer. Every delivery records its attempt separately; without
// this, at a steady rate nearly every one would pay for a commit of its own
// and keep the writer busy while webhooks wait for it. Deliveries are not in
// a hurry for the answer; webhooks are.
const AttemptLinger = 5 * time.Millisecond

// Writer group-commits Ops.
type Writer struct {
	ops      *groupcommit.Committer[*Op]
	attempts *groupcommit.Committer[[]*switchboard.AttemptResult]
}

// NewWriter starts a Writer whose batches flush writes in one transaction.
func NewWriter(flush groupcommit.FlushFunc[*Op], opts groupcommit.Options) *Writer {
	w := &Writer{}
	w.ops = groupcommit.New(func(ctx context.Context, batch []*Op) error {
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
	w.attempts = groupcommit.Stage(w.ops, AttemptLinger, 256, func(batch [][]*switchboard.AttemptResult) *Op {
		op := &Op{}
		for _, results := range batch {
			op.Attempts = append(op.Attempts, results...)
		}
		return op
	})
	return w
}

// Ingest stores items, group-committed with concurrent writes.
func (w *Writer) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	if err := w.ops.Submit(ctx, &Op{Ingests: items}); err != nil {
		return fmt.Errorf("ingest %d requests: %w", len(items), err)
	}
	return nil
}

// RecordAttempts stores results, group-committed with concurrent writes
// after lingering for AttemptLinger.
func (w *Writer) RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error {
	if err := w.attempts.Submit(ctx, results); err != nil {
		return fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	return nil
}

// Close flushes everything queued and stops.
func (w *Writer) Close() {
	w.attempts.Close()
	w.ops.Close()
}
