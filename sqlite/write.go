package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard"
)

const insertRequest = `INSERT INTO requests
    (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const insertEvent = `INSERT INTO events
    (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key,
     response_status, response_content_type, response_body, state, attempts,
     created_at, updated_at, next_attempt_at, last_error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '')
    ON CONFLICT (idempotency_key) DO NOTHING`

// Ingest stores a batch of requests, their events and delivery jobs in one
// transaction.
func (s *Store) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	// Results are set on a copy and published only after the commit, so a
	// failed batch leaves the items as they were for the one-by-one retry.
	type result struct {
		dup   bool
		event *switchboard.Event
	}
	results := make([]result, len(items))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		reqStmt, err := tx.PrepareContext(ctx, insertRequest)
		if err != nil {
			return fmt.Errorf("prepare request insert: %w", err)
		}
		defer reqStmt.Close()
		evStmt, err := tx.PrepareContext(ctx, insertEvent)
		if err != nil {
			return fmt.Errorf("prepare event insert: %w", err)
		}
		defer evStmt.Close()

		var newEvents []string
		for i, it := range items {
			req := it.Request
			if req.Outcome == switchboard.OutcomeAccepted {
				ev := it.Event
				res, err := evStmt.ExecContext(ctx, ev.ID, req.ID, ev.Route, ev.AccountSID, string(ev.Kind),
					ev.MessageSID, ev.CallSID, ev.IdempotencyKey, ev.Response.Status, ev.Response.ContentType,
					nonNil(ev.Response.Body), micros(ev.CreatedAt), micros(ev.CreatedAt), micros(ev.CreatedAt))
				if err != nil {
					return fmt.Errorf("store event %s: %w", ev.ID, err)
				}
				if n, _ := res.RowsAffected(); n == 1 {
					newEvents = append(newEvents, ev.ID)
					results[i] = result{event: ev}
				} else {
					existing, err := scanEvent(tx.QueryRowContext(ctx, selectEvent+` WHERE idempotency_key = ?`, ev.IdempotencyKey))
					if err != nil {
						return fmt.Errorf("load original of duplicate %s: %w", ev.IdempotencyKey, err)
					}
					results[i] = result{dup: true, event: existing}
					req.Outcome = switchboard.OutcomeDuplicate
					req.Reason = "duplicate of event " + existing.ID
				}
				req.EventID = results[i].event.ID
			}
			header, err := json.Marshal(req.Header)
			if err != nil {
				return fmt.Errorf("encode headers of request %s: %w", req.ID, err)
			}
			if _, err := reqStmt.ExecContext(ctx, req.ID, micros(req.ReceivedAt), req.Route, req.Method, req.URL,
				string(header), nonNil(req.Body), req.RemoteAddr, string(req.Outcome), req.Reason, nullString(req.EventID)); err != nil {
				return fmt.Errorf("store request %s: %w", req.ID, err)
			}
		}
		return s.queue.InsertTx(ctx, tx, newEvents)
	})
	if err != nil {
		return err
	}
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
	return nil
}

const insertAttempt = `INSERT INTO attempts
    (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
     error, response_header, response_excerpt)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// The attempt count only moves forward, so a stale result (from a job that
// was rescued while a newer one ran) cannot undo a newer one.
const updateEventAfterAttempt = `UPDATE events SET
    state = ?, attempts = max(attempts, ?), updated_at = ?, next_attempt_at = ?,
    delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,
    last_error = ?
    WHERE id = ?`

// RecordAttempts stores attempts and the states they lead to in one
// transaction.
func (s *Store) RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range results {
			a := r.Attempt
			header, err := json.Marshal(a.ResponseHeader)
			if err != nil {
				return fmt.Errorf("encode response headers: %w", err)
			}
			if _, err := tx.ExecContext(ctx, insertAttempt, a.EventID, a.Number, micros(a.StartedAt), a.TargetURL,
				a.StatusCode, a.Latency.Microseconds(), a.ErrorClass, a.TwilioCode, a.Error, string(header),
				nonNil(a.ResponseExcerpt)); err != nil {
				return fmt.Errorf("store attempt %d of event %s: %w", a.Number, a.EventID, err)
			}
			now := micros(a.StartedAt.Add(a.Latency))
			var next sql.NullInt64
			if r.State == switchboard.StateRetrying {
				next = sql.NullInt64{Int64: micros(r.NextAttemptAt), Valid: true}
			}
			if _, err := tx.ExecContext(ctx, updateEventAfterAttempt, string(r.State), a.Number, now, next,
				string(r.State), now, a.Error, a.EventID); err != nil {
				return fmt.Errorf("update event %s after attempt %d: %w", a.EventID, a.Number, err)
			}
		}
		return nil
	})
}

// Replay schedules new deliveries for matching terminal events.
func (s *Store) Replay(ctx context.Context, f switchboard.ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	where, args := replayWhere(f)
	var ids []string
	now := micros(time.Now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE events SET state = 'pending', next_attempt_at = ?, updated_at = ?
            WHERE `+where+` RETURNING id`, append([]any{now, now}, args...)...)
		if err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		ids, err = collectStrings(rows)
		if err != nil {
			return fmt.Errorf("mark events for replay: %w", err)
		}
		return s.queue.InsertTx(ctx, tx, ids)
	})
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 && f.EventID != "" {
		if _, err := s.Event(ctx, f.EventID); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
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
