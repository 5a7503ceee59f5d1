package console

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// ReplicaStore is a store that replicas share (PostgreSQL's): the
// dashboard lists them and the leader of River's maintenance. A store
// that is not one is one process's (SQLite's), and the dashboard says so.
type ReplicaStore interface {
	Replicas(ctx context.Context) (*switchboard.Replicas, error)
}

// ReplicasJSON is the replicas sharing the store, as the dashboard shows
// them.
type ReplicasJSON struct {
	Nodes []ReplicaJSON `json:"nodes"`
	// Leader is null while no process holds an unexpired term.
	Leader *LeaderJSON `json:"leader"`
}

// ReplicaJSON is one process that beats.
type ReplicaJSON struct {
	Node     string    `json:"node"`
	LastBeat time.Time `json:"last_beat"`
	// Age is the time since its last beat, by the console's clock; the
	// replicas take one for dead past 3 s.
	Age    time.Duration `json:"age_ns"`
	Leader bool          `json:"leader"`
	This   bool          `json:"this_process"`
}

// LeaderJSON is the leader's term.
type LeaderJSON struct {
	Node      string        `json:"node"`
	ElectedAt time.Time     `json:"elected_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	For       time.Duration `json:"for_ns"` // since its election
	// Beating is false for a leader that stopped beating (died) while its
	// term runs on: until it expires, nobody else is elected.
	Beating bool `json:"beating"`
	This    bool `json:"this_process"`
}

// replicasJSON reads the replicas when the store is one replicas share;
// nil, nil when it is not. node is this process's name ("" when not known).
func (c *Console) replicasJSON(ctx context.Context, node string) (*ReplicasJSON, error) {
	rs, ok := c.store.(ReplicaStore)
	if !ok {
		return nil, nil
	}
	r, err := rs.Replicas(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the replicas: %w", err)
	}
	now := c.now()
	out := &ReplicasJSON{Nodes: []ReplicaJSON{}}
	for _, n := range r.Nodes {
		out.Nodes = append(out.Nodes, ReplicaJSON{Node: n.Node, LastBeat: n.SeenAt, Age: now.Sub(n.SeenAt),
			Leader: r.IsLeader(n.Node), This: node != "" && n.Node == node})
	}
	if l := r.Leader; l != nil {
		out.Leader = &LeaderJSON{Node: l.Node, ElectedAt: l.ElectedAt, ExpiresAt: l.ExpiresAt, For: now.Sub(l.ElectedAt),
			This: node != "" && l.Node == node}
		for _, n := range r.Nodes {
			out.Leader.Beating = out.Leader.Beating || n.Node == l.Node
		}
	}
	return out, nil
}

// oneProcess reports whether the store is one process's (SQLite's): it
// has no replicas to show.
func (c *Console) oneProcess() bool {
	_, ok := c.store.(ReplicaStore)
	return !ok
}
