package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/storetest"
)

// RescueOrphans takes the running jobs of a replica that stopped beating,
// and only those: a live replica's job stays with it however long it
// runs, and a job just fetched by a replica that has not beaten yet is
// not taken. The job a live replica then runs is a copy, so that the dead
// replica, if it was only paused, cannot end that run when it resumes.
func TestRescueOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	s, conn := jobsFixture(t, "rescue-dead", now)
	for i, key := range []string{"live", "fresh"} {
		it := storetest.NewItem("/sms", "rescue-"+key, now.Add(time.Duration(i+1)*time.Millisecond))
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

	var deadJob int64 // the job as the dead node knows it
	if err := conn.QueryRow(ctx, `SELECT id FROM river_job WHERE attempted_by[1] = 'dead-node'`).Scan(&deadJob); err != nil {
		t.Fatal(err)
	}
	rescued, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rescued) != 1 || rescued["delivery"] != 1 {
		t.Errorf("rescued %v, want one delivery", rescued)
	}
	var copyID int64
	var node, lastErr string
	var attempt int
	if err := conn.QueryRow(ctx, `SELECT id, attempted_by[1], attempt, errors[array_upper(errors, 1)]->>'error' FROM river_job
        WHERE state = 'available' AND kind = $1`, jobs.DeliverArgs{}.Kind()).Scan(&copyID, &node, &attempt, &lastErr); err != nil {
		t.Fatal(err)
	}
	if node != "dead-node" || attempt != 1 || lastErr != jobs.RescuedByLiveness {
		t.Errorf("the available job is %s's, attempt %d, with error %q; want the dead node's, attempt 1, rescued", node, attempt, lastErr)
	}
	// A live replica fetches the job rescued, as River's fetch would.
	if _, err := conn.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = attempt + 1, attempted_at = $2,
        attempted_by = array_append(attempted_by, 'live-node') WHERE id = $1`, copyID, now); err != nil {
		t.Fatal(err)
	}

	// The dead node was only paused: it resumes and reports its run of its
	// job completed, as River's completer does. That must not end the run
	// of the live replica, nor make the dead node's job run again.
	finished := now.Add(time.Second)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := riverpgxv5.New(nil).UnwrapExecutor(tx).JobSetStateIfRunningMany(ctx, &riverdriver.JobSetStateIfRunningManyParams{
		ID: []int64{deadJob}, Attempt: []*int{nil}, ErrData: [][]byte{nil}, FinalizedAt: []*time.Time{&finished},
		MetadataDoMerge: []bool{false}, MetadataUpdates: [][]byte{nil}, ScheduledAt: []*time.Time{nil},
		State: []rivertype.JobState{rivertype.JobStateCompleted},
	}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var states []string
	rows, err := conn.Query(ctx, `SELECT state || ' by ' || attempted_by[array_upper(attempted_by, 1)] FROM river_job
        WHERE attempted_by[1] = 'dead-node' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	if want := []string{"cancelled by dead-node", "running by live-node"}; !slices.Equal(states, want) {
		t.Errorf("after the paused node's late report, its jobs are %q, want %q", states, want)
	}
	if again, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now); err != nil || len(again) != 0 {
		t.Errorf("a second pass rescued %v (%v), want nothing", again, err)
	}
}

// A process that stopped cleanly withdraws its heartbeats: the others stop
// counting it at once, and a job it left running is taken at the next
// rescue although its last beat is fresh.
func TestWithdrawNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	s, conn := jobsFixture(t, "withdrawn", now)
	for _, node := range []string{"stopping", "staying"} {
		if _, err := s.SenderHeartbeat(ctx, node, now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = $1,
        attempted_by = ARRAY['stopping'] WHERE kind = $2`, now.Add(-10*time.Second), jobs.DeliverArgs{}.Kind()); err != nil {
		t.Fatal(err)
	}
	if rescued, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now); err != nil || len(rescued) != 0 {
		t.Fatalf("rescued %v (%v) of a live node", rescued, err)
	}
	if err := s.WithdrawNode(ctx, "stopping"); err != nil {
		t.Fatal(err)
	}
	if err := s.WithdrawNode(ctx, "never-beat"); err != nil {
		t.Errorf("withdrawing an unknown node: %v", err)
	}
	if alive, err := s.SenderHeartbeat(ctx, "staying", now, time.Minute); err != nil || alive != 1 {
		t.Errorf("%d alive (%v) after one withdrew, want 1", alive, err)
	}
	if rescued, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now); err != nil || rescued["delivery"] != 1 {
		t.Errorf("rescued %v (%v) after the node withdrew, want its delivery job", rescued, err)
	}
}

// PromoteDue makes available the delivery and send jobs due by now, and
// only those: not jobs due later, not jobs of other kinds, not running or
// finished ones.
func TestPromoteDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	s, conn := jobsFixture(t, "promote", now)
	// Copies of the delivery job the ingest made, each in a state to test.
	rows := []struct {
		name, state, kind string
		at                time.Time
		want              string
	}{
		{"retry due", "retryable", jobs.DeliverArgs{}.Kind(), now.Add(-time.Second), "available"},
		{"delay due", "scheduled", jobs.SendArgs{}.Kind(), now.Add(-time.Second), "available"},
		{"retry later", "retryable", jobs.DeliverArgs{}.Kind(), now.Add(time.Minute), "retryable"},
		{"other kind", "scheduled", "someone_elses", now.Add(-time.Second), "scheduled"},
		{"running", "running", jobs.DeliverArgs{}.Kind(), now.Add(-time.Second), "running"},
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		if err := conn.QueryRow(ctx, `INSERT INTO river_job (state, attempt, max_attempts, attempted_at, scheduled_at, args, kind, queue)
            SELECT $1, 1, max_attempts, $2, $2, args, $3, queue FROM river_job WHERE state = 'available' LIMIT 1 RETURNING id`,
			r.state, r.at, r.kind).Scan(&ids[i]); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
	}
	n, err := s.PromoteDue(ctx, now)
	if err != nil || n != 2 {
		t.Errorf("PromoteDue = %d, %v; want 2", n, err)
	}
	for i, r := range rows {
		var state string
		if err := conn.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, ids[i]).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state != r.want {
			t.Errorf("%s: %s, want %s", r.name, state, r.want)
		}
	}
	if n, err := s.PromoteDue(ctx, now); err != nil || n != 0 {
		t.Errorf("a second PromoteDue = %d, %v; want 0", n, err)
	}
}

// A process beats from two places (its liveness and its outbound sender),
// each stamping the beat with the time it began: one that began earlier
// may land later. It must not move the process's last beat back, or the
// others would find the process older than it is, and could take a job it
// runs while its lease, counted from the later beat, still holds.
func TestLateBeatDoesNotAgeANode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	s, conn := jobsFixture(t, "late-beat", now)
	if _, err := s.SenderHeartbeat(ctx, "beating", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The late beat: begun before the one above, landing after it.
	if _, err := s.SenderHeartbeat(ctx, "beating", now.Add(-5*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = $1,
        attempted_by = ARRAY['beating'] WHERE kind = $2`, now.Add(-10*time.Second), jobs.DeliverArgs{}.Kind()); err != nil {
		t.Fatal(err)
	}
	if rescued, err := s.RescueOrphans(ctx, now.Add(-3*time.Second), now); err != nil || len(rescued) != 0 {
		t.Errorf("rescued %v (%v) of a node whose last beat is now", rescued, err)
	}
	r, err := s.Replicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 1 || !r.Nodes[0].SeenAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("replicas %+v; want beating, last seen at %v", r.Nodes, now)
	}
}

// jobsFixture is a store with the delivery job of one webhook (key names
// it), and a connection to its database for reading and setting the jobs
// as River would.
func jobsFixture(t *testing.T, key string, now time.Time) (*postgres.Store, *pgx.Conn) {
	t.Helper()
	url := pgtest.URL(t)
	s := open(t, url)
	ctx := context.Background()
	if err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", key, now)}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return s, conn
}
