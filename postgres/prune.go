package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
)

// Prune deletes up to limit items of kind older than before, oldest first,
// in one transaction. Replicas prune side by side: each batch locks the
// rows it takes with SKIP LOCKED, so that two pruners, or a pruner and a
// write holding a row (a replay, a status update), never wait on each
// other over it; a row changed meanwhile is checked again against the
// WHERE clause as it now stands (READ COMMITTED), so a replayed event is
// not deleted.
func (s *Store) Prune(ctx context.Context, kind switchboard.PruneKind, before time.Time, limit int) (int, error) {
	if err := kind.CheckPrune(limit); err != nil {
		return 0, err
	}
	// The columns hold microseconds, as pgx sends before.
	before = before.Truncate(time.Microsecond)
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Every query here finds its rows through an index. Without
		// statistics (a table just loaded, not yet analysed) the planner
		// takes an array of a few hundred ids to match most of a table,
		// and scans requests whole, hundreds of milliseconds a batch.
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		var err error
		switch kind {
		case switchboard.PruneRejected:
			n, err = execCount(ctx, tx, pruneRejectedQuery, before, limit)
		case switchboard.PruneDelivered, switchboard.PruneDead:
			n, err = pruneEvents(ctx, tx, switchboard.State(kind), before, limit)
		case switchboard.PruneMessages:
			n, err = execCount(ctx, tx, pruneMessagesQuery, before, limit)
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

// execCount runs a DELETE and returns how many rows it deleted.
func execCount(ctx context.Context, tx pgx.Tx, query string, args ...any) (int, error) {
	tag, err := tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// pruneEvents deletes old events in state with their attempts, then the
// requests none of whose events is left.
func pruneEvents(ctx context.Context, tx pgx.Tx, state switchboard.State, before time.Time, limit int) (int, error) {
	rows, err := tx.Query(ctx, pruneEventsQuery, string(state), before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete old %s events: %w", state, err)
	}
	var ids, requestIDs []string
	var id, req string
	if _, err := pgx.ForEachRow(rows, []any{&id, &req}, func() error {
		ids, requestIDs = append(ids, id), append(requestIDs, req)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("delete old %s events: %w", state, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err = tx.Query(ctx, lockRequestsOfEvents, requestIDs, ids)
	if err != nil {
		return 0, fmt.Errorf("lock requests of the events: %w", err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("lock requests of the events: %w", err)
	}
	if _, err := tx.Exec(ctx, deleteOrphanRequests, candidates); err != nil {
		return 0, fmt.Errorf("delete requests of the events: %w", err)
	}
	return len(ids), nil
}

// pruneStickySenders deletes the sticky senders set before before whose
// recipients got no message in their pool since; one still in use takes
// the time of its recipient's last message instead, so that it is looked
// at again only once that is old. Each row is written by its key, in one
// round trip.
func pruneStickySenders(ctx context.Context, tx pgx.Tx, before time.Time, limit int) (int, error) {
	rows, err := tx.Query(ctx, oldStickySenders, before, limit)
	if err != nil {
		return 0, fmt.Errorf("find old sticky senders: %w", err)
	}
	var (
		pool, recipient string
		last            *time.Time
		n               int
	)
	b := &pgx.Batch{}
	if _, err := pgx.ForEachRow(rows, []any{&pool, &recipient, &last}, func() error {
		if last != nil && !last.Before(before) {
			b.Queue(touchSticky, pool, recipient, *last)
			return nil
		}
		b.Queue(deleteSticky, pool, recipient)
		n++
		return nil
	}); err != nil {
		return 0, fmt.Errorf("find old sticky senders: %w", err)
	}
	if b.Len() == 0 {
		return 0, nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("prune sticky senders: %w", err)
	}
	return n, nil
}
