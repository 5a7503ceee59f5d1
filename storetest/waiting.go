package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// waitingIDs returns the ids of the events WaitingEvents(f) returns.
func waitingIDs(t *testing.T, s switchboard.Store, f switchboard.WaitingFilter) []string {
	t.Helper()
	events, err := s.WaitingEvents(context.Background(), f)
	if err != nil {
		t.Fatalf("WaitingEvents(%+v): %v", f, err)
	}
	ids := make([]string, len(events))
	for i, ev := range events {
		ids[i] = ev.ID
	}
	return ids
}

// WaitingEvents returns the events of the listener's routes still to be
// delivered, whatever their next attempt time, that have no target of
// their own, oldest first across routes, a page at a time.
func testWaitingEvents(t *testing.T, o Opened) {
	ctx := context.Background()
	// Created in this order, so their ids are too.
	sms1 := NewItem("/sms", "wt-sms-1", base)
	voice1 := NewItem("/voice", "wt-voice-1", base.Add(time.Minute))
	voice1.Event.Kind = switchboard.KindVoice
	other := NewItem("/other", "wt-other", base.Add(2*time.Minute))
	delivered := NewItem("/sms", "wt-delivered", base.Add(3*time.Minute))
	dead := NewItem("/sms", "wt-dead", base.Add(4*time.Minute))
	retrying := NewItem("/sms", "wt-retrying", base.Add(5*time.Minute))
	status := NewItem("/voice", "wt-status", base.Add(6*time.Minute))
	status.Event.Kind = switchboard.KindCallStatus
	fanned := NewItem("/sms", "wt-fanned", base.Add(7*time.Minute))
	fanned.Fanout = []*switchboard.Event{fanoutOf(fanned, "hook", "https://app.example.com/hook")}
	sms2 := NewItem("/sms", "wt-sms-2", base.Add(8*time.Minute))
	ingest(t, o.Store, sms1, voice1, other, delivered, dead, retrying, status, fanned, sms2)
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{
		attempt(delivered.Event.ID, 1, 200, switchboard.StateDelivered, time.Time{}),
		attempt(dead.Event.ID, 1, 410, switchboard.StateDead, time.Time{}),
		// Due long after now: waiting all the same.
		attempt(retrying.Event.ID, 1, 500, switchboard.StateRetrying, time.Now().Add(24*time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	id := func(it *switchboard.Ingest) string { return it.Event.ID }
	both := []string{"/sms", "/voice"}
	all := []string{id(sms1), id(voice1), id(retrying), id(status), id(fanned), id(sms2)}

	for _, tc := range []struct {
		name string
		f    switchboard.WaitingFilter
		want []string
	}{
		{"routes, oldest first across them", switchboard.WaitingFilter{Routes: both}, all},
		{"one route", switchboard.WaitingFilter{Routes: []string{"/voice"}}, []string{id(voice1), id(status)}},
		{"kinds", switchboard.WaitingFilter{Routes: both, Kinds: []switchboard.Kind{switchboard.KindVoice, switchboard.KindCallStatus}},
			[]string{id(voice1), id(status)}},
		{"one kind", switchboard.WaitingFilter{Routes: both, Kinds: []switchboard.Kind{switchboard.KindMessage}},
			[]string{id(sms1), id(retrying), id(fanned), id(sms2)}},
		{"after", switchboard.WaitingFilter{Routes: both, After: id(retrying)}, []string{id(status), id(fanned), id(sms2)}},
		{"after a delivered event", switchboard.WaitingFilter{Routes: both, After: id(delivered)}, all[2:]},
		{"after the last", switchboard.WaitingFilter{Routes: both, After: id(sms2)}, nil},
		{"limit", switchboard.WaitingFilter{Routes: both, Limit: 2}, all[:2]},
		{"no routes", switchboard.WaitingFilter{}, nil},
		{"empty routes", switchboard.WaitingFilter{Routes: []string{}, Kinds: []switchboard.Kind{switchboard.KindMessage}}, nil},
		{"unknown route", switchboard.WaitingFilter{Routes: []string{"/nope"}}, nil},
		{"untext route beside a real one", switchboard.WaitingFilter{Routes: []string{"/voice\x00", "/voice", "\xff"}},
			[]string{id(voice1), id(status)}},
		{"untext kind beside a real one", switchboard.WaitingFilter{Routes: both, Kinds: []switchboard.Kind{"voice\x00", switchboard.KindVoice}},
			[]string{id(voice1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := waitingIDs(t, o.Store, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("WaitingEvents(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		var got []string
		f := switchboard.WaitingFilter{Routes: both, Limit: 4}
		for range len(all) + 1 { // bounded: a page that never ends fails below
			page := waitingIDs(t, o.Store, f)
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			f.After = page[len(page)-1]
		}
		if !slices.Equal(got, all) {
			t.Errorf("paged through %v, want %v", got, all)
		}
	})
}

// Hostile routes, kinds and cursors are values that match nothing; none
// fails, on any engine, and the events stay.
func testWaitingHostile(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/sms", "wt-hostile", base)
	ingest(t, o.Store, it)
	for _, v := range append(slices.Clone(hostileValues), untextValues...) {
		events, err := o.Store.WaitingEvents(ctx, switchboard.WaitingFilter{Routes: []string{v}})
		expectNone(t, "WaitingEvents route", v, len(events), err)
		events, err = o.Store.WaitingEvents(ctx, switchboard.WaitingFilter{Routes: []string{"/sms"}, Kinds: []switchboard.Kind{switchboard.Kind(v)}})
		expectNone(t, "WaitingEvents kind", v, len(events), err)
	}
	for _, v := range untextValues {
		events, err := o.Store.WaitingEvents(ctx, switchboard.WaitingFilter{Routes: []string{"/sms"}, After: v})
		expectNone(t, "WaitingEvents after", v, len(events), err)
	}
	if got := waitingIDs(t, o.Store, switchboard.WaitingFilter{Routes: []string{"/sms"}}); !slices.Equal(got, []string{it.Event.ID}) {
		t.Errorf("after hostile reads, waiting %v, want %s still there", got, it.Event.ID)
	}
}

// parked is a result that made no request (Number 0), decided on the event
// when it had attempts attempts.
func parked(id string, attempts int, state switchboard.State, next time.Time) *switchboard.AttemptResult {
	return &switchboard.AttemptResult{
		Attempt: switchboard.Attempt{EventID: id, StartedAt: base.Add(time.Hour), Error: "parked: no request made"},
		State:   state, NextAttemptAt: next, Attempts: attempts,
	}
}

// A result with no attempt made applies only to the event it was decided
// on: same attempt count, not terminal. Otherwise it is stale and changes
// nothing, so it cannot undo a delivery recorded meanwhile.
func testParkedResults(t *testing.T, o Opened) {
	ctx := context.Background()
	later, muchLater := base.Add(2*time.Hour), base.Add(5*time.Hour)
	for _, tc := range []struct {
		name     string
		before   []*switchboard.AttemptResult // with the event's id filled in
		result   func(id string) *switchboard.AttemptResult
		state    switchboard.State
		attempts int
		next     time.Time // zero: not checked
		applied  bool
	}{
		{"stale after a delivery", []*switchboard.AttemptResult{attempt("", 1, 200, switchboard.StateDelivered, time.Time{})},
			func(id string) *switchboard.AttemptResult { return parked(id, 0, switchboard.StateRetrying, muchLater) },
			switchboard.StateDelivered, 1, time.Time{}, false},
		{"matching attempts of a delivered event", []*switchboard.AttemptResult{attempt("", 1, 200, switchboard.StateDelivered, time.Time{})},
			func(id string) *switchboard.AttemptResult { return parked(id, 1, switchboard.StateRetrying, muchLater) },
			switchboard.StateDelivered, 1, time.Time{}, false},
		{"stale after a failed attempt", []*switchboard.AttemptResult{attempt("", 1, 500, switchboard.StateRetrying, later)},
			func(id string) *switchboard.AttemptResult { return parked(id, 0, switchboard.StatePending, muchLater) },
			switchboard.StateRetrying, 1, later, false},
		{"matching attempts moves the next attempt", []*switchboard.AttemptResult{attempt("", 1, 500, switchboard.StateRetrying, later)},
			func(id string) *switchboard.AttemptResult { return parked(id, 1, switchboard.StateRetrying, muchLater) },
			switchboard.StateRetrying, 1, muchLater, true},
		{"a new event parked", nil,
			func(id string) *switchboard.AttemptResult { return parked(id, 0, switchboard.StatePending, muchLater) },
			switchboard.StatePending, 0, muchLater, true},
		{"dead at max age", []*switchboard.AttemptResult{attempt("", 1, 500, switchboard.StateRetrying, later)},
			func(id string) *switchboard.AttemptResult { return parked(id, 1, switchboard.StateDead, time.Time{}) },
			switchboard.StateDead, 1, time.Time{}, true},
		{"a route with no app delivers", nil,
			func(id string) *switchboard.AttemptResult {
				return parked(id, 0, switchboard.StateDelivered, time.Time{})
			},
			switchboard.StateDelivered, 0, time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := NewItem("/sms", "parked-"+tc.name, base)
			ingest(t, o.Store, it)
			id := it.Event.ID
			for _, r := range tc.before {
				r.Attempt.EventID = id
			}
			if err := o.Store.RecordAttempts(ctx, tc.before); err != nil {
				t.Fatal(err)
			}
			was, err := o.Store.Event(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{tc.result(id)}); err != nil {
				t.Fatal(err)
			}
			ev, err := o.Store.Event(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if ev.State != tc.state || ev.Attempts != tc.attempts || (!tc.next.IsZero() && !ev.NextAttemptAt.Equal(tc.next)) {
				t.Errorf("event %s, %d attempts, next %v; want %s, %d, next %v", ev.State, ev.Attempts, ev.NextAttemptAt,
					tc.state, tc.attempts, tc.next)
			}
			if applied := ev.LastError == "parked: no request made"; applied != tc.applied {
				t.Errorf("last error %q: applied %v, want %v", ev.LastError, applied, tc.applied)
			}
			if !tc.applied && (!ev.UpdatedAt.Equal(was.UpdatedAt) || !ev.DeliveredAt.Equal(was.DeliveredAt)) {
				t.Errorf("a stale result moved the event: %+v, was %+v", ev, was)
			}
			attempts, err := o.Store.Attempts(ctx, id)
			if err != nil || len(attempts) != len(tc.before) {
				t.Errorf("%d attempts stored, %v; want %d: a parked result records none", len(attempts), err, len(tc.before))
			}
		})
	}
}

// A delivery's result and a park decided before it (on the event with no
// attempts) race; whichever is applied first, the event ends delivered.
func testParkRacesDelivery(t *testing.T, o Opened) {
	ctx := context.Background()
	const rounds, perRound = 20, 8
	for round := range rounds {
		items := make([]*switchboard.Ingest, perRound)
		for i := range items {
			items[i] = NewItem("/sms", fmt.Sprintf("race-%d-%d", round, i), base)
		}
		ingest(t, o.Store, items...)
		start := make(chan struct{})
		errs := make(chan error, 2*perRound)
		var wg sync.WaitGroup
		for _, it := range items {
			id := it.Event.ID
			for _, r := range []*switchboard.AttemptResult{
				attempt(id, 1, 200, switchboard.StateDelivered, time.Time{}),
				parked(id, 0, switchboard.StateRetrying, base.Add(time.Hour)),
			} {
				wg.Go(func() {
					<-start
					errs <- o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{r})
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, it := range items {
			ev, err := o.Store.Event(ctx, it.Event.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ev.State != switchboard.StateDelivered || ev.Attempts != 1 || ev.DeliveredAt.IsZero() {
				t.Fatalf("round %d: event %s with %d attempts after a delivery raced a park; want delivered, 1",
					round, ev.State, ev.Attempts)
			}
		}
	}
}

// A process that stalled past the takeover of its job resumes and records
// the attempt it was making, numbered as the attempt the process that
// took over already recorded: the attempt row is kept (it may have reached
// the app), and the event is left as the later record has it.
func testStaleAttemptResult(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/sms", "stale-attempt", base)
	ingest(t, o.Store, it)
	id := it.Event.ID
	takenOver := []*switchboard.AttemptResult{
		attempt(id, 1, 0, switchboard.StateRetrying, base), // the stalled process's, recorded as interrupted
		attempt(id, 2, 200, switchboard.StateDelivered, time.Time{}),
	}
	if err := o.Store.RecordAttempts(ctx, takenOver); err != nil {
		t.Fatal(err)
	}
	was, err := o.Store.Event(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2} { // as late as the first attempt, or as the second
		late := attempt(id, n, 504, switchboard.StateRetrying, base.Add(time.Hour))
		if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{late}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := o.Store.Event(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != switchboard.StateDelivered || ev.Attempts != 2 || !ev.UpdatedAt.Equal(was.UpdatedAt) || ev.LastCode != was.LastCode {
		t.Errorf("a stale attempt's result moved the event: %+v, was %+v", ev, was)
	}
	attempts, err := o.Store.Attempts(ctx, id)
	if err != nil || len(attempts) != 4 {
		t.Errorf("%d attempts on record (%v), want 4: a stale attempt is still on record", len(attempts), err)
	}
	// The next attempt, numbered after every one on record, applies.
	next := attempt(id, 3, 500, switchboard.StateRetrying, base.Add(2*time.Hour))
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{next}); err != nil {
		t.Fatal(err)
	}
	if ev, err := o.Store.Event(ctx, id); err != nil || ev.State != switchboard.StateRetrying || ev.Attempts != 3 {
		t.Errorf("attempt 3 after 2: %+v, %v; want retrying after 3", ev, err)
	}
}
