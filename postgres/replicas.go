package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// MaxReplicas bounds the processes Replicas lists.
const MaxReplicas = 1000

// replicas reads the beating processes and River's leader in one
// statement, so that both are as of one moment: the leader first (a full
// join row whose leader_id is set), then the nodes by name. River's
// leader_id is its client's ID, which Switchboard sets to the node's
// name; an expired term is River's to delete, and is not a leader.
const replicas = `SELECT coalesce(n.node, l.leader_id), n.seen_at, l.elected_at, l.expires_at
    FROM sender_nodes n
    FULL JOIN (SELECT leader_id, elected_at, expires_at FROM river_leader WHERE expires_at >= now()) l
        ON l.leader_id = n.node
    ORDER BY l.leader_id IS NULL, 1
    LIMIT $1`

// Replicas returns the processes beating on the store and the one leading
// River's maintenance (see switchboard.Replicas).
func (s *Store) Replicas(ctx context.Context) (*switchboard.Replicas, error) {
	rows, err := s.pool.Query(ctx, replicas, MaxReplicas)
	if err != nil {
		return nil, fmt.Errorf("read the replicas: %w", err)
	}
	defer rows.Close()
	r := &switchboard.Replicas{}
	for rows.Next() {
		var (
			node                 string
			seen, elected, until *time.Time
		)
		if err := rows.Scan(&node, &seen, &elected, &until); err != nil {
			return nil, fmt.Errorf("read the replicas: %w", err)
		}
		if elected != nil {
			r.Leader = &switchboard.LeaderTerm{Node: node, ElectedAt: *elected, ExpiresAt: *until}
		}
		if seen != nil {
			r.Nodes = append(r.Nodes, switchboard.Replica{Node: node, SeenAt: *seen})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the replicas: %w", err)
	}
	return r, nil
}
