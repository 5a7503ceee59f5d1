package switchboard

import "time"

// Replicas are the processes sharing a PostgreSQL store as the store knows
// them at one moment: those that beat (every process that delivers does,
// every second) and the one leading River's maintenance, which moves jobs
// scheduled for later to the queue when they fall due, rescues jobs stuck
// running and deletes finished ones. One SQLite file has one process, and
// no replicas to report.
type Replicas struct {
	// Nodes are the processes on record as beating, each with its last
	// beat: the leader's first, the others by name. Each beat forgets the processes not seen for
	// the liveness TTL (3 s), so one that stopped stays listed only until
	// another beats.
	Nodes []Replica
	// Leader is the process whose term as leader has not expired, by the
	// database's clock (as River judges it); nil when none holds one.
	// A leader that died stays the leader until its term expires, and may
	// then be missing from Nodes.
	Leader *LeaderTerm
}

// Replica is one process sharing the store.
type Replica struct {
	Node   string    // the process's name: a UUID, in its start-up line
	SeenAt time.Time // its last beat, by its own clock
}

// LeaderTerm is a process's term as leader of River's maintenance.
type LeaderTerm struct {
	Node string
	// ElectedAt is when it was elected; ExpiresAt when its term ends
	// unless it renews it (it does every few seconds while it runs).
	ElectedAt time.Time
	ExpiresAt time.Time
}

// IsLeader reports whether node holds the leader's term.
func (r *Replicas) IsLeader(node string) bool {
	return r != nil && r.Leader != nil && r.Leader.Node == node
}
