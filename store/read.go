package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// byID selects the row with id.
func byID(id string) Query { return Query{Where: []Cond{Eq("id", id)}, Limit: 1} }

// Event returns one event, or an error wrapping switchboard.ErrNotFound.
func (s *Store) Event(ctx context.Context, id string) (*switchboard.Event, error) {
	events, err := s.driver.Read().Events(ctx, byID(id))
	return first(events, err, "event "+id)
}

// EventsForDelivery returns the events with the given ids that exist, with
// their requests (by request id), in two reads whatever their number: a
// delivery job's events are loaded together rather than one by one.
func (s *Store) EventsForDelivery(ctx context.Context, ids []string) ([]*switchboard.Event, map[string]*switchboard.Request, error) {
	r := s.driver.Read()
	events, err := r.Events(ctx, Query{Where: []Cond{In("id", ids)}})
	if err != nil {
		return nil, nil, fmt.Errorf("load %d events: %w", len(ids), err)
	}
	seen := map[string]bool{}
	var reqIDs []string
	for _, e := range events {
		if !seen[e.RequestID] {
			seen[e.RequestID] = true
			reqIDs = append(reqIDs, e.RequestID)
		}
	}
	requests := make(map[string]*switchboard.Request, len(reqIDs))
	if len(reqIDs) == 0 {
		return events, requests, nil
	}
	reqs, err := r.Requests(ctx, Query{Where: []Cond{In("id", reqIDs)}})
	if err != nil {
		return nil, nil, fmt.Errorf("load the requests of %d events: %w", len(events), err)
	}
	for _, req := range reqs {
		requests[req.ID] = req
	}
	return events, requests, nil
}

// Request returns one request, or an error wrapping switchboard.ErrNotFound.
func (s *Store) Request(ctx context.Context, id string) (*switchboard.Request, error) {
	requests, err := s.driver.Read().Requests(ctx, byID(id))
	return first(requests, err, "request "+id)
}

// Attempts returns an event's attempts, oldest first; none for an unknown
// event.
func (s *Store) Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error) {
	attempts, err := s.driver.Read().Attempts(ctx, eventID)
	if err != nil {
		return nil, fmt.Errorf("attempts of event %s: %w", eventID, err)
	}
	return attempts, nil
}

// ListEvents returns a page of events, newest first: by id, or, with a
// time range, by creation time and id (see listing). A filter value no
// stored text can equal (a NUL, bytes that are not UTF-8) matches
// nothing, on every engine: PostgreSQL could not even compare it.
func (s *Store) ListEvents(ctx context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error) {
	if !allText(f.AccountSID, f.Route, string(f.Kind), string(f.State), f.SID, f.Number, f.Cursor) {
		return &switchboard.Page[*switchboard.Event]{}, nil
	}
	var where []Cond
	where = eq(where, "account_sid", f.AccountSID)
	where = eq(where, "route", f.Route)
	where = eq(where, "kind", f.Kind)
	where = eq(where, "state", f.State)
	if f.SID != "" {
		// Spelling out the partial indexes' predicates lets the engines use
		// them; they hold anyway since the SID is not empty.
		where = append(where, Any(
			[]Cond{Eq("message_sid", f.SID), NotEmpty("message_sid")},
			[]Cond{Eq("call_sid", f.SID), NotEmpty("call_sid")}))
	}
	where = code(where, "last_code", f.TwilioCode)
	where = since(where, "created_at", f.Since, f.Until)
	r := s.driver.Read()
	return listed[*switchboard.Event]{what: "list events", index: eventsByTime,
		list: func(q Query) ([]*switchboard.Event, error) { return r.Events(ctx, q) },
		at:   func(e *switchboard.Event) time.Time { return e.CreatedAt },
		id:   func(e *switchboard.Event) string { return e.ID },
	}.page(ctx, r, where, f.Number, f.Since, f.Until, f.Cursor, f.Limit)
}

// ListRequests returns a page of requests, newest first: by id, or, with
// a time range, by receipt time and id (see listing).
func (s *Store) ListRequests(ctx context.Context, f switchboard.RequestFilter) (*switchboard.Page[*switchboard.Request], error) {
	if !allText(f.Route, string(f.Outcome), f.EventID, f.Cursor) {
		return &switchboard.Page[*switchboard.Request]{}, nil
	}
	var where []Cond
	where = eq(where, "route", f.Route)
	where = eq(where, "outcome", f.Outcome)
	where = eq(where, "event_id", f.EventID)
	where = since(where, "received_at", f.Since, f.Until)
	r := s.driver.Read()
	return listed[*switchboard.Request]{what: "list requests", index: requestsByTime,
		list: func(q Query) ([]*switchboard.Request, error) { return r.Requests(ctx, q) },
		at:   func(r *switchboard.Request) time.Time { return r.ReceivedAt },
		id:   func(r *switchboard.Request) string { return r.ID },
	}.page(ctx, r, where, "", f.Since, f.Until, f.Cursor, f.Limit)
}

// Stats counts events by state, finds the oldest due delivery and counts
// the messages waiting to be sent by pool. Waiting events (pending,
// retrying) are counted afresh each time, through their own small index;
// see terminalCounts for the rest.
func (s *Store) Stats(ctx context.Context) (*switchboard.Stats, error) {
	r := s.driver.Read()
	waiting, err := r.Counts(ctx, TableEvents, "state", []Cond{OneOf("state", switchboard.StatePending, switchboard.StateRetrying)})
	if err != nil {
		return nil, fmt.Errorf("count waiting events: %w", err)
	}
	terminal, err := s.terminal.get(ctx, r, s.now())
	if err != nil {
		return nil, fmt.Errorf("count delivered and dead events: %w", err)
	}
	st := &switchboard.Stats{EventsByState: map[switchboard.State]int64{}}
	for _, state := range switchboard.States {
		st.EventsByState[state] = waiting[string(state)] + terminal[string(state)]
	}
	if st.OldestDue, err = r.OldestDue(ctx, s.now()); err != nil {
		return nil, fmt.Errorf("oldest due event: %w", err)
	}
	st.OutboundQueued, err = r.Counts(ctx, TableMessages, "pool", []Cond{unsent})
	if err != nil {
		return nil, fmt.Errorf("count queued messages: %w", err)
	}
	return st, nil
}

// Counting delivered and dead events walks every one of them: on a store
// of millions, seconds of CPU, which a metrics scrape every 15 s would
// spend again and again. So once they number bigStore or more, their
// counts are reused for up to terminalRecount; below, they are exact.
const (
	bigStore        = 100_000
	terminalRecount = 5 * time.Minute
)

// terminalCounts caches the counts of delivered and dead events.
type terminalCounts struct {
	mu     sync.Mutex
	counts map[string]int64
	at     time.Time
}

func (c *terminalCounts) get(ctx context.Context, r Reader, now time.Time) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := int64(0)
	for _, n := range c.counts {
		total += n
	}
	if c.counts != nil && total >= bigStore && now.Sub(c.at) < terminalRecount {
		return c.counts, nil
	}
	counts, err := r.Counts(ctx, TableEvents, "state", []Cond{OneOf("state", switchboard.StateDelivered, switchboard.StateDead)})
	if err != nil {
		return nil, err
	}
	c.counts, c.at = counts, now
	return counts, nil
}

// unsent selects the messages still to be sent: queued or sending.
var unsent = OneOf("state", switchboard.MessageQueued, switchboard.MessageSending)

// WaitingEvents returns the events a listener is to deliver, oldest first
// (see switchboard.Store.WaitingEvents). A route or kind no stored text
// can equal (a NUL, bytes that are not UTF-8) matches nothing, and so
// does such a cursor, on every engine, as in ListEvents.
func (s *Store) WaitingEvents(ctx context.Context, f switchboard.WaitingFilter) ([]*switchboard.Event, error) {
	routes, kinds := textOnly(f.Routes), textOnly(f.Kinds)
	if len(routes) == 0 || (len(f.Kinds) > 0 && len(kinds) == 0) || !isText(f.After) {
		return nil, nil
	}
	where := []Cond{
		In("route", routes),
		OneOf("state", switchboard.StatePending, switchboard.StateRetrying),
		Eq("target", ""), // a fan-out event goes to its own target, not the listener
	}
	if len(kinds) > 0 {
		where = append(where, In("kind", kinds))
	}
	if f.After != "" {
		where = append(where, Gt("id", f.After))
	}
	// Through the waiting events of every route, from the cursor on, and
	// not the routes' rows: those are mostly delivered history, unbounded,
	// while waiting events are the dispatcher's working set. SQLite, which
	// keeps no statistics, would take the route's index.
	q := Query{Where: where, Order: OldestFirst, Limit: switchboard.LimitOrDefault(f.Limit), Index: "events_state"}
	events, err := s.driver.Read().Events(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("waiting events of %d routes: %w", len(routes), err)
	}
	return events, nil
}

// textOnly returns the values of vs that are text (isText), as strings:
// the others equal nothing stored.
func textOnly[T ~string](vs []T) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if isText(string(v)) {
			out = append(out, string(v))
		}
	}
	return out
}
