package outbound

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// fakeTurns hands out exactly the turns a test gives: free[sender] turns
// are due now; after them the next comes at nextAt (an hour on when zero).
type fakeTurns struct {
	free   map[string]int
	nextAt time.Time
}

func (f *fakeTurns) next(sender string, now time.Time) time.Time {
	if f.free[sender] > 0 {
		return now
	}
	if f.nextAt.After(now) {
		return f.nextAt
	}
	return now.Add(time.Hour)
}

func (f *fakeTurns) take(sender string, _ time.Time, cost int) {
	if f.free[sender] <= 0 {
		panic("fakeTurns: took a turn that was not due")
	}
	f.free[sender] = max(f.free[sender]-max(cost, 1), 0)
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testScheduler(threshold time.Duration, senders ...string) (*scheduler, *fakeTurns, *bytes.Buffer) {
	ft := &fakeTurns{free: map[string]int{}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	return newScheduler("main", senders, 1, threshold, ft, log), ft, &logs
}

// granted returns the outcome of w if its wait is over.
func granted(w *waiter) (outcome, bool) {
	select {
	case o := <-w.done:
		return o, true
	default:
		return outcome{}, false
	}
}

func join(t *testing.T, s *scheduler, now time.Time, purpose switchboard.Purpose, sender string, due time.Time) *waiter {
	t.Helper()
	w := &waiter{purpose: purpose, sender: sender, due: due}
	if over, _, _ := s.join(w, now); over {
		t.Fatalf("%s send: over on joining", purpose)
	}
	return w
}

// Sends waiting in line poll for their turns: before the next turn one of
// them could use, a poll hands out nothing (and does no dispatch); at it,
// the turn goes to the first in line, as a wake would give it.
func TestPollHandsOutTurnsAsTheyCome(t *testing.T) {
	t.Parallel()
	s := newScheduler("main", []string{"A"}, 2, 0, newLimiterTurns([]string{"A"}, 2), slog.New(slog.DiscardHandler))
	first := &waiter{purpose: switchboard.PurposeTransactional}
	if over, _, _ := s.join(first, t0); !over {
		t.Fatal("the first send waits, with the bucket's burst there")
	}
	second := join(t, s, t0, switchboard.PurposeTransactional, "", t0)
	third := join(t, s, t0, switchboard.PurposeTransactional, "", t0)
	next := t0.Add(500*time.Millisecond + time.Microsecond) // at 2/s, rounded up
	for _, at := range []time.Time{t0, t0.Add(100 * time.Millisecond), next.Add(-time.Microsecond)} {
		if got := s.poll(at); !got.Equal(next) {
			t.Errorf("poll at %v: next turn %v, want %v", at.Sub(t0), got.Sub(t0), next.Sub(t0))
		}
		if _, ok := granted(second); ok {
			t.Fatalf("a turn handed out at %v, before it came", at.Sub(t0))
		}
	}
	s.poll(next)
	if o, ok := granted(second); !ok || o.from != "A" {
		t.Fatalf("no turn for the first in line at the turn's time: %+v, %v", o, ok)
	}
	if _, ok := granted(third); ok {
		t.Fatal("two sends got one turn")
	}
	// A hold past the sender's next turn moves it: polls before the hold
	// ends hand out nothing, and return when it ends.
	after := next.Add(500*time.Millisecond + time.Microsecond)
	until := after.Add(300 * time.Millisecond)
	s.hold("A", until)
	for _, at := range []time.Time{next.Add(time.Millisecond), after, until.Add(-time.Microsecond)} {
		if got := s.poll(at); !got.Equal(until) {
			t.Errorf("poll at %v under a hold: next turn %v, want the hold's end %v", at.Sub(t0), got.Sub(t0), until.Sub(t0))
		}
		if _, ok := granted(third); ok {
			t.Fatalf("a turn handed out at %v, under a hold until %v", at.Sub(t0), until.Sub(t0))
		}
	}
	s.poll(until)
	if _, ok := granted(third); !ok {
		t.Error("no turn once the hold ended")
	}
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	s, ft, _ := testScheduler(0, "A")
	var order []*waiter
	names := map[*waiter]string{}
	for _, n := range []struct {
		name    string
		purpose switchboard.Purpose
	}{{"m1", switchboard.PurposeMarketing}, {"t1", switchboard.PurposeTransactional}, {"o1", switchboard.PurposeOTP},
		{"m2", switchboard.PurposeMarketing}, {"t2", switchboard.PurposeTransactional}, {"o2", switchboard.PurposeOTP}} {
		w := join(t, s, t0, n.purpose, "", t0)
		order = append(order, w)
		names[w] = n.name
	}
	var got []string
	for range order {
		ft.free["A"] = 1 // one turn at a time
		s.wake(t0)
		n := 0
		for _, w := range order {
			if o, ok := granted(w); ok {
				if o.from != "A" || o.paused {
					t.Fatalf("%s: %+v", names[w], o)
				}
				got = append(got, names[w])
				n++
			}
		}
		if n != 1 {
			t.Fatalf("one turn went to %d sends", n)
		}
	}
	if g := strings.Join(got, " "); g != "o1 o2 t1 t2 m1 m2" {
		t.Errorf("turns went to %s, want o1 o2 t1 t2 m1 m2", g)
	}
	if next := s.wake(t0); !next.IsZero() {
		t.Errorf("next turn %v with nobody waiting", next)
	}
}

func TestPriorityPerSender(t *testing.T) {
	t.Parallel()
	s, ft, _ := testScheduler(0, "A", "B")
	otpOnA := join(t, s, t0, switchboard.PurposeOTP, "A", t0)
	marketing := join(t, s, t0, switchboard.PurposeMarketing, "", t0)
	// B's turn: the OTP send cannot use it, the marketing one can.
	ft.free["B"] = 1
	s.wake(t0)
	if o, ok := granted(marketing); !ok || o.from != "B" {
		t.Fatalf("marketing: %+v, %v; want B's turn", o, ok)
	}
	if _, ok := granted(otpOnA); ok {
		t.Fatal("OTP send got a turn of a sender it may not use")
	}
	// A marketing send sticky to A waits behind an OTP send that may use
	// any sender, for A's turn.
	stickyMarketing := join(t, s, t0, switchboard.PurposeMarketing, "A", t0)
	anyOTP := join(t, s, t0, switchboard.PurposeOTP, "", t0)
	ft.free["A"] = 1
	s.wake(t0)
	if o, ok := granted(otpOnA); !ok || o.from != "A" {
		t.Fatalf("OTP on A: %+v, %v", o, ok)
	}
	ft.free["A"] = 1
	s.wake(t0)
	if o, ok := granted(anyOTP); !ok || o.from != "A" {
		t.Fatalf("OTP on any sender: %+v, %v", o, ok)
	}
	if _, ok := granted(stickyMarketing); ok {
		t.Fatal("marketing got a turn before an OTP send")
	}
}

// A hold on a sender (its turns shared with other replicas are booked
// ahead) gives it no turn before the hold ends, whatever its own turns
// say: a send that may use only it waits, and is told when to look again;
// a send that may use any sender gets another's turn meanwhile. A shorter
// hold does not cut a longer one short, and a hold that ended is dropped.
func TestHoldDelaysTheSendersTurns(t *testing.T) {
	t.Parallel()
	s, ft, _ := testScheduler(0, "A", "B")
	ft.free["A"], ft.free["B"] = 2, 1
	until := t0.Add(time.Second)
	s.hold("A", until)
	s.hold("A", t0.Add(500*time.Millisecond))

	onA := &waiter{purpose: switchboard.PurposeOTP, sender: "A", due: t0}
	over, next, estimate := s.join(onA, t0)
	if over {
		t.Fatal("a send on a held sender got a turn")
	}
	if !next.Equal(until) || estimate < time.Second {
		t.Errorf("next turn %v, estimated wait %v; want the hold's end, %v", next.Sub(t0), estimate, until.Sub(t0))
	}
	onAny := &waiter{purpose: switchboard.PurposeMarketing, due: t0}
	if over, _, _ := s.join(onAny, t0); !over {
		t.Fatal("a send that may use any sender got no turn while B had one")
	}
	if o, _ := granted(onAny); o.from != "B" {
		t.Errorf("the send for any sender got %+v, want B's turn", o)
	}
	for _, at := range []time.Time{t0.Add(600 * time.Millisecond), until.Add(-time.Microsecond)} {
		if got := s.wake(at); !got.Equal(until) {
			t.Errorf("wake at %v: next turn %v, want %v", at.Sub(t0), got.Sub(t0), until.Sub(t0))
		}
		if _, ok := granted(onA); ok {
			t.Fatalf("a turn of A at %v, before its hold ended", at.Sub(t0))
		}
	}
	s.wake(until)
	if o, ok := granted(onA); !ok || o.from != "A" {
		t.Fatalf("no turn of A once its hold ended: %+v, %v", o, ok)
	}
	s.mu.Lock()
	held := len(s.held)
	s.mu.Unlock()
	if held != 0 {
		t.Errorf("%d holds kept after they ended", held)
	}
}

func TestOTPNeverDelayedByMarketing(t *testing.T) {
	t.Parallel()
	s, ft, _ := testScheduler(0, "A")
	ft.nextAt = t0.Add(time.Second) // a turn a second (rate 1)
	var marketing []*waiter
	for range 10 {
		marketing = append(marketing, join(t, s, t0, switchboard.PurposeMarketing, "", t0))
	}
	otp := &waiter{purpose: switchboard.PurposeOTP, due: t0}
	over, next, estimate := s.join(otp, t0)
	if over || !next.Equal(t0.Add(time.Second)) || estimate != time.Second {
		t.Fatalf("OTP joining behind 10 marketing sends: over %v, next %v, estimate %v; want its turn in 1s", over, next, estimate)
	}
	tx := &waiter{purpose: switchboard.PurposeTransactional, due: t0}
	if _, _, estimate := s.join(tx, t0); estimate != 2*time.Second {
		t.Errorf("transactional behind one OTP send: estimate %v, want 2s", estimate)
	}
	ft.free["A"] = 1
	s.wake(t0.Add(time.Second))
	if o, ok := granted(otp); !ok || o.from != "A" {
		t.Fatalf("OTP: %+v, %v; want the first turn", o, ok)
	}
	for _, w := range append(marketing, tx) {
		if _, ok := granted(w); ok {
			t.Fatal("another send got the turn")
		}
	}
}

func TestBrownout(t *testing.T) {
	t.Parallel()
	const threshold = 30 * time.Second
	s, ft, logs := testScheduler(threshold, "A")
	now := t0
	// A transactional send due now, and a marketing send, wait.
	tx := join(t, s, now, switchboard.PurposeTransactional, "", now)
	waitingMarketing := join(t, s, now, switchboard.PurposeMarketing, "", now.Add(-time.Hour))
	if s.inBrownout(now) {
		t.Fatal("brownout with nothing late")
	}
	// A marketing backlog alone is no brownout: marketing is not measured.
	now = now.Add(threshold)
	if s.inBrownout(now) {
		t.Fatal("brownout at the threshold")
	}
	now = now.Add(time.Millisecond)
	if !s.inBrownout(now) {
		t.Fatal("no brownout with a transactional send waiting past the threshold")
	}
	if o, ok := granted(waitingMarketing); !ok || !o.paused {
		t.Fatalf("waiting marketing send on entering brownout: %+v, %v; want paused", o, ok)
	}
	if w := (&waiter{purpose: switchboard.PurposeMarketing, due: now}); !mustJoin(s, w, now).paused {
		t.Fatal("marketing send joining in brownout not paused")
	}
	// OTP still gets turns, first.
	otp := join(t, s, now, switchboard.PurposeOTP, "", now.Add(-20*time.Second))
	ft.free["A"] = 2
	s.wake(now)
	if _, ok := granted(otp); !ok {
		t.Fatal("OTP not served in brownout")
	}
	if _, ok := granted(tx); !ok {
		t.Fatal("transactional not served in brownout")
	}
	// The last OTP send was 20 s late: above half the threshold, still brownout.
	now = now.Add(time.Second)
	if !s.inBrownout(now) {
		t.Fatal("brownout over with a send 20 s late")
	}
	// A send 15 s late: half the threshold, brownout over.
	ft.free["A"] = 1
	mustJoin(s, &waiter{purpose: switchboard.PurposeOTP, due: now.Add(-threshold / 2)}, now)
	if s.inBrownout(now) {
		t.Fatal("still brownout with sends at half the threshold")
	}
	m := join(t, s, now, switchboard.PurposeMarketing, "", now)
	ft.free["A"] = 1
	s.wake(now)
	if o, ok := granted(m); !ok || o.paused || o.from != "A" {
		t.Fatalf("marketing after brownout: %+v, %v; want a turn", o, ok)
	}
	// Logged once on entering and once on leaving, with the pool only.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "brownout: marketing paused") ||
		!strings.Contains(lines[1], "out of brownout") {
		t.Fatalf("logs:\n%s", logs)
	}
	for _, l := range lines {
		if strings.ContainsAny(strings.TrimPrefix(l[strings.Index(l, "msg="):], "msg="), "0123456789") {
			t.Errorf("a number in a brownout log: %s", l)
		}
	}
}

func TestBrownoutLateSampleExpires(t *testing.T) {
	t.Parallel()
	const threshold = 10 * time.Second
	s, ft, _ := testScheduler(threshold, "A")
	ft.free["A"] = 1
	mustJoin(s, &waiter{purpose: switchboard.PurposeOTP, due: t0.Add(-time.Minute)}, t0)
	if !s.inBrownout(t0) {
		t.Fatal("no brownout after a send a minute late")
	}
	if !s.inBrownout(t0.Add(threshold - time.Nanosecond)) {
		t.Fatal("brownout over before the late sample expired")
	}
	if s.inBrownout(t0.Add(threshold)) {
		t.Fatal("brownout kept with no late send for the threshold")
	}
}

func mustJoin(s *scheduler, w *waiter, now time.Time) outcome {
	over, _, _ := s.join(w, now)
	if !over {
		panic("mustJoin: still waiting")
	}
	return <-w.done
}

// memStore is an in-memory Store of the messages a test gives it.
type memStore struct {
	mu      sync.Mutex
	msgs    map[string]*switchboard.OutboundMessage
	results []switchboard.SendResult
}

func (m *memStore) OutboundMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	v, err := m.SendView(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Message, nil
}

// SendView reads a message, never suppressed nor sticky, and the purposes
// of the earlier unsent messages to its recipient in its pool.
func (m *memStore) SendView(_ context.Context, id string) (*switchboard.SendView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg, ok := m.msgs[id]
	if !ok {
		return nil, switchboard.ErrNotFound
	}
	c := *msg
	v := &switchboard.SendView{Message: &c}
	for _, o := range m.msgs {
		if o.Pool == msg.Pool && o.To == msg.To && o.ID < msg.ID && !slices.Contains(v.EarlierUnsent, o.Purpose) &&
			(o.State == switchboard.MessageQueued || o.State == switchboard.MessageSending) {
			v.EarlierUnsent = append(v.EarlierUnsent, o.Purpose)
		}
	}
	return v, nil
}

func (m *memStore) OutboundMessageBySID(context.Context, string, string) (*switchboard.OutboundMessage, error) {
	return nil, switchboard.ErrNotFound
}

func (m *memStore) RecordSend(_ context.Context, r switchboard.SendResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = append(m.results, r)
	m.msgs[r.MessageID].ApplySend(r, r.At)
	return nil
}

func (m *memStore) Suppress(context.Context, string, string, string) error { return nil }
func (m *memStore) StickySender(context.Context, string, string) (string, error) {
	return "", switchboard.ErrNotFound
}

// EarlierUnsent finds the oldest unsent message to the recipient in the
// pool with a smaller id.
func (m *memStore) EarlierUnsent(_ context.Context, pool, to, before string, purposes []switchboard.Purpose) (*switchboard.OutboundMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var found *switchboard.OutboundMessage
	for _, msg := range m.msgs {
		if msg.Pool == pool && msg.To == to && msg.ID < before && slices.Contains(purposes, msg.Purpose) &&
			(msg.State == switchboard.MessageQueued || msg.State == switchboard.MessageSending) &&
			(found == nil || msg.ID < found.ID) {
			found = msg
		}
	}
	if found == nil {
		return nil, switchboard.ErrNotFound
	}
	c := *found
	return &c, nil
}

func (m *memStore) SenderHeartbeat(context.Context, string, time.Time, time.Duration) (int, error) {
	return 1, nil
}

type okClient struct{ creates int }

func (c *okClient) Create(_ context.Context, p twilio.CreateParams) (*twilio.RestMessage, error) {
	c.creates++
	return &twilio.RestMessage{SID: "SM" + p.To, From: p.From, To: p.To, Status: "queued"}, nil
}

func (c *okClient) List(context.Context, twilio.ListParams) ([]twilio.RestMessage, error) {
	return nil, nil
}

func TestSenderBrownoutReschedulesMarketing(t *testing.T) {
	t.Parallel()
	const threshold = 30 * time.Second
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	client := &okClient{}
	s, err := New(store, Options{Client: client, Now: func() time.Time { return now },
		Pools: []Pool{{Name: "main", Senders: []string{"+15550001001"}, Rate: 1, BrownoutDelay: threshold}}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(id string, purpose switchboard.Purpose, created time.Time) {
		store.msgs[id] = &switchboard.OutboundMessage{ID: id, Pool: "main", Purpose: purpose, To: "+1555777000" + id,
			Body: "hi", State: switchboard.MessageQueued, CreatedAt: created}
	}
	add("1", switchboard.PurposeOTP, now.Add(-time.Minute)) // a minute late
	add("2", switchboard.PurposeMarketing, now)
	if err := s.Send(context.Background(), "1", 0); err != nil {
		t.Fatal(err)
	}
	if !s.Brownout("main") || s.Brownout("other") {
		t.Fatalf("Brownout(main) %v after a send a minute late", s.Brownout("main"))
	}
	if err := s.Send(context.Background(), "2", 0); err != nil {
		t.Fatal(err)
	}
	m, _ := store.OutboundMessage(context.Background(), "2")
	if m.State != switchboard.MessageQueued || m.Attempts != 0 || !m.NextAttemptAt.Equal(now.Add(threshold)) || client.creates != 1 {
		t.Fatalf("marketing in brownout: %s, %d attempts, next at %v, %d creates; want queued for %v later, not sent",
			m.State, m.Attempts, m.NextAttemptAt.Sub(now), client.creates, threshold)
	}
	// Its retry, with no late send in the threshold since, is sent.
	now = now.Add(threshold)
	if s.Brownout("main") {
		t.Fatal("brownout kept with no late send")
	}
	if err := s.Send(context.Background(), "2", 0); err != nil {
		t.Fatal(err)
	}
	if m, _ := store.OutboundMessage(context.Background(), "2"); m.State != switchboard.MessageSent || m.Attempts != 1 {
		t.Fatalf("marketing after brownout: %s after %d attempts", m.State, m.Attempts)
	}
}

func TestCollectorReportsDelayAndBrownout(t *testing.T) {
	t.Parallel()
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	s, err := New(store, Options{Client: &okClient{}, Now: func() time.Time { return now },
		Pools: []Pool{{Name: "main", Senders: []string{"A"}, Rate: 1, BrownoutDelay: 10 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	sched := s.pools["main"].sched
	sched.turns = &fakeTurns{free: map[string]int{}} // no turns: sends wait
	join(t, sched, now, switchboard.PurposeOTP, "", now.Add(-30*time.Second))

	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetGauge().GetValue()
		}
	}
	if got["switchboard_outbound_queue_delay_seconds"] != 30 || got["switchboard_outbound_brownout"] != 1 ||
		got["switchboard_outbound_rate_share"] != 1 {
		t.Errorf("gauges %v; want a 30 s queue delay, brownout on, a share of 1", got)
	}
}

func TestRequestsAreSpacedAfterTheWrites(t *testing.T) {
	t.Parallel()
	s, _, _ := testScheduler(0, "A", "B") // 1 segment a second per sender
	// goes reserves a request ready at ready, checks when it may go, and
	// has it go then, or late by late.
	goes := func(sender string, ready time.Duration, cost int, want, late time.Duration) {
		t.Helper()
		r := s.reserve(sender, t0.Add(ready), cost)
		if ahead := r.behind(); ahead != nil {
			select {
			case <-ahead:
			default:
				t.Fatalf("request ready at %v: the one ahead has not gone", ready)
			}
		}
		if at := r.goAt(); !at.Equal(t0.Add(want)) {
			t.Errorf("request ready at %v may go at %v, want %v", ready, at.Sub(t0), want)
		}
		r.went(t0.Add(want + late))
	}
	// A slow write delays the first request; the next, ready soon after,
	// still goes a full interval after it.
	goes("A", 300*time.Millisecond, 1, 300*time.Millisecond, 0)
	goes("A", time.Second+10*time.Millisecond, 1, 1300*time.Millisecond, 0)
	// A request that went late (woken late) pushes the next back by as
	// much: spaced by when the requests went, not by when they were due.
	goes("A", 2*time.Second, 1, 2300*time.Millisecond, 400*time.Millisecond)
	goes("A", 2*time.Second+500*time.Millisecond, 1, 3700*time.Millisecond, 0)
	// Three segments take three intervals; another sender is not held.
	goes("A", 4*time.Second, 3, 4700*time.Millisecond, 0)
	goes("A", 5*time.Second, 1, 7700*time.Millisecond, 0)
	goes("B", 5*time.Second, 1, 5*time.Second, 0)
	// An idle sender's request goes when ready.
	goes("A", time.Minute, 1, time.Minute, 0)

	// A request given up (its send's context done) still holds the next
	// for its interval, and a second went changes nothing.
	r := s.reserve("B", t0.Add(2*time.Minute), 1)
	r.went(t0.Add(2 * time.Minute))
	r.went(t0.Add(3 * time.Minute))
	next := s.reserve("B", t0.Add(2*time.Minute), 1)
	<-next.behind()
	if at := next.goAt(); !at.Equal(t0.Add(2*time.Minute + time.Second)) {
		t.Errorf("after a request given up: %v, want 2m1s", at.Sub(t0))
	}
}
