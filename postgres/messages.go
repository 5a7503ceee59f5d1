package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

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
		purpose, state         string
		nextAt, sent, delivery *time.Time
		replayed               *time.Time
	)
	err := row.Scan(append([]any{&m.ID, &m.IdempotencyKey, &m.AccountSID, &m.Pool, &purpose, &m.From, &m.To, &m.Body,
		&m.MediaURLs, &m.StatusWebhook, &m.PayloadHash, &state, &m.TwilioSID, &m.TwilioStatus, &m.ErrorCode,
		&m.Attempts, &nextAt, &m.CreatedAt, &m.UpdatedAt, &sent, &delivery, &m.LastError, &m.Template, &replayed}, extra...)...)
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

func (c *conn) Messages(ctx context.Context, q store.Query) ([]*switchboard.OutboundMessage, error) {
	query, args := dialect.Select(selectMessage, q)
	return collect(ctx, c.q, query, args, scanMessage)
}

func (c *conn) History(ctx context.Context, messageID string) ([]switchboard.StatusChange, error) {
	return collect(ctx, c.q, `SELECT status, error_code, at, source, applied
        FROM message_status WHERE message_id = $1 ORDER BY id`, []any{messageID}, func(row rowScanner) (switchboard.StatusChange, error) {
		var ch switchboard.StatusChange
		err := row.Scan(&ch.Status, &ch.ErrorCode, &ch.At, &ch.Source, &ch.Applied)
		ch.At = ch.At.UTC()
		return ch, err
	})
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

func (c *conn) InsertMessage(ctx context.Context, m *switchboard.OutboundMessage) (bool, error) {
	var id string
	err := c.q.QueryRow(ctx, insertMessage, m.ID, m.IdempotencyKey, m.AccountSID, m.Pool,
		string(m.Purpose), m.From, m.To, m.Body, m.MediaURLs, m.StatusWebhook, m.PayloadHash,
		m.NextAttemptAt, m.CreatedAt, m.Template).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

const updateMessage = `UPDATE messages SET
    from_number = $1, state = $2, twilio_sid = $3, twilio_status = $4, error_code = $5, attempts = $6,
    next_attempt_at = $7, updated_at = $8, sent_at = $9, delivered_at = $10, last_error = $11,
    replayed_at = $12
    WHERE id = $13`

// UpdateMessages writes the messages back in one round trip.
func (c *conn) UpdateMessages(ctx context.Context, messages []*switchboard.OutboundMessage) error {
	b := &pgx.Batch{}
	for _, m := range messages {
		b.Queue(updateMessage, m.From, string(m.State), m.TwilioSID, m.TwilioStatus, m.ErrorCode, m.Attempts,
			nullTime(m.NextAttemptAt), m.UpdatedAt, nullTime(m.SentAt), nullTime(m.DeliveredAt), m.LastError,
			nullTime(m.ReplayedAt), m.ID)
	}
	return sendBatch(ctx, c.q, b, func(i int) string { return "update message " + messages[i].ID })
}

// InsertHistory appends the rows in one round trip; the history's
// identity column keeps their order.
func (c *conn) InsertHistory(ctx context.Context, rows []store.StatusRow) error {
	b := &pgx.Batch{}
	for _, r := range rows {
		u := r.Update
		b.Queue(`INSERT INTO message_status (message_id, status, error_code, at, source, applied)
            VALUES ($1, $2, $3, $4, $5, $6)`, r.MessageID, u.Status, u.ErrorCode, u.At, u.Source, r.Applied)
	}
	return sendBatch(ctx, c.q, b, func(i int) string {
		return "record status " + rows[i].Update.Status + " of message " + rows[i].MessageID
	})
}

func (c *conn) RedactMessage(ctx context.Context, id string, at time.Time) error {
	_, err := c.q.Exec(ctx, `UPDATE messages SET body = '', updated_at = $2 WHERE id = $1`, id, at)
	return err
}

// DeleteMessage deletes the message and its history in one statement:
// foreign keys are checked at its end.
func (c *conn) DeleteMessage(ctx context.Context, id string) error {
	_, err := c.q.Exec(ctx, `WITH gone_history AS (DELETE FROM message_status WHERE message_id = $1)
        DELETE FROM messages WHERE id = $1`, id)
	return err
}

func (c *conn) Heartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error) {
	b := &pgx.Batch{}
	// A process beats from its liveness and its sender, each stamped
	// when it began: one that lands late must not move the last beat back.
	b.Queue(`INSERT INTO sender_nodes (node, seen_at) VALUES ($1, $2)
        ON CONFLICT (node) DO UPDATE SET seen_at = greatest(sender_nodes.seen_at, excluded.seen_at)`, node, at)
	b.Queue(`DELETE FROM sender_nodes WHERE seen_at < $1`, at.Add(-ttl))
	if err := sendBatch(ctx, c.q, b, func(int) string { return "record node" }); err != nil {
		return 0, err
	}
	var alive int
	return alive, c.q.QueryRow(ctx, `SELECT count(*) FROM sender_nodes`).Scan(&alive)
}

func (c *conn) Suppress(ctx context.Context, accountSID, number, reason string, at time.Time, keep string) error {
	_, err := c.q.Exec(ctx, `INSERT INTO suppressions (account_sid, number, reason, created_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (account_sid, number) DO UPDATE SET reason = excluded.reason
        WHERE $5 = '' OR NOT starts_with(suppressions.reason, $5)`,
		accountSID, number, reason, at, keep)
	return err
}

func (c *conn) Unsuppress(ctx context.Context, accountSID, number, keep string) error {
	_, err := c.q.Exec(ctx, `DELETE FROM suppressions WHERE account_sid = $1 AND number = $2
        AND ($3 = '' OR NOT starts_with(reason, $3))`, accountSID, number, keep)
	return err
}

func (c *conn) StickySender(ctx context.Context, pool, recipient string) (string, bool, error) {
	var from string
	err := c.q.QueryRow(ctx, `SELECT from_number FROM sticky_senders WHERE pool = $1 AND recipient = $2`,
		pool, recipient).Scan(&from)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return from, err == nil, err
}

// SetStickySenders sets the senders in one round trip.
func (c *conn) SetStickySenders(ctx context.Context, senders []store.StickyWrite) error {
	b := &pgx.Batch{}
	for _, w := range senders {
		b.Queue(`INSERT INTO sticky_senders (pool, recipient, from_number, updated_at)
            VALUES ($1, $2, $3, $4) ON CONFLICT (pool, recipient)
            DO UPDATE SET from_number = excluded.from_number, updated_at = excluded.updated_at`,
			w.Pool, w.Recipient, w.From, w.At)
	}
	return sendBatch(ctx, c.q, b, func(i int) string {
		return "set sticky sender of " + senders[i].Recipient + " in pool " + senders[i].Pool
	})
}

// selectSendView reads a message and, by subqueries of the same statement
// (one snapshot), its recipient's suppression and sticky sender and the
// purposes of the earlier unsent messages to it in its pool (through the
// partial index messages_unsent_to).
const selectSendView = `SELECT ` + messageColumns + `,
    (SELECT reason FROM suppressions s WHERE s.account_sid = m.account_sid AND s.number = m.to_number),
    (SELECT from_number FROM sticky_senders k WHERE k.pool = m.pool AND k.recipient = m.to_number),
    (SELECT string_agg(DISTINCT e.purpose, ',') FROM messages e
        WHERE e.pool = m.pool AND e.to_number = m.to_number AND e.id < m.id AND e.state IN ('queued', 'sending'))
    FROM messages m WHERE m.id = $1`

func (c *conn) SendView(ctx context.Context, id string) (*switchboard.SendView, error) {
	var suppression, sticky, earlier *string
	m, err := scanMessageWith(c.q.QueryRow(ctx, selectSendView, id), &suppression, &sticky, &earlier)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return store.NewSendView(m, deref(suppression), suppression != nil, deref(sticky), deref(earlier)), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
