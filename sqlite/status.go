package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/writes"
)

// statusCommit tunes the committer of status updates. One flusher: SQLite
// has one writer anyway, and a single flusher applies one process's
// updates in the order they were submitted. No linger: a lone update
// commits at once, and under load the batches grow by themselves while the
// writer is busy.
var statusCommit = groupcommit.Options{Flushers: 1}

// UpdateMessageStatus applies a status update and records it in the
// message's history. Concurrent updates share transactions (and fsyncs):
// they go through a group committer of their own, whose batches take their
// turns on the write connection with the ingest batches. Each update still
// gets its own outcome: an unknown SID fails only its own call.
func (s *Store) UpdateMessageStatus(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	return writes.SubmitStatus(ctx, s.statuses, u)
}

// flushStatuses applies a batch of status updates, in submission order, in
// one transaction. An op's own failure (an unknown SID) is its outcome, not
// the batch's; only a failure of the transaction fails the batch, which the
// committer then retries op by op.
func (s *Store) flushStatuses(ctx context.Context, ops []*writes.StatusOp) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		messages := make(map[string]*switchboard.OutboundMessage, len(ops))
		for _, sid := range writes.StatusSIDs(ops) {
			m, err := messageBySID(ctx, tx, sid)
			if errors.Is(err, switchboard.ErrNotFound) {
				continue // that op's outcome, set by ApplyStatuses
			}
			if err != nil {
				return fmt.Errorf("update status: %w", err)
			}
			messages[sid] = m
		}
		changed, rows := writes.ApplyStatuses(ops, messages)
		for _, m := range changed {
			if err := writeMessage(ctx, tx, m); err != nil {
				return fmt.Errorf("update status: %w", err)
			}
		}
		if len(rows) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, insertStatus)
		if err != nil {
			return fmt.Errorf("prepare status insert: %w", err)
		}
		defer stmt.Close()
		for _, r := range rows {
			u := r.Update
			if _, err := stmt.ExecContext(ctx, r.MessageID, u.Status, u.ErrorCode, micros(u.At), u.Source, r.Applied); err != nil {
				return fmt.Errorf("record status %s of message %s: %w", u.Status, r.MessageID, err)
			}
		}
		return nil
	})
}
