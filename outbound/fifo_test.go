package outbound

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// recordingClient records the create requests it answers, in order.
type recordingClient struct {
	mu      sync.Mutex
	creates []twilio.CreateParams
	listed  []twilio.ListParams
	found   []twilio.RestMessage
}

func (c *recordingClient) Create(_ context.Context, p twilio.CreateParams) (*twilio.RestMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creates = append(c.creates, p)
	from := p.From
	if from == "" {
		from = "+15550009999" // the number a Messaging Service picked
	}
	return &twilio.RestMessage{SID: "SM" + p.Body, From: from, To: p.To, Status: "queued",
		MessagingServiceSID: p.MessagingServiceSID}, nil
}

func (c *recordingClient) List(_ context.Context, p twilio.ListParams) ([]twilio.RestMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed = append(c.listed, p)
	return c.found, nil
}

func newTestSender(t *testing.T, store *memStore, client Client, now *time.Time, pools ...Pool) *Sender {
	t.Helper()
	if len(pools) == 0 {
		pools = []Pool{{Name: "main", Senders: []string{"+15550001001"}, Rate: 1000}}
	}
	s, err := New(store, Options{Client: client, Now: func() time.Time { return *now }, Pools: pools,
		Policy: Policy{MaxWait: time.Nanosecond}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFIFOPerRecipient(t *testing.T) {
	t.Parallel()
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	client := &recordingClient{}
	s := newTestSender(t, store, client, &now)
	add := func(id string, purpose switchboard.Purpose, to string) {
		store.msgs[id] = &switchboard.OutboundMessage{ID: id, Pool: "main", Purpose: purpose, To: to,
			Body: id, State: switchboard.MessageQueued, CreatedAt: now}
	}
	add("1", switchboard.PurposeTransactional, "+15557770001")
	store.msgs["1"].NextAttemptAt = now.Add(time.Minute) // waiting for a retry
	add("2", switchboard.PurposeTransactional, "+15557770001")
	add("3", switchboard.PurposeOTP, "+15557770001")
	add("4", switchboard.PurposeTransactional, "+15557770002")

	for _, id := range []string{"2", "3", "4"} {
		if err := s.Send(context.Background(), id, 0); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second) // the sender's next turn
	}
	sent := map[string]bool{}
	for _, p := range client.creates {
		sent[p.Body] = true
	}
	// 2 waits behind 1; 3 (OTP) does not wait for a transactional message;
	// 4 has another recipient.
	if sent["2"] || !sent["3"] || !sent["4"] {
		t.Fatalf("sent %v; want 3 and 4, not 2", sent)
	}
	m2, _ := store.OutboundMessage(context.Background(), "2")
	if m2.State != switchboard.MessageQueued || m2.Attempts != 0 || !m2.NextAttemptAt.Equal(t0.Add(time.Minute+fifoPause)) ||
		m2.LastError != "" {
		t.Fatalf("message behind another: %s, %d attempts, next in %v, error %q; want queued just after it, no attempt",
			m2.State, m2.Attempts, m2.NextAttemptAt.Sub(now), m2.LastError)
	}
	// Once 1 is sent, 2 goes.
	now = t0.Add(time.Minute)
	if err := s.Send(context.Background(), "1", 0); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := s.Send(context.Background(), "2", 0); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, p := range client.creates {
		if p.To == "+15557770001" {
			order = append(order, p.Body)
		}
	}
	if len(order) != 3 || order[1] != "1" || order[2] != "2" {
		t.Fatalf("sends to the recipient: %v, want 3 (OTP), then 1, then 2", order)
	}
}

func TestFIFOWaitsInProcess(t *testing.T) {
	t.Parallel()
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	s := newTestSender(t, store, &recordingClient{}, &now)
	s.policy.MaxWait = time.Hour // the wait ends by the earlier send's end, not the clock
	store.msgs["1"] = &switchboard.OutboundMessage{ID: "1", Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+15557770001", Body: "1", State: switchboard.MessageQueued, CreatedAt: now}
	m2 := &switchboard.OutboundMessage{ID: "2", Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+15557770001", Body: "2", State: switchboard.MessageQueued, CreatedAt: now}
	store.msgs["2"] = m2

	release := s.enterLine("main", store.msgs["1"]) // this process is sending 1
	waited := make(chan time.Duration)
	go func() {
		later, err := s.waitForEarlier(context.Background(), s.pools["main"], m2)
		if err != nil {
			t.Error(err)
		}
		waited <- later
	}()
	select {
	case later := <-waited:
		t.Fatalf("2 did not wait for 1 in process: later %v", later)
	default:
	}
	store.mu.Lock()
	store.msgs["1"].State = switchboard.MessageSent
	store.mu.Unlock()
	release()
	if later := <-waited; later != 0 {
		t.Fatalf("after 1 was sent: reschedule in %v, want 0 (go now)", later)
	}
}

func TestMaxAgeDeadLetters(t *testing.T) {
	t.Parallel()
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	client := &recordingClient{}
	s := newTestSender(t, store, client, &now)
	s.policy.MaxAge = time.Hour
	store.msgs["old"] = &switchboard.OutboundMessage{ID: "old", Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+15557770001", Body: "old", State: switchboard.MessageQueued, Attempts: 3, CreatedAt: now.Add(-time.Hour - time.Second)}
	store.msgs["replayed"] = &switchboard.OutboundMessage{ID: "replayed", Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+15557770002", Body: "replayed", State: switchboard.MessageQueued, CreatedAt: now.Add(-48 * time.Hour),
		ReplayedAt: now.Add(-time.Minute)}
	if err := s.Send(context.Background(), "old", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), "replayed", 0); err != nil {
		t.Fatal(err)
	}
	old, _ := store.OutboundMessage(context.Background(), "old")
	if old.State != switchboard.MessageFailed || old.ErrorCode != int(twilio.CodeValidityPeriodExpired) || old.Attempts != 3 {
		t.Errorf("expired message: %s, code %d, %d attempts; want failed with 30036, no attempt made", old.State, old.ErrorCode, old.Attempts)
	}
	if len(client.creates) != 1 || client.creates[0].Body != "replayed" {
		t.Errorf("creates %+v: want only the replayed message, its age counted from the replay", client.creates)
	}
}

func TestMessagingServiceSender(t *testing.T) {
	t.Parallel()
	const service = "MG0123456789abcdef0123456789abcdef"
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	client := &recordingClient{}
	s := newTestSender(t, store, client, &now, Pool{Name: "main", Senders: []string{service}, Rate: 10})
	store.msgs["1"] = &switchboard.OutboundMessage{ID: "1", Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+15557770001", Body: "1", State: switchboard.MessageQueued, CreatedAt: now}
	if err := s.Send(context.Background(), "1", 0); err != nil {
		t.Fatal(err)
	}
	if len(client.creates) != 1 || client.creates[0].MessagingServiceSID != service || client.creates[0].From != "" {
		t.Fatalf("creates %+v: want one with MessagingServiceSid and no From", client.creates)
	}
	m, _ := store.OutboundMessage(context.Background(), "1")
	if m.State != switchboard.MessageSent || m.From != "+15550009999" {
		t.Errorf("sent through a service: %s from %q; want sent, from the number Twilio picked", m.State, m.From)
	}

	// An ambiguous send through a service is looked up by recipient and
	// matched by service.
	store.msgs["2"] = &switchboard.OutboundMessage{ID: "2", Pool: "main", Purpose: switchboard.PurposeTransactional,
		To: "+15557770002", Body: "2", State: switchboard.MessageSending, Attempts: 1, From: service, CreatedAt: now}
	client.found = []twilio.RestMessage{
		{SID: "SMother", To: "+15557770002", Body: "2", MessagingServiceSID: "MGffffffffffffffffffffffffffffffff", DateCreated: twilio.Time{Time: now}},
		{SID: "SMmine", To: "+15557770002", Body: "2", MessagingServiceSID: service, From: "+15550009999", DateCreated: twilio.Time{Time: now}, Status: "sent"},
	}
	if err := s.Send(context.Background(), "2", 0); err != nil {
		t.Fatal(err)
	}
	if len(client.listed) != 1 || client.listed[0].From != "" || client.listed[0].To != "+15557770002" {
		t.Errorf("lookup %+v: want by recipient only", client.listed)
	}
	if m, _ := store.OutboundMessage(context.Background(), "2"); m.TwilioSID != "SMmine" || m.State != switchboard.MessageSent {
		t.Errorf("found through the service: %s %q; want sent as SMmine", m.State, m.TwilioSID)
	}
	if len(client.creates) != 1 {
		t.Errorf("%d creates: the message found was resent", len(client.creates))
	}
}

func TestLimiterTurnsCountSegments(t *testing.T) {
	t.Parallel()
	lt := newLimiterTurns([]string{"A"}, 2) // 2 segments a second
	if got := lt.next("A", t0); !got.Equal(t0) {
		t.Fatalf("first turn at %v, want now", got)
	}
	lt.take("A", t0, 3) // a three-segment message
	// Its three segments use 1.5 s of the sender's rate.
	if got := lt.next("A", t0).Sub(t0); got < 1500*time.Millisecond || got > 1501*time.Millisecond {
		t.Errorf("next turn after 3 segments at 2/s: in %v, want 1.5 s", got)
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	long := make([]byte, 161)
	for i := range long {
		long[i] = 'a'
	}
	for _, tc := range []struct {
		m    switchboard.OutboundMessage
		want int
	}{
		{switchboard.OutboundMessage{Body: "hi"}, 1},
		{switchboard.OutboundMessage{Body: string(long)}, 2},
		{switchboard.OutboundMessage{Body: string(long), MediaURLs: []string{"https://x/a.png"}}, 1},
		{switchboard.OutboundMessage{Body: "café ☕"}, 1},
	} {
		if got := Cost(&tc.m); got != tc.want {
			t.Errorf("Cost(%d bytes, %d media) = %d, want %d", len(tc.m.Body), len(tc.m.MediaURLs), got, tc.want)
		}
	}
}

// heartbeatStore answers heartbeats with a given number of live nodes,
// and gives every shared turn at once.
type heartbeatStore struct {
	memStore
	mu    sync.Mutex
	alive int
	nodes []string
}

func (h *heartbeatStore) SenderHeartbeat(_ context.Context, node string, _ time.Time, ttl time.Duration) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes = append(h.nodes, node)
	return h.alive, nil
}

func (h *heartbeatStore) TakeSenderTurn(context.Context, string, time.Duration) (time.Duration, error) {
	return 0, nil
}

func (h *heartbeatStore) GoSenderTurn(context.Context, string, time.Duration) (bool, time.Duration, error) {
	return true, 0, nil
}

// The heartbeat counts the processes sending from the store; it no longer
// divides the rate: each process's turns come at the pool's full rate, and
// the shared turns keep the sender at its rate across them.
func TestHeartbeatCountsProcesses(t *testing.T) {
	t.Parallel()
	now := t0
	store := &heartbeatStore{memStore: memStore{msgs: map[string]*switchboard.OutboundMessage{}}, alive: 2}
	s, err := New(store, Options{Client: &recordingClient{}, Now: func() time.Time { return now }, Heartbeat: time.Hour,
		Node: "node-a", Pools: []Pool{{Name: "main", Senders: []string{"A"}, Rate: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Processes() != 1 {
		t.Errorf("%d processes before the first heartbeat, want 1", s.Processes())
	}
	stop := s.StartHeartbeat(context.Background())
	defer stop()
	if s.Processes() != 2 {
		t.Fatalf("%d processes after the first heartbeat, want 2", s.Processes())
	}
	lt := s.pools["main"].sched.turns.(*limiterTurns)
	lt.take("A", now, 1)
	if got := lt.next("A", now).Sub(now); got < 100*time.Millisecond || got > 101*time.Millisecond {
		t.Errorf("next local turn in %v with two processes, want 100 ms: the full rate of 10/s", got)
	}
	store.mu.Lock()
	nodes := store.nodes
	store.mu.Unlock()
	if len(nodes) != 1 || nodes[0] != "node-a" {
		t.Errorf("heartbeats %v", nodes)
	}
}

// A store shared with other processes that cannot share the senders'
// turns is refused: each process pacing alone would multiply the rates.
func TestHeartbeatNeedsSharedTurns(t *testing.T) {
	t.Parallel()
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	if _, err := New(store, Options{Client: &recordingClient{}, Heartbeat: time.Second,
		Pools: []Pool{{Name: "main", Senders: []string{"A"}, Rate: 10}}}); err == nil {
		t.Error("a heartbeat over a store without shared turns was accepted")
	}
	if _, err := New(store, Options{Client: &recordingClient{},
		Pools: []Pool{{Name: "main", Senders: []string{"A"}, Rate: 10}}}); err != nil {
		t.Errorf("one process on the store: %v", err)
	}
}
