package store

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard"
)

// ReplayPreview is what a replay with a filter would schedule, found
// without scheduling anything.
type ReplayPreview struct {
	// Matched counts the events the replay would schedule: the terminal
	// (delivered or dead) events the filter selects.
	Matched int
	// Sample holds the ids of up to the requested number of them, newest
	// first.
	Sample []string
}

// PreviewReplay counts the events Replay(f) would schedule now and returns
// the ids of up to sample of them, newest first, changing nothing. It
// refuses what Replay refuses, with the same errors (an empty filter, a
// non-terminal state, an unknown event id). The count and the sample are
// two reads, and events move on meanwhile: a preview, not a reservation.
func (s *Store) PreviewReplay(ctx context.Context, f switchboard.ReplayFilter, sample int) (ReplayPreview, error) {
	if err := f.Validate(); err != nil {
		return ReplayPreview{}, err
	}
	if !replayText(f) {
		return ReplayPreview{}, noneToReplay(f)
	}
	where := replayWhere(f)
	r := s.driver.Read()
	matched, err := r.Count(ctx, TableEvents, where)
	if err != nil {
		return ReplayPreview{}, fmt.Errorf("count events to replay: %w", err)
	}
	p := ReplayPreview{Matched: int(matched)}
	if p.Matched == 0 && f.EventID != "" {
		if _, err := s.Event(ctx, f.EventID); err != nil {
			return ReplayPreview{}, fmt.Errorf("replay: %w", err)
		}
	}
	if sample <= 0 || p.Matched == 0 {
		return p, nil
	}
	events, err := r.Events(ctx, Query{Where: where, Order: NewestFirst, Limit: sample})
	if err != nil {
		return ReplayPreview{}, fmt.Errorf("list events to replay: %w", err)
	}
	for _, e := range events {
		p.Sample = append(p.Sample, e.ID)
	}
	return p, nil
}

// ReplayCount counts the events Replay(f) would schedule now, by one
// count of the engine's over Replay's conditions: no event is read or
// changed. It refuses what Replay refuses, with the same errors.
func (s *Store) ReplayCount(ctx context.Context, f switchboard.ReplayFilter) (int, error) {
	p, err := s.PreviewReplay(ctx, f, 0)
	return p.Matched, err
}

// replayText reports whether f's values are all text (isText): a value
// that is not matches no event, and PostgreSQL could not compare it.
func replayText(f switchboard.ReplayFilter) bool {
	return allText(f.EventID, f.Route, string(f.Kind))
}

// noneToReplay is a replay's outcome when f matches nothing without
// asking the engine: none scheduled, and ErrNotFound when f names an
// event.
func noneToReplay(f switchboard.ReplayFilter) error {
	if f.EventID != "" {
		return fmt.Errorf("replay: event %q: %w", f.EventID, switchboard.ErrNotFound)
	}
	return nil
}

// replayWhere selects the events a replay with f schedules: only terminal
// ones, since a pending or retrying event has its delivery scheduled
// already.
func replayWhere(f switchboard.ReplayFilter) []Cond {
	where := []Cond{OneOf("state", switchboard.StateDelivered, switchboard.StateDead)}
	where = eq(where, "state", f.State)
	where = eq(where, "id", f.EventID)
	where = eq(where, "route", f.Route)
	where = eq(where, "kind", f.Kind)
	where = code(where, "last_code", f.TwilioCode)
	return since(where, "created_at", f.Since, f.Until)
}
