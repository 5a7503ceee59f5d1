package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Every query of Prune searches an index: a batch costs its own rows, not
// a scan of tables that hold months of traffic. SQLite takes a partial
// index only when the query repeats its WHERE terms, which these tests
// hold the queries to.
func TestPruneQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ids := `["a","b"]`
	tests := []struct {
		name  string
		query string
		args  []any
		want  []string // each must appear in the plan
	}{
		{"rejected requests", pruneRejectedQuery, []any{1, 10}, []string{"USING INDEX requests_rejected (received_at<?)"}},
		{"old events", oldEventsQuery, []any{"delivered", 1, 10}, []string{"USING INDEX events_terminal (state=? AND updated_at<?)"}},
		{"their attempts", deleteAttemptsOf, []any{ids}, []string{"USING COVERING INDEX attempts_event (event_id=?)"}},
		{"the events", deleteEvents, []any{ids}, []string{"sqlite_autoindex_events_1 (id=?)"}},
		{"their requests", deleteOrphanRequests, []any{ids, ids}, []string{
			"USING INDEX sqlite_autoindex_requests_1 (id=?)", "USING INDEX requests_event (event_id=?)",
			"sqlite_autoindex_events_1 (id=?)", "USING INDEX events_fanout (request_id=?)"}},
		{"old messages", oldMessagesQuery, []any{1, 10}, []string{"USING INDEX messages_settled (updated_at<?)"}},
		{"their history", deleteHistoryOf, []any{ids}, []string{"USING COVERING INDEX message_status_message (message_id=?)"}},
		{"the messages", deleteMessages, []any{ids}, []string{"sqlite_autoindex_messages_1 (id=?)"}},
		{"old sticky senders", oldStickyQuery, []any{1, 10}, []string{"sticky_senders_updated (updated_at<?)"}},
		{"a recipient's last message", lastMessageTo, []any{"+1555", "default"}, []string{"USING INDEX messages_"}},
	}
	for _, tc := range tests {
		got := queryPlan(t, s, tc.query, tc.args...)
		t.Logf("%s: %s", tc.name, got)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: query plan %q, want %q", tc.name, got, w)
			}
		}
		if strings.Contains(got, "SCAN events") || strings.Contains(got, "SCAN requests") || strings.Contains(got, "SCAN messages") ||
			strings.Contains(got, "SCAN attempts") || strings.Contains(got, "SCAN message_status") || strings.Contains(got, "SCAN sticky_senders") {
			t.Errorf("%s: query plan %q scans a table", tc.name, got)
		}
	}
}
