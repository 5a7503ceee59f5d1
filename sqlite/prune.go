package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Prune deletes up to limit items of kind older than before, oldest first,
// in one write transaction. SQLite has one writer, so nothing changes
// between the choice of the items and their deletion; the pruner keeps its
// batches small and pauses between them, so that intake's commits take
// their turns.
func (s *Store) Prune(ctx context.Context, kind switchboard.PruneKind, before time.Time, limit int) (int, error) {
	if err := kind.CheckPrune(limit); err != nil {
		return 0, err
	}
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		switch kind {
		case switchboard.PruneRejected:
			n, err = pruneRejected(ctx, tx, before, limit)
		case switchboard.PruneDelivered, switchboard.PruneDead:
			n, err = pruneEvents(ctx, tx, switchboard.State(kind), before, limit)
		case switchboard.PruneMessages:
			n, err = pruneMessages(ctx, tx, before, limit)
		case switchboard.PruneStickySenders:
			n, err = pruneStickySenders(ctx, tx, before, limit)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune %s before %s: %w", kind, before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

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

func pruneRejected(ctx context.Context, tx *sql.Tx, before time.Time, limit int) (int, error) {
	res, err := tx.ExecContext(ctx, pruneRejectedQuery, micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("delete rejected requests: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// pruneEvents deletes old events in state, their attempts, and the
// requests none of whose events is left.
func pruneEvents(ctx context.Context, tx *sql.Tx, state switchboard.State, before time.Time, limit int) (int, error) {
	rows, err := tx.QueryContext(ctx, oldEventsQuery, string(state), micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("find old %s events: %w", state, err)
	}
	var ids, requestIDs []string
	for rows.Next() {
		var id, req string
		if err := rows.Scan(&id, &req); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find old %s events: %w", state, err)
		}
		ids, requestIDs = append(ids, id), append(requestIDs, req)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("find old %s events: %w", state, err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find old %s events: %w", state, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	idList, err := jsonList(ids)
	if err != nil {
		return 0, err
	}
	reqList, err := jsonList(requestIDs)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, deleteAttemptsOf, idList); err != nil {
		return 0, fmt.Errorf("delete attempts: %w", err)
	}
	res, err := tx.ExecContext(ctx, deleteEvents, idList)
	if err != nil {
		return 0, fmt.Errorf("delete events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, deleteOrphanRequests, reqList, idList); err != nil {
		return 0, fmt.Errorf("delete requests of the events: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// pruneMessages deletes old messages no longer being sent and their
// status history.
func pruneMessages(ctx context.Context, tx *sql.Tx, before time.Time, limit int) (int, error) {
	rows, err := tx.QueryContext(ctx, oldMessagesQuery, micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("find old messages: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find old messages: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("find old messages: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find old messages: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := jsonList(ids)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, deleteHistoryOf, list); err != nil {
		return 0, fmt.Errorf("delete status history: %w", err)
	}
	res, err := tx.ExecContext(ctx, deleteMessages, list)
	if err != nil {
		return 0, fmt.Errorf("delete messages: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// pruneStickySenders deletes the sticky senders set before before whose
// recipients got no message in their pool since; one still in use takes
// the time of its recipient's last message instead, so that it is looked
// at again only once that is old.
func pruneStickySenders(ctx context.Context, tx *sql.Tx, before time.Time, limit int) (int, error) {
	type sticky struct{ pool, recipient string }
	rows, err := tx.QueryContext(ctx, oldStickyQuery, micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("find old sticky senders: %w", err)
	}
	var old []sticky
	for rows.Next() {
		var s sticky
		if err := rows.Scan(&s.pool, &s.recipient); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find old sticky senders: %w", err)
		}
		old = append(old, s)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("find old sticky senders: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find old sticky senders: %w", err)
	}
	n := 0
	for _, s := range old {
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, lastMessageTo, s.recipient, s.pool).Scan(&last); err != nil {
			return 0, fmt.Errorf("last message of a sticky sender's recipient: %w", err)
		}
		if last.Valid && last.Int64 >= micros(before) {
			if _, err := tx.ExecContext(ctx, touchSticky, last.Int64, s.pool, s.recipient); err != nil {
				return 0, fmt.Errorf("keep a sticky sender in use: %w", err)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, deleteSticky, s.pool, s.recipient); err != nil {
			return 0, fmt.Errorf("delete a sticky sender: %w", err)
		}
		n++
	}
	return n, nil
}

// jsonList encodes ids as a JSON array for json_each.
func jsonList(ids []string) (string, error) {
	b, err := json.Marshal(ids)
	if err != nil {
		return "", fmt.Errorf("encode ids: %w", err)
	}
	return string(b), nil
}
