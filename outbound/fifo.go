package outbound

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// FIFO per recipient.
//
// Messages to one recipient in a pool are sent in the order they were
// created: a send waits while an earlier message to the same recipient in
// the pool is still queued or sending (Store.EarlierUnsent), so a retry's
// backoff holds the later messages behind it too (head-of-line, as in any
// FIFO). Purpose priority comes first: an OTP message waits only for
// earlier OTP messages, a transactional one for earlier OTP and
// transactional ones, a marketing one for any; so a paused or slow
// marketing message never holds up a passcode.
//
// When the earlier message is being sent by this process, the later one
// waits for it in process, up to Policy.MaxWait, and looks again. When it
// is elsewhere (waiting for a retry, or sent by another replica), the
// later one is rescheduled for just after the earlier one is due, and
// keeps its attempt count: waiting is not an attempt.

// fifoPause is how long after an earlier message is due a later one
// rescheduled behind it comes back: the earlier one goes first.
const fifoPause = 100 * time.Millisecond

// purposesAhead are the purposes whose earlier messages a message of
// purpose p waits for: its own and those of higher priority.
func purposesAhead(p switchboard.Purpose) []switchboard.Purpose {
	var out []switchboard.Purpose
	for _, q := range switchboard.Purposes {
		if priority(q) <= priority(p) {
			out = append(out, q)
		}
	}
	return out
}

func lineKey(pool, recipient string) string { return pool + "\x00" + recipient }

// enterLine records that this process is working on m, until the returned
// function is called, so that later messages to its recipient wait for it
// here.
func (s *Sender) enterLine(pool string, m *switchboard.OutboundMessage) (release func()) {
	key := lineKey(pool, m.To)
	done := make(chan struct{})
	s.mu.Lock()
	line := s.unsent[key]
	if line == nil {
		line = map[string]chan struct{}{}
		s.unsent[key] = line
	}
	line[m.ID] = done
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.unsent[key][m.ID] == done {
			delete(s.unsent[key], m.ID)
			if len(s.unsent[key]) == 0 {
				delete(s.unsent, key)
			}
		}
		s.mu.Unlock()
		close(done)
	}
}

// working returns the channel closed when this process is done with
// message id to recipient in pool, or nil when it is not working on it.
func (s *Sender) working(pool, recipient, id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsent[lineKey(pool, recipient)][id]
}

// waitForEarlier waits, up to MaxWait, while an earlier message to m's
// recipient in pl is unsent and being sent by this process. It returns 0
// when m may go now, or how long to reschedule m for when it must wait
// longer. A store error is returned: the job runs again and looks again,
// so FIFO fails closed (a delay, never an out-of-order send).
func (s *Sender) waitForEarlier(ctx context.Context, pl *pool, m *switchboard.OutboundMessage) (later time.Duration, err error) {
	deadline := s.now().Add(s.policy.MaxWait)
	purposes := purposesAhead(m.Purpose)
	for {
		earlier, err := s.store.EarlierUnsent(ctx, pl.Name, m.To, m.ID, purposes)
		switch {
		case errors.Is(err, switchboard.ErrNotFound):
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("look for earlier messages to the recipient: %w", err)
		}
		now := s.now()
		done := s.working(pl.Name, m.To, earlier.ID)
		if done == nil || !now.Before(deadline) {
			due := max(earlier.NextAttemptAt.Sub(now), 0)
			return due + fifoPause, nil
		}
		t := time.NewTimer(deadline.Sub(now))
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
		t.Stop()
	}
}
