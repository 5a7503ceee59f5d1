package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/jobs"
)

// rescueOrphans takes over the running jobs of processes no longer alive:
// jobs of Switchboard's kinds whose last worker (River's client ID, the
// node's name) has not beaten (sender_nodes) since aliveSince and started
// before it. A job of a process that is alive, however long it runs, is
// never taken: its process's lease fences it (see deliver's lease).
//
// Each orphan is ended (cancelled) and a copy of it, with its attempts and
// errors, is made available: the copy is what the live replicas run. The
// orphan is not made available itself because a process that was only
// paused may resume and report its run of the job to River, which records
// a result for any job still running, whoever runs it: with the same row
// run again elsewhere, a stale "completed" would end the live run's job,
// and a failure of that run would then never be retried. River records no
// result for a job that is no longer running, so the resumed process's
// report lands on the cancelled orphan and changes nothing. The error
// appended says the job was rescued (see jobs' rescued), so its delivery
// goes again as the next attempt.
const rescueOrphans = `WITH orphans AS (
    UPDATE river_job SET state = 'cancelled', finalized_at = $2,
        errors = array_append(errors, jsonb_build_object('at', $2::timestamptz, 'attempt', attempt,
            'error', $4::text, 'trace', ''))
    WHERE state = 'running' AND kind = ANY($3::text[]) AND attempted_at < $1
    AND NOT coalesce(attempted_by[array_upper(attempted_by, 1)] IN
        (SELECT node FROM sender_nodes WHERE seen_at >= $1), false)
    RETURNING *)
INSERT INTO river_job (state, attempt, max_attempts, attempted_at, scheduled_at, priority,
        args, attempted_by, errors, kind, metadata, queue, tags)
    SELECT 'available', attempt, max_attempts, attempted_at, $2, priority,
        args, attempted_by, errors, kind, metadata, queue, tags FROM orphans
    RETURNING kind`

// RescueOrphans makes the delivery and send jobs of processes that stopped
// beating before aliveSince available to the live ones at now, and returns
// how many it rescued by kind ("delivery", "send"). Every replica may run
// it: the update takes each job once.
func (s *Store) RescueOrphans(ctx context.Context, aliveSince, now time.Time) (map[string]int, error) {
	kinds := []string{jobs.DeliverArgs{}.Kind(), jobs.SendArgs{}.Kind()}
	rows, err := s.pool.Query(ctx, rescueOrphans, aliveSince, now, kinds, jobs.RescuedByLiveness)
	if err != nil {
		return nil, fmt.Errorf("rescue the jobs of stopped processes: %w", err)
	}
	defer rows.Close()
	n := map[string]int{}
	for rows.Next() {
		var kind string
		if err := rows.Scan(&kind); err != nil {
			return nil, fmt.Errorf("rescue the jobs of stopped processes: %w", err)
		}
		switch kind {
		case jobs.DeliverArgs{}.Kind():
			n["delivery"]++
		case jobs.SendArgs{}.Kind():
			n["send"]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rescue the jobs of stopped processes: %w", err)
	}
	return n, nil
}

// WithdrawNode forgets node's heartbeats, for a process that stopped
// cleanly: the others stop counting it at once, and take at their next beat
// any job it still left running, instead of waiting for its beats to age.
// It must be called only once the process runs no job: a job it still ran
// would then run twice.
func (s *Store) WithdrawNode(ctx context.Context, node string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sender_nodes WHERE node = $1`, node); err != nil {
		return fmt.Errorf("withdraw the heartbeats of %s: %w", node, err)
	}
	return nil
}

// promoteDue makes due delivery and send jobs scheduled for later (first
// deliveries with a delay, retries) available. River's leader does the
// same every few seconds, but a leader killed outright holds its term
// (15 s) before another is elected, and meanwhile nothing scheduled would
// run. Jobs locked by another replica doing the same are skipped; jobs
// with River's unique keys, which Switchboard does not use, are left to
// River, which settles their conflicts.
const promoteDue = `WITH due AS (
    SELECT id FROM river_job
    WHERE state IN ('retryable', 'scheduled') AND kind = ANY($2::text[]) AND scheduled_at <= $1
        AND unique_key IS NULL
    ORDER BY priority, scheduled_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
UPDATE river_job SET state = 'available' FROM due WHERE river_job.id = due.id`

// promoteBatch bounds the jobs one PromoteDue makes available; the next
// beat takes the rest.
const promoteBatch = 1000

// PromoteDue makes the delivery and send jobs due at now available, so
// that they run although no replica leads River's maintenance, and returns
// how many it made available. Every replica may run it.
func (s *Store) PromoteDue(ctx context.Context, now time.Time) (int, error) {
	kinds := []string{jobs.DeliverArgs{}.Kind(), jobs.SendArgs{}.Kind()}
	tag, err := s.pool.Exec(ctx, promoteDue, now, kinds, promoteBatch)
	if err != nil {
		return 0, fmt.Errorf("make due jobs available: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
