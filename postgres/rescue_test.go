package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/storetest"
)

// RescueOrphans takes the running jobs of a replica that stopped beating,
// and only those: a live replica's job stays with it however long it
// runs, and a job just fetched by a replica that has not beaten yet is
// not taken.
func TestRescueOrphans(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := open(t, url)
	ctx := context.Background()
	now := time.Now()
	for i, key := range []string{"dead", "live", "fresh"} {
		it := storetest.NewItem("/sms", "rescue-"+key, now.Add(time.Duration(i)*time.Millisecond))
		if err := s.Ingest(ctx, []*switchboard.Ingest{it}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SenderHeartbeat(ctx, "live-node", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SenderHeartbeat(ctx, "dead-node", now.Add(-10*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Three running jobs: the dead node's and the live node's, started 10
	// s ago, and a new node's, started just now.
	for _, run := range []struct {
		node string
		at   time.Time
	}{{"dead-node", now.Add(-10 * time.Second)}, {"live-node", now.Add(-10 * time.Second)}, {"new-node", now}} {
		tag, err := conn.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = $1, attempted_by = ARRAY[$2]
            WHERE id = (SELECT min(id) FROM river_job WHERE state = 'available' AND kind = $3)`, run.at, run.node, jobs.DeliverArgs{}.Kind())
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("make a job running on %s: %v (%d rows)", run.node, err, tag.RowsAffected())
		}
	}

	rescued, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rescued) != 1 || rescued["delivery"] != 1 {
		t.Errorf("rescued %v, want one delivery", rescued)
	}
	var node, state, lastErr string
	if err := conn.QueryRow(ctx, `SELECT attempted_by[1], state, errors[array_upper(errors, 1)]->>'error' FROM river_job
        WHERE state = 'available' AND kind = $1`, jobs.DeliverArgs{}.Kind()).Scan(&node, &state, &lastErr); err != nil {
		t.Fatal(err)
	}
	if node != "dead-node" || lastErr != jobs.RescuedByLiveness {
		t.Errorf("the available job is %s's with error %q; want the dead node's, rescued", node, lastErr)
	}
	if again, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now); err != nil || len(again) != 0 {
		t.Errorf("a second pass rescued %v (%v), want nothing", again, err)
	}
}
