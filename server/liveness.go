package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/outbound"
)

// Liveness of the replicas sharing a PostgreSQL store.
//
// Every replica that delivers beats every livenessBeat (the sender_nodes
// table, whose processes the outbound sender counts too) and, on each
// beat, takes over the running jobs of replicas that have not beaten for
// livenessTTL: their work resumes within livenessTTL + livenessBeat of
// their death, plus a job fetch. A replica's lease is its own beats: it
// makes a delivery, or a send to Twilio, only while it has beaten within
// livenessTTL − livenessBeat, and never one begun before it lost its lease
// (a pause longer than that, such as a SIGSTOP, after which its jobs may
// run elsewhere). What it was doing when it paused is recorded, if at all,
// as a stale attempt that cannot undo the work of the replica that took
// over (see switchboard.Store's RecordAttempts); a send it was making
// stays sending, and the replica that took it over looks it up at Twilio
// before sending it again.
const (
	livenessBeat = time.Second
	livenessTTL  = 3 * time.Second
)

// livenessStore is what liveness needs of the PostgreSQL store.
type livenessStore interface {
	SenderHeartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error)
	RescueOrphans(ctx context.Context, aliveSince, now time.Time) (map[string]int, error)
	WithdrawNode(ctx context.Context, node string) error
	PromoteDue(ctx context.Context, now time.Time) (int, error)
}

// liveness beats for this process, rescues the jobs of stopped replicas
// and holds this process's lease (deliver.Lease, outbound.Lease).
type liveness struct {
	store  livenessStore
	node   string
	logger *slog.Logger
	now    func() time.Time
	leader *leaderWatch // reads the leader on each beat; see leader.go

	mu     sync.Mutex
	lastOK time.Time // the last beat the store took (monotonic)
	lostAt time.Time // when a beat found the lease had lapsed
	ended  bool      // stopped beating: the lease is given up

	stop chan struct{}
	done chan struct{}
}

var (
	_ deliver.Lease  = (*liveness)(nil)
	_ outbound.Lease = (*liveness)(nil)
)

func newLiveness(store livenessStore, node string, logger *slog.Logger) *liveness {
	return &liveness{store: store, node: node, logger: logger, now: time.Now}
}

// start beats once, so that the lease is held before any delivery, then
// every livenessBeat until stop.
func (l *liveness) start(ctx context.Context) {
	l.beat(ctx)
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(livenessBeat)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.beat(ctx)
			}
		}
	}()
}

// end stops beating and gives the lease up, so that nothing begun before
// is delivered by this process any more, then withdraws this process's
// heartbeats (see WithdrawNode): the others take any job it left running
// at their next beat. The caller has stopped this process's jobs, or
// given up waiting for them, which the given-up lease then fences.
func (l *liveness) end(ctx context.Context) {
	if l.stop == nil {
		return
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, livenessBeat/2)
	defer cancel()
	if err := l.store.WithdrawNode(ctx, l.node); err != nil {
		// Fails safe: the others take what is left once the beats age.
		l.logger.Warn("could not withdraw this process's heartbeats; the others take over its jobs once they age", "err", err)
	}
}

// beat records this process alive, then rescues what stopped replicas
// left running, and makes the jobs due now available.
func (l *liveness) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, livenessBeat)
	defer cancel()
	at := l.now()
	if _, err := l.store.SenderHeartbeat(ctx, l.node, at, livenessTTL); err != nil {
		l.logger.Warn("heartbeat failed; deliveries stop once the lease lapses", "err", err)
		return
	}
	l.mu.Lock()
	if !l.lastOK.IsZero() && at.Sub(l.lastOK) >= livenessTTL-livenessBeat {
		// The others may have taken this process's jobs meanwhile.
		l.lostAt = at
		l.logger.Warn("lease lapsed: this process did not beat for a while (paused?); deliveries begun before are not made",
			"since_last_beat", at.Sub(l.lastOK).Round(time.Millisecond))
	}
	l.lastOK = at
	l.mu.Unlock()
	l.leader.check(ctx, at)

	rescued, err := l.store.RescueOrphans(ctx, at.Add(-livenessTTL), at)
	if err != nil {
		l.logger.Warn("rescue of stopped replicas' jobs failed; next beat tries again", "err", err)
	}
	for kind, n := range rescued {
		// Counted as each is run (switchboard_rescued_total).
		l.logger.Info("took over the jobs of a replica that stopped beating", "kind", kind, "jobs", n)
	}
	// Retries and delayed deliveries fall due whether or not River has a
	// leader to schedule them: one killed outright holds its term for 15 s.
	if _, err := l.store.PromoteDue(ctx, at); err != nil {
		l.logger.Warn("could not make due jobs available; River's leader or the next beat will", "err", err)
	}
}

// HeldSince reports whether this process holds its lease now and has held
// it without a lapse since start: it may make a delivery begun at start.
func (l *liveness) HeldSince(start time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return !l.ended && !l.lastOK.IsZero() && now.Sub(l.lastOK) < livenessTTL-livenessBeat && !start.Before(l.lostAt)
}
