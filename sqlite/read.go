package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
)

const selectEvent = `SELECT id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key,
    target, response_status, response_content_type, response_body, state, attempts, created_at, updated_at,
    next_attempt_at, delivered_at, last_error FROM events`

type rowScanner interface{ Scan(dest ...any) error }

func scanEvent(row rowScanner) (*switchboard.Event, error) {
	var (
		e                    switchboard.Event
		kind, state          string
		created, updated     int64
		nextAttempt, deliver sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.RequestID, &e.Route, &e.AccountSID, &kind, &e.MessageSID, &e.CallSID,
		&e.IdempotencyKey, &e.Target, &e.Response.Status, &e.Response.ContentType, &e.Response.Body, &state,
		&e.Attempts, &created, &updated, &nextAttempt, &deliver, &e.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, switchboard.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.Kind, e.State = switchboard.Kind(kind), switchboard.State(state)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	if nextAttempt.Valid && !e.State.Terminal() {
		e.NextAttemptAt = fromMicros(nextAttempt.Int64)
	}
	if deliver.Valid {
		e.DeliveredAt = fromMicros(deliver.Int64)
	}
	return &e, nil
}

const selectRequest = `SELECT id, received_at, route, method, url, header, body, remote_addr, outcome, reason,
    coalesce(event_id, '') FROM requests`

func scanRequest(row rowScanner) (*switchboard.Request, error) {
	var (
		r        switchboard.Request
		received int64
		header   string
		outcome  string
	)
	err := row.Scan(&r.ID, &received, &r.Route, &r.Method, &r.URL, &header, &r.Body, &r.RemoteAddr,
		&outcome, &r.Reason, &r.EventID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, switchboard.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.ReceivedAt, r.Outcome = fromMicros(received), switchboard.Outcome(outcome)
	if r.Header, err = decodeHeader(header); err != nil {
		return nil, fmt.Errorf("request %s: %w", r.ID, err)
	}
	return &r, nil
}

// Event returns one event.
func (s *Store) Event(ctx context.Context, id string) (*switchboard.Event, error) {
	e, err := scanEvent(s.read.QueryRowContext(ctx, selectEvent+` WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// Request returns one request.
func (s *Store) Request(ctx context.Context, id string) (*switchboard.Request, error) {
	r, err := scanRequest(s.read.QueryRowContext(ctx, selectRequest+` WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	return r, nil
}

// Attempts returns an event's attempts, oldest first.
func (s *Store) Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, event_id, number, started_at, target_url, status_code,
        latency_us, error_class, twilio_code, error, response_header, response_excerpt
        FROM attempts WHERE event_id = ? ORDER BY id`, eventID)
	if err != nil {
		return nil, fmt.Errorf("attempts of event %s: %w", eventID, err)
	}
	defer rows.Close()
	var out []*switchboard.Attempt
	for rows.Next() {
		var (
			a              switchboard.Attempt
			started, latus int64
			header         string
		)
		if err := rows.Scan(&a.ID, &a.EventID, &a.Number, &started, &a.TargetURL, &a.StatusCode, &latus,
			&a.ErrorClass, &a.TwilioCode, &a.Error, &header, &a.ResponseExcerpt); err != nil {
			return nil, fmt.Errorf("attempts of event %s: %w", eventID, err)
		}
		a.StartedAt, a.Latency = fromMicros(started), time.Duration(latus)*time.Microsecond
		if a.ResponseHeader, err = decodeHeader(header); err != nil {
			return nil, err
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// ListEvents returns a page of events, newest first.
func (s *Store) ListEvents(ctx context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error) {
	w := whereBuilder{}
	if f.Route != "" {
		w.add("route = ?", f.Route)
	}
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if f.State != "" {
		w.add("state = ?", string(f.State))
	}
	if f.SID != "" {
		// The <> '' terms let SQLite use the partial indexes on both.
		w.add(eventsBySID, f.SID, f.SID)
	}
	if !f.Since.IsZero() {
		w.add("created_at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at < ?", micros(f.Until))
	}
	if f.Cursor != "" {
		w.add("id < ?", f.Cursor)
	}
	limit := switchboard.LimitOrDefault(f.Limit)
	return listNewestFirst(ctx, s.read, "list events", selectEvent+w.whereClause(), w.args, limit,
		func(r rowScanner) (*switchboard.Event, error) { return scanEvent(r) },
		func(x *switchboard.Event) string { return x.ID })
}

// ListRequests returns a page of requests, newest first.
func (s *Store) ListRequests(ctx context.Context, f switchboard.RequestFilter) (*switchboard.Page[*switchboard.Request], error) {
	w := whereBuilder{}
	if f.Route != "" {
		w.add("route = ?", f.Route)
	}
	if f.Outcome != "" {
		w.add("outcome = ?", string(f.Outcome))
	}
	if f.EventID != "" {
		w.add("event_id = ?", f.EventID)
	}
	if !f.Since.IsZero() {
		w.add("received_at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("received_at < ?", micros(f.Until))
	}
	if f.Cursor != "" {
		w.add("id < ?", f.Cursor)
	}
	limit := switchboard.LimitOrDefault(f.Limit)
	return listNewestFirst(ctx, s.read, "list requests", selectRequest+w.whereClause(), w.args, limit,
		func(r rowScanner) (*switchboard.Request, error) { return scanRequest(r) },
		func(x *switchboard.Request) string { return x.ID })
}

// Stats counts events by state and finds the oldest due delivery.
func (s *Store) Stats(ctx context.Context) (*switchboard.Stats, error) {
	st := &switchboard.Stats{EventsByState: map[switchboard.State]int64{}}
	for _, state := range switchboard.States {
		st.EventsByState[state] = 0
	}
	rows, err := s.read.QueryContext(ctx, `SELECT state, count(*) FROM events GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		st.EventsByState[switchboard.State(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	var oldest sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM events
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= ?`, micros(time.Now())).Scan(&oldest); err != nil {
		return nil, fmt.Errorf("oldest due event: %w", err)
	}
	if oldest.Valid {
		st.OldestDue = fromMicros(oldest.Int64)
	}
	if st.OutboundQueued, err = s.outboundQueued(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// whereBuilder joins optional conditions with AND.
type whereBuilder struct {
	conds []string
	args  []any
}

// eventsBySID selects the events of a MessageSid or CallSid.
const eventsBySID = "((message_sid = ? AND message_sid <> '') OR (call_sid = ? AND call_sid <> ''))"

func (w *whereBuilder) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *whereBuilder) sql() string { return strings.Join(w.conds, " AND ") }

func (w *whereBuilder) whereClause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + w.sql()
}

// outboundQueued counts queued and sending messages by pool.
func (s *Store) outboundQueued(ctx context.Context) (map[string]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT pool, count(*) FROM messages
        WHERE state IN ('queued', 'sending') GROUP BY pool`)
	if err != nil {
		return nil, fmt.Errorf("count queued messages: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var pool string
		var n int64
		if err := rows.Scan(&pool, &n); err != nil {
			return nil, fmt.Errorf("count queued messages: %w", err)
		}
		out[pool] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count queued messages: %w", err)
	}
	return out, nil
}

// listNewestFirst runs a listing query (its WHERE clause included, without
// ORDER BY or LIMIT) newest first, reads one row past limit to know whether
// another page follows, and returns the page, whose Next is the last item's
// id. what names the listing in errors.
func listNewestFirst[T any](ctx context.Context, db *sql.DB, what, query string, args []any, limit int,
	scan func(rowScanner) (T, error), id func(T) string) (*switchboard.Page[T], error) {
	rows, err := db.QueryContext(ctx, query+` ORDER BY id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	page := &switchboard.Page[T]{}
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		page.Items = append(page.Items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = id(page.Items[limit-1])
	}
	return page, nil
}
