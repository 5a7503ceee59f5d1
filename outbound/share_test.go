package outbound

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// turnStore is a memStore whose shared turns come wait from now, or fail
// with err; onTake, when set, runs in each take.
type turnStore struct {
	*memStore
	mu     sync.Mutex
	wait   time.Duration
	err    error
	onTake func()
	takes  []time.Duration // the intervals asked for
	held   []time.Duration // GoSenderTurn's answers before it lets one go
	goErr  error
	goes   int
}

func newTurnStore() *turnStore {
	return &turnStore{memStore: &memStore{msgs: map[string]*switchboard.OutboundMessage{}}}
}

func (s *turnStore) TakeSenderTurn(_ context.Context, _ string, interval time.Duration) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onTake != nil {
		s.onTake()
	}
	s.takes = append(s.takes, interval)
	return s.wait, s.err
}

// GoSenderTurn lets a request go unless held (the sender held by another
// process's request for the durations it pops, in turn) or goErr is set.
func (s *turnStore) GoSenderTurn(context.Context, string, time.Duration) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goes++
	if s.goErr != nil {
		return false, 0, s.goErr
	}
	if len(s.held) > 0 {
		d := s.held[0]
		s.held = s.held[1:]
		return false, d, nil
	}
	return true, 0, nil
}

func (s *turnStore) add(id, body string, created time.Time) {
	s.memStore.mu.Lock()
	defer s.memStore.mu.Unlock()
	s.msgs[id] = &switchboard.OutboundMessage{ID: id, Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+1555000" + id, Body: body, State: switchboard.MessageQueued, CreatedAt: created}
}

func (s *turnStore) message(t *testing.T, id string) switchboard.OutboundMessage {
	t.Helper()
	m, err := s.OutboundMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// sharedSender is a Sender over store with a heartbeat: its senders' turns
// are shared through the store.
func sharedSender(t *testing.T, store Store, client Client, lease Lease, now func() time.Time) *Sender {
	t.Helper()
	s, err := New(store, Options{Client: client, Heartbeat: time.Second, Lease: lease, Now: now,
		Pools: []Pool{{Name: "main", Senders: []string{"+15550001001"}, Rate: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A shared turn the store fails to give sends nothing: the send fails, the
// message stays sending (its attempt may have reached Twilio as far as
// anyone else knows), and the job's next run looks it up at Twilio before
// it sends it again.
func TestSharedTurnFailureFailsClosed(t *testing.T) {
	t.Parallel()
	store := newTurnStore()
	store.err = errors.New("connection refused")
	client := &recordingClient{}
	s := sharedSender(t, store, client, nil, nil)
	store.add("1", "hello", time.Now())

	err := s.Send(context.Background(), "1", 0)
	if err == nil || !errors.Is(err, store.err) {
		t.Fatalf("Send = %v, want the store's error", err)
	}
	if len(client.creates) != 0 {
		t.Fatalf("%d creates without a shared turn", len(client.creates))
	}
	if m := store.message(t, "1"); m.State != switchboard.MessageSending || m.Attempts != 1 {
		t.Fatalf("message %s at %d attempts, want sending at 1", m.State, m.Attempts)
	}

	// The job runs again: the message is looked up, not found, and queued
	// for its retry; then sent once turns come again.
	store.mu.Lock()
	store.err = nil
	store.mu.Unlock()
	if err := s.Send(context.Background(), "1", 0); err != nil {
		t.Fatal(err)
	}
	if len(client.listed) != 1 || len(client.creates) != 0 {
		t.Fatalf("%d lookups and %d creates on the job's next run, want one lookup and no create", len(client.listed), len(client.creates))
	}
	if m := store.message(t, "1"); m.State != switchboard.MessageQueued || m.Attempts != 1 {
		t.Fatalf("after the lookup: %s at %d attempts, want queued at 1", m.State, m.Attempts)
	}
	if err := s.Send(context.Background(), "1", 1); err != nil {
		t.Fatal(err)
	}
	if m := store.message(t, "1"); m.State != switchboard.MessageSent || len(client.creates) != 1 {
		t.Errorf("%s after %d creates, want sent after one", m.State, len(client.creates))
	}
	// Each take asked for the message's segment at 4/s.
	if len(store.takes) != 2 || store.takes[0] != 250*time.Millisecond {
		t.Errorf("takes for intervals %v, want two of 250ms", store.takes)
	}
}

// A send waits for its shared turn before its request, and meanwhile the
// sender's local turns are held back until that turn; the wait ends with
// the send's context, and then nothing is sent.
func TestSharedTurnIsWaitedFor(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := newTurnStore()
		store.wait = 5 * time.Second
		client := &stampingClient{}
		s := sharedSender(t, store, client, nil, nil)
		start := time.Now()
		store.add("1", "first", start)
		store.add("2", "second", start)

		done := make(chan error, 1)
		go func() { done <- s.Send(context.Background(), "1", 0) }()
		synctest.Wait() // asleep until its shared turn
		sched := s.pools["main"].sched
		sched.mu.Lock()
		next := sched.next("+15550001001", time.Now())
		sched.mu.Unlock()
		if want := start.Add(store.wait); !next.Equal(want) {
			t.Errorf("the sender's next local turn at %v, want at its shared turn, %v", next.Sub(start), store.wait)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		cs := client.bySender()["+15550001001"]
		if len(cs) != 1 || !cs[0].at.Equal(start.Add(store.wait)) {
			t.Fatalf("creates %+v, want one at its shared turn, %v in", cs, store.wait)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		store.mu.Lock()
		store.wait = time.Hour
		store.mu.Unlock()
		if err := s.Send(ctx, "2", 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send cut short = %v, want the context's error", err)
		}
		if n := len(client.bySender()["+15550001001"]); n != 1 {
			t.Errorf("%d creates: the send whose wait was cut short was made", n)
		}
		if m := store.message(t, "2"); m.State != switchboard.MessageSending {
			t.Errorf("message cut short: %s, want sending (looked up on its next run)", m.State)
		}
	})
}

// A shared turn reserves the request's segments at the rate, rounded up to
// the store's microseconds so that it is never shorter than the rate
// allows, and at most a day.
func TestSharedTurnIntervals(t *testing.T) {
	t.Parallel()
	store := newTurnStore()
	s := sharedSender(t, store, &recordingClient{}, nil, nil)
	for _, c := range []struct {
		cost int
		rate float64
		want time.Duration
	}{
		{1, 4, 250 * time.Millisecond},
		{2, 10, 200 * time.Millisecond},
		{0, 10, 100 * time.Millisecond}, // counts as one
		{1, 3, 333334 * time.Microsecond},
		{1, 1e-9, 24 * time.Hour},
		{1, 1e9, time.Microsecond},
	} {
		if _, err := s.takeSharedTurn(context.Background(), "+15550001001", c.cost, c.rate); err != nil {
			t.Fatal(err)
		}
		if got := store.takes[len(store.takes)-1]; got != c.want {
			t.Errorf("%d segments at %v/s: interval %v, want %v", c.cost, c.rate, got, c.want)
		}
	}
}

// At its turn a request goes only once the request that went before it,
// from any process, had its interval: held, it waits and asks again; a
// store that cannot say fails it closed, as a turn it cannot give does.
func TestSharedTurnGoesAfterTheRequestBefore(t *testing.T) {
	t.Parallel()
	store := newTurnStore()
	store.held = []time.Duration{time.Millisecond, 0}
	client := &recordingClient{}
	s := sharedSender(t, store, client, nil, nil)
	store.add("1", "hello", time.Now())
	if err := s.Send(context.Background(), "1", 0); err != nil {
		t.Fatal(err)
	}
	if store.goes != 3 || len(client.creates) != 1 {
		t.Fatalf("%d goes and %d creates; want the request made on the third go", store.goes, len(client.creates))
	}

	store.goErr = errors.New("connection refused")
	store.add("2", "hello again", time.Now())
	if err := s.Send(context.Background(), "2", 0); !errors.Is(err, store.goErr) {
		t.Fatalf("Send = %v, want the store's error", err)
	}
	if len(client.creates) != 1 {
		t.Fatalf("%d creates; a request went without its go", len(client.creates))
	}
	if m := store.message(t, "2"); m.State != switchboard.MessageSending {
		t.Fatalf("message 2 %s; want sending, for its next run to look it up", m.State)
	}
}
