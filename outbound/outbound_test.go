package outbound_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/rollup"
	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	acct    = "AC0123456789abcdef0123456789abcdef"
	token   = "secrettoken0123456789abcdef01234"
	senderA = "+15550001001"
	senderB = "+15550001002"
	service = "MG0123456789abcdef0123456789abcdef" // a Messaging Service of both
	pool    = "main"
)

// env is a Sender working a real SQLite store's send jobs against the
// simulator.
type env struct {
	sim     *sim.Sim
	store   *sqlite.Store
	creates atomic.Int64 // create requests the client made
}

type setup struct {
	sim       sim.Config
	rate      float64 // per sender; default 100
	workers   int     // default 8
	policy    outbound.Policy
	transport func(inner http.RoundTripper) http.RoundTripper
	callback  string
	senders   []string // the pool's; default senderA and senderB
	samples   outbound.Samples
}

// countingTransport counts create requests on their way out.
type countingTransport struct {
	inner http.RoundTripper
	n     *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Messages.json") {
		c.n.Add(1)
	}
	return c.inner.RoundTrip(r)
}

type noDeliveries struct{}

func (noDeliveries) Deliver(context.Context, string, int) error { return nil }

func start(t *testing.T, su setup) *env {
	t.Helper()
	ctx := context.Background()
	su.sim.Seed = 1
	su.sim.Accounts = []sim.Account{{SID: acct, AuthTokens: []string{token},
		Numbers:  []sim.Number{{Number: senderA, Throughput: 1000}, {Number: senderB, Throughput: 1000}},
		Services: []sim.Service{{SID: service, Numbers: []string{senderA, senderB}, Sticky: true}}}}
	s, err := sim.New(su.sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv, err := s.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	e := &env{sim: s}
	client := twilio.NewMessagesClient(srv.URL, acct, token)
	var rt http.RoundTripper = &http.Transport{}
	if su.transport != nil {
		rt = su.transport(rt)
	}
	client.HTTPClient = &http.Client{Transport: countingTransport{rt, &e.creates}, Timeout: 10 * time.Second}

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "switchboard.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	if su.rate == 0 {
		su.rate = 100
	}
	if su.workers == 0 {
		su.workers = 8
	}
	if su.senders == nil {
		su.senders = []string{senderA, senderB}
	}
	if su.policy.BaseBackoff == 0 {
		su.policy.BaseBackoff, su.policy.MaxBackoff = 50*time.Millisecond, 200*time.Millisecond
	}
	sender, err := outbound.New(st, outbound.Options{
		Pools:  []outbound.Pool{{Name: pool, Senders: su.senders, Rate: su.rate}},
		Client: client, StatusCallback: su.callback, Policy: su.policy, Samples: su.samples,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StartDelivery(ctx, noDeliveries{}, switchboard.DeliveryConfig{Workers: 1, PollInterval: 20 * time.Millisecond,
		JobTimeout: time.Minute, Sender: sender, SendWorkers: su.workers}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := st.StopDelivery(stop); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// send stores a message for to; its send job is due at once.
func (e *env) send(t *testing.T, to, body string) *switchboard.OutboundMessage {
	t.Helper()
	m := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: uuid.NewString(),
		AccountSID: acct, Pool: pool, Purpose: switchboard.PurposeTransactional, To: to, Body: body}
	m.PayloadHash = switchboard.Payload{To: m.To, Body: m.Body, MediaURLs: m.MediaURLs, Pool: m.Pool, From: m.From, Purpose: m.Purpose, Template: m.Template}.Hash()
	if _, err := e.store.CreateMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFinal polls until the message is sent or terminal, and returns it.
func (e *env) waitFinal(t *testing.T, id string, within time.Duration) *switchboard.OutboundMessage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m, err := e.store.OutboundMessage(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.State == switchboard.MessageSent || m.State.Terminal() {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s still %s after %v (attempts %d, %s)", id, m.State, within, m.Attempts, m.LastError)
		}
		time.Sleep(20 * time.Millisecond) // polling the store
	}
}

// atSim returns the simulator's outbound messages to to.
func (e *env) atSim(to string) []sim.Message {
	var out []sim.Message
	for _, m := range e.sim.Messages(acct) {
		if m.To == to && m.Direction == "outbound-api" {
			out = append(out, m)
		}
	}
	return out
}

func TestSentExactlyOnce(t *testing.T) {
	t.Parallel()
	e := start(t, setup{callback: "http://127.0.0.1:9/twilio/status"})
	m := e.send(t, "+15557770001", "hello")
	got := e.waitFinal(t, m.ID, 15*time.Second)
	at := e.atSim("+15557770001")
	if got.State != switchboard.MessageSent || len(at) != 1 || got.TwilioSID != at[0].SID || got.Attempts != 1 ||
		got.From != at[0].From || got.TwilioStatus != "queued" || got.SentAt.IsZero() {
		t.Fatalf("stored %+v; at the simulator %+v", got, at)
	}
	if at[0].Body != "hello" || at[0].StatusCallback != "http://127.0.0.1:9/twilio/status?SwitchboardSid="+got.SID() || (at[0].From != senderA && at[0].From != senderB) {
		t.Errorf("at the simulator: %+v", at[0])
	}
	if n := e.creates.Load(); n != 1 {
		t.Errorf("%d create requests", n)
	}
}

// TestPacing sends a backlog through the real store and job queue to the
// simulator, with workers enough to hold it in process: every message is
// created once, in one attempt (no 429, no resend), and no sender
// finishes sooner than its rate allows after the backlog was stored. That
// bound holds however late any request reaches the simulator on a busy
// machine; the exact spacing of the requests, and the rate reached, are
// checked where they are decided, on a fake clock, by
// TestPacingWhereDecided.
func TestPacing(t *testing.T) {
	t.Parallel()
	const (
		rate = 5.0 // per sender
		n    = 60
	)
	// Enough workers to hold the whole backlog's turns in process.
	e := start(t, setup{rate: rate, workers: 64, policy: outbound.Policy{MaxWait: 15 * time.Second}})
	stored := time.Now() // before the first message exists
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.send(t, fmt.Sprintf("+1555888%04d", i), "paced").ID
	}
	for _, id := range ids {
		if m := e.waitFinal(t, id, 2*time.Minute); m.State != switchboard.MessageSent || m.Attempts != 1 {
			t.Fatalf("message %s: %s after %d attempts (%s)", id, m.State, m.Attempts, m.LastError)
		}
	}
	if c := e.creates.Load(); c != n {
		t.Errorf("%d create requests for %d messages: a 429 or a resend", c, n)
	}
	checkNoSooner(t, e.sim.Messages(acct), stored, rate)
}

// checkNoSooner checks that each sender's last create reached the
// simulator no sooner after start than its rate allows for its creates
// ((creates-1)/rate: its first request goes after start, each next one
// at least an interval after the one before, and each arrives after it
// goes). How the creates split among the senders is logged, not checked:
// when the store, not the rate, is the limit (a busy machine), a turn free
// on every sender goes to the first in the pool's order.
func checkNoSooner(t *testing.T, msgs []sim.Message, start time.Time, rate float64) {
	t.Helper()
	bySender := map[string][]time.Time{}
	for _, m := range msgs {
		bySender[m.From] = append(bySender[m.From], m.Created)
	}
	for from, times := range bySender {
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		allowed := time.Duration(float64(len(times)-1) / rate * float64(time.Second))
		if took := times[len(times)-1].Sub(start); took < allowed {
			t.Errorf("sender %s: %d creates within %v of the first message, want at least %v: faster than %v/s",
				from, len(times), took, allowed, rate)
		}
		t.Logf("sender %s: %d creates, the last %v after the first message (at least %v at %v/s)",
			from, len(times), times[len(times)-1].Sub(start).Round(time.Millisecond), allowed, rate)
	}
}

// TestPacingReschedulesLongWaits gives each sender a turn a second but
// lets no send wait over 100 ms in process: sends are rescheduled, not
// failed, each is created once, in one attempt, and no sender goes faster
// than its rate.
func TestPacingReschedulesLongWaits(t *testing.T) {
	t.Parallel()
	// One turn a second per sender, but no send waits over 100 ms in process.
	e := start(t, setup{rate: 1, policy: outbound.Policy{MaxWait: 100 * time.Millisecond}})
	stored := time.Now()
	var ids []string
	for i := range 4 {
		ids = append(ids, e.send(t, fmt.Sprintf("+1555777%04d", i), "later").ID)
	}
	for _, id := range ids {
		if m := e.waitFinal(t, id, 2*time.Minute); m.State != switchboard.MessageSent || m.Attempts != 1 {
			t.Fatalf("message %s: %s after %d attempts", id, m.State, m.Attempts)
		}
	}
	if c := e.creates.Load(); c != 4 {
		t.Errorf("%d create requests", c)
	}
	checkNoSooner(t, e.sim.Messages(acct), stored, 1)
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	e := start(t, setup{})
	m := e.send(t, "+15005550001", "to an invalid number")
	got := e.waitFinal(t, m.ID, 15*time.Second)
	if got.State != switchboard.MessageFailed || got.ErrorCode != int(twilio.CodeInvalidTo) || got.Attempts != 1 || got.TwilioSID != "" {
		t.Fatalf("%+v", got)
	}
	if c := e.creates.Load(); c != 1 {
		t.Errorf("%d create requests, want 1", c)
	}
}

func TestTooManyRequestsRetried(t *testing.T) {
	t.Parallel()
	samples := rollup.NewSampler("n1")
	e := start(t, setup{sim: sim.Config{ConcurrencyLimit: 1, APILatency: 200 * time.Millisecond}, samples: samples})
	var ids []string
	for i := range 4 {
		ids = append(ids, e.send(t, fmt.Sprintf("+1555666%04d", i), "busy").ID)
	}
	retried := false
	for i, id := range ids {
		m := e.waitFinal(t, id, 60*time.Second)
		if m.State != switchboard.MessageSent {
			t.Fatalf("message %d: %s after %d attempts (%s)", i, m.State, m.Attempts, m.LastError)
		}
		if n := len(e.atSim(m.To)); n != 1 {
			t.Errorf("message %d at the simulator %d times", i, n)
		}
		retried = retried || m.Attempts > 1
	}
	if c := e.creates.Load(); !retried || c <= 4 {
		t.Errorf("%d create requests for 4 messages, retried %v: no 429 happened", c, retried)
	}
	// Each 429 is sampled for the dashboard, in the pool's name.
	var throttled float64
	all, _ := samples.Samples(time.Now())
	for _, sm := range all {
		if sm.Series == switchboard.SampleThrottled && sm.Key == pool {
			throttled += sm.Value
		}
	}
	if c := e.creates.Load(); throttled != float64(c-4) {
		t.Errorf("%v 429s sampled, want %d: one per create request but the four that went through", throttled, c-4)
	}
}

// flakyTransport fails the first create requests: after the simulator
// answered (lost answer), or without making them (nothing sent), with an
// error that cannot tell which.
type flakyTransport struct {
	inner     http.RoundTripper
	failures  atomic.Int64
	deliverIt bool
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || f.failures.Add(-1) < 0 {
		return f.inner.RoundTrip(r)
	}
	if !f.deliverIt {
		return nil, errors.New("read: connection reset by peer")
	}
	resp, err := f.inner.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, io.ErrUnexpectedEOF
}

func TestAmbiguousFailureLooksUpBeforeResending(t *testing.T) {
	t.Parallel()
	for _, reached := range []bool{true, false} {
		t.Run(fmt.Sprintf("reached=%v", reached), func(t *testing.T) {
			t.Parallel()
			flaky := &flakyTransport{deliverIt: reached}
			e := start(t, setup{transport: func(inner http.RoundTripper) http.RoundTripper {
				flaky.inner = inner
				return flaky
			}})
			// Another message with the same body to the same recipient,
			// already sent, is not taken for this one.
			first := e.waitFinal(t, e.send(t, "+15557770005", "your code is 1234").ID, 15*time.Second)
			if first.State != switchboard.MessageSent {
				t.Fatalf("first message: %+v", first)
			}
			flaky.failures.Store(1)
			m := e.send(t, "+15557770005", "your code is 1234")
			got := e.waitFinal(t, m.ID, 30*time.Second)
			at := e.atSim("+15557770005")
			if got.State != switchboard.MessageSent || len(at) != 2 || got.TwilioSID == first.TwilioSID {
				t.Fatalf("stored %+v; %d at the simulator", got, len(at))
			}
			if got.TwilioSID != at[0].SID && got.TwilioSID != at[1].SID {
				t.Errorf("recorded SID %s is not at the simulator", got.TwilioSID)
			}
			want := int64(2) // each message created once
			if !reached {
				want = 3 // the lost request, then the resend
			}
			if c := e.creates.Load(); c != want {
				t.Errorf("%d create requests, want %d", c, want)
			}
			if wantAttempts := map[bool]int{true: 1, false: 2}[reached]; got.Attempts != wantAttempts {
				t.Errorf("%d attempts, want %d", got.Attempts, wantAttempts)
			}
		})
	}
}

func TestSuppressedRecipientNotSent(t *testing.T) {
	t.Parallel()
	e := start(t, setup{})
	if err := e.store.Suppress(context.Background(), acct, "+15557770009", "STOP"); err != nil {
		t.Fatal(err)
	}
	m := e.send(t, "+15557770009", "hi")
	got := e.waitFinal(t, m.ID, 15*time.Second)
	if got.State != switchboard.MessageFailed || got.ErrorCode != int(twilio.CodeUnsubscribedRecipient) || got.TwilioSID != "" {
		t.Fatalf("%+v", got)
	}
	if c := e.creates.Load(); c != 0 {
		t.Errorf("%d create requests for a suppressed recipient", c)
	}
}

func TestStickySender(t *testing.T) {
	t.Parallel()
	e := start(t, setup{rate: 2})
	const to = "+15557770010"
	first := e.waitFinal(t, e.send(t, to, "one").ID, 15*time.Second)
	// The other sender's turn comes first now, but the recipient keeps its sender.
	var ids []string
	for i := range 3 {
		ids = append(ids, e.send(t, to, fmt.Sprint("again ", i)).ID)
	}
	for _, id := range ids {
		m := e.waitFinal(t, id, 15*time.Second)
		if m.State != switchboard.MessageSent || m.From != first.From {
			t.Errorf("message from %s (%s), want the sticky %s", m.From, m.State, first.From)
		}
	}
	for _, m := range e.atSim(to) {
		if m.From != first.From {
			t.Errorf("at the simulator from %s", m.From)
		}
	}
	if from, err := e.store.StickySender(context.Background(), pool, to); err != nil || from != first.From {
		t.Errorf("sticky sender %q, %v", from, err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	s, err := outbound.New(nopStore{}, outbound.Options{Client: &twilio.MessagesClient{}, Rand: func() float64 { return 0.999999 },
		Policy: outbound.Policy{BaseBackoff: time.Second, MaxBackoff: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 80: 10 * time.Second} {
		if got := s.Backoff(attempt, 0); got > ceiling || math.Abs(float64(got-ceiling)) > float64(time.Millisecond) {
			t.Errorf("attempt %d: %v, want just under %v", attempt, got, ceiling)
		}
	}
	if got := s.Backoff(1, 30*time.Second); got != 30*time.Second {
		t.Errorf("Retry-After 30s: %v", got)
	}
	zero, _ := outbound.New(nopStore{}, outbound.Options{Client: &twilio.MessagesClient{}, Rand: func() float64 { return 0 }})
	if got := zero.Backoff(3, 0); got != 2*time.Second {
		t.Errorf("equal jitter reaches half the 4s ceiling: %v", got)
	}
	if got := s.Backoff(1, 1000*time.Hour); got != 24*time.Hour {
		t.Errorf("Retry-After 1000h, capped at a day: %v", got)
	}
}

type nopStore struct{ outbound.Store }

// Messages to one recipient reach Twilio in the order they were created,
// though many workers take their jobs at once; other recipients' messages
// are not held up by them.
func TestFIFOPerRecipientAtTheSimulator(t *testing.T) {
	t.Parallel()
	const n = 24
	e := start(t, setup{workers: 16})
	var ids []string
	for i := range n {
		ids = append(ids, e.send(t, "+15557770042", fmt.Sprintf("in order %02d", i)).ID)
		ids = append(ids, e.send(t, fmt.Sprintf("+1555999%04d", i), "other").ID)
	}
	for _, id := range ids {
		if m := e.waitFinal(t, id, 30*time.Second); m.State != switchboard.MessageSent {
			t.Fatalf("message %s: %s (%s)", id, m.State, m.LastError)
		}
	}
	at := e.atSim("+15557770042")
	if len(at) != n {
		t.Fatalf("%d messages at the simulator, want %d", len(at), n)
	}
	for i, m := range at { // in the order the simulator took them

		if want := fmt.Sprintf("in order %02d", i); m.Body != want {
			t.Fatalf("message %d to the recipient at the simulator is %q, want %q", i, m.Body, want)
		}
	}
}

// A pool whose sender is a Messaging Service sends through it: the
// simulator picks one of the service's numbers, the same one for a
// recipient (its sticky sender), and the message records that number.
func TestSendThroughMessagingService(t *testing.T) {
	t.Parallel()
	e := start(t, setup{senders: []string{service}})
	var froms []string
	for i := range 3 {
		m := e.send(t, "+15557770077", fmt.Sprintf("through the service %d", i))
		got := e.waitFinal(t, m.ID, 15*time.Second)
		if got.State != switchboard.MessageSent || (got.From != senderA && got.From != senderB) {
			t.Fatalf("message %d: %s from %q; want sent from one of the service's numbers", i, got.State, got.From)
		}
		froms = append(froms, got.From)
	}
	at := e.atSim("+15557770077")
	if len(at) != 3 {
		t.Fatalf("%d messages at the simulator, want 3", len(at))
	}
	for _, m := range at {
		if m.ServiceSID != service || m.From != froms[0] {
			t.Errorf("at the simulator: service %q from %q; want %q, the recipient's one number %q", m.ServiceSID, m.From, service, froms[0])
		}
	}
}
