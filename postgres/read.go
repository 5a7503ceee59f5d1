package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
		nextAttempt, deliver *time.Time
	)
	err := row.Scan(&e.ID, &e.RequestID, &e.Route, &e.AccountSID, &kind, &e.MessageSID, &e.CallSID,
		&e.IdempotencyKey, &e.Target, &e.Response.Status, &e.Response.ContentType, &e.Response.Body, &state,
		&e.Attempts, &e.CreatedAt, &e.UpdatedAt, &nextAttempt, &deliver, &e.LastError)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, switchboard.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.Kind, e.State = switchboard.Kind(kind), switchboard.State(state)
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	if nextAttempt != nil && !e.State.Terminal() {
		e.NextAttemptAt = nextAttempt.UTC()
	}
	if deliver != nil {
		e.DeliveredAt = deliver.UTC()
	}
	return &e, nil
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
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, switchboard.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.ReceivedAt, r.Outcome = r.ReceivedAt.UTC(), switchboard.Outcome(outcome)
	if r.Header, err = decodeHeader(header); err != nil {
		return nil, fmt.Errorf("request %s: %w", r.ID, err)
	}
	return &r, nil
}

// Event returns one event, or an error wrapping switchboard.ErrNotFound.
func (s *Store) Event(ctx context.Context, id string) (*switchboard.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, selectEvent+` WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// Request returns one request, or an error wrapping switchboard.ErrNotFound.
func (s *Store) Request(ctx context.Context, id string) (*switchboard.Request, error) {
	r, err := scanRequest(s.pool.QueryRow(ctx, selectRequest+` WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	return r, nil
}

// Attempts returns an event's attempts, oldest first; none for an unknown
// event.
func (s *Store) Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, event_id, number, started_at, target_url, status_code,
        latency_us, error_class, twilio_code, error, response_header, response_excerpt
        FROM attempts WHERE event_id = $1 ORDER BY id`, eventID)
	if err != nil {
		return nil, fmt.Errorf("attempts of event %s: %w", eventID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*switchboard.Attempt, error) {
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
		if a.ResponseHeader, err = decodeHeader(header); err != nil {
			return nil, fmt.Errorf("attempt %d: %w", a.ID, err)
		}
		return &a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("attempts of event %s: %w", eventID, err)
	}
	return out, nil
}

// ListEvents returns a page of events, newest first.
func (s *Store) ListEvents(ctx context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error) {
	w := whereBuilder{}
	if f.Route != "" {
		w.add("route = " + w.arg(f.Route))
	}
	if f.Kind != "" {
		w.add("kind = " + w.arg(string(f.Kind)))
	}
	if f.State != "" {
		w.add("state = " + w.arg(string(f.State)))
	}
	if f.SID != "" {
		// Spelling out the partial indexes' predicates lets the planner use
		// them; they hold anyway since the SID is not empty.
		sid := w.arg(f.SID)
		w.add("((message_sid = " + sid + " AND message_sid <> '') OR (call_sid = " + sid + " AND call_sid <> ''))")
	}
	if !f.Since.IsZero() {
		w.add("created_at >= " + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at < " + w.arg(f.Until))
	}
	if f.Cursor != "" {
		w.add("id < " + w.arg(f.Cursor))
	}
	return listNewestFirst(ctx, s.pool, "list events", selectEvent, &w, switchboard.LimitOrDefault(f.Limit),
		func(row pgx.CollectableRow) (*switchboard.Event, error) { return scanEvent(row) },
		func(e *switchboard.Event) string { return e.ID })
}

// ListRequests returns a page of requests, newest first.
func (s *Store) ListRequests(ctx context.Context, f switchboard.RequestFilter) (*switchboard.Page[*switchboard.Request], error) {
	w := whereBuilder{}
	if f.Route != "" {
		w.add("route = " + w.arg(f.Route))
	}
	if f.Outcome != "" {
		w.add("outcome = " + w.arg(string(f.Outcome)))
	}
	if f.EventID != "" {
		w.add("event_id = " + w.arg(f.EventID))
	}
	if !f.Since.IsZero() {
		w.add("received_at >= " + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("received_at < " + w.arg(f.Until))
	}
	if f.Cursor != "" {
		w.add("id < " + w.arg(f.Cursor))
	}
	return listNewestFirst(ctx, s.pool, "list requests", selectRequest, &w, switchboard.LimitOrDefault(f.Limit),
		func(row pgx.CollectableRow) (*switchboard.Request, error) { return scanRequest(row) },
		func(r *switchboard.Request) string { return r.ID })
}

// listNewestFirst runs query (a SELECT with w's conditions) newest first,
// fetching one row past limit to know whether there is a next page, whose
// cursor is the last id kept; what names the listing in errors.
func listNewestFirst[T any](ctx context.Context, pool *pgxpool.Pool, what, query string, w *whereBuilder, limit int,
	scan func(pgx.CollectableRow) (T, error), id func(T) string) (*switchboard.Page[T], error) {
	// Built before w.args is read: the limit is its last argument.
	query += w.whereClause() + ` ORDER BY id DESC LIMIT ` + w.arg(limit+1)
	rows, err := pool.Query(ctx, query, w.args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p := &switchboard.Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.Next = id(p.Items[limit-1])
	}
	return p, nil
}

// Stats counts events by state and finds the oldest due delivery.
func (s *Store) Stats(ctx context.Context) (*switchboard.Stats, error) {
	st := &switchboard.Stats{EventsByState: map[switchboard.State]int64{}}
	for _, state := range switchboard.States {
		st.EventsByState[state] = 0
	}
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM events GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	var (
		state string
		n     int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		st.EventsByState[switchboard.State(state)] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	var oldest *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(next_attempt_at) FROM events
        WHERE state IN ('pending', 'retrying') AND next_attempt_at <= $1`, time.Now()).Scan(&oldest); err != nil {
		return nil, fmt.Errorf("oldest due event: %w", err)
	}
	if oldest != nil {
		st.OldestDue = oldest.UTC()
	}
	rows, err = s.pool.Query(ctx, `SELECT pool, count(*) FROM messages
        WHERE state IN ('queued', 'sending') GROUP BY pool`)
	if err != nil {
		return nil, fmt.Errorf("count queued messages: %w", err)
	}
	var pool string
	st.OutboundQueued = map[string]int64{}
	if _, err := pgx.ForEachRow(rows, []any{&pool, &n}, func() error {
		st.OutboundQueued[pool] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count queued messages: %w", err)
	}
	return st, nil
}

// whereBuilder joins optional conditions with AND and numbers their
// parameters.
type whereBuilder struct {
	conds []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (w *whereBuilder) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *whereBuilder) add(cond string) { w.conds = append(w.conds, cond) }

func (w *whereBuilder) whereClause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
