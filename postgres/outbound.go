package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// Outbound writes use plain transactions, not the group committer: they
// are API calls, not webhooks waiting on a commit, and the group
// committer's batches would need a kind of operation of their own. Writes
// that read a message first lock its row (FOR UPDATE), so concurrent writes
// of one message, from any replica, apply one after the other. Status
// updates are the exception: one comes with every status callback, so they
// have a group committer of their own (status.go).

const selectMessage = `SELECT id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body,
    media_urls, status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts,
    next_attempt_at, created_at, updated_at, sent_at, delivered_at, last_error, template, replayed_at FROM messages`

func scanMessage(row rowScanner) (*switchboard.OutboundMessage, error) {
	var (
		m                      switchboard.OutboundMessage
		purpose, state         string
		nextAt, sent, delivery *time.Time
		replayed               *time.Time
	)
	err := row.Scan(&m.ID, &m.IdempotencyKey, &m.AccountSID, &m.Pool, &purpose, &m.From, &m.To, &m.Body,
		&m.MediaURLs, &m.StatusWebhook, &m.PayloadHash, &state, &m.TwilioSID, &m.TwilioStatus, &m.ErrorCode,
		&m.Attempts, &nextAt, &m.CreatedAt, &m.UpdatedAt, &sent, &delivery, &m.LastError, &m.Template, &replayed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, switchboard.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if m.MediaURLs == nil {
		m.MediaURLs = []string{}
	}
	m.Purpose, m.State = switchboard.Purpose(purpose), switchboard.MessageState(state)
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	m.NextAttemptAt, m.SentAt, m.DeliveredAt = utc(nextAt), utc(sent), utc(delivery)
	m.ReplayedAt = utc(replayed)
	return &m, nil
}

// A conflicting insert from a concurrent transaction waits for it to end,
// so when no id comes back the holder of the key is committed and the next
// statement sees it.
const insertMessage = `INSERT INTO messages
    (id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body, media_urls,
     status_webhook, payload_hash, state, attempts, next_attempt_at, created_at, updated_at, template)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', 0, $12, $13, $13, $14)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id`

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
	var (
		stored *switchboard.OutboundMessage
		isNew  bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id string
		switch err := tx.QueryRow(ctx, insertMessage, m.ID, m.IdempotencyKey, m.AccountSID, m.Pool,
			string(m.Purpose), m.From, m.To, m.Body, media, m.StatusWebhook, m.PayloadHash,
			nextAt, created, m.Template).Scan(&id); {
		case err == nil:
			isNew = true
			if err := s.queue.InsertSendTx(ctx, tx, jobs.SendArgs{MessageID: m.ID}, m.NextAttemptAt); err != nil {
				return err
			}
		case errors.Is(err, pgx.ErrNoRows):
		default:
			return fmt.Errorf("store message %s: %w", m.ID, err)
		}
		// The new message as stored, or the one that holds its key.
		var err error
		stored, err = scanMessage(tx.QueryRow(ctx, selectMessage+` WHERE idempotency_key = $1`, m.IdempotencyKey))
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

// OutboundMessage returns one message, or an error wrapping
// switchboard.ErrNotFound.
func (s *Store) OutboundMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, selectMessage+` WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	return m, nil
}

// OutboundMessageByKey returns the message with an idempotency key, or an
// error wrapping switchboard.ErrNotFound.
func (s *Store) OutboundMessageByKey(ctx context.Context, key string) (*switchboard.OutboundMessage, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, selectMessage+` WHERE idempotency_key = $1`, key))
	if err != nil {
		return nil, fmt.Errorf("message with key %s: %w", key, err)
	}
	return m, nil
}

// OutboundMessageBySID returns the message of an account with a Twilio
// SID, or an error wrapping switchboard.ErrNotFound, also for another
// account's.
func (s *Store) OutboundMessageBySID(ctx context.Context, accountSID, twilioSID string) (*switchboard.OutboundMessage, error) {
	if accountSID == "" {
		return nil, fmt.Errorf("%w: look-up of message %q without an account", switchboard.ErrInvalid, twilioSID)
	}
	if twilioSID == "" { // the empty SID of unsent messages is nobody's
		return nil, fmt.Errorf("message with Twilio SID %q: %w", twilioSID, switchboard.ErrNotFound)
	}
	// The second term implies the predicate of the partial index on
	// twilio_sid, so that a generic plan of the prepared statement can use
	// the index too, not only a plan for the value at hand.
	m, err := scanMessage(s.pool.QueryRow(ctx, selectMessage+` WHERE twilio_sid = $1 AND twilio_sid <> '' AND account_sid = $2`,
		twilioSID, accountSID))
	if err != nil {
		return nil, fmt.Errorf("message with Twilio SID %s of account %s: %w", twilioSID, accountSID, err)
	}
	return m, nil
}

// ListOutboundMessages returns a page of messages, newest first.
func (s *Store) ListOutboundMessages(ctx context.Context, f switchboard.OutboundFilter) (*switchboard.Page[*switchboard.OutboundMessage], error) {
	w := whereBuilder{}
	if f.Pool != "" {
		w.add("pool = " + w.arg(f.Pool))
	}
	if f.Purpose != "" {
		w.add("purpose = " + w.arg(string(f.Purpose)))
	}
	if f.State != "" {
		w.add("state = " + w.arg(string(f.State)))
	}
	if f.To != "" {
		w.add("to_number = " + w.arg(f.To))
	}
	if f.Template != "" {
		w.add("template = " + w.arg(f.Template))
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
	return listNewestFirst(ctx, s.pool, "list messages", selectMessage, &w, switchboard.LimitOrDefault(f.Limit),
		func(row pgx.CollectableRow) (*switchboard.OutboundMessage, error) { return scanMessage(row) },
		func(m *switchboard.OutboundMessage) string { return m.ID })
}

// updateMessage writes back what send results and status updates change.
const updateMessage = `UPDATE messages SET
    from_number = $1, state = $2, twilio_sid = $3, twilio_status = $4, error_code = $5, attempts = $6,
    next_attempt_at = $7, updated_at = $8, sent_at = $9, delivered_at = $10, last_error = $11,
    replayed_at = $12
    WHERE id = $13`

func writeMessage(ctx context.Context, tx pgx.Tx, m *switchboard.OutboundMessage) error {
	if _, err := tx.Exec(ctx, updateMessage, messageArgs(m)...); err != nil {
		return fmt.Errorf("update message %s: %w", m.ID, err)
	}
	return nil
}

// messageArgs are updateMessage's arguments for m.
func messageArgs(m *switchboard.OutboundMessage) []any {
	return []any{m.From, string(m.State), m.TwilioSID, m.TwilioStatus,
		m.ErrorCode, m.Attempts, nullTime(m.NextAttemptAt), m.UpdatedAt, nullTime(m.SentAt),
		nullTime(m.DeliveredAt), m.LastError, nullTime(m.ReplayedAt), m.ID}
}

// RecordSend stores a send outcome and, for a retry, schedules the next
// send.
func (s *Store) RecordSend(ctx context.Context, r switchboard.SendResult) error {
	if err := r.Validate(); err != nil {
		return err
	}
	at := r.At
	if at.IsZero() {
		at = time.Now()
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		m, err := scanMessage(tx.QueryRow(ctx, selectMessage+` WHERE id = $1 FOR UPDATE`, r.MessageID))
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
    VALUES ($1, $2, $3, $4, $5, $6)`

// ReplayMessage queues a failed, never accepted message for a fresh run of
// sends.
func (s *Store) ReplayMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	var m *switchboard.OutboundMessage
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if m, err = scanMessage(tx.QueryRow(ctx, selectMessage+` WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return fmt.Errorf("replay message %s: %w", id, err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := m.Replay(now); err != nil {
			return fmt.Errorf("replay message %s: %w", id, err)
		}
		if err := writeMessage(ctx, tx, m); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if _, err := tx.Exec(ctx, insertStatus, m.ID, switchboard.StatusReplayed, 0, now,
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
	names := make([]string, len(purposes))
	for i, p := range purposes {
		names[i] = string(p)
	}
	m, err := scanMessage(s.pool.QueryRow(ctx, selectMessage+` WHERE pool = $1 AND to_number = $2 AND id < $3
        AND state IN ('queued', 'sending') AND purpose = ANY($4) ORDER BY id LIMIT 1`, pool, recipient, beforeID, names))
	if err != nil {
		return nil, fmt.Errorf("earlier unsent message of pool %s: %w", pool, err)
	}
	return m, nil
}

// SenderHeartbeat records a sending process as alive and counts the live
// ones.
func (s *Store) SenderHeartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error) {
	var alive int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sender_nodes (node, seen_at) VALUES ($1, $2)
            ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at`, node, at); err != nil {
			return fmt.Errorf("heartbeat of %s: %w", node, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sender_nodes WHERE seen_at < $1`, at.Add(-ttl)); err != nil {
			return fmt.Errorf("forget silent nodes: %w", err)
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM sender_nodes`).Scan(&alive)
	})
	if err != nil {
		return 0, err
	}
	return alive, nil
}

// MessageHistory returns a message's status updates in the order recorded;
// none for an unknown message.
func (s *Store) MessageHistory(ctx context.Context, messageID string) ([]switchboard.StatusChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, error_code, at, source, applied
        FROM message_status WHERE message_id = $1 ORDER BY id`, messageID)
	if err != nil {
		return nil, fmt.Errorf("history of message %s: %w", messageID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (switchboard.StatusChange, error) {
		var c switchboard.StatusChange
		err := row.Scan(&c.Status, &c.ErrorCode, &c.At, &c.Source, &c.Applied)
		c.At = c.At.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("history of message %s: %w", messageID, err)
	}
	return out, nil
}

// Suppress adds or updates an opt-out.
func (s *Store) Suppress(ctx context.Context, accountSID, number, reason string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO suppressions (account_sid, number, reason, created_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (account_sid, number) DO UPDATE SET reason = excluded.reason`,
		accountSID, number, reason, time.Now()); err != nil {
		return fmt.Errorf("suppress %s for %s: %w", number, accountSID, err)
	}
	return nil
}

// Unsuppress removes an opt-out.
func (s *Store) Unsuppress(ctx context.Context, accountSID, number string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM suppressions WHERE account_sid = $1 AND number = $2`,
		accountSID, number); err != nil {
		return fmt.Errorf("unsuppress %s for %s: %w", number, accountSID, err)
	}
	return nil
}

// Suppressed reports whether a number opted out.
func (s *Store) Suppressed(ctx context.Context, accountSID, number string) (bool, error) {
	var found bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions WHERE account_sid = $1 AND number = $2)`,
		accountSID, number).Scan(&found); err != nil {
		return false, fmt.Errorf("check suppression of %s for %s: %w", number, accountSID, err)
	}
	return found, nil
}

// StickySender returns a recipient's sender in a pool, or an error wrapping
// switchboard.ErrNotFound.
func (s *Store) StickySender(ctx context.Context, pool, recipient string) (string, error) {
	var from string
	err := s.pool.QueryRow(ctx, `SELECT from_number FROM sticky_senders WHERE pool = $1 AND recipient = $2`,
		pool, recipient).Scan(&from)
	if errors.Is(err, pgx.ErrNoRows) {
		err = switchboard.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sticky sender of %s in pool %s: %w", recipient, pool, err)
	}
	return from, nil
}

// SetStickySender sets a recipient's sender in a pool.
func (s *Store) SetStickySender(ctx context.Context, pool, recipient, from string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO sticky_senders (pool, recipient, from_number, updated_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (pool, recipient)
        DO UPDATE SET from_number = excluded.from_number, updated_at = excluded.updated_at`,
		pool, recipient, from, time.Now()); err != nil {
		return fmt.Errorf("set sticky sender of %s in pool %s: %w", recipient, pool, err)
	}
	return nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
