package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

// MaxAlertKey bounds an alert's key in bytes. Keys come from what the
// store counts (routes, pools, templates, codes), each bounded already;
// this makes a key the store keeps bounded whatever a caller passes.
const MaxAlertKey = 1024

// AlertStates returns every stored alert state, ordered by rule and key
// (byte order, whatever the engine's collation).
func (s *Store) AlertStates(ctx context.Context) ([]switchboard.AlertState, error) {
	rows, err := s.driver.Read().AlertStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert states: %w", err)
	}
	out := make([]switchboard.AlertState, 0, len(rows))
	for _, row := range rows {
		var st switchboard.AlertState
		if err := json.Unmarshal(row.State, &st); err != nil {
			return nil, fmt.Errorf("alert states: decode %s %q: %w", row.Rule, row.Key, err)
		}
		// The columns are the truth: the JSON is written with them.
		st.Rule, st.Key, st.Version, st.UpdatedAt = row.Rule, row.Key, row.Version, row.UpdatedAt.UTC()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b switchboard.AlertState) int {
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Key, b.Key))
	})
	return out, nil
}

// validAlert refuses what the store does not keep: an alert without a
// rule, a key or rule that is not UTF-8, holds a NUL or is too long, a value that is
// not a number. A NUL, which PostgreSQL refuses in text, is refused on
// every engine.
func validAlert(rule, key string, values ...float64) error {
	switch {
	case rule == "" || len(rule) > 64 || !utf8.ValidString(rule):
		return fmt.Errorf("%w: alert rule %q", switchboard.ErrInvalid, rule)
	case len(key) > MaxAlertKey || !utf8.ValidString(key) || strings.ContainsRune(key, 0):
		return fmt.Errorf("%w: alert key of %d bytes (at most %d, UTF-8)", switchboard.ErrInvalid, len(key), MaxAlertKey)
	}
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: alert %s %q: value %v", switchboard.ErrInvalid, rule, key, v)
		}
	}
	return nil
}

// PutAlertState implements switchboard.Store: a compare-and-set on
// st.Version, with ev appended to the alert's history and the history
// trimmed in the same transaction. On success st.Version is the stored
// version (one more); on ErrConflict st is unchanged. A zero
// st.UpdatedAt is now. ev takes st's rule and key, and its ID is set.
func (s *Store) PutAlertState(ctx context.Context, st *switchboard.AlertState, ev *switchboard.AlertEvent) error {
	if err := validAlert(st.Rule, st.Key, st.Value); err != nil {
		return fmt.Errorf("put alert state: %w", err)
	}
	next := *st
	next.Version = st.Version + 1
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = s.now()
	}
	next.UpdatedAt = micro(next.UpdatedAt)
	state, err := json.Marshal(&next)
	if err != nil {
		return fmt.Errorf("put alert state %s %q: encode: %w", st.Rule, st.Key, err)
	}
	var event switchboard.AlertEvent
	if ev != nil {
		event = *ev
		event.Rule, event.Key, event.At = st.Rule, st.Key, micro(event.At)
		if event.At.IsZero() {
			event.At = next.UpdatedAt
		}
		if err := validAlert(event.Rule, event.Key, event.Value); err != nil {
			return fmt.Errorf("put alert state: history: %w", err)
		}
	}
	row := AlertStateRow{Rule: st.Rule, Key: st.Key, Version: next.Version, State: state, UpdatedAt: next.UpdatedAt}
	err = s.driver.InTx(ctx, func(tx Tx) error {
		ok, err := tx.PutAlertState(ctx, row, st.Version)
		if err != nil {
			return err
		}
		if !ok {
			return switchboard.ErrConflict
		}
		if ev == nil {
			return nil
		}
		if event.ID, err = tx.InsertAlertEvent(ctx, &event); err != nil {
			return fmt.Errorf("append history: %w", err)
		}
		before := next.UpdatedAt.Add(-switchboard.RollupRetention)
		if err := tx.TrimAlertHistory(ctx, st.Rule, st.Key, switchboard.MaxAlertHistory, before); err != nil {
			return fmt.Errorf("trim history: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put alert state %s %q (version %d): %w", st.Rule, st.Key, st.Version, err)
	}
	*st = next
	if ev != nil {
		*ev = event
	}
	return nil
}

// DeleteAlertState implements switchboard.Store: a compare-and-delete on
// version. The alert's history stays, trimmed by age as ever.
func (s *Store) DeleteAlertState(ctx context.Context, rule, key string, version int64) error {
	if err := validAlert(rule, key); err != nil {
		return fmt.Errorf("delete alert state: %w", err)
	}
	err := s.driver.InTx(ctx, func(tx Tx) error {
		ok, err := tx.DeleteAlertState(ctx, rule, key, version)
		if err == nil && !ok {
			err = switchboard.ErrConflict
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete alert state %s %q (version %d): %w", rule, key, version, err)
	}
	return nil
}

// AlertHistory implements switchboard.Store. A limit outside 1 to
// MaxAlertHistory is MaxAlertHistory.
func (s *Store) AlertHistory(ctx context.Context, rule, key string, limit int) ([]switchboard.AlertEvent, error) {
	if limit <= 0 || limit > switchboard.MaxAlertHistory {
		limit = switchboard.MaxAlertHistory
	}
	if validAlert(rule, key) != nil {
		return nil, nil // no such alert can be stored
	}
	evs, err := s.driver.Read().AlertHistory(ctx, rule, key, key == "", limit)
	if err != nil {
		return nil, fmt.Errorf("alert history %s %q: %w", rule, key, err)
	}
	return evs, nil
}
