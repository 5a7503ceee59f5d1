package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

const messageColumns = `id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body,
    media_urls, status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts,
    next_attempt_at, created_at, updated_at, sent_at, delivered_at, last_error, template, replayed_at`

const selectMessage = `SELECT ` + messageColumns + ` FROM messages`

func scanMessage(row rowScanner) (*switchboard.OutboundMessage, error) { return scanMessageWith(row) }

// scanMessageWith scans a message's columns, then extra columns into
// extra.
func scanMessageWith(row rowScanner, extra ...any) (*switchboard.OutboundMessage, error) {
	var (
		m                      switchboard.OutboundMessage
		purpose, state, media  string
		created, updated       int64
		nextAt, sent, delivery sql.NullInt64
		replayed               sql.NullInt64
	)
	err := row.Scan(append([]any{&m.ID, &m.IdempotencyKey, &m.AccountSID, &m.Pool, &purpose, &m.From, &m.To, &m.Body,
		&media, &m.StatusWebhook, &m.PayloadHash, &state, &m.TwilioSID, &m.TwilioStatus, &m.ErrorCode,
		&m.Attempts, &nextAt, &created, &updated, &sent, &delivery, &m.LastError, &m.Template, &replayed}, extra...)...)
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

func (c *conn) Messages(ctx context.Context, q store.Query) ([]*switchboard.OutboundMessage, error) {
	query, args := dialect.Select(selectMessage, q)
	return collect(ctx, c.q, query, args, scanMessage)
}

func (c *conn) History(ctx context.Context, messageID string) ([]switchboard.StatusChange, error) {
	return collect(ctx, c.q, `SELECT status, error_code, at, source, applied
        FROM message_status WHERE message_id = ? ORDER BY id`, []any{messageID}, func(row rowScanner) (switchboard.StatusChange, error) {
		var (
			ch switchboard.StatusChange
			at int64
		)
		err := row.Scan(&ch.Status, &ch.ErrorCode, &at, &ch.Source, &ch.Applied)
		ch.At = fromMicros(at)
		return ch, err
	})
}

const insertMessage = `INSERT INTO messages
    (id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body, media_urls,
     status_webhook, payload_hash, state, attempts, next_attempt_at, created_at, updated_at, template)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)
    ON CONFLICT (idempotency_key) DO NOTHING`

func (c *conn) InsertMessage(ctx context.Context, m *switchboard.OutboundMessage) (bool, error) {
	media, err := json.Marshal(m.MediaURLs)
	if err != nil {
		return false, fmt.Errorf("encode media urls: %w", err)
	}
	res, err := c.q.ExecContext(ctx, insertMessage, m.ID, m.IdempotencyKey, m.AccountSID, m.Pool,
		string(m.Purpose), m.From, m.To, m.Body, string(media), m.StatusWebhook, m.PayloadHash,
		micros(m.NextAttemptAt), micros(m.CreatedAt), micros(m.CreatedAt), m.Template)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

const updateMessage = `UPDATE messages SET
    from_number = ?, state = ?, twilio_sid = ?, twilio_status = ?, error_code = ?, attempts = ?,
    next_attempt_at = ?, updated_at = ?, sent_at = ?, delivered_at = ?, last_error = ?, replayed_at = ?
    WHERE id = ?`

func (c *conn) UpdateMessages(ctx context.Context, messages []*switchboard.OutboundMessage) error {
	for _, m := range messages {
		if _, err := c.q.ExecContext(ctx, updateMessage, m.From, string(m.State), m.TwilioSID, m.TwilioStatus,
			m.ErrorCode, m.Attempts, nullMicrosOf(m.NextAttemptAt), micros(m.UpdatedAt), nullMicrosOf(m.SentAt),
			nullMicrosOf(m.DeliveredAt), m.LastError, nullMicrosOf(m.ReplayedAt), m.ID); err != nil {
			return fmt.Errorf("update message %s: %w", m.ID, err)
		}
	}
	return nil
}

func (c *conn) InsertHistory(ctx context.Context, rows []store.StatusRow) error {
	for _, r := range rows {
		u := r.Update
		if _, err := c.q.ExecContext(ctx, `INSERT INTO message_status (message_id, status, error_code, at, source, applied)
            VALUES (?, ?, ?, ?, ?, ?)`, r.MessageID, u.Status, u.ErrorCode, micros(u.At), u.Source, r.Applied); err != nil {
			return fmt.Errorf("record status %s of message %s: %w", u.Status, r.MessageID, err)
		}
	}
	return nil
}

func (c *conn) RedactMessage(ctx context.Context, id string, at time.Time) error {
	_, err := c.q.ExecContext(ctx, `UPDATE messages SET body = '', updated_at = ? WHERE id = ?`, micros(at), id)
	return err
}

// DeleteMessage deletes the history first: it refers to the message.
func (c *conn) DeleteMessage(ctx context.Context, id string) error {
	if _, err := c.q.ExecContext(ctx, `DELETE FROM message_status WHERE message_id = ?`, id); err != nil {
		return fmt.Errorf("delete history: %w", err)
	}
	_, err := c.q.ExecContext(ctx, `DELETE FROM messages WHERE id = ?`, id)
	return err
}

func (c *conn) Heartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error) {
	if _, err := c.q.ExecContext(ctx, `INSERT INTO sender_nodes (node, seen_at) VALUES (?, ?)
        ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at`, node, micros(at)); err != nil {
		return 0, err
	}
	if _, err := c.q.ExecContext(ctx, `DELETE FROM sender_nodes WHERE seen_at < ?`, micros(at.Add(-ttl))); err != nil {
		return 0, fmt.Errorf("forget silent nodes: %w", err)
	}
	var alive int
	return alive, c.q.QueryRowContext(ctx, `SELECT count(*) FROM sender_nodes`).Scan(&alive)
}

func (c *conn) Suppress(ctx context.Context, accountSID, number, reason string, at time.Time, keep string) error {
	_, err := c.q.ExecContext(ctx, `INSERT INTO suppressions (account_sid, number, reason, created_at)
        VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_sid, number) DO UPDATE SET reason = excluded.reason
        WHERE ?5 = '' OR substr(suppressions.reason, 1, length(?5)) <> ?5`,
		accountSID, number, reason, micros(at), keep)
	return err
}

func (c *conn) Unsuppress(ctx context.Context, accountSID, number, keep string) error {
	_, err := c.q.ExecContext(ctx, `DELETE FROM suppressions WHERE account_sid = ?1 AND number = ?2
        AND (?3 = '' OR substr(reason, 1, length(?3)) <> ?3)`, accountSID, number, keep)
	return err
}

func (c *conn) StickySender(ctx context.Context, pool, recipient string) (string, bool, error) {
	var from string
	err := c.q.QueryRowContext(ctx, `SELECT from_number FROM sticky_senders WHERE pool = ? AND recipient = ?`,
		pool, recipient).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return from, err == nil, err
}

func (c *conn) SetStickySenders(ctx context.Context, senders []store.StickyWrite) error {
	for _, w := range senders {
		if _, err := c.q.ExecContext(ctx, `INSERT INTO sticky_senders (pool, recipient, from_number, updated_at)
            VALUES (?, ?, ?, ?) ON CONFLICT (pool, recipient)
            DO UPDATE SET from_number = excluded.from_number, updated_at = excluded.updated_at`,
			w.Pool, w.Recipient, w.From, micros(w.At)); err != nil {
			return fmt.Errorf("set sticky sender of %s in pool %s: %w", w.Recipient, w.Pool, err)
		}
	}
	return nil
}

// selectSendView reads a message and, by subqueries of the same statement
// (one snapshot), its recipient's suppression and sticky sender and the
// purposes of the earlier unsent messages to it in its pool. The last
// subquery's terms on state are those of the partial index
// messages_unsent_to, which SQLite uses only for a query that implies its
// predicate.
const selectSendView = `SELECT ` + messageColumns + `,
    (SELECT reason FROM suppressions s WHERE s.account_sid = m.account_sid AND s.number = m.to_number),
    (SELECT from_number FROM sticky_senders k WHERE k.pool = m.pool AND k.recipient = m.to_number),
    (SELECT group_concat(DISTINCT e.purpose) FROM messages e
        WHERE e.pool = m.pool AND e.to_number = m.to_number AND e.id < m.id AND e.state IN ('queued', 'sending'))
    FROM messages m WHERE m.id = ?`

func (c *conn) SendView(ctx context.Context, id string) (*switchboard.SendView, error) {
	var suppression, sticky, earlier sql.NullString
	m, err := scanMessageWith(c.q.QueryRowContext(ctx, selectSendView, id), &suppression, &sticky, &earlier)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return store.NewSendView(m, suppression.String, suppression.Valid, sticky.String, earlier.String), nil
}
