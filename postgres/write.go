package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/writes"
)

const insertRequest = `INSERT INTO requests
    (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// A conflicting insert from a concurrent transaction waits for it to end,
// so when no id comes back the original is committed (or ours) and the next
// statement sees it. An event is due at its creation time ($13), or, with
// insertDelayedEvent, at its Event.NextAttemptAt ($14).
const (
	insertEvent        = insertEventHead + `$13` + insertEventTail
	insertDelayedEvent = insertEventHead + `$14` + insertEventTail
	insertEventHead    = `INSERT INTO events
    (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
     response_status, response_content_type, response_body, state, attempts,
     created_at, updated_at, next_attempt_at, last_error)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0, $13, $13, `
	insertEventTail = `, '')
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id`
)

// queueInsert queues the insert of ev, an event of request reqID, on b;
// its row comes back with the event's id when the event is new, and none
// when an event with its idempotency key is stored already.
func queueInsert(b *pgx.Batch, reqID string, ev *switchboard.Event) {
	args := []any{ev.ID, reqID, ev.Route, ev.AccountSID, string(ev.Kind), ev.MessageSID, ev.CallSID,
		ev.IdempotencyKey, ev.Target, ev.Response.Status, ev.Response.ContentType, nonNil(ev.Response.Body), ev.CreatedAt}
	if ev.NextAttemptAt.IsZero() {
		b.Queue(insertEvent, args...)
	} else {
		b.Queue(insertDelayedEvent, append(args, ev.NextAttemptAt)...)
	}
}

// inserted reads the row of an insert queueInsert queued: whether the
// event was new.
func inserted(br pgx.BatchResults) (bool, error) {
	var id string
	switch err := br.QueryRow().Scan(&id); {
	case err == nil:
		return true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	default:
		return false, err
	}
}

// firstJob adds the first delivery job of a new event to due, or, when
// its first delivery is delayed (Event.NextAttemptAt), to delayed.
func firstJob(ev *switchboard.Event, due *[]jobs.Due, delayed *[]jobs.Scheduled) {
	if ev.NextAttemptAt.IsZero() {
		*due = append(*due, jobs.Due{EventID: ev.ID})
	} else {
		*delayed = append(*delayed, jobs.Scheduled{Events: []jobs.Due{{EventID: ev.ID}}, At: ev.NextAttemptAt})
	}
}

// fanout is a fan-out event (switchboard.Ingest.Fanout) to insert for a
// stored request.
type fanout struct {
	reqID string
	event *switchboard.Event
}

// flush writes a batch of operations in one transaction. The ingests of all
// operations are stored together, so that their events are inserted in one
// key order (see ingestTx).
func (s *Store) flush(ctx context.Context, ops []*writes.Op) error {
	var items []*switchboard.Ingest
	var results []*switchboard.AttemptResult
	for _, op := range ops {
		items = append(items, op.Ingests...)
		results = append(results, op.Attempts...)
	}
	write := func(tx pgx.Tx) error {
		due, delayed, publish, err := ingestTx(ctx, tx, items)
		if err != nil {
			return err
		}
		// All ingests of the batch were written together: publish them once.
		ops[0].Publish = publish
		retries, err := attemptsTx(ctx, tx, results)
		if err != nil {
			return err
		}
		return s.queue.InsertTx(ctx, tx, append(append(jobs.Batch(due), delayed...), retries...))
	}
	// A duplicate whose original a pruner deleted meanwhile is a new event
	// in a fresh transaction, where its key no longer conflicts; each retry
	// follows a pruner's commit, so a few are plenty.
	for try := 1; ; try++ {
		err := s.inTx(ctx, write)
		if !errors.Is(err, errOriginalPruned) || try == 3 {
			return err
		}
	}
}

// errOriginalPruned is ingestTx's failure when the original of a duplicate
// was deleted by a concurrent Store.Prune after the duplicate's insert
// found it.
var errOriginalPruned = errors.New("original of a duplicate pruned meanwhile")

// ingestTx stores requests, their events and the fan-out events of the new
// ones. Event inserts go in one pipelined round trip and fan-out and
// request inserts in another; duplicates cost one more, only when there
// are any. It returns the new events due now, to be
// batched, and the jobs of those whose first delivery is delayed
// (Event.NextAttemptAt). Results are published only after the commit, so a
// failed batch leaves the items as they were for the one-by-one retry.
func ingestTx(ctx context.Context, tx pgx.Tx, items []*switchboard.Ingest) ([]jobs.Due, []jobs.Scheduled, func(), error) {
	type result struct {
		dup   bool
		event *switchboard.Event
	}
	results := make([]result, len(items))
	// Events are inserted in idempotency key order, so that transactions
	// sharing keys wait on each other in the same order and cannot
	// deadlock. The sort is stable: the first of a batch's items with one
	// key is the original, the others its duplicates.
	var accepted []int
	for i, it := range items {
		if it.Request.Outcome == switchboard.OutcomeAccepted {
			accepted = append(accepted, i)
		}
	}
	slices.SortStableFunc(accepted, func(a, b int) int {
		return strings.Compare(items[a].Event.IdempotencyKey, items[b].Event.IdempotencyKey)
	})

	var dupKeys []string
	var due []jobs.Due
	var delayed []jobs.Scheduled
	err := func() error {
		if len(accepted) > 0 {
			b := &pgx.Batch{}
			for _, i := range accepted {
				queueInsert(b, items[i].Request.ID, items[i].Event)
			}
			br := tx.SendBatch(ctx, b)
			for _, i := range accepted {
				created, err := inserted(br)
				switch {
				case err != nil:
					br.Close()
					return fmt.Errorf("store event %s: %w", items[i].Event.ID, err)
				case created:
					results[i] = result{event: items[i].Event}
				default:
					results[i] = result{dup: true}
					dupKeys = append(dupKeys, items[i].Event.IdempotencyKey)
				}
			}
			if err := br.Close(); err != nil {
				return fmt.Errorf("store events: %w", err)
			}
		}

		if len(dupKeys) > 0 {
			originals, err := eventsByKey(ctx, tx, dupKeys)
			if err != nil {
				return err
			}
			for _, i := range accepted {
				if !results[i].dup {
					continue
				}
				key := items[i].Event.IdempotencyKey
				orig, ok := originals[key]
				if !ok {
					return fmt.Errorf("load original of duplicate %s: %w", key, errOriginalPruned)
				}
				// Each duplicate gets its own copy, as if loaded on its own.
				e := *orig
				e.Response.Body = bytes.Clone(orig.Response.Body)
				results[i].event = &e
			}
		}

		// Only new events fan out: a duplicate's original did. Fan-out
		// events go in the same round trip as the requests, after every
		// event above and in key order among themselves, so that all
		// transactions take the keys in one order.
		var fanouts []fanout
		for _, i := range accepted {
			if results[i].dup {
				continue
			}
			for _, f := range items[i].Fanout {
				if err := f.ValidateFanout(); err != nil {
					return fmt.Errorf("fan-out of request %s: %w", items[i].Request.ID, err)
				}
				fanouts = append(fanouts, fanout{reqID: items[i].Request.ID, event: f})
			}
		}
		slices.SortStableFunc(fanouts, func(a, b fanout) int {
			return strings.Compare(a.event.IdempotencyKey, b.event.IdempotencyKey)
		})
		b := &pgx.Batch{}
		for _, f := range fanouts {
			queueInsert(b, f.reqID, f.event)
		}
		var recorded []*switchboard.Request // queued after the fan-outs, in order
		for i, it := range items {
			req := it.Request
			if req.Outcome == switchboard.OutcomeAccepted {
				req.EventID = results[i].event.ID
				if results[i].dup {
					var record bool
					if req, record = it.DuplicateRecord(req.EventID); !record {
						continue
					}
				} else {
					firstJob(it.Event, &due, &delayed)
				}
			}
			recorded = append(recorded, &req)
			header, err := encodeHeader(req.Header)
			if err != nil {
				return fmt.Errorf("encode headers of request %s: %w", req.ID, err)
			}
			b.Queue(insertRequest, req.ID, req.ReceivedAt, req.Route, req.Method, req.URL, header,
				nonNil(req.Body), req.RemoteAddr, string(req.Outcome), req.Reason, nullString(req.EventID))
		}
		br := tx.SendBatch(ctx, b)
		for _, f := range fanouts {
			created, err := inserted(br)
			if err != nil {
				br.Close()
				return fmt.Errorf("store fan-out event %s of request %s: %w", f.event.ID, f.reqID, err)
			}
			if created {
				firstJob(f.event, &due, &delayed)
			}
		}
		for _, req := range recorded {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("store request %s: %w", req.ID, err)
			}
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("store requests: %w", err)
		}

		return nil
	}()
	if err != nil {
		return nil, nil, nil, err
	}
	publish := func() {
		for i, it := range items {
			if it.Request.Outcome != switchboard.OutcomeAccepted {
				continue
			}
			it.Event = results[i].event
			it.Request.EventID = it.Event.ID
			if results[i].dup {
				it.Duplicate = true
				it.Request.Outcome = switchboard.OutcomeDuplicate
				it.Request.Reason = "duplicate of event " + it.Event.ID
			}
		}
	}
	return due, delayed, publish, nil
}

// IngestFanout creates fan-out events of stored requests, each with its
// first delivery job, skipping those whose keys are stored, in one
// transaction. Like ingestTx, it inserts them in key order.
func (s *Store) IngestFanout(ctx context.Context, events []*switchboard.Event) error {
	for _, ev := range events {
		if err := ev.ValidateFanout(); err != nil {
			return err
		}
		if ev.RequestID == "" {
			return fmt.Errorf("%w: fan-out event %s without a request", switchboard.ErrInvalid, ev.ID)
		}
	}
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b *switchboard.Event) int {
		return strings.Compare(a.IdempotencyKey, b.IdempotencyKey)
	})
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var due []jobs.Due
		var delayed []jobs.Scheduled
		for _, ev := range sorted {
			// Held until the commit, so that a pruner deleting the
			// request as its last event goes waits for this one, and
			// then sees it (see Store.Prune).
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM requests WHERE id = $1 FOR KEY SHARE`, ev.RequestID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("fan-out event %s: request %s: %w", ev.ID, ev.RequestID, switchboard.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("fan-out event %s: look up request %s: %w", ev.ID, ev.RequestID, err)
			}
			b := &pgx.Batch{}
			queueInsert(b, ev.RequestID, ev)
			br := tx.SendBatch(ctx, b)
			created, err := inserted(br)
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("store fan-out event %s of request %s: %w", ev.ID, ev.RequestID, err)
			}
			if created {
				firstJob(ev, &due, &delayed)
			}
		}
		return s.queue.InsertTx(ctx, tx, append(jobs.Batch(due), delayed...))
	})
}

// eventsByKey loads the events with the given idempotency keys, by key,
// and holds them (FOR KEY SHARE) until the transaction ends: a pruner
// (Store.Prune) deleting one meanwhile is waited for, and the event then
// missing fails the transaction with errOriginalPruned, which flush tries
// again, where the retry becomes a new event; otherwise the duplicate's
// request would commit naming an event already gone. Updates of an event (attempts, replays) do not wait
// on this lock, nor it on them.
func eventsByKey(ctx context.Context, tx pgx.Tx, keys []string) (map[string]*switchboard.Event, error) {
	rows, err := tx.Query(ctx, selectEvent+` WHERE idempotency_key = ANY($1) FOR KEY SHARE`, keys)
	if err != nil {
		return nil, fmt.Errorf("load originals of %d duplicates: %w", len(keys), err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*switchboard.Event, error) {
		return scanEvent(row)
	})
	if err != nil {
		return nil, fmt.Errorf("load originals of %d duplicates: %w", len(keys), err)
	}
	byKey := make(map[string]*switchboard.Event, len(events))
	for _, e := range events {
		byKey[e.IdempotencyKey] = e
	}
	return byKey, nil
}

const insertAttempt = `INSERT INTO attempts
    (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
     error, response_header, response_excerpt)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// The attempt count only moves forward, so a stale result (from a job that
// was rescued while a newer one ran) cannot undo a newer one. The response
// columns take NULL for "unchanged".
const updateEventAfterAttempt = `UPDATE events SET
    state = $1, attempts = GREATEST(attempts, $2), updated_at = $3, next_attempt_at = $4,
    delivered_at = CASE WHEN $1 = 'delivered' THEN $3 ELSE delivered_at END,
    last_error = CASE WHEN $5 <> '' THEN $5 ELSE last_error END,
    response_status = COALESCE($7::integer, response_status),
    response_content_type = COALESCE($8::text, response_content_type),
    response_body = COALESCE($9::bytea, response_body)
    WHERE id = $6`

// attemptsTx stores attempts, event states and replaced responses in one
// pipelined round trip, and returns the deliveries still to be made.
func attemptsTx(ctx context.Context, tx pgx.Tx, results []*switchboard.AttemptResult) ([]jobs.Scheduled, error) {
	if len(results) == 0 {
		return nil, nil
	}
	var next []jobs.Scheduled
	b := &pgx.Batch{}
	for _, r := range results {
		a := r.Attempt
		if a.Number > 0 {
			header, err := encodeHeader(a.ResponseHeader)
			if err != nil {
				return nil, fmt.Errorf("encode response headers of attempt %d of event %s: %w", a.Number, a.EventID, err)
			}
			b.Queue(insertAttempt, a.EventID, a.Number, a.StartedAt, a.TargetURL, a.StatusCode,
				a.Latency.Microseconds(), a.ErrorClass, a.TwilioCode, a.Error, header, nonNil(a.ResponseExcerpt))
		}
		var nextAt *time.Time
		if !r.State.Terminal() {
			nextAt = &r.NextAttemptAt
			next = append(next, jobs.Scheduled{Events: []jobs.Due{{EventID: a.EventID, Attempts: r.AttemptsAfter()}}, At: r.NextAttemptAt})
		}
		var status, contentType, body any // NULL: keep the stored response
		if resp := r.Response; resp != nil {
			status, contentType, body = resp.Status, resp.ContentType, nonNil(resp.Body)
		}
		b.Queue(updateEventAfterAttempt, string(r.State), r.AttemptsAfter(), a.StartedAt.Add(a.Latency), nextAt,
			a.Error, a.EventID, status, contentType, body)
	}
	br := tx.SendBatch(ctx, b)
	for _, r := range results {
		a := r.Attempt
		if a.Number > 0 {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return nil, fmt.Errorf("store attempt %d of event %s: %w", a.Number, a.EventID, err)
			}
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("update event %s after attempt %d: %w", a.EventID, a.Number, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("store attempts: %w", err)
	}
	return next, nil
}

// Replay schedules new deliveries for matching terminal events. The UPDATE
// re-checks the state of a row another transaction changed meanwhile, so
// concurrent replays of one event schedule it once.
func (s *Store) Replay(ctx context.Context, f switchboard.ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	w := whereBuilder{}
	now := w.arg(time.Now())
	if f.State != "" {
		w.add("state = " + w.arg(string(f.State)))
	} else {
		w.add("state IN ('delivered', 'dead')")
	}
	if f.EventID != "" {
		w.add("id = " + w.arg(f.EventID))
	}
	if f.Route != "" {
		w.add("route = " + w.arg(f.Route))
	}
	if !f.Since.IsZero() {
		w.add("created_at >= " + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at < " + w.arg(f.Until))
	}
	query := `UPDATE events SET state = 'pending', next_attempt_at = ` + now + `, updated_at = ` + now +
		w.whereClause() + ` RETURNING id, attempts`
	var due []jobs.Due
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, w.args...)
		if err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		due, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.Due, error) {
			var d jobs.Due
			return d, row.Scan(&d.EventID, &d.Attempts)
		})
		if err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		return s.queue.InsertTx(ctx, tx, jobs.Batch(due))
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

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nonNil keeps NOT NULL bytea columns from receiving NULL for empty bodies:
// pgx sends a nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// encodeHeader returns h as JSON text for a jsonb column (pgx passes a
// string through as JSON as is); a nil header is stored as {}.
func encodeHeader(h http.Header) (string, error) {
	if h == nil {
		return "{}", nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeHeader(b []byte) (http.Header, error) {
	h := http.Header{}
	if len(b) == 0 || string(b) == "null" {
		return h, nil
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	return h, nil
}
