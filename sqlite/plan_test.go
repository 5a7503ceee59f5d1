package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// planned records the SQL of the selections the store asks of the driver,
// so that the tests below check the plans of the very queries the use
// cases run.
type planned struct {
	*engine
	mu      sync.Mutex
	queries []string
	args    [][]any
}

func (p *planned) record(base string, q store.Query) {
	query, args := dialect.Select(base, q)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queries, p.args = append(p.queries, query), append(p.args, args)
}

func (p *planned) Read() store.Reader { return &plannedConn{conn: &conn{q: p.read}, p: p} }

func (p *planned) InTx(ctx context.Context, fn func(store.Tx) error) error {
	return p.engine.InTx(ctx, func(tx store.Tx) error { return fn(&plannedConn{conn: tx.(*conn), p: p}) })
}

type plannedConn struct {
	*conn
	p *planned
}

func (c *plannedConn) Messages(ctx context.Context, q store.Query) ([]*switchboard.OutboundMessage, error) {
	c.p.record(selectMessage, q)
	return c.conn.Messages(ctx, q)
}

func (c *plannedConn) Events(ctx context.Context, q store.Query) ([]*switchboard.Event, error) {
	c.p.record(selectEvent, q)
	return c.conn.Events(ctx, q)
}

func (c *plannedConn) Requests(ctx context.Context, q store.Query) ([]*switchboard.Request, error) {
	c.p.record(selectRequest, q)
	return c.conn.Requests(ctx, q)
}

func (c *plannedConn) Count(ctx context.Context, table string, where []store.Cond) (int64, error) {
	c.p.record(`SELECT count(*) FROM `+table, store.Query{Where: where})
	return c.conn.Count(ctx, table, where)
}

// openPlanned opens a database and a store that records its selections.
func openPlanned(t *testing.T) (*Store, *planned, *store.Store) {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p := &planned{engine: &engine{read: s.read, write: s.write, queue: s.queue}}
	recording := store.New(p, store.Options{})
	t.Cleanup(recording.Close)
	return s, p, recording
}

// A look-up by Twilio SID (every status callback makes one or two) must
// search the partial index on twilio_sid, not scan every message.
func TestLookupBySIDUsesTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p, recording := openPlanned(t)
	_, _ = recording.OutboundMessageBySID(ctx, "AC1", "SM1")
	_, _ = recording.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SM1", Status: "sent"})
	if len(p.queries) != 2 {
		t.Fatalf("recorded %d selections, want 2: %q", len(p.queries), p.queries)
	}
	for i, q := range p.queries {
		if got := queryPlan(t, s, q, p.args[i]...); !strings.Contains(got, "USING INDEX messages_twilio_sid") {
			t.Errorf("%s: query plan %q, want a search of messages_twilio_sid", q, got)
		}
	}
}

// Listing events by SID (the inspector's filter) searches the partial
// indexes on message_sid and call_sid.
func TestEventsBySIDUseTheIndexes(t *testing.T) {
	t.Parallel()
	s, p, recording := openPlanned(t)
	if _, err := recording.ListEvents(context.Background(), switchboard.EventFilter{SID: "SM1"}); err != nil {
		t.Fatal(err)
	}
	got := queryPlan(t, s, p.queries[0], p.args[0]...)
	if !strings.Contains(got, "events_message_sid") || !strings.Contains(got, "events_call_sid") || strings.Contains(got, "SCAN events") {
		t.Errorf("query plan %q, want searches of events_message_sid and events_call_sid", got)
	}
}

// queryPlan returns SQLite's plan for query, its steps joined by "; ".
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// A send's one read (SendView) finds the message, its recipient's
// suppression and sticky sender by their keys, and the earlier unsent
// messages to the recipient through the partial index made for them: no
// subquery scans a table.
func TestSendViewUsesTheIndexes(t *testing.T) {
	t.Parallel()
	s, _, _ := openPlanned(t)
	got := queryPlan(t, s, selectSendView, "m1")
	if strings.Contains(got, "SCAN") || !strings.Contains(got, "messages_unsent_to") {
		t.Errorf("query plan %q, want searches only, messages_unsent_to among them", got)
	}
}

// Every filter of the console's listings has an index that yields its
// rows newest first: a page reads one page of rows (no sort of all the
// matches, no scan of the table), so that a rare value is found as fast
// as a common one. A number is two selections, one per column, each
// through its own partial index. With a time range, every listing reads
// through its (time, id) index, whatever its other filter: the range is
// sought, not reached by walking newer rows, and nothing is sorted.
func TestListingsUseTheirIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p, recording := openPlanned(t)
	fillCommon(t, s)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		f    switchboard.EventFilter
		want []string // one per selection
	}{
		{switchboard.EventFilter{}, []string{"SCAN events USING INDEX sqlite_autoindex_events_1"}},
		{switchboard.EventFilter{Cursor: "x"}, []string{"USING INDEX sqlite_autoindex_events_1 (id<?)"}},
		{switchboard.EventFilter{Route: "/sms"}, []string{"USING INDEX events_route (route=?)"}},
		{switchboard.EventFilter{Kind: switchboard.KindFallback}, []string{"USING INDEX events_kind (kind=?)"}},
		{switchboard.EventFilter{State: switchboard.StateDead}, []string{"USING INDEX events_state (state=?)"}},
		{switchboard.EventFilter{TwilioCode: 11200}, []string{"USING INDEX events_last_code (last_code=?)"}},
		{switchboard.EventFilter{Number: "+15550100"}, []string{"USING INDEX events_from (from_number=?)", "USING INDEX events_to (to_number=?)"}},
		{switchboard.EventFilter{Number: "+15550100", Cursor: "x"},
			[]string{"USING INDEX events_from (from_number=? AND id<?)", "USING INDEX events_to (to_number=? AND id<?)"}},
		{switchboard.EventFilter{Since: at, Until: at.Add(time.Hour)}, []string{"USING INDEX events_created (created_at>? AND created_at<?)"}},
		{switchboard.EventFilter{Since: at, Cursor: "t1-x"}, []string{"USING INDEX events_created (created_at>? AND created_at<?)"}},
		{switchboard.EventFilter{Route: "/sms", Since: at, Until: at.Add(time.Hour)}, []string{"USING INDEX events_created (created_at>? AND created_at<?)"}},
		{switchboard.EventFilter{Kind: switchboard.KindFallback, Until: at}, []string{"USING INDEX events_created (created_at<?)"}},
		{switchboard.EventFilter{State: switchboard.StateDead, Since: at}, []string{"USING INDEX events_created (created_at>?)"}},
		{switchboard.EventFilter{TwilioCode: 11200, Since: at}, []string{"USING INDEX events_created (created_at>?)"}},
		{switchboard.EventFilter{Number: "+15550100", Until: at}, []string{"USING INDEX events_created (created_at<?)", "USING INDEX events_created (created_at<?)"}},
	} {
		p.queries, p.args = nil, nil
		if _, err := recording.ListEvents(ctx, tc.f); err != nil {
			t.Fatal(err)
		}
		checkPlans(t, s, p, fmt.Sprintf("ListEvents(%+v)", tc.f), tc.want)
	}
	for _, tc := range []struct {
		f    switchboard.OutboundFilter
		want []string
	}{
		{switchboard.OutboundFilter{}, []string{"SCAN messages USING INDEX sqlite_autoindex_messages_1"}},
		{switchboard.OutboundFilter{Pool: "default"}, []string{"USING INDEX messages_pool (pool=?)"}},
		{switchboard.OutboundFilter{Purpose: switchboard.PurposeOTP}, []string{"USING INDEX messages_purpose (purpose=?)"}},
		{switchboard.OutboundFilter{State: switchboard.MessageFailed}, []string{"USING INDEX messages_state (state=?)"}},
		{switchboard.OutboundFilter{To: "+15550100"}, []string{"USING INDEX messages_to (to_number=?)"}},
		{switchboard.OutboundFilter{Template: "welcome"}, []string{"USING INDEX messages_template (template=?)"}},
		{switchboard.OutboundFilter{ErrorCode: 30003}, []string{"USING INDEX messages_error_code (error_code=?)"}},
		{switchboard.OutboundFilter{Number: "+15550100"}, []string{"USING INDEX messages_from (from_number=?)", "USING INDEX messages_to (to_number=?)"}},
		{switchboard.OutboundFilter{Since: at, Until: at.Add(time.Hour)}, []string{"USING INDEX messages_created (created_at>? AND created_at<?)"}},
		{switchboard.OutboundFilter{ErrorCode: 30003, Since: at, Until: at.Add(time.Hour)}, []string{"USING INDEX messages_created (created_at>? AND created_at<?)"}},
		{switchboard.OutboundFilter{Pool: "default", Since: at}, []string{"USING INDEX messages_created (created_at>?)"}},
		{switchboard.OutboundFilter{To: "+15550100", Since: at, Cursor: "t1-x"}, []string{"USING INDEX messages_created (created_at>? AND created_at<?)"}},
		{switchboard.OutboundFilter{Number: "+15550100", Since: at}, []string{"USING INDEX messages_created (created_at>?)", "USING INDEX messages_created (created_at>?)"}},
	} {
		p.queries, p.args = nil, nil
		if _, err := recording.ListOutboundMessages(ctx, tc.f); err != nil {
			t.Fatal(err)
		}
		checkPlans(t, s, p, fmt.Sprintf("ListOutboundMessages(%+v)", tc.f), tc.want)
	}
	for _, tc := range []struct {
		f    switchboard.RequestFilter
		want []string
	}{
		{switchboard.RequestFilter{Since: at, Until: at.Add(time.Hour)}, []string{"USING INDEX requests_received (received_at>? AND received_at<?)"}},
		{switchboard.RequestFilter{Outcome: switchboard.OutcomeRejected, Since: at}, []string{"USING INDEX requests_received (received_at>?)"}},
		{switchboard.RequestFilter{Until: at, Cursor: "t1-x"}, []string{"USING INDEX requests_received (received_at<?)"}},
	} {
		p.queries, p.args = nil, nil
		if _, err := recording.ListRequests(ctx, tc.f); err != nil {
			t.Fatal(err)
		}
		checkPlans(t, s, p, fmt.Sprintf("ListRequests(%+v)", tc.f), tc.want)
	}
}

// fillCommon stores enough events, messages and requests with the values
// the listings above filter by to make them common: a timed listing
// reads a rare value through its own index (see
// TestTimedListingsOfRareValuesUseTheirIndexes).
func fillCommon(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	for _, q := range []string{scaleEvents, scaleMessages} {
		if _, err := s.write.ExecContext(ctx, q, 6000, now.Add(-time.Hour).UnixMicro(), time.Hour.Microseconds()); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE events SET route = '/sms', kind = 'fallback', state = 'dead', last_code = 11200,
		    from_number = '+15550100', to_number = '+15550100'`,
		`UPDATE messages SET pool = 'default', purpose = 'otp', state = 'failed', error_code = 30003,
		    from_number = '+15550100', to_number = '+15550100', template = 'welcome'`,
		`INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason)
		    SELECT 'r' || id, created_at, route, 'POST', 'https://h.example.com/sms', '{}', X'', '127.0.0.1:1',
		        'rejected', 'signature' FROM events`,
	} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// A timed listing of a value with few rows reads them all through the
// value's own index and sorts them: the time range could hold millions
// of rows and none of the value's.
func TestTimedListingsOfRareValuesUseTheirIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p, recording := openPlanned(t)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		f    switchboard.EventFilter
		want []string
	}{
		{switchboard.EventFilter{Route: "/rare", Since: at}, []string{"USING INDEX events_route (route=?)"}},
		{switchboard.EventFilter{TwilioCode: 12300, Since: at, Until: at.Add(time.Hour)}, []string{"USING INDEX events_last_code (last_code=?)"}},
		{switchboard.EventFilter{Number: "+15550100", Until: at}, []string{"USING INDEX events_from (from_number=?)", "USING INDEX events_to (to_number=?)"}},
	} {
		p.queries, p.args = nil, nil
		if _, err := recording.ListEvents(ctx, tc.f); err != nil {
			t.Fatal(err)
		}
		if len(p.queries) != len(tc.want) {
			t.Fatalf("ListEvents(%+v): %d selections, want %d", tc.f, len(p.queries), len(tc.want))
		}
		for i, q := range p.queries {
			if got := queryPlan(t, s, q, p.args[i]...); !strings.Contains(got, tc.want[i]) || strings.Contains(got, "SCAN") {
				t.Errorf("ListEvents(%+v): query plan %q, want %q", tc.f, got, tc.want[i])
			}
		}
	}
}

// checkPlans checks that the selections p recorded have the plans want,
// one each, and that none sorts its rows or scans a table but by its
// primary key.
func checkPlans(t *testing.T, s *Store, p *planned, what string, want []string) {
	t.Helper()
	if len(p.queries) != len(want) {
		t.Fatalf("%s: %d selections, want %d: %q", what, len(p.queries), len(want), p.queries)
	}
	for i, q := range p.queries {
		got := queryPlan(t, s, q, p.args[i]...)
		if !strings.Contains(got, want[i]) || strings.Contains(got, "TEMP B-TREE") ||
			strings.Contains(got, "SCAN") && !strings.Contains(got, "USING INDEX sqlite_autoindex_") {
			t.Errorf("%s: query plan %q, want %q and no sort", what, got, want[i])
		}
	}
}

// A replay's count finds the events through the index of its filter,
// not through the states' (which hold nearly every event).
func TestReplayCountUsesTheFiltersIndex(t *testing.T) {
	t.Parallel()
	s, p, recording := openPlanned(t)
	for _, tc := range []struct {
		f    switchboard.ReplayFilter
		want string
	}{
		{switchboard.ReplayFilter{Route: "/sms"}, "events_route (route=?)"},
		{switchboard.ReplayFilter{Kind: switchboard.KindFallback}, "events_kind (kind=?)"},
		{switchboard.ReplayFilter{TwilioCode: 11200}, "events_last_code (last_code=?)"},
		{switchboard.ReplayFilter{EventID: "e1"}, "sqlite_autoindex_events_1 (id=?)"},
		{switchboard.ReplayFilter{State: switchboard.StateDead}, "(state=?)"},
	} {
		p.queries, p.args = nil, nil
		if _, err := recording.ReplayCount(context.Background(), tc.f); err != nil && tc.f.EventID == "" {
			t.Fatal(err)
		}
		if got := queryPlan(t, s, p.queries[0], p.args[0]...); !strings.Contains(got, tc.want) || strings.Contains(got, "SCAN") {
			t.Errorf("count of replay %+v: query plan %q, want a search of %s", tc.f, got, tc.want)
		}
	}
}

var scansATable = regexp.MustCompile(`SCAN (requests|events|attempts|messages|message_status|suppressions|rollups|samples)\b`)

// Each pass of the rollups reads the facts of a few minutes: every
// selection must search its time index, never scan a table, and join
// from the fact to its event or message by primary key.
func TestRollupSelectionsUseTheTimeIndexes(t *testing.T) {
	t.Parallel()
	s, _, _ := openPlanned(t)
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"requests", requestsByMinute, []string{"COVERING INDEX requests_received"}},
		{"suppressions", suppressionsByMinute, []string{"suppressions_created"}},
		{"dead letters", deadByMinute, []string{"events_terminal (state=? AND updated_at>? AND updated_at<?)"}},
		{"attempts", attemptFacts, []string{"attempts_started", "SEARCH e USING INDEX sqlite_autoindex_events_1 (id=?)"}},
		{"statuses", statusFacts, []string{"message_status_at", "SEARCH m USING INDEX sqlite_autoindex_messages_1 (id=?)"}},
		{"sends", sendFacts, []string{"messages_sent", "messages_refused"}},
		{"first fact", firstFact, []string{"requests_received", "attempts_started", "message_status_at", "messages_sent",
			"messages_refused", "suppressions_created", "events_terminal"}},
		{"rollups", selectRollups, []string{"SEARCH rollups USING PRIMARY KEY (minute>? AND minute<?)"}},
		{"samples", selectSamples, []string{"SEARCH samples USING PRIMARY KEY (minute>? AND minute<?)"}},
	} {
		got := queryPlan(t, s, tc.query, int64(1), int64(2), int64(60_000_000))
		if scansATable.MatchString(got) {
			t.Errorf("%s: query plan %q scans", tc.name, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: query plan %q, want %q in it", tc.name, got, w)
			}
		}
	}
}

// A listener's read of its waiting events searches events_state for the
// pending and retrying events after its cursor: it never reads the routes'
// delivered history, whose size has no bound.
func TestWaitingEventsUseTheStateIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    switchboard.WaitingFilter
		want string
	}{
		{"first page", switchboard.WaitingFilter{Routes: []string{"/sms"}}, "SEARCH events USING INDEX events_state (state=?)"},
		{"next page", switchboard.WaitingFilter{Routes: []string{"/sms", "/voice"}, Kinds: []switchboard.Kind{switchboard.KindMessage}, After: "0190"},
			"SEARCH events USING INDEX events_state (state=? AND id>?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p, recording := openPlanned(t)
			if _, err := recording.WaitingEvents(ctx, tc.f); err != nil {
				t.Fatal(err)
			}
			if len(p.queries) != 1 {
				t.Fatalf("recorded %d selections, want 1: %q", len(p.queries), p.queries)
			}
			got := queryPlan(t, s, p.queries[0], p.args[0]...)
			if !strings.Contains(got, tc.want) || strings.Contains(got, "SCAN events") {
				t.Errorf("%s: query plan %q, want %q", p.queries[0], got, tc.want)
			}
		})
	}
}
