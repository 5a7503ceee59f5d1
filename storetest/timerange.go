package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// A listing with a time range holds exactly the rows in the range,
// newest first by time and then id, whatever order their ids are in, and
// pages through rows of one time without losing or repeating any.

// timedOffsets are the rows' times, in minutes after base, in the order
// they are stored (so their ids rise down the list): out of time order,
// and many alike.
var timedOffsets = []int{5, 3, 5, 1, 5, 3, 0, 7, 5, 3, 5, 6}

// timedRow is what the expected listing is computed from.
type timedRow struct {
	id, route, number string
	at                time.Time
}

// expectTimed returns the ids of rows that keep, in a time range's order.
func expectTimed(rows []timedRow, keep func(timedRow) bool) []string {
	var sel []timedRow
	for _, r := range rows {
		if keep(r) {
			sel = append(sel, r)
		}
	}
	slices.SortFunc(sel, func(a, b timedRow) int {
		return cmp.Or(b.at.Compare(a.at), strings.Compare(b.id, a.id))
	})
	out := make([]string, len(sel))
	for i, r := range sel {
		out[i] = r.id
	}
	return out
}

// timedCases are the filters each listing is checked with: a range
// alone, open at either end, and with another filter, a number among
// them (two selections merged).
func timedCases(rows []timedRow) []struct {
	name          string
	since, until  time.Time
	route, number string
	want          []string
} {
	from, until := base.Add(time.Minute), base.Add(6*time.Minute)
	in := func(r timedRow) bool { return !r.at.Before(from) && r.at.Before(until) }
	type c = struct {
		name          string
		since, until  time.Time
		route, number string
		want          []string
	}
	return []c{
		{"range", from, until, "", "", expectTimed(rows, in)},
		{"since", from, time.Time{}, "", "", expectTimed(rows, func(r timedRow) bool { return !r.at.Before(from) })},
		{"until", time.Time{}, until, "", "", expectTimed(rows, func(r timedRow) bool { return r.at.Before(until) })},
		{"one minute", base.Add(5 * time.Minute), base.Add(6 * time.Minute), "", "",
			expectTimed(rows, func(r timedRow) bool { return r.at.Equal(base.Add(5 * time.Minute)) })},
		{"range and route", from, until, "/voice", "", expectTimed(rows, func(r timedRow) bool { return in(r) && r.route == "/voice" })},
		{"range and number", from, until, "", "+15550300001",
			expectTimed(rows, func(r timedRow) bool { return in(r) && r.number == "+15550300001" })},
		{"empty range", base.Add(8 * time.Minute), base.Add(9 * time.Minute), "", "", nil},
	}
}

func testTimedListings(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	var (
		items []*switchboard.Ingest
		rows  []timedRow
		msgs  []timedRow
	)
	for i, off := range timedOffsets {
		at := base.Add(time.Duration(off) * time.Minute)
		route := []string{"/sms", "/voice"}[i%2]
		number := fmt.Sprintf("+1555030000%d", i%3)
		from, to := number, "+15550399999"
		if i%4 == 3 {
			from, to = to, number // the number on the other side
		}
		it := numbered(route, fmt.Sprintf("tr-%d", i), from, to, at)
		items = append(items, it)
		rows = append(rows, timedRow{it.Event.ID, route, number, at})

		m := NewMessage(fmt.Sprintf("tr-%d", i), number, at)
		createMessage(t, s, m)
		msgs = append(msgs, timedRow{m.ID, "", number, at})
	}
	ingest(t, s, items...)
	requests := make([]timedRow, len(items))
	for i, it := range items {
		requests[i] = timedRow{it.Request.ID, it.Request.Route, "", it.Request.ReceivedAt}
	}

	for _, tc := range timedCases(rows) {
		f := switchboard.EventFilter{Since: tc.since, Until: tc.until, Route: tc.route, Number: tc.number}
		for _, limit := range []int{1, 2, 3, 50} {
			if got := listAllEvents(t, s, f, limit); !slices.Equal(got, tc.want) {
				t.Errorf("events, %s, in pages of %d = %v; want %v", tc.name, limit, got, tc.want)
			}
		}
	}
	for _, tc := range timedCases(msgs) {
		if tc.route != "" {
			continue
		}
		f := switchboard.OutboundFilter{Since: tc.since, Until: tc.until, Number: tc.number}
		for _, limit := range []int{1, 2, 3, 50} {
			if got := listAllMessages(t, s, f, limit); !slices.Equal(got, tc.want) {
				t.Errorf("messages, %s, in pages of %d = %v; want %v", tc.name, limit, got, tc.want)
			}
		}
	}
	for _, tc := range timedCases(requests) {
		if tc.number != "" {
			continue
		}
		f := switchboard.RequestFilter{Since: tc.since, Until: tc.until, Route: tc.route}
		for _, limit := range []int{1, 2, 3, 50} {
			if got := listAllRequests(t, s, f, limit); !slices.Equal(got, tc.want) {
				t.Errorf("requests, %s, in pages of %d = %v; want %v", tc.name, limit, got, tc.want)
			}
		}
	}

	// A cursor of one kind given to the other listing: an untimed page's
	// cursor (a row's id) starts a timed listing after that row; a timed
	// cursor starts an untimed listing after its row's id.
	from, until := base.Add(time.Minute), base.Add(6*time.Minute)
	inRange := expectTimed(rows, func(r timedRow) bool { return !r.at.Before(from) && r.at.Before(until) })
	page, err := s.ListEvents(ctx, switchboard.EventFilter{Since: from, Until: until, Cursor: inRange[2], Limit: 50})
	if err != nil {
		t.Fatalf("timed listing after an id: %v", err)
	}
	if got := eventIDs(page.Items); !slices.Equal(got, inRange[3:]) {
		t.Errorf("timed listing after row %s = %v; want %v", inRange[2], got, inRange[3:])
	}
	timed, err := s.ListEvents(ctx, switchboard.EventFilter{Since: from, Until: until, Limit: 2})
	if err != nil || timed.Next == "" {
		t.Fatalf("first timed page of 2: next %q, %v", timed.Next, err)
	}
	last := timed.Items[len(timed.Items)-1].ID
	var older []string
	for _, r := range rows {
		if r.id < last {
			older = append(older, r.id)
		}
	}
	slices.Sort(older)
	slices.Reverse(older)
	untimed, err := s.ListEvents(ctx, switchboard.EventFilter{Cursor: timed.Next, Limit: 50})
	if err != nil {
		t.Fatalf("untimed listing after a timed cursor: %v", err)
	}
	if got := eventIDs(untimed.Items); !slices.Equal(got, older) {
		t.Errorf("untimed listing after timed cursor %q = %v; want %v", timed.Next, got, older)
	}

	// A cursor naming no row, or forged, is invalid for a timed listing
	// (it cannot tell where to start) and a mere id for an untimed one:
	// never a failure of the store.
	for _, c := range []string{"no-such-row", "t12x-abc", "t99999999999999999999-x", "t-5-x", "u5-", "t5", "t05-x" + inRange[0]} {
		_, err := s.ListEvents(ctx, switchboard.EventFilter{Since: from, Cursor: c})
		if !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("timed events after cursor %q: %v, want ErrInvalid", c, err)
		}
		_, err = s.ListOutboundMessages(ctx, switchboard.OutboundFilter{Until: until, Cursor: c})
		if !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("timed messages after cursor %q: %v, want ErrInvalid", c, err)
		}
		_, err = s.ListRequests(ctx, switchboard.RequestFilter{Since: from, Cursor: c})
		if !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("timed requests after cursor %q: %v, want ErrInvalid", c, err)
		}
		if _, err := s.ListEvents(ctx, switchboard.EventFilter{Cursor: c}); err != nil {
			t.Errorf("untimed events after cursor %q: %v", c, err)
		}
	}
}

// listAllRequests pages through f with pages of limit and returns every
// request's id, failing on one seen twice.
func listAllRequests(t *testing.T, s switchboard.Store, f switchboard.RequestFilter, limit int) []string {
	t.Helper()
	var seen []string
	f.Limit = limit
	for range 100 {
		page, err := s.ListRequests(context.Background(), f)
		if err != nil {
			t.Fatalf("ListRequests(%+v): %v", f, err)
		}
		for _, r := range page.Items {
			if slices.Contains(seen, r.ID) {
				t.Fatalf("ListRequests(%+v): request %s listed twice", f, r.ID)
			}
			seen = append(seen, r.ID)
		}
		if page.Next == "" {
			return seen
		}
		f.Cursor = page.Next
	}
	t.Fatalf("ListRequests(%+v): pages without end", f)
	return nil
}
