package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// errOriginalPruned is a batch's failure when the original of a
// duplicate was deleted by a concurrent Prune after the duplicate's insert
// met its key.
var errOriginalPruned = errors.New("original of a duplicate pruned meanwhile")

// flush writes a batch of group-committed operations in one transaction:
// one commit (one fsync) for all. The ingests of all operations are
// stored together, so that their events are inserted in one key order
// (see ingestTx).
func (s *Store) flush(ctx context.Context, ops []*op) error {
	var items []*switchboard.Ingest
	var results []*switchboard.AttemptResult
	for _, op := range ops {
		items = append(items, op.Ingests...)
		results = append(results, op.Attempts...)
	}
	write := func(tx Tx) error {
		scheduled, publish, err := ingestTx(ctx, tx, items)
		if err != nil {
			return err
		}
		// All ingests of the batch were written together: publish them once.
		ops[0].Publish = publish
		retries, err := attemptsTx(ctx, tx, results)
		if err != nil {
			return err
		}
		return tx.InsertJobs(ctx, append(scheduled, retries...))
	}
	// A duplicate whose original a pruner deleted meanwhile is a new event
	// in a fresh transaction, where its key no longer conflicts; each retry
	// follows a pruner's commit, so a few are plenty.
	for try := 1; ; try++ {
		err := s.driver.InTx(ctx, write)
		if !errors.Is(err, errOriginalPruned) || try == 3 {
			return err
		}
	}
}

// firstJobs gathers the first delivery jobs of new events: those due now
// share batched jobs, a delayed one (Event.NextAttemptAt) gets its own.
type firstJobs struct {
	due     []jobs.Due
	delayed []jobs.Scheduled
	// requests, when set, are the requests of the events added, by id, as
	// stored: a job due now carries its event and request (jobs.Due.Event).
	requests map[string]*switchboard.Request
}

func (j *firstJobs) add(n NewEvent) {
	ev := n.Event
	if !ev.NextAttemptAt.IsZero() {
		j.delayed = append(j.delayed, jobs.Scheduled{Events: []jobs.Due{{EventID: ev.ID}}, At: ev.NextAttemptAt})
		return
	}
	due := jobs.Due{EventID: ev.ID}
	// The request the event was stored with, not the one its RequestID
	// names: a fan-out event's is set by the store (Ingest.Fanout), and
	// another item's would deliver that one's body.
	if req, ok := j.requests[n.RequestID]; ok {
		// A copy, as stored: the caller's event is published and may
		// change.
		e := *ev
		e.RequestID, e.State, e.Attempts = n.RequestID, switchboard.StatePending, 0
		due.Event, due.Request = &e, req
	}
	j.due = append(j.due, due)
}

func (j *firstJobs) jobs() []jobs.Scheduled { return append(jobs.Batch(j.due), j.delayed...) }

// newEvent is the insert of ev for request reqID: due at its delayed first
// delivery, or at its creation.
func newEvent(reqID string, ev *switchboard.Event) NewEvent {
	due := ev.CreatedAt
	if !ev.NextAttemptAt.IsZero() {
		due = ev.NextAttemptAt
	}
	return NewEvent{RequestID: reqID, Event: ev, DueAt: due}
}

// byKey orders event inserts by idempotency key, so that transactions
// sharing keys wait on each other in one order and cannot deadlock. Sorts
// using it are stable: the first of a batch's items with one key is the
// original, the others its duplicates.
func byKey(a, b NewEvent) int { return strings.Compare(a.Event.IdempotencyKey, b.Event.IdempotencyKey) }

// ingestTx stores requests, their events and the fan-out events of the
// new ones, and returns the first delivery jobs of the new events. Results
// are published only after the commit, so a failed batch leaves the items
// as they were for the committer's one-by-one retry.
func ingestTx(ctx context.Context, tx Tx, items []*switchboard.Ingest) ([]jobs.Scheduled, func(), error) {
	var accepted []int
	for i, it := range items {
		if it.Request.Outcome == switchboard.OutcomeAccepted {
			accepted = append(accepted, i)
		}
	}
	slices.SortStableFunc(accepted, func(a, b int) int {
		return strings.Compare(items[a].Event.IdempotencyKey, items[b].Event.IdempotencyKey)
	})
	inserts := make([]NewEvent, len(accepted))
	for n, i := range accepted {
		inserts[n] = newEvent(items[i].Request.ID, items[i].Event)
	}
	created, err := tx.InsertEvents(ctx, inserts)
	if err != nil {
		return nil, nil, err
	}
	originals, err := loadOriginals(ctx, tx, items, accepted, created)
	if err != nil {
		return nil, nil, err
	}

	// Only new events fan out: a duplicate's original did. Fan-out events
	// go after every event above, in key order among themselves, so that
	// all transactions take the keys in one order.
	var fanouts []NewEvent
	first := firstJobs{requests: map[string]*switchboard.Request{}}
	for n, i := range accepted {
		if originals[i] != nil {
			continue
		}
		// The request as stored, copied: publish changes the item's.
		req := items[i].Request
		req.EventID = items[i].Event.ID
		first.requests[req.ID] = &req
		first.add(inserts[n])
		for _, f := range items[i].Fanout {
			if err := f.ValidateFanout(); err != nil {
				return nil, nil, fmt.Errorf("fan-out of request %s: %w", items[i].Request.ID, err)
			}
			fanouts = append(fanouts, newEvent(items[i].Request.ID, f))
		}
	}
	slices.SortStableFunc(fanouts, byKey)
	if err := insertFanouts(ctx, tx, fanouts, &first); err != nil {
		return nil, nil, err
	}
	if err := tx.InsertRequests(ctx, recordedRequests(items, originals)); err != nil {
		return nil, nil, err
	}
	if err := debuggerAlertsTx(ctx, tx, items, originals); err != nil {
		return nil, nil, err
	}
	publish := func() {
		for i, it := range items {
			if it.Request.Outcome != switchboard.OutcomeAccepted {
				continue
			}
			if orig := originals[i]; orig != nil {
				it.Event, it.Duplicate = orig, true
				it.Request.Outcome, it.Request.Reason = switchboard.OutcomeDuplicate, "duplicate of event "+orig.ID
			}
			it.Request.EventID = it.Event.ID
		}
	}
	return first.jobs(), publish, nil
}

// loadOriginals returns, by item index, the stored original of each
// accepted item whose event was not created, held (KeyShare) until the
// transaction ends: a pruner deleting one meanwhile is waited for, and the
// event then missing fails the batch with errOriginalPruned, which flush
// tries again, where the item becomes a new event; otherwise the
// duplicate's request would commit naming an event already gone. Each
// duplicate gets its own copy, as if loaded on its own.
func loadOriginals(ctx context.Context, tx Tx, items []*switchboard.Ingest, accepted []int, created []bool) (map[int]*switchboard.Event, error) {
	var keys []string
	for n, i := range accepted {
		if !created[n] {
			keys = append(keys, items[i].Event.IdempotencyKey)
		}
	}
	originals := map[int]*switchboard.Event{}
	if len(keys) == 0 {
		return originals, nil
	}
	events, err := tx.Events(ctx, Query{Where: []Cond{In("idempotency_key", keys)}, Lock: KeyShare})
	if err != nil {
		return nil, fmt.Errorf("load originals of %d duplicates: %w", len(keys), err)
	}
	stored := make(map[string]*switchboard.Event, len(events))
	for _, e := range events {
		stored[e.IdempotencyKey] = e
	}
	for n, i := range accepted {
		if created[n] {
			continue
		}
		key := items[i].Event.IdempotencyKey
		orig, ok := stored[key]
		if !ok {
			return nil, fmt.Errorf("load original of duplicate %s: %w", key, errOriginalPruned)
		}
		e := *orig
		e.Response.Body = bytes.Clone(orig.Response.Body)
		originals[i] = &e
	}
	return originals, nil
}

// insertFanouts inserts fan-out events, skipping those whose keys are
// stored, and adds the new ones' first jobs.
func insertFanouts(ctx context.Context, tx Tx, fanouts []NewEvent, first *firstJobs) error {
	if len(fanouts) == 0 {
		return nil
	}
	created, err := tx.InsertEvents(ctx, fanouts)
	if err != nil {
		return fmt.Errorf("store fan-out events: %w", err)
	}
	for n, f := range fanouts {
		if created[n] {
			first.add(f)
		}
	}
	return nil
}

// recordedRequests returns the requests of items to store: each accepted
// one naming its event, a duplicate as its metadata (or not at all, when
// the item declines: Ingest.DuplicateRecord).
func recordedRequests(items []*switchboard.Ingest, originals map[int]*switchboard.Event) []*switchboard.Request {
	out := make([]*switchboard.Request, 0, len(items))
	for i, it := range items {
		req := it.Request
		if req.Outcome == switchboard.OutcomeAccepted {
			req.EventID = it.Event.ID
			if orig := originals[i]; orig != nil {
				var record bool
				if req, record = it.DuplicateRecord(orig.ID); !record {
					continue
				}
			}
		}
		out = append(out, &req)
	}
	return out
}

// IngestFanout creates fan-out events of stored requests, each with its
// first delivery job, skipping those whose keys are stored, in one
// transaction, in key order like ingestTx. Each request is held (KeyShare)
// until the commit, so that a pruner deleting a request as its last event
// goes waits for this one, and then sees it (see Prune).
func (s *Store) IngestFanout(ctx context.Context, events []*switchboard.Event) error {
	fanouts := make([]NewEvent, len(events))
	for i, ev := range events {
		if err := ev.ValidateFanout(); err != nil {
			return err
		}
		if ev.RequestID == "" {
			return fmt.Errorf("%w: fan-out event %s without a request", switchboard.ErrInvalid, ev.ID)
		}
		fanouts[i] = newEvent(ev.RequestID, ev)
	}
	slices.SortStableFunc(fanouts, byKey)
	return s.driver.InTx(ctx, func(tx Tx) error {
		for _, f := range fanouts {
			ok, err := tx.Exists(ctx, TableRequests, Query{Where: []Cond{Eq("id", f.RequestID)}, Lock: KeyShare})
			if err != nil {
				return fmt.Errorf("fan-out event %s: look up request %s: %w", f.Event.ID, f.RequestID, err)
			}
			if !ok {
				return fmt.Errorf("fan-out event %s: request %s: %w", f.Event.ID, f.RequestID, switchboard.ErrNotFound)
			}
		}
		var first firstJobs
		if err := insertFanouts(ctx, tx, fanouts, &first); err != nil {
			return err
		}
		return tx.InsertJobs(ctx, first.jobs())
	})
}

// attemptsTx stores attempts, event states and replaced responses, and
// returns the deliveries still to be made. The attempt count only moves
// forward, so a stale result (from a job rescued while a newer one ran)
// cannot undo a newer one; a result with no attempt made applies only to
// the event it was decided on (see Tx.ApplyAttempts). The job of a stale
// one is scheduled all the same: it carries an attempt count the event
// no longer has, or finds it terminal, and does nothing.
func attemptsTx(ctx context.Context, tx Tx, results []*switchboard.AttemptResult) ([]jobs.Scheduled, error) {
	if len(results) == 0 {
		return nil, nil
	}
	var next []jobs.Scheduled
	writes := make([]AttemptWrite, len(results))
	for i, r := range results {
		a := r.Attempt
		writes[i] = AttemptWrite{Result: r, UpdatedAt: a.StartedAt.Add(a.Latency)}
		if !r.State.Terminal() {
			writes[i].NextAttemptAt = r.NextAttemptAt
			next = append(next, jobs.Scheduled{Events: []jobs.Due{{EventID: a.EventID, Attempts: r.AttemptsAfter()}}, At: r.NextAttemptAt})
		}
	}
	if err := tx.ApplyAttempts(ctx, writes); err != nil {
		return nil, fmt.Errorf("store %d attempts: %w", len(results), err)
	}
	return next, nil
}

// Replay schedules new deliveries for matching terminal events. The
// engine's update re-checks the state of a row another transaction
// changed meanwhile, so concurrent replays of one event schedule it once.
func (s *Store) Replay(ctx context.Context, f switchboard.ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if !replayText(f) {
		return 0, noneToReplay(f)
	}
	where := replayWhere(f)
	var due []jobs.Due
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		if due, err = tx.MarkForReplay(ctx, where, s.now()); err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		return tx.InsertJobs(ctx, jobs.Batch(due))
	})
	if err != nil {
		return 0, err
	}
	if len(due) == 0 && f.EventID != "" {
		if _, err := s.Event(ctx, f.EventID); err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
	}
	return len(due), nil
}
