package outbound

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// fakeLease is held from heldFrom on, except that it lapsed at lostAt
// (zero: never): held since start when start is at or after both.
type fakeLease struct {
	mu       sync.Mutex
	heldFrom time.Time
	lostAt   time.Time
	asked    []time.Time // the starts HeldSince was asked about
}

func (l *fakeLease) HeldSince(start time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, start)
	return !start.Before(l.heldFrom) && !start.Before(l.lostAt)
}

func (l *fakeLease) lose(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lostAt = at
}

// A send is made only while the lease has been held since the send
// began, and it is asked right before the request: a lease that lapsed
// while the send waited for its turn fences the request. The message stays
// sending, and the job's next run (here, or at the replica that took it
// over) looks it up at Twilio before sending it again.
func TestLeaseFencesSends(t *testing.T) {
	t.Parallel()
	now := t0
	clock := func() time.Time { return now }

	t.Run("held", func(t *testing.T) {
		store := newTurnStore()
		lease := &fakeLease{}
		client := &recordingClient{}
		s := sharedSender(t, store, client, lease, clock)
		store.add("1", "held", now)
		if err := s.Send(context.Background(), "1", 0); err != nil {
			t.Fatal(err)
		}
		if len(client.creates) != 1 {
			t.Fatalf("%d creates under a lease held throughout, want 1", len(client.creates))
		}
		if len(lease.asked) != 1 || !lease.asked[0].Equal(t0) {
			t.Errorf("lease asked about %v, want once, about the send's start %v", lease.asked, t0)
		}
	})

	t.Run("lost during the send", func(t *testing.T) {
		store := newTurnStore()
		lease := &fakeLease{}
		// The lease lapses while the send takes its shared turn: a pause
		// of this process, after which another replica may have its job.
		store.onTake = func() { lease.lose(t0.Add(time.Millisecond)) }
		client := &recordingClient{}
		s := sharedSender(t, store, client, lease, clock)
		store.add("1", "lost", now)
		err := s.Send(context.Background(), "1", 0)
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Send = %v, want ErrLeaseLost", err)
		}
		if len(client.creates) != 0 {
			t.Fatalf("%d creates on a lost lease", len(client.creates))
		}
		if m := store.message(t, "1"); m.State != switchboard.MessageSending || m.Attempts != 1 {
			t.Fatalf("message %s at %d attempts, want sending at 1", m.State, m.Attempts)
		}
		// A send begun after the lapse, under the lease held again, looks
		// the message up before anything is sent.
		now = now.Add(time.Second)
		if err := s.Send(context.Background(), "1", 0); err != nil {
			t.Fatal(err)
		}
		if len(client.listed) != 1 || len(client.creates) != 0 {
			t.Errorf("%d lookups, %d creates after the lapse; want one lookup and no create", len(client.listed), len(client.creates))
		}
	})

	t.Run("not held", func(t *testing.T) {
		store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
		lease := &fakeLease{heldFrom: t0.Add(time.Hour)} // not yet
		client := &recordingClient{}
		s, err := New(store, Options{Client: client, Lease: lease, Now: clock,
			Pools: []Pool{{Name: "main", Senders: []string{"+15550001001"}, Rate: 4}}})
		if err != nil {
			t.Fatal(err)
		}
		store.msgs["1"] = &switchboard.OutboundMessage{ID: "1", Pool: "main", To: "+15550000001", Body: "not held",
			State: switchboard.MessageQueued, CreatedAt: now}
		if err := s.Send(context.Background(), "1", 0); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Send = %v, want ErrLeaseLost", err)
		}
		if len(client.creates) != 0 {
			t.Errorf("%d creates without the lease", len(client.creates))
		}
	})
}
