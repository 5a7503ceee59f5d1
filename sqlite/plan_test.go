package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A look-up by Twilio SID (every status callback makes one or two) must
// search the partial index on twilio_sid, not scan every message.
func TestLookupBySIDUsesTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, q := range []struct {
		where string
		args  []any
	}{
		{whereTwilioSID, []any{"SM1"}},
		{whereAccountTwilioSID, []any{"SM1", "AC1"}},
	} {
		if got := queryPlan(t, s, selectMessage+q.where, q.args...); !strings.Contains(got, "USING INDEX messages_twilio_sid") {
			t.Errorf("%s: query plan %q, want a search of messages_twilio_sid", q.where, got)
		}
	}
}

// Listing events by SID (the inspector's filter) searches the partial
// indexes on message_sid and call_sid.
func TestEventsBySIDUseTheIndexes(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	got := queryPlan(t, s, selectEvent+" WHERE "+eventsBySID, "SM1", "SM1")
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
