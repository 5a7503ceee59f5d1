package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/writes"
)

const insertRequest = `INSERT INTO requests
    (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertEvent = `INSERT INTO events
    (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
     response_status, response_content_type, response_body, state, attempts,
     created_at, updated_at, next_attempt_at, last_error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '')
    ON CONFLICT (idempotency_key) DO NOTHING`

// insertNew inserts ev, an event of request reqID, with the prepared
// insertEvent, and reports whether it was new: false when an event with
// its idempotency key is stored already.
func insertNew(ctx context.Context, stmt *sql.Stmt, reqID string, ev *switchboard.Event) (bool, error) {
	nextAt := ev.CreatedAt
	if !ev.NextAttemptAt.IsZero() {
		nextAt = ev.NextAttemptAt
	}
	res, err := stmt.ExecContext(ctx, ev.ID, reqID, ev.Route, ev.AccountSID, string(ev.Kind),
		ev.MessageSID, ev.CallSID, ev.IdempotencyKey, ev.Target, ev.Response.Status, ev.Response.ContentType,
		nonNil(ev.Response.Body), micros(ev.CreatedAt), micros(ev.CreatedAt), micros(nextAt))
	if err != nil {
		return false, fmt.Errorf("store event %s: %w", ev.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store event %s: %w", ev.ID, err)
	}
	return n == 1, nil
}

// firstJobs gathers the first delivery jobs of new events: due now, to be
// batched, or delayed to their Event.NextAttemptAt.
type firstJobs struct {
	due     []jobs.Due
	delayed []jobs.Scheduled
}

func (j *firstJobs) add(ev *switchboard.Event) {
	if ev.NextAttemptAt.IsZero() {
		j.due = append(j.due, jobs.Due{EventID: ev.ID})
	} else {
		j.delayed = append(j.delayed, jobs.Scheduled{Events: []jobs.Due{{EventID: ev.ID}}, At: ev.NextAttemptAt})
	}
}

// insertFanout inserts the fan-out events of request reqID (see
// switchboard.Ingest.Fanout) whose keys are not stored yet, and adds
// their first jobs to j.
func insertFanout(ctx context.Context, stmt *sql.Stmt, reqID string, events []*switchboard.Event, j *firstJobs) error {
	for _, f := range events {
		if err := f.ValidateFanout(); err != nil {
			return fmt.Errorf("fan-out of request %s: %w", reqID, err)
		}
		created, err := insertNew(ctx, stmt, reqID, f)
		if err != nil {
			return fmt.Errorf("fan-out of request %s: %w", reqID, err)
		}
		if created {
			j.add(f)
		}
	}
	return nil
}

// flush writes a batch of operations in one transaction: one fsync for all.
func (s *Store) flush(ctx context.Context, ops []*writes.Op) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var due []jobs.Due
		var scheduled []jobs.Scheduled // delayed first deliveries and retries
		for _, op := range ops {
			if len(op.Ingests) > 0 {
				d, delayed, publish, err := ingestTx(ctx, tx, op.Ingests)
				if err != nil {
					return err
				}
				due, op.Publish = append(due, d...), publish
				scheduled = append(scheduled, delayed...)
			}
			if len(op.Attempts) > 0 {
				r, err := attemptsTx(ctx, tx, op.Attempts)
				if err != nil {
					return err
				}
				scheduled = append(scheduled, r...)
			}
		}
		return s.queue.InsertTx(ctx, tx, append(jobs.Batch(due), scheduled...))
	})
}

// ingestTx stores requests, their events and the fan-out events of the new
// ones. It returns the new events due now, to be batched, and the jobs of
// those whose first delivery is delayed (Event.NextAttemptAt). Results are
// published only after the commit, so a failed batch leaves the items as
// they were for the one-by-one retry.
func ingestTx(ctx context.Context, tx *sql.Tx, items []*switchboard.Ingest) ([]jobs.Due, []jobs.Scheduled, func(), error) {
	reqStmt, err := tx.PrepareContext(ctx, insertRequest)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("prepare request insert: %w", err)
	}
	defer reqStmt.Close()
	evStmt, err := tx.PrepareContext(ctx, insertEvent)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("prepare event insert: %w", err)
	}
	defer evStmt.Close()

	originals := make([]*switchboard.Event, len(items)) // set for duplicates
	var first firstJobs
	for i, it := range items {
		req := it.Request
		if req.Outcome == switchboard.OutcomeAccepted {
			ev := it.Event
			created, err := insertNew(ctx, evStmt, req.ID, ev)
			if err != nil {
				return nil, nil, nil, err
			}
			if created {
				first.add(ev)
				req.EventID = ev.ID
				// Only a new event fans out: a duplicate's original did.
				if err := insertFanout(ctx, evStmt, req.ID, it.Fanout, &first); err != nil {
					return nil, nil, nil, err
				}
			} else {
				existing, err := scanEvent(tx.QueryRowContext(ctx, selectEvent+` WHERE idempotency_key = ?`, ev.IdempotencyKey))
				if err != nil {
					return nil, nil, nil, fmt.Errorf("load original of duplicate %s: %w", ev.IdempotencyKey, err)
				}
				originals[i] = existing
				var record bool
				if req, record = it.DuplicateRecord(existing.ID); !record {
					continue
				}
			}
		}
		header, err := json.Marshal(req.Header)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encode headers of request %s: %w", req.ID, err)
		}
		if _, err := reqStmt.ExecContext(ctx, req.ID, micros(req.ReceivedAt), req.Route, req.Method, req.URL,
			string(header), nonNil(req.Body), req.RemoteAddr, string(req.Outcome), req.Reason, nullString(req.EventID)); err != nil {
			return nil, nil, nil, fmt.Errorf("store request %s: %w", req.ID, err)
		}
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
	return first.due, first.delayed, publish, nil
}

// IngestFanout creates fan-out events of stored requests, each with its
// first delivery job, skipping those whose keys are stored, in one
// transaction.
func (s *Store) IngestFanout(ctx context.Context, events []*switchboard.Event) error {
	for _, ev := range events {
		if err := ev.ValidateFanout(); err != nil {
			return err
		}
		if ev.RequestID == "" {
			return fmt.Errorf("%w: fan-out event %s without a request", switchboard.ErrInvalid, ev.ID)
		}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, insertEvent)
		if err != nil {
			return fmt.Errorf("prepare event insert: %w", err)
		}
		defer stmt.Close()
		var first firstJobs
		for _, ev := range events {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM requests WHERE id = ?`, ev.RequestID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("fan-out event %s: request %s: %w", ev.ID, ev.RequestID, switchboard.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("fan-out event %s: look up request %s: %w", ev.ID, ev.RequestID, err)
			}
			if err := insertFanout(ctx, stmt, ev.RequestID, []*switchboard.Event{ev}, &first); err != nil {
				return err
			}
		}
		return s.queue.InsertTx(ctx, tx, append(jobs.Batch(first.due), first.delayed...))
	})
}

const insertAttempt = `INSERT INTO attempts
    (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
     error, response_header, response_excerpt)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// The attempt count only moves forward, so a stale result cannot undo a
// newer one. The response columns take NULL for "unchanged".
const updateEventAfterAttempt = `UPDATE events SET
    state = ?, attempts = max(attempts, ?), updated_at = ?, next_attempt_at = ?,
    delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,
    last_error = CASE WHEN ? <> '' THEN ? ELSE last_error END,
    response_status = coalesce(?, response_status),
    response_content_type = coalesce(?, response_content_type),
    response_body = coalesce(?, response_body)
    WHERE id = ?`

// attemptsTx stores attempts, event states and replaced responses, and
// returns the deliveries still to be made.
func attemptsTx(ctx context.Context, tx *sql.Tx, results []*switchboard.AttemptResult) ([]jobs.Scheduled, error) {
	var next []jobs.Scheduled
	for _, r := range results {
		a := r.Attempt
		if a.Number > 0 {
			header, err := json.Marshal(a.ResponseHeader)
			if err != nil {
				return nil, fmt.Errorf("encode response headers: %w", err)
			}
			if _, err := tx.ExecContext(ctx, insertAttempt, a.EventID, a.Number, micros(a.StartedAt), a.TargetURL,
				a.StatusCode, a.Latency.Microseconds(), a.ErrorClass, a.TwilioCode, a.Error, string(header),
				nonNil(a.ResponseExcerpt)); err != nil {
				return nil, fmt.Errorf("store attempt %d of event %s: %w", a.Number, a.EventID, err)
			}
		}
		now := micros(a.StartedAt.Add(a.Latency))
		var nextAt sql.NullInt64
		if !r.State.Terminal() {
			nextAt = sql.NullInt64{Int64: micros(r.NextAttemptAt), Valid: true}
			next = append(next, jobs.Scheduled{Events: []jobs.Due{{EventID: a.EventID, Attempts: r.AttemptsAfter()}}, At: r.NextAttemptAt})
		}
		var status, contentType, body any // NULL: keep the stored response
		if resp := r.Response; resp != nil {
			status, contentType, body = resp.Status, resp.ContentType, nonNil(resp.Body)
		}
		if _, err := tx.ExecContext(ctx, updateEventAfterAttempt, string(r.State), r.AttemptsAfter(), now, nextAt,
			string(r.State), now, a.Error, a.Error, status, contentType, body, a.EventID); err != nil {
			return nil, fmt.Errorf("update event %s after attempt %d: %w", a.EventID, a.Number, err)
		}
	}
	return next, nil
}

// Replay schedules new deliveries for matching terminal events.
func (s *Store) Replay(ctx context.Context, f switchboard.ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	where, args := replayWhere(f)
	var due []jobs.Due
	now := micros(time.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE events SET state = 'pending', next_attempt_at = ?, updated_at = ?
            WHERE `+where+` RETURNING id, attempts`, append([]any{now, now}, args...)...)
		if err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d jobs.Due
			if err := rows.Scan(&d.EventID, &d.Attempts); err != nil {
				return fmt.Errorf("mark events for replay: %w", err)
			}
			due = append(due, d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		return s.queue.InsertTx(ctx, tx, jobs.Batch(due))
	})
	if err != nil {
		return 0, err
	}
	if len(due) == 0 && f.EventID != "" {
		if _, err := s.Event(ctx, f.EventID); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

func replayWhere(f switchboard.ReplayFilter) (string, []any) {
	w := whereBuilder{}
	if f.State != "" {
		w.add("state = ?", string(f.State))
	} else {
		w.add("state IN ('delivered', 'dead')")
	}
	if f.EventID != "" {
		w.add("id = ?", f.EventID)
	}
	if f.Route != "" {
		w.add("route = ?", f.Route)
	}
	if !f.Since.IsZero() {
		w.add("created_at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at < ?", micros(f.Until))
	}
	return w.sql(), w.args
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nonNil keeps NOT NULL blob columns from receiving NULL for empty bodies.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func decodeHeader(s string) (http.Header, error) {
	var h http.Header
	if s == "" || s == "null" {
		return http.Header{}, nil
	}
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	return h, nil
}
