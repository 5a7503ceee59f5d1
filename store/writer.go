package store

import (
	"context"
	"fmt"

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

// writer group-commits ops. Attempt records ride along (SubmitRider): a
// delivery is not in a hurry for its record, a webhook is for its answer,
// so attempts join the commits webhooks start rather than cost commits of
// their own. Without webhooks arriving they commit a few milliseconds
// after the first of them, or once a worker pool's worth gathers.
type writer struct {
	ops *groupcommit.Committer[*op]
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
	return w
}

// Ingest stores items, group-committed with concurrent writes.
func (w *writer) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	if err := w.ops.Submit(ctx, &op{Ingests: items}); err != nil {
		return fmt.Errorf("ingest %d requests: %w", len(items), err)
	}
	return nil
}

// RecordAttempts stores results, riding along with the next commit.
func (w *writer) RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error {
	if err := w.ops.SubmitRider(ctx, &op{Attempts: results}); err != nil {
		return fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	return nil
}

// Close flushes everything queued and stops.
func (w *writer) Close() { w.ops.Close() }
