package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// Send results are group-committed: every send writes two or three of
// them (its claim before the request to Twilio, then its outcome), and on
// a single writer a commit of its own each was the limit of the send rate.
// A caller still waits for its own result to be committed, so a claim is
// durable before its request is made.

// sendOp is one RecordSend call's share of a batch of send results, and
// the batch's outcome for it: Err is the result's own refusal (an unknown
// message, a claim on a canceled one), set by applySends, which holds only
// once the batch has committed.
type sendOp struct {
	Result switchboard.SendResult
	At     time.Time
	Err    error
}

// RecordSend stores a send outcome and, for a retry, schedules the next
// send. Concurrent results share transactions (and commits): they go
// through a committer of their own; each still gets its own outcome.
func (s *Store) RecordSend(ctx context.Context, r switchboard.SendResult) error {
	if err := r.Validate(); err != nil {
		return err
	}
	op := &sendOp{Result: r, At: r.At}
	if op.At.IsZero() {
		op.At = s.now()
	}
	if err := s.sends.Submit(ctx, op); err != nil {
		return fmt.Errorf("record send of message %s: %w", r.MessageID, err)
	}
	return op.Err
}

// sendIDs returns the distinct message ids of ops, in the order they first
// appear: the messages a batch has to hold.
func sendIDs(ops []*sendOp) []string {
	seen := make(map[string]bool, len(ops))
	ids := make([]string, 0, len(ops))
	for _, op := range ops {
		if id := op.Result.MessageID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// sendJob is a send job a batch of results schedules.
type sendJob struct {
	Args jobs.SendArgs
	At   time.Time
}

// applySends applies ops, in order, to messages (those of the batch's ids
// that the store holds, as held in the batch's transaction), so that a
// later result of a message sees the earlier ones, exactly as if each had
// its own transaction in that order. It sets each op's Err: ErrNotFound
// for a message messages lacks, ErrCanceled for a claim on a canceled one
// (CheckClaim), nil otherwise. It returns the messages changed, in the
// order first changed, to write back once each; the send jobs of the
// results that left their message queued (retries and reschedules), in op
// order; and the sticky senders the sticky claims that applied set, the
// last one of each recipient in a pool, ordered by pool and recipient, so
// that batches of concurrent flushes or replicas write them in one order.
func applySends(ops []*sendOp, messages map[string]*switchboard.OutboundMessage) (changed []*switchboard.OutboundMessage, due []sendJob, sticky []StickyWrite) {
	dirty := make(map[*switchboard.OutboundMessage]bool)
	last := map[[2]string]int{} // index in sticky by pool and recipient
	for _, op := range ops {
		r := op.Result
		m, ok := messages[r.MessageID]
		if !ok {
			op.Err = fmt.Errorf("record send of message %s: %w", r.MessageID, switchboard.ErrNotFound)
			continue
		}
		// Under the row's hold: a cancel either committed before this
		// claim, which is refused, or waits for it and finds the message
		// sending.
		if op.Err = m.CheckClaim(r); op.Err != nil {
			continue
		}
		if !m.ApplySend(r, op.At) {
			continue
		}
		if !dirty[m] {
			dirty[m] = true
			changed = append(changed, m)
		}
		if m.State == switchboard.MessageQueued {
			due = append(due, sendJob{Args: jobs.SendArgs{MessageID: m.ID, Attempts: m.Attempts}, At: m.NextAttemptAt})
		}
		if r.Sticky {
			w := StickyWrite{Pool: m.Pool, Recipient: m.To, From: r.From, At: op.At}
			key := [2]string{m.Pool, m.To}
			if i, ok := last[key]; ok {
				sticky[i] = w
			} else {
				last[key] = len(sticky)
				sticky = append(sticky, w)
			}
		}
	}
	slices.SortFunc(sticky, func(a, b StickyWrite) int {
		return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(a.Recipient, b.Recipient))
	})
	return changed, due, sticky
}

// flushSends applies a batch of send results, in submission order, in one
// transaction: the messages are held and read in one selection, in id
// order, so that batches sharing messages, on any replica, wait for each
// other instead of deadlocking; the results are applied in memory, and the
// changed messages and the jobs they call for written back. A result's own
// refusal is its outcome, not the batch's; only a failure of the
// transaction fails the batch, which the committer then retries op by op.
func (s *Store) flushSends(ctx context.Context, ops []*sendOp) error {
	return s.driver.InTx(ctx, func(tx Tx) error {
		ids := sendIDs(ops)
		found, err := tx.Messages(ctx, Query{Where: []Cond{In("id", ids)}, Order: OldestFirst, Lock: ForUpdate})
		if err != nil {
			return fmt.Errorf("record sends: hold %d messages: %w", len(ids), err)
		}
		messages := make(map[string]*switchboard.OutboundMessage, len(found))
		for _, m := range found {
			messages[m.ID] = m
		}
		changed, due, sticky := applySends(ops, messages)
		if len(changed) == 0 {
			return nil
		}
		if err := tx.UpdateMessages(ctx, changed); err != nil {
			return fmt.Errorf("record sends: %w", err)
		}
		if len(sticky) > 0 {
			if err := tx.SetStickySenders(ctx, sticky); err != nil {
				return fmt.Errorf("record sends: set %d sticky senders: %w", len(sticky), err)
			}
		}
		for _, j := range due {
			if err := tx.InsertSendJob(ctx, j.Args, j.At); err != nil {
				return err
			}
		}
		return nil
	})
}
