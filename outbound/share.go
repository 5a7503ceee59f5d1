package outbound

import (
	"context"
	"time"
)

// Sharing the rates among replicas.
//
// Replicas on one PostgreSQL store each run a Sender with the same pools.
// With Options.Heartbeat set, each records itself alive in the store every
// Heartbeat (Store.SenderHeartbeat) and paces every sender at its pool's
// Rate divided by the number of processes alive, so that together they
// stay within Rate. A process is alive while it has beaten within
// 3 × Heartbeat. The division is even: a replica with no backlog leaves
// its share unused, so under an uneven load the pool runs below its rate,
// never above it. The one window above it is a replica's arrival: the
// others learn of it within one Heartbeat; a replica that stops is counted
// until its beats are 3 × Heartbeat old, during which the pool runs below
// its rate. Clocks of the replicas are assumed in step (NTP).
//
// A heartbeat that fails keeps the share last known: the store is the
// sends' store too, so sends are failing or paused meanwhile.

// DefaultHeartbeat is the heartbeat interval a server sharing its store
// uses.
const DefaultHeartbeat = time.Second

// heartbeatMisses is how many heartbeats a process may miss before the
// others stop counting it.
const heartbeatMisses = 3

// StartHeartbeat shares the senders' rates with the other processes on the
// store (see Options.Heartbeat) until stop is called; stop waits for the
// last heartbeat to end. The first heartbeat is made before it returns, so
// that sends started after it use the share. With no Heartbeat it does
// nothing.
func (s *Sender) StartHeartbeat(ctx context.Context) (stop func()) {
	if s.opts.Heartbeat <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	s.beat(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.opts.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.beat(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// beat records this process alive and applies the share.
func (s *Sender) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Heartbeat)
	defer cancel()
	now := s.now()
	alive, err := s.store.SenderHeartbeat(ctx, s.opts.Node, now, heartbeatMisses*s.opts.Heartbeat)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("outbound: heartbeat failed; keeping the rate share", "err", err)
		}
		return
	}
	s.setShare(max(alive, 1), now)
}

// setShare paces every sender at its pool's rate divided by n.
func (s *Sender) setShare(n int, now time.Time) {
	s.mu.Lock()
	changed := n != s.share
	s.share = n
	s.mu.Unlock()
	if !changed {
		return
	}
	for _, pl := range s.pools {
		pl.sched.setRate(pl.Rate/float64(n), now)
	}
	s.log.Info("outbound: sender rates shared", "processes", n)
}

// Share is how many processes this one shares each sender's rate with,
// itself included: 1 when alone or without Options.Heartbeat.
func (s *Sender) Share() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share
}
