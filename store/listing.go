package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// A listing page is newest first and starts after the last row of the
// page before. A listing without a time range is in id order, and its
// cursor is that row's id. A listing with a time range is in (time, id)
// order instead, read through an index on (time, id): a range far from
// now is sought at its end, not reached by walking every newer row. Its
// cursor carries both the row's time and its id, since nothing makes ids
// and times sort alike.
type listing struct {
	table  string
	column string // the time column of a timed listing; "" for id order
	order  Order  // the timed listing's order: by column, then id
	index  string // the timed listing's index, on (column, id)
	after  position
	limit  int
}

// position is a row's place in a listing: its time (zero in an untimed
// listing) and its id; the zero position is the top.
type position struct {
	at time.Time
	id string
}

// A timed cursor is "t" (or "u" for a time before 1970) and the time's
// Unix microseconds, a dash, and the row's id: no id the store makes
// starts so and holds its time, and only letters, digits and dashes are
// in it, which is what the console's URLs carry.
const (
	timedAfter1970  = "t"
	timedBefore1970 = "u"
)

func (p position) timedCursor() string {
	us := p.at.UnixMicro()
	if us < 0 {
		return timedBefore1970 + strconv.FormatUint(uint64(-us), 10) + "-" + p.id
	}
	return timedAfter1970 + strconv.FormatInt(us, 10) + "-" + p.id
}

// parseTimed reads a timed cursor; false when c is not one.
func parseTimed(c string) (position, bool) {
	sign := int64(1)
	rest, ok := strings.CutPrefix(c, timedAfter1970)
	if !ok {
		if rest, ok = strings.CutPrefix(c, timedBefore1970); !ok {
			return position{}, false
		}
		sign = -1
	}
	digits, id, ok := strings.Cut(rest, "-")
	if !ok || id == "" {
		return position{}, false
	}
	us, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strconv.FormatInt(us, 10) != digits {
		return position{}, false
	}
	return position{at: time.UnixMicro(sign * us).UTC(), id: id}, true
}

// timeIndex is how a table's rows are listed in a time range: by which
// column, in which order, through which index on (column, id).
type timeIndex struct {
	table, column, index string
	order                Order
}

var (
	eventsByTime   = timeIndex{TableEvents, "created_at", "events_created", NewestCreatedFirst}
	messagesByTime = timeIndex{TableMessages, "created_at", "messages_created", NewestCreatedFirst}
	requestsByTime = timeIndex{TableRequests, "received_at", "requests_received", NewestReceivedFirst}
)

// newListing returns the listing of a page after cursor: timed, through
// ti, when from or until is set. A timed listing given an
// id for cursor (a page of the same listing without its range) starts
// after that row, whose time when(id) finds, and is ErrInvalid when it
// does not; an untimed one given a timed cursor starts after its id.
func newListing(ctx context.Context, ti timeIndex, from, until time.Time, cursor string, limit int,
	when func(ctx context.Context, id string) (time.Time, bool, error)) (listing, error) {
	l := listing{limit: limit}
	timed, isTimed := parseTimed(cursor)
	if from.IsZero() && until.IsZero() {
		l.after.id = cursor
		if isTimed {
			l.after.id = timed.id
		}
		return l, nil
	}
	l.table, l.column, l.order, l.index = ti.table, ti.column, ti.order, ti.index
	switch {
	case cursor == "":
	case isTimed:
		l.after = timed
	default:
		at, ok, err := when(ctx, cursor)
		if err != nil {
			return l, fmt.Errorf("find the row of cursor %q: %w", cursor, err)
		}
		if !ok {
			return l, fmt.Errorf("%w: cursor %q: no such row", switchboard.ErrInvalid, cursor)
		}
		l.after = position{at: at, id: cursor}
	}
	return l, nil
}

// timeOf adapts a selection of rows by id to newListing's when.
func timeOf[T any](list func(Query) ([]T, error), at func(T) time.Time) func(context.Context, string) (time.Time, bool, error) {
	return func(_ context.Context, id string) (time.Time, bool, error) {
		items, err := list(byID(id))
		if err != nil || len(items) == 0 {
			return time.Time{}, false, err
		}
		return at(items[0]), true, nil
	}
}

// rareBelow is how few rows a filter's value must have, whatever their
// time, for a timed listing to read them all through the filter's index
// and sort them, rather than walk the time range through the time index.
// Either way a page reads at most about as many rows: this many at most
// through the filter's index; through the time index, those of the range
// until the page is full, the page's worth at the density of a value
// this common or more, about limit*N/rareBelow (N the table's rows).
const rareBelow = 5000

// query is the selection of the page's rows matching where: newest
// first, one row past the limit to know whether another page follows,
// after the cursor. A timed listing's cursor bounds the time alone too,
// so that the scan of the time index starts there rather than filters
// up to it.
//
// A timed listing with another filter reads through its time index
// unless the filter's value is rare (under rareBelow rows, counted
// through its own index): the range is sought at its end and read in
// order until the page is full, where the filter's index would read
// and sort every row of the value (all of a common route's); a rare
// value is read whole and sorted instead, where the range could hold
// millions of rows and none of the value's.
func (l listing) query(ctx context.Context, r Reader, where []Cond) (Query, error) {
	if l.column == "" {
		if l.after.id != "" {
			where = append(where, Lt("id", l.after.id))
		}
		return Query{Where: where, Order: NewestFirst, Limit: l.limit + 1}, nil
	}
	index := l.index
	var filter []Cond
	for _, c := range where {
		if c.Column != l.column {
			filter = append(filter, c)
		}
	}
	if len(filter) > 0 {
		n, err := r.CountUpTo(ctx, l.table, filter, rareBelow)
		if err != nil {
			return Query{}, fmt.Errorf("count the filter's rows: %w", err)
		}
		if n < rareBelow {
			index = ""
		}
	}
	if p := l.after; p.id != "" {
		where = append(slices.Clip(where), Le(l.column, p.at),
			Any([]Cond{Lt(l.column, p.at)}, []Cond{Eq(l.column, p.at), Lt("id", p.id)}))
	}
	return Query{Where: where, Order: l.order, Limit: l.limit + 1, Index: index}, nil
}

// compare orders two rows as the listing does: the newer first.
func (l listing) compare(a, b position) int {
	if l.column == "" {
		return strings.Compare(b.id, a.id)
	}
	return cmp.Or(b.at.Compare(a.at), strings.Compare(b.id, a.id))
}

// page cuts a selection of limit+1 items to a page of limit, whose Next is
// the last item's cursor when another page follows.
func listPage[T any](l listing, items []T, err error, what string, pos func(T) position) (*switchboard.Page[T], error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p := &switchboard.Page[T]{Items: items}
	if len(items) > l.limit {
		p.Items = items[:l.limit]
		last := pos(p.Items[l.limit-1])
		p.Next = last.id
		if l.column != "" {
			p.Next = last.timedCursor()
		}
	}
	return p, nil
}

// listed is one kind of row as a listing reads it: its selection and the
// time it is listed by.
type listed[T any] struct {
	what  string // "list events", for errors
	index timeIndex
	list  func(Query) ([]T, error)
	at    func(T) time.Time
	id    func(T) string
}

// page lists a page of rows matching where, newest first, from f's range
// and cursor: by id, or by time when there is a range (see listing); by
// number, two selections merged (see byNumber), when number is set.
func (k listed[T]) page(ctx context.Context, r Reader, where []Cond, number string, from, until time.Time, cursor string, limit int) (*switchboard.Page[T], error) {
	l, err := newListing(ctx, k.index, from, until, cursor, switchboard.LimitOrDefault(limit), timeOf(k.list, k.at))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.what, err)
	}
	pos := func(item T) position { return position{at: k.at(item), id: k.id(item)} }
	sel := func(where []Cond) ([]T, error) {
		q, err := l.query(ctx, r, where)
		if err != nil {
			return nil, err
		}
		return k.list(q)
	}
	var items []T
	if number != "" {
		items, err = byNumber(number, where, l, pos, sel)
	} else {
		items, err = sel(where)
	}
	return listPage(l, items, err, k.what, pos)
}
