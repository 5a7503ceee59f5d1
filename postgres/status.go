package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/writes"
)

// statusCommit tunes the committer of status updates.
//
// Deadlocks: a batch locks all its messages in one statement, in id order
// (lockMessagesBySID), before changing any, so batches that share
// messages, whether from concurrent flushes or from other replicas (which
// no flusher count here could rule out), wait for each other instead of
// deadlocking; the other writes of a message lock only that one row.
//
// One flusher nonetheless: a single flusher applies one process's updates
// of a message in the order they were submitted (with several, a later
// batch could lock the message first), and lets the batches grow while one
// commits, so that a burst of callbacks costs a few commits. No linger: a
// lone update commits at once.
var statusCommit = groupcommit.Options{Flushers: 1}

// UpdateMessageStatus applies a status update and records it in the
// message's history. Concurrent updates share transactions: they go
// through a group committer of their own. Each update still gets its own
// outcome: an unknown SID fails only its own call.
func (s *Store) UpdateMessageStatus(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	return writes.SubmitStatus(ctx, s.statuses, u)
}

// flushStatuses applies a batch of status updates, in submission order, in
// one transaction: the messages are locked and read in one statement, the
// updates applied in memory, and the changed messages and history rows
// written in one pipelined round trip. An op's own failure (an unknown SID)
// is its outcome, not the batch's; only a failure of the transaction fails
// the batch, which the committer then retries op by op.
func (s *Store) flushStatuses(ctx context.Context, ops []*writes.StatusOp) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		messages, err := lockMessagesBySID(ctx, tx, writes.StatusSIDs(ops))
		if err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		changed, rows := writes.ApplyStatuses(ops, messages)
		if len(rows) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		for _, m := range changed {
			b.Queue(updateMessage, messageArgs(m)...)
		}
		// Queued in op order: the history's identity column keeps it.
		for _, r := range rows {
			u := r.Update
			b.Queue(insertStatus, r.MessageID, u.Status, u.ErrorCode, u.At, u.Source, r.Applied)
		}
		res := tx.SendBatch(ctx, b)
		for _, m := range changed {
			if _, err := res.Exec(); err != nil {
				_ = res.Close()
				return fmt.Errorf("update status: update message %s: %w", m.ID, err)
			}
		}
		for _, r := range rows {
			if _, err := res.Exec(); err != nil {
				_ = res.Close()
				return fmt.Errorf("record status %s of message %s: %w", r.Update.Status, r.MessageID, err)
			}
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		return nil
	})
}

// lockMessagesBySID reads and locks (FOR UPDATE) the messages with sids,
// in id order, so that two transactions locking overlapping sets take
// their locks in the same order; sids the store does not hold are left
// out. The result is keyed by Twilio SID.
func lockMessagesBySID(ctx context.Context, tx pgx.Tx, sids []string) (map[string]*switchboard.OutboundMessage, error) {
	messages := make(map[string]*switchboard.OutboundMessage, len(sids))
	if len(sids) == 0 {
		return messages, nil
	}
	// twilio_sid <> '' lets the partial unique index on twilio_sid serve
	// the look-up; the rows are locked as the sorted rows are read.
	rows, err := tx.Query(ctx, selectMessage+` WHERE twilio_sid = ANY($1) AND twilio_sid <> '' ORDER BY id FOR UPDATE`, sids)
	if err != nil {
		return nil, fmt.Errorf("lock %d messages by Twilio SID: %w", len(sids), err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*switchboard.OutboundMessage, error) {
		return scanMessage(row)
	})
	if err != nil {
		return nil, fmt.Errorf("lock %d messages by Twilio SID: %w", len(sids), err)
	}
	for _, m := range list {
		messages[m.TwilioSID] = m
	}
	return messages, nil
}
