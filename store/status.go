package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
)

// statusOp is one Store.UpdateMessageStatus call's share of a batch of
// status updates, group-committed by a store's own committer, and the
// batch's outcome for it. Each op has its own outcome: an unknown SID fails
// that op alone, not the transaction its batch shares.
type statusOp struct {
	Update switchboard.StatusUpdate
	// Message is the message as it stands after Update (a copy of its own),
	// and Err the op's own failure, such as an unknown SID (wrapping
	// switchboard.ErrNotFound). applyStatuses sets both; they hold only
	// once the batch has committed.
	Message *switchboard.OutboundMessage
	Err     error
}

// newStatusOp prepares u for a batch: a zero At becomes now, and every At
// is cut to the stores' precision (microseconds, UTC), so that the message
// returned is the one stored.
func newStatusOp(u switchboard.StatusUpdate) *statusOp {
	if u.At.IsZero() {
		u.At = time.Now()
	}
	u.At = u.At.UTC().Truncate(time.Microsecond)
	return &statusOp{Update: u}
}

// submitStatus applies u through c, a store's committer of status
// updates, and returns its own outcome: the message as the update left
// it, or the update's own error (an unknown SID, or another account's, is
// ErrNotFound). An update without an account is refused before it is
// submitted (ErrInvalid).
func submitStatus(ctx context.Context, c *groupcommit.Committer[*statusOp], u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	op := newStatusOp(u)
	if err := c.Submit(ctx, op); err != nil {
		return nil, fmt.Errorf("update status of %s: %w", u.TwilioSID, err)
	}
	if op.Err != nil {
		return nil, op.Err
	}
	return op.Message, nil
}

// StatusRow is one entry of a message's status history to insert.
type StatusRow struct {
	MessageID string
	Update    switchboard.StatusUpdate
	Applied   bool
}

// statusSIDs returns the distinct non-empty Twilio SIDs of ops, in the
// order they first appear: the messages a batch has to load.
func statusSIDs(ops []*statusOp) []string {
	seen := make(map[string]bool, len(ops))
	sids := make([]string, 0, len(ops))
	for _, op := range ops {
		if sid := op.Update.TwilioSID; sid != "" && !seen[sid] {
			seen[sid] = true
			sids = append(sids, sid)
		}
	}
	return sids
}

// applyStatuses applies ops, in order, to messages (those of the batch's
// SIDs that the store holds, by Twilio SID, as loaded in the batch's
// transaction, whatever their account), so that a later update of a
// message sees the earlier ones. It sets each op's Message, a copy as it
// stands after the op, or its Err: ErrNotFound for an SID messages lacks
// (the empty one included) and for a message of another account than the
// op's, which the op neither changes nor adds a history row to. It
// returns the messages changed, in the order first changed, to write back
// once each, and the history rows of every op found, applied or not, in
// op order, to insert in that order.
func applyStatuses(ops []*statusOp, messages map[string]*switchboard.OutboundMessage) (changed []*switchboard.OutboundMessage, rows []StatusRow) {
	dirty := make(map[*switchboard.OutboundMessage]bool)
	rows = make([]StatusRow, 0, len(ops))
	for _, op := range ops {
		u := op.Update
		m, ok := messages[u.TwilioSID]
		// Another account's message is answered as an unknown one, so an
		// update cannot tell the two apart: it fails closed, and learns
		// nothing about SIDs it does not own.
		if !ok || u.TwilioSID == "" || u.AccountSID == "" || m.AccountSID != u.AccountSID {
			op.Message, op.Err = nil, fmt.Errorf("update status: message with Twilio SID %q: %w", u.TwilioSID, switchboard.ErrNotFound)
			continue
		}
		applied := m.ApplyStatus(u)
		if applied && !dirty[m] {
			dirty[m] = true
			changed = append(changed, m)
		}
		rows = append(rows, StatusRow{MessageID: m.ID, Update: u, Applied: applied})
		snapshot := *m
		snapshot.MediaURLs = slices.Clone(m.MediaURLs)
		op.Message, op.Err = &snapshot, nil
	}
	return changed, rows
}

// UpdateMessageStatus applies a status update and records it in the
// message's history. Concurrent updates share transactions (and commits):
// they go through a committer of their own. Each update still gets its own
// outcome: an unknown SID fails only its own call.
func (s *Store) UpdateMessageStatus(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	return submitStatus(ctx, s.statuses, u)
}

// flushStatuses applies a batch of status updates, in submission order, in
// one transaction: the messages are held and read in one selection, in id
// order, so that batches sharing messages, on any replica, wait for each
// other instead of deadlocking; the updates are applied in memory, and the
// changed messages and history rows written back. An op's own failure (an
// unknown SID) is its outcome, not the batch's; only a failure of the
// transaction fails the batch, which the committer then retries op by op.
func (s *Store) flushStatuses(ctx context.Context, ops []*statusOp) error {
	return s.driver.InTx(ctx, func(tx Tx) error {
		messages := map[string]*switchboard.OutboundMessage{}
		if sids := statusSIDs(ops); len(sids) > 0 {
			found, err := tx.Messages(ctx, Query{Where: withSIDs(In("twilio_sid", sids)), Order: OldestFirst, Lock: ForUpdate})
			if err != nil {
				return fmt.Errorf("update status: hold %d messages by Twilio SID: %w", len(sids), err)
			}
			for _, m := range found {
				messages[m.TwilioSID] = m
			}
		}
		changed, rows := applyStatuses(ops, messages)
		if len(rows) == 0 {
			return nil
		}
		if err := tx.UpdateMessages(ctx, changed); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		if err := tx.InsertHistory(ctx, rows); err != nil {
			return fmt.Errorf("update status: record history: %w", err)
		}
		return nil
	})
}
