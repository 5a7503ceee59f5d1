package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// The primitives of retention (store.Store.Prune). SQLite has one writer,
// so nothing changes between the choice of the rows and their deletion;
// the pruner keeps its batches small and pauses between them, so that
// intake's commits take their turns.
//
// The queries of Prune name the indexes of migration 0006 that find old
// rows (without statistics, SQLite would rather walk requests_outcome for
// every rejected request and sort them), and repeat the WHERE terms of the
// partial ones word for word: SQLite uses a partial index only for a query
// that implies its WHERE, and it proves that only from identical terms. Lists of ids go in as one JSON array, so that each query's text,
// and its cached statement, is the same whatever the batch's size.
const (
	pruneRejectedQuery = `DELETE FROM requests WHERE id IN (
    SELECT id FROM requests INDEXED BY requests_rejected WHERE outcome = 'rejected' AND received_at < ? ORDER BY received_at LIMIT ?)`

	oldEventsQuery = `SELECT id, request_id FROM events INDEXED BY events_terminal
    WHERE state IN ('delivered', 'dead') AND state = ? AND updated_at < ?
    ORDER BY updated_at LIMIT ?`
	deleteAttemptsOf = `DELETE FROM attempts WHERE event_id IN (SELECT value FROM json_each(?))`
	deleteEvents     = `DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))`
	// A request goes once no event of it is left: neither the event it
	// names (its own, or the original of a duplicate) nor a fan-out event
	// made from it. The candidates are the deleted events' own requests and
	// the requests naming them (the event's own and its duplicates).
	deleteOrphanRequests = `DELETE FROM requests
    WHERE id IN (SELECT value FROM json_each(?1)
                 UNION SELECT id FROM requests WHERE event_id IN (SELECT value FROM json_each(?2)))
      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = requests.event_id)
      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = requests.id AND e.target <> '')`

	oldMessagesQuery = `SELECT id FROM messages INDEXED BY messages_settled
    WHERE state NOT IN ('queued', 'sending') AND updated_at < ?
    ORDER BY updated_at LIMIT ?`
	deleteHistoryOf = `DELETE FROM message_status WHERE message_id IN (SELECT value FROM json_each(?))`
	deleteMessages  = `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))`

	oldStickyQuery = `SELECT pool, recipient FROM sticky_senders INDEXED BY sticky_senders_updated WHERE updated_at < ? ORDER BY updated_at LIMIT ?`
	lastMessageTo  = `SELECT max(created_at) FROM messages WHERE to_number = ? AND pool = ?`
	touchSticky    = `UPDATE sticky_senders SET updated_at = ? WHERE pool = ? AND recipient = ?`
	deleteSticky   = `DELETE FROM sticky_senders WHERE pool = ? AND recipient = ?`
)

func (c *conn) DeleteRejected(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := c.q.ExecContext(ctx, pruneRejectedQuery, micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete rejected requests: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (c *conn) DeleteEvents(ctx context.Context, state switchboard.State, before time.Time, limit int) (events, requests []string, err error) {
	type old struct{ id, request string }
	found, err := collect(ctx, c.q, oldEventsQuery, []any{string(state), micros(before), limit}, func(r rowScanner) (old, error) {
		var o old
		return o, r.Scan(&o.id, &o.request)
	})
	if err != nil || len(found) == 0 {
		return nil, nil, err
	}
	for _, o := range found {
		events, requests = append(events, o.id), append(requests, o.request)
	}
	list := jsonList(events)
	if _, err := c.q.ExecContext(ctx, deleteAttemptsOf, list); err != nil {
		return nil, nil, fmt.Errorf("delete attempts: %w", err)
	}
	if _, err := c.q.ExecContext(ctx, deleteEvents, list); err != nil {
		return nil, nil, err
	}
	return events, requests, nil
}

func (c *conn) DeleteOrphanRequests(ctx context.Context, requests, events []string) error {
	_, err := c.q.ExecContext(ctx, deleteOrphanRequests, jsonList(requests), jsonList(events))
	return err
}

func (c *conn) DeleteMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	ids, err := collect(ctx, c.q, oldMessagesQuery, []any{micros(before), limit}, func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	list := jsonList(ids)
	if _, err := c.q.ExecContext(ctx, deleteHistoryOf, list); err != nil {
		return 0, fmt.Errorf("delete status history: %w", err)
	}
	res, err := c.q.ExecContext(ctx, deleteMessages, list)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (c *conn) OldStickySenders(ctx context.Context, before time.Time, limit int) ([]store.StickyUse, error) {
	old, err := collect(ctx, c.q, oldStickyQuery, []any{micros(before), limit}, func(r rowScanner) (store.StickyUse, error) {
		var s store.StickyUse
		return s, r.Scan(&s.Pool, &s.Recipient)
	})
	if err != nil {
		return nil, err
	}
	for i := range old {
		var last sql.NullInt64
		if err := c.q.QueryRowContext(ctx, lastMessageTo, old[i].Recipient, old[i].Pool).Scan(&last); err != nil {
			return nil, fmt.Errorf("last message of a sticky sender's recipient: %w", err)
		}
		old[i].LastMessage = nullMicros(last)
	}
	return old, nil
}

func (c *conn) WriteStickySenders(ctx context.Context, touch, drop []store.StickyUse) error {
	for _, s := range touch {
		if _, err := c.q.ExecContext(ctx, touchSticky, micros(s.LastMessage), s.Pool, s.Recipient); err != nil {
			return fmt.Errorf("keep a sticky sender in use: %w", err)
		}
	}
	for _, s := range drop {
		if _, err := c.q.ExecContext(ctx, deleteSticky, s.Pool, s.Recipient); err != nil {
			return fmt.Errorf("delete a sticky sender: %w", err)
		}
	}
	return nil
}

// jsonList encodes ids as a JSON array for json_each.
func jsonList(ids []string) string {
	b, _ := json.Marshal(ids) // strings always encode
	return string(b)
}
