package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/store"
)

const selectEvent = `SELECT id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key,
    target, response_status, response_content_type, response_body, state, attempts, created_at, updated_at,
    next_attempt_at, delivered_at, last_error, last_code, from_number, to_number FROM events`

func scanEvent(row rowScanner) (*switchboard.Event, error) {
	var (
		e                    switchboard.Event
		kind, state          string
		created, updated     int64
		nextAttempt, deliver sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.RequestID, &e.Route, &e.AccountSID, &kind, &e.MessageSID, &e.CallSID,
		&e.IdempotencyKey, &e.Target, &e.Response.Status, &e.Response.ContentType, &e.Response.Body, &state,
		&e.Attempts, &created, &updated, &nextAttempt, &deliver, &e.LastError, &e.LastCode, &e.From, &e.To)
	if err != nil {
		return nil, err
	}
	e.Kind, e.State = switchboard.Kind(kind), switchboard.State(state)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	if !e.State.Terminal() {
		e.NextAttemptAt = nullMicros(nextAttempt)
	}
	e.DeliveredAt = nullMicros(deliver)
	return &e, nil
}

func (c *conn) Events(ctx context.Context, q store.Query) ([]*switchboard.Event, error) {
	query, args := dialect.Select(selectEvent, q)
	return collect(ctx, c.q, query, args, scanEvent)
}

const selectRequest = `SELECT id, received_at, route, method, url, header, body, remote_addr, outcome, reason,
    coalesce(event_id, '') FROM requests`

func scanRequest(row rowScanner) (*switchboard.Request, error) {
	var (
		r               switchboard.Request
		received        int64
		header, outcome string
	)
	err := row.Scan(&r.ID, &received, &r.Route, &r.Method, &r.URL, &header, &r.Body, &r.RemoteAddr,
		&outcome, &r.Reason, &r.EventID)
	if err != nil {
		return nil, err
	}
	r.ReceivedAt, r.Outcome = fromMicros(received), switchboard.Outcome(outcome)
	if r.Header, err = decodeHeader(header); err != nil {
		return nil, fmt.Errorf("request %s: %w", r.ID, err)
	}
	return &r, nil
}

func (c *conn) Requests(ctx context.Context, q store.Query) ([]*switchboard.Request, error) {
	query, args := dialect.Select(selectRequest, q)
	return collect(ctx, c.q, query, args, scanRequest)
}

func (c *conn) Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error) {
	return collect(ctx, c.q, `SELECT id, event_id, number, started_at, target_url, status_code,
        latency_us, error_class, twilio_code, error, response_header, response_excerpt
        FROM attempts WHERE event_id = ? ORDER BY id`, []any{eventID}, func(row rowScanner) (*switchboard.Attempt, error) {
		var (
			a              switchboard.Attempt
			started, latus int64
			header         string
		)
		if err := row.Scan(&a.ID, &a.EventID, &a.Number, &started, &a.TargetURL, &a.StatusCode, &latus,
			&a.ErrorClass, &a.TwilioCode, &a.Error, &header, &a.ResponseExcerpt); err != nil {
			return nil, err
		}
		a.StartedAt, a.Latency = fromMicros(started), time.Duration(latus)*time.Microsecond
		var err error
		a.ResponseHeader, err = decodeHeader(header)
		return &a, err
	})
}

func (c *conn) OldestDue(ctx context.Context, now time.Time) (time.Time, error) {
	var oldest sql.NullInt64
	err := c.q.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM events
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= ?`, micros(now)).Scan(&oldest)
	return nullMicros(oldest), err
}

// dueEvents is the dispatcher's view of the events table: the waiting
// events, through the events_due index.
type dueEvents struct{ db *sql.DB }

func (s dueEvents) DueEvents(ctx context.Context, now time.Time, limit int) ([]jobs.Due, error) {
	return collect(ctx, s.db, `SELECT id, attempts FROM events
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
		[]any{micros(now), limit}, func(row rowScanner) (jobs.Due, error) {
			var d jobs.Due
			return d, row.Scan(&d.EventID, &d.Attempts)
		})
}

func (s dueEvents) NextDue(ctx context.Context, after time.Time) (time.Time, error) {
	var next sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM events
        WHERE state IN ('pending', 'retrying') AND next_attempt_at > ?`, micros(after)).Scan(&next)
	return nullMicros(next), err
}

const insertEvent = `INSERT INTO events
    (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
     response_status, response_content_type, response_body, state, attempts,
     created_at, updated_at, next_attempt_at, last_error, from_number, to_number)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '', ?, ?)
    ON CONFLICT (idempotency_key) DO NOTHING`

func (c *conn) InsertEvents(ctx context.Context, events []store.NewEvent) ([]bool, error) {
	created := make([]bool, len(events))
	for i, n := range events {
		ev := n.Event
		res, err := c.q.ExecContext(ctx, insertEvent, ev.ID, n.RequestID, ev.Route, ev.AccountSID, string(ev.Kind),
			ev.MessageSID, ev.CallSID, ev.IdempotencyKey, ev.Target, ev.Response.Status, ev.Response.ContentType,
			nonNil(ev.Response.Body), micros(ev.CreatedAt), micros(ev.CreatedAt), micros(n.DueAt), ev.From, ev.To)
		if err != nil {
			return nil, fmt.Errorf("store event %s: %w", ev.ID, err)
		}
		rows, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("store event %s: %w", ev.ID, err)
		}
		created[i] = rows == 1
	}
	return created, nil
}

const insertRequest = `INSERT INTO requests
    (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (c *conn) InsertRequests(ctx context.Context, requests []*switchboard.Request) error {
	for _, req := range requests {
		header, err := encodeHeader(req.Header)
		if err != nil {
			return fmt.Errorf("request %s: %w", req.ID, err)
		}
		if _, err := c.q.ExecContext(ctx, insertRequest, req.ID, micros(req.ReceivedAt), req.Route, req.Method, req.URL,
			header, nonNil(req.Body), req.RemoteAddr, string(req.Outcome), req.Reason, nullString(req.EventID)); err != nil {
			return fmt.Errorf("store request %s: %w", req.ID, err)
		}
	}
	return nil
}

const insertAttempt = `INSERT INTO attempts
    (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
     error, response_header, response_excerpt)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// The response columns take NULL for "unchanged", and so does last_code,
// which only an attempt made sets. A result with no attempt made (?11 is
// its number, 0) applies only to the event as it was read: the same
// attempt count, not terminal; otherwise a delivery recorded meanwhile
// would be undone by it (see switchboard.Store.RecordAttempts).
const updateEventAfterAttempt = `UPDATE events SET
    state = ?1, attempts = max(attempts, ?2), updated_at = ?3, next_attempt_at = ?4,
    delivered_at = CASE WHEN ?1 = 'delivered' THEN ?3 ELSE delivered_at END,
    last_error = CASE WHEN ?5 <> '' THEN ?5 ELSE last_error END,
    last_code = coalesce(?10, last_code),
    response_status = coalesce(?7, response_status),
    response_content_type = coalesce(?8, response_content_type),
    response_body = coalesce(?9, response_body)
    WHERE id = ?6 AND CASE WHEN ?11 > 0 THEN attempts < ?11
        ELSE attempts = ?2 AND state NOT IN ('delivered', 'dead') END`

func (c *conn) ApplyAttempts(ctx context.Context, writes []store.AttemptWrite) error {
	for _, w := range writes {
		r, a := w.Result, w.Result.Attempt
		if a.Number > 0 {
			header, err := encodeHeader(a.ResponseHeader)
			if err != nil {
				return err
			}
			if _, err := c.q.ExecContext(ctx, insertAttempt, a.EventID, a.Number, micros(a.StartedAt), a.TargetURL,
				a.StatusCode, a.Latency.Microseconds(), a.ErrorClass, a.TwilioCode, a.Error, header,
				nonNil(a.ResponseExcerpt)); err != nil {
				return fmt.Errorf("store attempt %d of event %s: %w", a.Number, a.EventID, err)
			}
		}
		var status, contentType, body any // NULL: keep the stored response
		if resp := r.Response; resp != nil {
			status, contentType, body = resp.Status, resp.ContentType, nonNil(resp.Body)
		}
		var code any // NULL: keep the stored code
		if a.Number > 0 {
			code = a.TwilioCode
		}
		if _, err := c.q.ExecContext(ctx, updateEventAfterAttempt, string(r.State), r.AttemptsAfter(), micros(w.UpdatedAt),
			nullMicrosOf(w.NextAttemptAt), a.Error, a.EventID, status, contentType, body, code, a.Number); err != nil {
			return fmt.Errorf("update event %s after attempt %d: %w", a.EventID, a.Number, err)
		}
	}
	return nil
}

func (c *conn) MarkForReplay(ctx context.Context, where []store.Cond, now time.Time) ([]jobs.Due, error) {
	clause, args := dialect.Where(where)
	return collect(ctx, c.q, `UPDATE events SET state = 'pending', next_attempt_at = ?, updated_at = ?`+clause+
		` RETURNING id, attempts`, append([]any{micros(now), micros(now)}, args...), func(row rowScanner) (jobs.Due, error) {
		var d jobs.Due
		return d, row.Scan(&d.EventID, &d.Attempts)
	})
}
