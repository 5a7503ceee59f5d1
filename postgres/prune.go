package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// The primitives of retention (store.Store.Prune). Replicas prune side by
// side: each batch locks the rows it takes with SKIP LOCKED, so that two
// pruners, or a pruner and a write holding a row (a replay, a status
// update), never wait on each other over it; a row changed meanwhile is
// checked again against the WHERE clause as it now stands (READ
// COMMITTED), so a replayed event is not deleted.

// The queries repeat the WHERE terms of the partial indexes of migration
// 0006, so that a generic plan, which cannot prove a parameter's value
// within them, still uses the indexes; and they delete by = ANY(ARRAY(...))
// rather than IN (subquery), which a generic plan, guessing the LIMIT's
// size, may turn into a hash join over a whole table. Foreign keys are checked at the end
// of each statement, so a statement may delete rows and what refers to
// them together.
const (
	pruneRejectedQuery = `DELETE FROM requests WHERE id = ANY(ARRAY(
    SELECT id FROM requests WHERE outcome = 'rejected' AND received_at < $1
    ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED))`

	pruneEventsQuery = `WITH doomed AS (
        SELECT id FROM events
        WHERE state IN ('delivered', 'dead') AND state = $1 AND updated_at < $2
        ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED),
    gone_attempts AS (DELETE FROM attempts WHERE event_id = ANY(ARRAY(SELECT id FROM doomed)))
    DELETE FROM events WHERE id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING id, request_id`
	// The requests that may have lost their last event: the deleted
	// events' own and those naming them (the event's own and its
	// duplicates), locked in id order so that pruners on several replicas
	// take them in one order.
	lockRequestsOfEvents = `SELECT id FROM requests WHERE id = ANY($1) OR event_id = ANY($2) ORDER BY id FOR UPDATE`
	// A request goes once no event of it is left: neither the event it
	// names nor a fan-out event made from it. This statement sees what
	// committed while the locks above were awaited, such as a fan-out event
	// added by IngestFanout, which holds its request while it adds one.
	deleteOrphanRequests = `DELETE FROM requests r WHERE r.id = ANY($1)
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id)
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = r.id AND e.target <> '')`

	pruneMessagesQuery = `WITH doomed AS (
        SELECT id FROM messages
        WHERE state NOT IN ('queued', 'sending') AND updated_at < $1
        ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    gone_history AS (DELETE FROM message_status WHERE message_id = ANY(ARRAY(SELECT id FROM doomed)))
    DELETE FROM messages WHERE id = ANY(ARRAY(SELECT id FROM doomed))`

	// Sticky senders set before the cutoff, each with the creation time of
	// the last message to its recipient in its pool (NULL for none).
	oldStickySenders = `SELECT o.pool, o.recipient,
        (SELECT max(m.created_at) FROM messages m WHERE m.to_number = o.recipient AND m.pool = o.pool)
    FROM (SELECT pool, recipient FROM sticky_senders WHERE updated_at < $1
          ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) o`
	touchSticky  = `UPDATE sticky_senders SET updated_at = $3 WHERE pool = $1 AND recipient = $2`
	deleteSticky = `DELETE FROM sticky_senders WHERE pool = $1 AND recipient = $2`
)

// useIndexes makes every query of the transaction find its rows through an
// index. Without statistics (a table just loaded, not yet analysed) the
// planner takes an array of a few hundred ids to match most of a table,
// and scans requests whole, hundreds of milliseconds a batch.
func (c *conn) useIndexes(ctx context.Context) error {
	if c.indexOnly {
		return nil
	}
	if _, err := c.q.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		return err
	}
	c.indexOnly = true
	return nil
}

// execCount runs a DELETE, with indexes only, and returns how many rows it
// deleted.
func (c *conn) execCount(ctx context.Context, query string, args ...any) (int, error) {
	if err := c.useIndexes(ctx); err != nil {
		return 0, err
	}
	tag, err := c.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (c *conn) DeleteRejected(ctx context.Context, before time.Time, limit int) (int, error) {
	return c.execCount(ctx, pruneRejectedQuery, before, limit)
}

func (c *conn) DeleteMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	return c.execCount(ctx, pruneMessagesQuery, before, limit)
}

func (c *conn) DeleteEvents(ctx context.Context, state switchboard.State, before time.Time, limit int) (events, requests []string, err error) {
	if err := c.useIndexes(ctx); err != nil {
		return nil, nil, err
	}
	rows, err := c.q.Query(ctx, pruneEventsQuery, string(state), before, limit)
	if err != nil {
		return nil, nil, err
	}
	var id, req string
	_, err = pgx.ForEachRow(rows, []any{&id, &req}, func() error {
		events, requests = append(events, id), append(requests, req)
		return nil
	})
	return events, requests, err
}

func (c *conn) DeleteOrphanRequests(ctx context.Context, requests, events []string) error {
	if err := c.useIndexes(ctx); err != nil {
		return err
	}
	rows, err := c.q.Query(ctx, lockRequestsOfEvents, requests, events)
	if err != nil {
		return fmt.Errorf("lock requests of the events: %w", err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("lock requests of the events: %w", err)
	}
	_, err = c.q.Exec(ctx, deleteOrphanRequests, candidates)
	return err
}

func (c *conn) OldStickySenders(ctx context.Context, before time.Time, limit int) ([]store.StickyUse, error) {
	if err := c.useIndexes(ctx); err != nil {
		return nil, err
	}
	return collect(ctx, c.q, oldStickySenders, []any{before, limit}, func(row rowScanner) (store.StickyUse, error) {
		var (
			s    store.StickyUse
			last *time.Time
		)
		err := row.Scan(&s.Pool, &s.Recipient, &last)
		s.LastMessage = utc(last)
		return s, err
	})
}

// WriteStickySenders writes each row by its key, in one round trip.
func (c *conn) WriteStickySenders(ctx context.Context, touch, drop []store.StickyUse) error {
	b := &pgx.Batch{}
	for _, s := range touch {
		b.Queue(touchSticky, s.Pool, s.Recipient, s.LastMessage)
	}
	for _, s := range drop {
		b.Queue(deleteSticky, s.Pool, s.Recipient)
	}
	return sendBatch(ctx, c.q, b, func(int) string { return "write sticky senders" })
}
