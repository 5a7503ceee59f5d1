package store

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Prune deletes up to limit items of kind older than before, oldest first,
// in one transaction, with what belongs to them (see switchboard.Store).
// On an engine with concurrent writers each batch skips the rows other
// transactions hold, so that pruners on several replicas, or a pruner and
// a write holding a row (a replay, a status update), never wait on each
// other over it; a row changed meanwhile is checked again as it now
// stands, so a replayed event is not deleted.
func (s *Store) Prune(ctx context.Context, kind switchboard.PruneKind, before time.Time, limit int) (int, error) {
	if err := kind.CheckPrune(limit); err != nil {
		return 0, err
	}
	before = before.Truncate(time.Microsecond) // the columns' precision
	var n int
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		switch kind {
		case switchboard.PruneRejected:
			n, err = tx.DeleteRejected(ctx, before, limit)
		case switchboard.PruneDelivered, switchboard.PruneDead:
			n, err = pruneEvents(ctx, tx, switchboard.State(kind), before, limit)
		case switchboard.PruneMessages:
			n, err = tx.DeleteMessages(ctx, before, limit)
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

// pruneEvents deletes old events in state with their attempts, then the
// requests none of whose events is left.
func pruneEvents(ctx context.Context, tx Tx, state switchboard.State, before time.Time, limit int) (int, error) {
	events, requests, err := tx.DeleteEvents(ctx, state, before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete old %s events: %w", state, err)
	}
	if len(events) == 0 {
		return 0, nil
	}
	if err := tx.DeleteOrphanRequests(ctx, requests, events); err != nil {
		return 0, fmt.Errorf("delete requests of the events: %w", err)
	}
	// A Debugger alert goes with its event: its retention is its
	// route's, and its Sid is recognised as long as the event's key is.
	if err := tx.DeleteDebuggerAlertsOf(ctx, events); err != nil {
		return 0, fmt.Errorf("delete debugger alerts of the events: %w", err)
	}
	return len(events), nil
}

// pruneStickySenders deletes the sticky senders set before before whose
// recipients got no message in their pool since; one still in use takes
// the time of its recipient's last message instead, so that it is looked
// at again only once that is old.
func pruneStickySenders(ctx context.Context, tx Tx, before time.Time, limit int) (int, error) {
	old, err := tx.OldStickySenders(ctx, before, limit)
	if err != nil {
		return 0, fmt.Errorf("find old sticky senders: %w", err)
	}
	var touch, drop []StickyUse
	for _, s := range old {
		if !s.LastMessage.IsZero() && !s.LastMessage.Before(before) {
			touch = append(touch, s)
		} else {
			drop = append(drop, s)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	if err := tx.WriteStickySenders(ctx, touch, drop); err != nil {
		return 0, fmt.Errorf("prune sticky senders: %w", err)
	}
	return len(drop), nil
}
