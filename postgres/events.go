package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
		nextAttempt, deliver *time.Time
	)
	err := row.Scan(&e.ID, &e.RequestID, &e.Route, &e.AccountSID, &kind, &e.MessageSID, &e.CallSID,
		&e.IdempotencyKey, &e.Target, &e.Response.Status, &e.Response.ContentType, &e.Response.Body, &state,
		&e.Attempts, &e.CreatedAt, &e.UpdatedAt, &nextAttempt, &deliver, &e.LastError, &e.LastCode, &e.From, &e.To)
	if err != nil {
		return nil, err
	}
	e.Kind, e.State = switchboard.Kind(kind), switchboard.State(state)
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	if !e.State.Terminal() {
		e.NextAttemptAt = utc(nextAttempt)
	}
	e.DeliveredAt = utc(deliver)
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
		r       switchboard.Request
		header  []byte
		outcome string
	)
	err := row.Scan(&r.ID, &r.ReceivedAt, &r.Route, &r.Method, &r.URL, &header, &r.Body, &r.RemoteAddr,
		&outcome, &r.Reason, &r.EventID)
	if err != nil {
		return nil, err
	}
	r.ReceivedAt, r.Outcome = r.ReceivedAt.UTC(), switchboard.Outcome(outcome)
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
        FROM attempts WHERE event_id = $1 ORDER BY id`, []any{eventID}, func(row rowScanner) (*switchboard.Attempt, error) {
		var (
			a      switchboard.Attempt
			latus  int64
			header []byte
		)
		if err := row.Scan(&a.ID, &a.EventID, &a.Number, &a.StartedAt, &a.TargetURL, &a.StatusCode, &latus,
			&a.ErrorClass, &a.TwilioCode, &a.Error, &header, &a.ResponseExcerpt); err != nil {
			return nil, err
		}
		a.StartedAt, a.Latency = a.StartedAt.UTC(), time.Duration(latus)*time.Microsecond
		var err error
		a.ResponseHeader, err = decodeHeader(header)
		return &a, err
	})
}

func (c *conn) OldestDue(ctx context.Context, now time.Time) (time.Time, error) {
	var oldest *time.Time
	err := c.q.QueryRow(ctx, `SELECT min(next_attempt_at) FROM events
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= $1`, now).Scan(&oldest)
	return utc(oldest), err
}

// A conflicting insert from a concurrent transaction waits for it to end,
// so when no id comes back the original is committed (or ours) and the
// next statement sees it.
const insertEvent = `INSERT INTO events
    (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
     response_status, response_content_type, response_body, state, attempts,
     created_at, updated_at, next_attempt_at, last_error, from_number, to_number)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0, $13, $13, $14, '', $15, $16)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id`

// InsertEvents inserts the events in one round trip.
func (c *conn) InsertEvents(ctx context.Context, events []store.NewEvent) ([]bool, error) {
	if len(events) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	for _, n := range events {
		ev := n.Event
		b.Queue(insertEvent, ev.ID, n.RequestID, ev.Route, ev.AccountSID, string(ev.Kind), ev.MessageSID, ev.CallSID,
			ev.IdempotencyKey, ev.Target, ev.Response.Status, ev.Response.ContentType, nonNil(ev.Response.Body),
			ev.CreatedAt, n.DueAt, ev.From, ev.To)
	}
	br := c.q.SendBatch(ctx, b)
	created := make([]bool, len(events))
	for i, n := range events {
		var id string
		switch err := br.QueryRow().Scan(&id); {
		case err == nil:
			created[i] = true
		case !errors.Is(err, pgx.ErrNoRows):
			br.Close()
			return nil, fmt.Errorf("store event %s: %w", n.Event.ID, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	return created, nil
}

const insertRequest = `INSERT INTO requests
    (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// InsertRequests inserts the requests in one round trip.
func (c *conn) InsertRequests(ctx context.Context, requests []*switchboard.Request) error {
	b := &pgx.Batch{}
	for _, req := range requests {
		header, err := encodeHeader(req.Header)
		if err != nil {
			return fmt.Errorf("request %s: %w", req.ID, err)
		}
		b.Queue(insertRequest, req.ID, req.ReceivedAt, req.Route, req.Method, req.URL, header,
			nonNil(req.Body), req.RemoteAddr, string(req.Outcome), req.Reason, nullString(req.EventID))
	}
	return sendBatch(ctx, c.q, b, func(i int) string { return "store request " + requests[i].ID })
}

const insertAttempt = `INSERT INTO attempts
    (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
     error, response_header, response_excerpt)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// The response columns take NULL for "unchanged", and so does last_code,
// which only an attempt made sets. A result with no attempt made ($11 is
// its number, 0) applies only to the event as it was read: the same
// attempt count, not terminal; otherwise a delivery recorded meanwhile
// would be undone by it (see switchboard.Store.RecordAttempts). An
// attempt's result applies only while no later attempt is on record (a
// process that stalled past the takeover of its job, resuming to record
// what it was doing, must not undo the delivery made meanwhile); its
// attempt row is kept either way. Under READ COMMITTED, an update that
// waited on a concurrent one checks this again on the row that one left.
const updateEventAfterAttempt = `UPDATE events SET
    state = $1, attempts = GREATEST(attempts, $2), updated_at = $3, next_attempt_at = $4,
    delivered_at = CASE WHEN $1 = 'delivered' THEN $3 ELSE delivered_at END,
    last_error = CASE WHEN $5 <> '' THEN $5 ELSE last_error END,
    last_code = COALESCE($10::integer, last_code),
    response_status = COALESCE($7::integer, response_status),
    response_content_type = COALESCE($8::text, response_content_type),
    response_body = COALESCE($9::bytea, response_body)
    WHERE id = $6 AND CASE WHEN $11::integer > 0 THEN attempts < $11::integer
        ELSE attempts = $2 AND state NOT IN ('delivered', 'dead') END`

// ApplyAttempts writes the attempts and event updates in one round trip.
// A delivery records one for every attempt, so the names of the
// statements, for an error, are written only when one fails.
func (c *conn) ApplyAttempts(ctx context.Context, writes []store.AttemptWrite) error {
	type statement struct {
		attempt *switchboard.Attempt
		insert  bool // the attempt's insert, else its event's update
	}
	b := &pgx.Batch{}
	var queued []statement
	for _, w := range writes {
		r, a := w.Result, &w.Result.Attempt
		if a.Number > 0 {
			header, err := encodeHeader(a.ResponseHeader)
			if err != nil {
				return err
			}
			b.Queue(insertAttempt, a.EventID, a.Number, a.StartedAt, a.TargetURL, a.StatusCode,
				a.Latency.Microseconds(), a.ErrorClass, a.TwilioCode, a.Error, header, nonNil(a.ResponseExcerpt))
			queued = append(queued, statement{a, true})
		}
		var status, contentType, body any // NULL: keep the stored response
		if resp := r.Response; resp != nil {
			status, contentType, body = resp.Status, resp.ContentType, nonNil(resp.Body)
		}
		var code any // NULL: keep the stored code
		if a.Number > 0 {
			code = a.TwilioCode
		}
		b.Queue(updateEventAfterAttempt, string(r.State), r.AttemptsAfter(), w.UpdatedAt, nullTime(w.NextAttemptAt),
			a.Error, a.EventID, status, contentType, body, code, a.Number)
		queued = append(queued, statement{a, false})
	}
	return sendBatch(ctx, c.q, b, func(i int) string {
		if st := queued[i]; st.insert {
			return fmt.Sprintf("store attempt %d of event %s", st.attempt.Number, st.attempt.EventID)
		}
		return fmt.Sprintf("update event %s after attempt %d", queued[i].attempt.EventID, queued[i].attempt.Number)
	})
}

func (c *conn) MarkForReplay(ctx context.Context, where []store.Cond, now time.Time) ([]jobs.Due, error) {
	clause, args := dialect.Where(where)
	args = append(args, now)
	at := dialect.Param(len(args))
	return collect(ctx, c.q, `UPDATE events SET state = 'pending', next_attempt_at = `+at+`, updated_at = `+at+clause+
		` RETURNING id, attempts`, args, func(row rowScanner) (jobs.Due, error) {
		var d jobs.Due
		return d, row.Scan(&d.EventID, &d.Attempts)
	})
}
