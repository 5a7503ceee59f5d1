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
	rows, err := s.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+selectMessage+whereTwilioSID, "SM1")
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
	if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX messages_twilio_sid") {
		t.Errorf("query plan %q, want a search of messages_twilio_sid", got)
	}
}
