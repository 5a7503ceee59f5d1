package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
)

// leaderStore is what the leader watch needs of the PostgreSQL store.
type leaderStore interface {
	Replicas(ctx context.Context) (*switchboard.Replicas, error)
}

// leaderWatch follows which replica leads River's maintenance (see
// switchboard.Replicas), reading it on each liveness beat: it logs each
// change once, counts the changes (switchboard_leader_changes_total) and
// sets switchboard_leader to 1 on the leader. A change is seen within a
// beat of the store recording it; an election itself comes up to River's
// term (15 s) plus its election interval after a leader's death, or at
// once after a leader that stopped gracefully resigned.
type leaderWatch struct {
	store   leaderStore
	node    string
	logger  *slog.Logger
	metrics *metrics.Metrics

	// Only the beat calls check, one beat at a time.
	leader    string    // as of the last read; "" for none
	last      string    // the last leader seen, for the next one's log line
	noneSince time.Time // when a read first found no leader after one
}

func newLeaderWatch(store leaderStore, node string, logger *slog.Logger, m *metrics.Metrics) *leaderWatch {
	return &leaderWatch{store: store, node: node, logger: logger, metrics: m}
}

// check reads the leader at the beat at and reports a change. A nil watch
// checks nothing. A failed read changes nothing and logs nothing: the
// beat's own failure is already logged, and the next beat reads again.
func (w *leaderWatch) check(ctx context.Context, at time.Time) {
	if w == nil {
		return
	}
	r, err := w.store.Replicas(ctx)
	if err != nil {
		return
	}
	leader := ""
	if r.Leader != nil {
		leader = r.Leader.Node
	}
	if leader == w.leader {
		return
	}
	w.leader = leader
	w.metrics.Leader.Set(0)
	if leader == "" {
		w.noneSince = at
		w.logger.Warn("no leader: the leader's term expired; River's maintenance (jobs scheduled for later falling due, cleanup) waits for the next election",
			"previous", w.last)
		return
	}
	w.metrics.LeaderChanges.Inc()
	if leader == w.node {
		w.metrics.Leader.Set(1)
	}
	previous := w.last
	if previous == "" {
		previous = "none"
	}
	attrs := []any{"node", leader, "this_process", leader == w.node, "previous", previous,
		"elected_at", r.Leader.ElectedAt.UTC().Format(time.RFC3339Nano)}
	if !w.noneSince.IsZero() {
		// As this process's beats saw it: to within a beat.
		attrs = append(attrs, "without_leader_for", at.Sub(w.noneSince).Round(time.Millisecond))
	}
	w.last, w.noneSince = leader, time.Time{}
	w.logger.Info("leader elected", attrs...)
}
