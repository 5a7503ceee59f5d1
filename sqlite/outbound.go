package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// Outbound writes use a plain transaction on the single write connection,
// not the group committer: they are API calls, not webhooks waiting on an
// fsync, and the group committer's batches would need a kind of operation
// of their own. The write connection serialises them with the batches.
// Status updates are the exception: one comes with every status callback,
// so they have a group committer of their own (status.go).

const selectMessage = `SELECT id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body,
    media_urls, status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts,
    next_attempt_at, created_at, updated_at, sent_at, delivered_at, last_error, template, replayed_at FROM messages`

func scanMessage(row rowScanner) (*switchboard.OutboundMessage, error) {
	var (
		m                      switchboard.OutboundMessage
		purpose, state, media  string
		created, updated       int64
		nextAt, sent, delivery sql.NullInt64
		replayed               sql.NullInt64
	)
	err := row.Scan(&m.ID, &m.IdempotencyKey, &m.AccountSID, &m.Pool, &purpose, &m.From, &m.To, &m.Body,
		&media, &m.StatusWebhook, &m.PayloadHash, &state, &m.TwilioSID, &m.TwilioStatus, &m.ErrorCode,
		&m.Attempts, &nextAt, &created, &updated, &sent, &delivery, &m.LastError, &m.Template, &replayed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, switchboard.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m.Purpose, m.State = switchboard.Purpose(purpose), switchboard.MessageState(state)
	if err := json.Unmarshal([]byte(media), &m.MediaURLs); err != nil {
		return nil, fmt.Errorf("decode media urls of message %s: %w", m.ID, err)
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
	m.NextAttemptAt, m.SentAt, m.DeliveredAt = nullMicros(nextAt), nullMicros(sent), nullMicros(delivery)
	m.ReplayedAt = nullMicros(replayed)
	return &m, nil
}

const insertMessage = `INSERT INTO messages
    (id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body, media_urls,
     status_webhook, payload_hash, state, attempts, next_attempt_at, created_at, updated_at, template)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)
    ON CONFLICT (idempotency_key) DO NOTHING`

// CreateMessage stores a new message and schedules its first send, or finds
// the message already stored with its key.
func (s *Store) CreateMessage(ctx context.Context, m *switchboard.OutboundMessage) (bool, error) {
	if err := m.ValidateNew(); err != nil {
		return false, err
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	nextAt := m.NextAttemptAt
	if nextAt.IsZero() {
		nextAt = created
	}
	media := m.MediaURLs
	if media == nil {
		media = []string{}
	}
	encoded, err := json.Marshal(media)
	if err != nil {
		return false, fmt.Errorf("encode media urls of message %s: %w", m.ID, err)
	}
	var (
		stored *switchboard.OutboundMessage
		isNew  bool
	)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, insertMessage, m.ID, m.IdempotencyKey, m.AccountSID, m.Pool,
			string(m.Purpose), m.From, m.To, m.Body, string(encoded), m.StatusWebhook, m.PayloadHash,
			micros(nextAt), micros(created), micros(created), m.Template)
		if err != nil {
			return fmt.Errorf("store message %s: %w", m.ID, err)
		}
		n, _ := res.RowsAffected()
		isNew = n == 1
		if isNew {
			if err := s.queue.InsertSendTx(ctx, tx, jobs.SendArgs{MessageID: m.ID}, m.NextAttemptAt); err != nil {
				return err
			}
		}
		// The new message as stored, or the one that holds its key.
		stored, err = scanMessage(tx.QueryRowContext(ctx, selectMessage+` WHERE idempotency_key = ?`, m.IdempotencyKey))
		if err != nil {
			return fmt.Errorf("load message with key %s: %w", m.IdempotencyKey, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if !isNew && stored.PayloadHash != m.PayloadHash {
		return false, fmt.Errorf("create message with key %s: %w: the key was used for another payload (message %s)",
			m.IdempotencyKey, switchboard.ErrConflict, stored.ID)
	}
	*m = *stored
	return isNew, nil
}

// OutboundMessage returns one message.
func (s *Store) OutboundMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	m, err := scanMessage(s.read.QueryRowContext(ctx, selectMessage+` WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	return m, nil
}

// OutboundMessageByKey returns the message with an idempotency key.
func (s *Store) OutboundMessageByKey(ctx context.Context, key string) (*switchboard.OutboundMessage, error) {
	m, err := scanMessage(s.read.QueryRowContext(ctx, selectMessage+` WHERE idempotency_key = ?`, key))
	if err != nil {
		return nil, fmt.Errorf("message with key %s: %w", key, err)
	}
	return m, nil
}

// OutboundMessageBySID returns the message of an account with a Twilio
// SID; another account's is not found.
func (s *Store) OutboundMessageBySID(ctx context.Context, accountSID, twilioSID string) (*switchboard.OutboundMessage, error) {
	if accountSID == "" {
		return nil, fmt.Errorf("%w: look-up of message %q without an account", switchboard.ErrInvalid, twilioSID)
	}
	if twilioSID == "" { // the empty SID of unsent messages is nobody's
		return nil, fmt.Errorf("message with Twilio SID %q: %w", twilioSID, switchboard.ErrNotFound)
	}
	m, err := scanMessage(s.read.QueryRowContext(ctx, selectMessage+whereAccountTwilioSID, twilioSID, accountSID))
	if err != nil {
		return nil, fmt.Errorf("message with Twilio SID %s of account %s: %w", twilioSID, accountSID, err)
	}
	return m, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// whereTwilioSID selects the message with a Twilio SID. The index on
// twilio_sid is partial (on non-empty SIDs only), and SQLite uses a partial
// index only for a query whose WHERE clause implies the index's: without
// the second term, every look-up would scan the whole table.
const whereTwilioSID = ` WHERE twilio_sid = ? AND twilio_sid <> ''`

// whereAccountTwilioSID selects the message of an account with a Twilio
// SID: the same search of the index, then the account's check.
const whereAccountTwilioSID = whereTwilioSID + ` AND account_sid = ?`

func messageBySID(ctx context.Context, q queryRower, sid string) (*switchboard.OutboundMessage, error) {
	if sid == "" { // the empty SID of unsent messages is nobody's
		return nil, fmt.Errorf("message with Twilio SID %q: %w", sid, switchboard.ErrNotFound)
	}
	m, err := scanMessage(q.QueryRowContext(ctx, selectMessage+whereTwilioSID, sid))
	if err != nil {
		return nil, fmt.Errorf("message with Twilio SID %s: %w", sid, err)
	}
	return m, nil
}

// ListOutboundMessages returns a page of messages, newest first.
func (s *Store) ListOutboundMessages(ctx context.Context, f switchboard.OutboundFilter) (*switchboard.Page[*switchboard.OutboundMessage], error) {
	w := whereBuilder{}
	if f.Pool != "" {
		w.add("pool = ?", f.Pool)
	}
	if f.Purpose != "" {
		w.add("purpose = ?", string(f.Purpose))
	}
	if f.State != "" {
		w.add("state = ?", string(f.State))
	}
	if f.To != "" {
		w.add("to_number = ?", f.To)
	}
	if f.Template != "" {
		w.add("template = ?", f.Template)
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
	return listNewestFirst(ctx, s.read, "list messages", selectMessage+w.whereClause(), w.args, limit,
		func(r rowScanner) (*switchboard.OutboundMessage, error) { return scanMessage(r) },
		func(x *switchboard.OutboundMessage) string { return x.ID })
}

// updateMessage writes back what send results and status updates change.
const updateMessage = `UPDATE messages SET
    from_number = ?, state = ?, twilio_sid = ?, twilio_status = ?, error_code = ?, attempts = ?,
    next_attempt_at = ?, updated_at = ?, sent_at = ?, delivered_at = ?, last_error = ?, replayed_at = ?
    WHERE id = ?`

func writeMessage(ctx context.Context, tx *sql.Tx, m *switchboard.OutboundMessage) error {
	if _, err := tx.ExecContext(ctx, updateMessage, m.From, string(m.State), m.TwilioSID, m.TwilioStatus,
		m.ErrorCode, m.Attempts, nullMicrosOf(m.NextAttemptAt), micros(m.UpdatedAt), nullMicrosOf(m.SentAt),
		nullMicrosOf(m.DeliveredAt), m.LastError, nullMicrosOf(m.ReplayedAt), m.ID); err != nil {
		return fmt.Errorf("update message %s: %w", m.ID, err)
	}
	return nil
}

// RecordSend stores a send outcome and, for a retry, schedules the next
// send. The write connection serialises it with every other write, so the
// message read in the transaction cannot change before it is written.
func (s *Store) RecordSend(ctx context.Context, r switchboard.SendResult) error {
	if err := r.Validate(); err != nil {
		return err
	}
	at := r.At
	if at.IsZero() {
		at = time.Now()
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		m, err := scanMessage(tx.QueryRowContext(ctx, selectMessage+` WHERE id = ?`, r.MessageID))
		if err != nil {
			return fmt.Errorf("record send of message %s: %w", r.MessageID, err)
		}
		if !m.ApplySend(r, at) {
			return nil
		}
		if err := writeMessage(ctx, tx, m); err != nil {
			return fmt.Errorf("record send: %w", err)
		}
		if m.State == switchboard.MessageQueued {
			return s.queue.InsertSendTx(ctx, tx, jobs.SendArgs{MessageID: m.ID, Attempts: m.Attempts}, m.NextAttemptAt)
		}
		return nil
	})
}

const insertStatus = `INSERT INTO message_status (message_id, status, error_code, at, source, applied)
    VALUES (?, ?, ?, ?, ?, ?)`

// ReplayMessage queues a failed, never accepted message for a fresh run of
// sends.
func (s *Store) ReplayMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	var m *switchboard.OutboundMessage
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if m, err = scanMessage(tx.QueryRowContext(ctx, selectMessage+` WHERE id = ?`, id)); err != nil {
			return fmt.Errorf("replay message %s: %w", id, err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := m.Replay(now); err != nil {
			return fmt.Errorf("replay message %s: %w", id, err)
		}
		if err := writeMessage(ctx, tx, m); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if _, err := tx.ExecContext(ctx, insertStatus, m.ID, switchboard.StatusReplayed, 0, micros(now),
			switchboard.SourceReplay, true); err != nil {
			return fmt.Errorf("record replay of message %s: %w", m.ID, err)
		}
		return s.queue.InsertSendTx(ctx, tx, jobs.SendArgs{MessageID: m.ID}, time.Time{})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// EarlierUnsent returns the oldest unsent message to a recipient in a pool
// created before another.
func (s *Store) EarlierUnsent(ctx context.Context, pool, recipient, beforeID string, purposes []switchboard.Purpose) (*switchboard.OutboundMessage, error) {
	w := whereBuilder{}
	w.add("pool = ?", pool)
	w.add("to_number = ?", recipient)
	w.add("id < ?", beforeID)
	w.add("state IN ('queued', 'sending')")
	w.add("purpose IN ("+placeholders(len(purposes))+")", purposeArgs(purposes)...)
	m, err := scanMessage(s.read.QueryRowContext(ctx, selectMessage+w.whereClause()+` ORDER BY id LIMIT 1`, w.args...))
	if err != nil {
		return nil, fmt.Errorf("earlier unsent message of pool %s: %w", pool, err)
	}
	return m, nil
}

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return strings.Repeat("?, ", n-1) + "?"
}

func purposeArgs(purposes []switchboard.Purpose) []any {
	args := make([]any, len(purposes))
	for i, p := range purposes {
		args[i] = string(p)
	}
	return args
}

// SenderHeartbeat records a sending process as alive and counts the live
// ones.
func (s *Store) SenderHeartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error) {
	var alive int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sender_nodes (node, seen_at) VALUES (?, ?)
            ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at`, node, micros(at)); err != nil {
			return fmt.Errorf("heartbeat of %s: %w", node, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sender_nodes WHERE seen_at < ?`, micros(at.Add(-ttl))); err != nil {
			return fmt.Errorf("forget silent nodes: %w", err)
		}
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM sender_nodes`).Scan(&alive)
	})
	if err != nil {
		return 0, err
	}
	return alive, nil
}

// MessageHistory returns a message's status updates in the order recorded.
func (s *Store) MessageHistory(ctx context.Context, messageID string) ([]switchboard.StatusChange, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, error_code, at, source, applied
        FROM message_status WHERE message_id = ? ORDER BY id`, messageID)
	if err != nil {
		return nil, fmt.Errorf("history of message %s: %w", messageID, err)
	}
	defer rows.Close()
	var out []switchboard.StatusChange
	for rows.Next() {
		var (
			c  switchboard.StatusChange
			at int64
		)
		if err := rows.Scan(&c.Status, &c.ErrorCode, &at, &c.Source, &c.Applied); err != nil {
			return nil, fmt.Errorf("history of message %s: %w", messageID, err)
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of message %s: %w", messageID, err)
	}
	return out, nil
}

// Suppress adds or updates an opt-out.
func (s *Store) Suppress(ctx context.Context, accountSID, number, reason string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO suppressions (account_sid, number, reason, created_at)
            VALUES (?, ?, ?, ?) ON CONFLICT (account_sid, number) DO UPDATE SET reason = excluded.reason`,
			accountSID, number, reason, micros(time.Now())); err != nil {
			return fmt.Errorf("suppress %s for %s: %w", number, accountSID, err)
		}
		return nil
	})
}

// Unsuppress removes an opt-out.
func (s *Store) Unsuppress(ctx context.Context, accountSID, number string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE account_sid = ? AND number = ?`,
			accountSID, number); err != nil {
			return fmt.Errorf("unsuppress %s for %s: %w", number, accountSID, err)
		}
		return nil
	})
}

// Suppressed reports whether a number opted out.
func (s *Store) Suppressed(ctx context.Context, accountSID, number string) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM suppressions WHERE account_sid = ? AND number = ?`,
		accountSID, number).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check suppression of %s for %s: %w", number, accountSID, err)
	}
	return true, nil
}

// StickySender returns a recipient's sender in a pool.
func (s *Store) StickySender(ctx context.Context, pool, recipient string) (string, error) {
	var from string
	err := s.read.QueryRowContext(ctx, `SELECT from_number FROM sticky_senders WHERE pool = ? AND recipient = ?`,
		pool, recipient).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		err = switchboard.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sticky sender of %s in pool %s: %w", recipient, pool, err)
	}
	return from, nil
}

// SetStickySender sets a recipient's sender in a pool.
func (s *Store) SetStickySender(ctx context.Context, pool, recipient, from string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sticky_senders (pool, recipient, from_number, updated_at)
            VALUES (?, ?, ?, ?) ON CONFLICT (pool, recipient)
            DO UPDATE SET from_number = excluded.from_number, updated_at = excluded.updated_at`,
			pool, recipient, from, micros(time.Now())); err != nil {
			return fmt.Errorf("set sticky sender of %s in pool %s: %w", recipient, pool, err)
		}
		return nil
	})
}

func nullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func nullMicrosOf(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}
