package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/jobs"
)

// rescueOrphans makes the running jobs of processes no longer alive
// available again: jobs of Switchboard's kinds whose last worker (River's
// client ID, the node's name) has not beaten (sender_nodes) since
// aliveSince and started before it. The error appended says the job was
// rescued (see jobs' rescued), so its delivery goes again as the next
// attempt. A job of a process that is alive, however long it runs, is
// never taken: its process's lease fences it (see deliver's lease).
const rescueOrphans = `UPDATE river_job SET state = 'available', scheduled_at = $2,
    errors = array_append(errors, jsonb_build_object('at', $2::timestamptz, 'attempt', attempt,
        'error', $4::text, 'trace', ''))
    WHERE state = 'running' AND kind = ANY($3::text[]) AND attempted_at < $1
    AND NOT coalesce(attempted_by[array_upper(attempted_by, 1)] IN
        (SELECT node FROM sender_nodes WHERE seen_at >= $1), false)
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
