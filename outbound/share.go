package outbound

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Pacing across replicas.
//
// Replicas on one PostgreSQL store each run a Sender with the same pools.
// With Options.Heartbeat set, each sender's rate holds across all of them
// together: every request to Twilio first takes the sender's turn in a
// token bucket the store keeps for it (SharedTurns: a generic cell rate
// algorithm with a burst of one, one row per sender), waits until that
// turn comes, and then goes only once the sender's request before it, from
// any replica, has had its interval (GoSenderTurn), so that one that went
// late pushes the next back. So no two requests of a sender, from any replicas, start
// less than its interval (segments / Rate) apart, and no one-second window
// (its end excluded) holds more than Rate segments of it, but for the
// jitter of the requests' way from their turns to Twilio. Why this design:
//
//   - No leader hands out turns, so there is no leader to lose and elect
//     again, and no replica's death stalls the others' sends.
//   - A turn is one short row update; the store's own clock times it, so
//     the replicas' clocks may differ.
//   - A replica with nothing to send takes no turns, so the others use
//     the whole rate; nothing is divided up front.
//   - A replica that dies between taking a turn and using it wastes that
//     one turn, at most an interval of the sender's; its jobs are taken
//     over by the others (server's liveness, within seconds).
//
// Each replica's own scheduler still hands out turns in priority order, at
// the full rate (priority.go), and its request line still spaces its own
// requests of a sender by the interval (reserve). A request takes its
// shared turn once the request ahead of it in its replica's line went, so
// each replica has at most one request per sender booked in the shared
// bucket, and the bucket is never booked further ahead than one request
// per busy replica and the tail of the last one. When the shared turn
// comes later than the replica's own line would let the request go, other
// replicas are sending from the sender: the replica gives the sender no
// local turn before that shared turn (the scheduler's hold), so that its
// sends wait in its priority lines, where OTP goes first and a long wait
// is rescheduled, rather than after their claims, in the request line.
// A replica alone on a sender finds its shared turns where its own line
// puts them, is never held back, and keeps the full rate, provided the
// store answers a take within the sender's interval.
//
// A turn the store fails to give fails the send closed: nothing is sent,
// the message stays sending, and its job's next run looks it up at Twilio
// before it is sent again.
//
// The heartbeat records the process alive and counts the processes alive
// (Processes), for the switchboard_outbound_rate_share gauge; pacing does
// not depend on it.

// SharedTurns is a store whose senders' turns are shared by every process
// sending from it (postgres.Store).
type SharedTurns interface {
	// TakeSenderTurn takes sender's next turn, shared with every process
	// on the store, and reserves interval after it for the request made
	// in it. It returns how long from now the turn starts; 0 when it has
	// come.
	TakeSenderTurn(ctx context.Context, sender string, interval time.Duration) (wait time.Duration, err error)
	// GoSenderTurn lets a request of sender go now, holding the sender
	// for interval, unless the request that went before it, from any
	// process, still holds it: then it returns false and how long it is
	// held. The request is made at once after true.
	GoSenderTurn(ctx context.Context, sender string, interval time.Duration) (gone bool, held time.Duration, err error)
}

// DefaultHeartbeat is the heartbeat interval a server sharing its store
// uses.
const DefaultHeartbeat = time.Second

// heartbeatMisses is how many heartbeats a process may miss before the
// others stop counting it.
const heartbeatMisses = 3

// maxSharedInterval is the longest interval a shared turn reserves: a
// day, postgres.MaxTurnInterval. A sender slower than a segment a day is
// paced across replicas at a request a day (and in each process at its
// rate): no rate of use is that slow.
const maxSharedInterval = 24 * time.Hour

// sharedInterval is how long a request of cost segments at rate holds its
// sender across the processes.
func sharedInterval(cost int, rate float64) time.Duration {
	if secs := float64(max(cost, 1)) / rate; secs < maxSharedInterval.Seconds() {
		// Rounded up to the store's microseconds: never shorter than
		// the rate allows.
		return time.Duration(math.Ceil(secs*1e6)) * time.Microsecond
	}
	return maxSharedInterval
}

// goShared waits, at its shared turn, until a request of cost segments
// from from may go across the processes, and marks it gone: after the
// request that went before it, however late that one went (see
// SharedTurns.GoSenderTurn). Being late, a replica slow to wake when its
// turn came pushes the next request back instead of bunching with it. An
// error means the request must not be made.
func (s *Sender) goShared(ctx context.Context, from string, cost int, rate float64) error {
	interval := sharedInterval(cost, rate)
	for {
		gone, held, err := s.shared.GoSenderTurn(ctx, from, interval)
		if err != nil {
			return fmt.Errorf("go in a turn of sender %s shared with the other replicas: %w", from, err)
		}
		if gone {
			return nil
		}
		if err := s.sleepUntil(ctx, s.now().Add(held)); err != nil {
			return err
		}
	}
}

// takeSharedTurn takes from's turn across the processes sharing the store,
// for a request of cost segments at rate, and returns when it comes. An
// error means no turn: the request must not be made.
func (s *Sender) takeSharedTurn(ctx context.Context, from string, cost int, rate float64) (time.Time, error) {
	interval := sharedInterval(cost, rate)
	wait, err := s.shared.TakeSenderTurn(ctx, from, interval)
	if err != nil {
		return time.Time{}, fmt.Errorf("take a turn of sender %s shared with the other replicas: %w", from, err)
	}
	return s.now().Add(max(wait, 0)), nil
}

// StartHeartbeat records this process alive in the store (see
// Options.Heartbeat) until stop is called; stop waits for the last
// heartbeat to end. The first heartbeat is made before it returns. With no
// Heartbeat it does nothing.
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

// beat records this process alive and counts the processes alive.
func (s *Sender) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Heartbeat)
	defer cancel()
	alive, err := s.store.SenderHeartbeat(ctx, s.opts.Node, s.now(), heartbeatMisses*s.opts.Heartbeat)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("outbound: heartbeat failed; keeping the count of processes", "err", err)
		}
		return
	}
	alive = max(alive, 1)
	s.mu.Lock()
	changed := alive != s.processes
	s.processes = alive
	s.mu.Unlock()
	if changed {
		s.log.Info("outbound: processes sending from the store", "processes", alive)
	}
}

// Processes is how many processes send from this store, this one
// included, as its heartbeats last counted them: 1 when alone or without
// Options.Heartbeat. Each sender's rate holds across all of them together.
func (s *Sender) Processes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processes
}
