package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
)

// A status callback of an outbound message with a status webhook is also
// delivered there: a fan-out event of the callback, stored with it when
// the message is found before the answer, after the answer otherwise.

const obWebhook = "https://app.example.com/hooks/status?tenant=7"

// webhookMessage stores an outbound message created at t0 with a status
// webhook (none when webhook is empty) and, when sid is not empty, records
// it sent with that SID, as the send path does.
func (f *obFixture) webhookMessage(t *testing.T, key, webhook, sid string) *switchboard.OutboundMessage {
	t.Helper()
	ctx := context.Background()
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: key, AccountSID: account, Pool: obPool,
		Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody, CreatedAt: f.t0,
		StatusWebhook: webhook, PayloadHash: "hash-" + key,
	}
	if created, err := f.store.CreateMessage(ctx, m); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	if sid != "" {
		f.recordSID(t, m, sid)
	}
	return m
}

// recordSID records m sent with sid, as the send path does.
func (f *obFixture) recordSID(t *testing.T, m *switchboard.OutboundMessage, sid string) {
	t.Helper()
	if err := f.store.RecordSend(context.Background(), switchboard.SendResult{MessageID: m.ID, Attempts: 1,
		State: switchboard.MessageSent, From: obSender, TwilioSID: sid, TwilioStatus: "queued", At: f.t0.Add(time.Second)}); err != nil {
		t.Error(err)
	}
}

// split returns a SID's events: the callbacks' own, and the fan-out
// events (those with a target), each keyed by idempotency key.
func (f *obFixture) split(t *testing.T, sid string) (own, fanout map[string]*switchboard.Event) {
	t.Helper()
	own, fanout = map[string]*switchboard.Event{}, map[string]*switchboard.Event{}
	for _, ev := range f.events(t, sid) {
		if ev.Target == "" {
			own[ev.IdempotencyKey] = ev
		} else {
			fanout[ev.IdempotencyKey] = ev
		}
	}
	return own, fanout
}

// checkFanout checks that every callback in own has exactly one fan-out
// event for the status webhook, from the same request, keyed by the
// callback's key, and there are no others.
func checkFanout(t *testing.T, own, fanout map[string]*switchboard.Event) {
	t.Helper()
	if len(fanout) != len(own) {
		t.Errorf("%d fan-out events for %d callbacks, want one each", len(fanout), len(own))
	}
	for key, ev := range own {
		f := fanout[key+"#status_webhook"]
		if f == nil {
			t.Errorf("callback %s (key %s) has no fan-out event", ev.ID, key)
			continue
		}
		if f.Target != obWebhook || f.RequestID != ev.RequestID || f.Route != ev.Route || f.Kind != ev.Kind ||
			f.MessageSID != ev.MessageSID || f.AccountSID != ev.AccountSID || f.ID == ev.ID {
			t.Errorf("fan-out event %+v of callback %+v: want the same request, route and SID, for %s", f, ev, obWebhook)
		}
		if ev.From != obSender || ev.To != obHandset || f.From != ev.From || f.To != ev.To {
			t.Errorf("callback From %q To %q, its fan-out event's %q %q; want %q %q for both", ev.From, ev.To, f.From, f.To, obSender, obHandset)
		}
	}
}

// ingestRecorder remembers the items intake hands to Store.Ingest.
type ingestRecorder struct {
	switchboard.Store
	mu    sync.Mutex
	items []*switchboard.Ingest
}

func (s *ingestRecorder) Ingest(ctx context.Context, items []*switchboard.Ingest) error {
	s.mu.Lock()
	s.items = append(s.items, items...)
	s.mu.Unlock()
	return s.Store.Ingest(ctx, items)
}

func (s *ingestRecorder) fanouts() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n []int
	for _, it := range s.items {
		n = append(n, len(it.Fanout))
	}
	return n
}

func TestStatusCallbackFansOutToTheStatusWebhook(t *testing.T) {
	rec := &ingestRecorder{}
	f := newOutboundFixture(t, obOptions{wrap: func(s switchboard.Store) switchboard.Store { rec.Store = s; return rec }})
	const sid, plain = "SM00000000000000000000000000000f01", "SM00000000000000000000000000000f02"
	m := f.webhookMessage(t, "fan-1", obWebhook, sid)
	f.webhookMessage(t, "fan-2", "", plain)

	f.at(2 * time.Second)
	sent := statusCallback(sid, "sent")
	sent.idemToken = "token-sent"
	f.post(t, sent)
	f.at(3 * time.Second)
	f.post(t, statusCallback(sid, "delivered"))
	f.post(t, sent) // Twilio's retry: a duplicate
	f.post(t, statusCallback(plain, "delivered"))
	f.done()

	// Both callbacks were stored with their fan-out event, in one Ingest
	// item each (one transaction); the duplicate and the message without
	// a status webhook carried none that was stored.
	if got := rec.fanouts(); len(got) != 4 || got[0] != 1 || got[1] != 1 || got[3] != 0 {
		t.Errorf("fan-out events per stored item %v, want [1 1 _ 0]", got)
	}
	own, fanout := f.split(t, sid)
	if len(own) != 2 {
		t.Fatalf("%d callbacks stored, want 2", len(own))
	}
	checkFanout(t, own, fanout)
	for key, ev := range own {
		if fe := fanout[key+"#status_webhook"]; fe != nil && !fe.CreatedAt.Equal(ev.CreatedAt) {
			t.Errorf("fan-out event created at %v, want with its callback at %v", fe.CreatedAt, ev.CreatedAt)
		}
	}
	if own, fanout := f.split(t, plain); len(own) != 1 || len(fanout) != 0 {
		t.Errorf("message without a status webhook: %d callbacks, %d fan-out events; want 1 and none", len(own), len(fanout))
	}
	if got := f.message(t, m.ID); got.State != switchboard.MessageDelivered {
		t.Errorf("message %s, want delivered: the callbacks still track it", got.State)
	}
	if logs := f.logs.String(); strings.Contains(logs, "app.example.com") || strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("the logs name the status webhook or carry an error:\n%s", logs)
	}
}

// A callback that beats the send path's SID record is stored without its
// fan-out event; the follow-up, once its retry finds the message, stores
// it, once.
func TestStatusWebhookOfACallbackBeforeItsSID(t *testing.T) {
	const sid = "SM00000000000000000000000000000f03"
	ra := &recordingAfter{hook: 2}
	rec := &ingestRecorder{}
	f := newOutboundFixture(t, obOptions{after: ra.after,
		wrap: func(s switchboard.Store) switchboard.Store { rec.Store = s; return rec }})
	m := f.webhookMessage(t, "early-fan", obWebhook, "")
	ra.do = func() {
		f.recordSID(t, m, sid)
		f.at(5 * time.Second) // when the retry finds the message
	}

	f.at(2 * time.Second)
	f.post(t, statusCallback(sid, "failed", "ErrorCode", "30008"))
	f.done()

	if got := rec.fanouts(); len(got) != 1 || got[0] != 0 {
		t.Errorf("fan-out events per stored item %v, want [0]: the message was not known yet", got)
	}
	own, fanout := f.split(t, sid)
	if len(own) != 1 {
		t.Fatalf("%d callbacks stored, want 1", len(own))
	}
	checkFanout(t, own, fanout)
	for _, fe := range fanout {
		if want := f.t0.Add(5 * time.Second); !fe.CreatedAt.Equal(want) {
			t.Errorf("late fan-out event created at %v, want when the follow-up ran, %v", fe.CreatedAt, want)
		}
		if fe.State != switchboard.StatePending {
			t.Errorf("late fan-out event %s, want pending: its delivery is scheduled", fe.State)
		}
	}
	if got := f.message(t, m.ID); got.State != switchboard.MessageFailed {
		t.Errorf("message %s, want failed", got.State)
	}
	if logs := f.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a late fan-out logged an error:\n%s", logs)
	}
}

// lookupStore fails or stalls the look-up of a message by SID.
type lookupStore struct {
	switchboard.Store
	stall bool // wait for the look-up's context to end
}

func (s lookupStore) MessageBySID(ctx context.Context, _, _ string) (*switchboard.OutboundMessage, error) {
	if s.stall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, errStoreDown
}

// A look-up that fails or times out does not keep the callback from
// being stored and answered; the follow-up, which finds the message,
// stores the fan-out event after the answer.
func TestStatusWebhookLookupFailsOpen(t *testing.T) {
	for _, stall := range []bool{false, true} {
		name := "error"
		if stall {
			name = "timeout"
		}
		t.Run(name, func(t *testing.T) {
			f := newOutboundFixture(t, obOptions{lookup: time.Millisecond,
				wrap: func(s switchboard.Store) switchboard.Store { return lookupStore{Store: s, stall: stall} }})
			const sid = "SM00000000000000000000000000000f04"
			f.webhookMessage(t, "lookup-"+name, obWebhook, sid)

			f.post(t, statusCallback(sid, "delivered"))
			f.done()

			own, fanout := f.split(t, sid)
			if len(own) != 1 {
				t.Fatalf("%d callbacks stored, want 1", len(own))
			}
			checkFanout(t, own, fanout)
			if logs := f.logs.String(); !strings.Contains(logs, "look-up of a status callback's message failed") {
				t.Errorf("the failed look-up is not logged:\n%s", logs)
			}
		})
	}
}

// failingFanoutStore refuses the fan-out events stored after the answer.
type failingFanoutStore struct {
	lookupStore
}

func (failingFanoutStore) IngestFanout(context.Context, []*switchboard.Event) error {
	return errors.New("store fan-out: " + errStoreDown.Error())
}

// When the fan-out event cannot be stored after the answer either, the
// callback is still stored and answered, and the lost notification is
// logged.
func TestLateStatusWebhookStoreErrorIsLogged(t *testing.T) {
	f := newOutboundFixture(t, obOptions{wrap: func(s switchboard.Store) switchboard.Store {
		return failingFanoutStore{lookupStore{Store: s}}
	}})
	const sid = "SM00000000000000000000000000000f05"
	m := f.webhookMessage(t, "late-fails", obWebhook, sid)

	f.post(t, statusCallback(sid, "delivered"))
	f.done()

	if own, fanout := f.split(t, sid); len(own) != 1 || len(fanout) != 0 {
		t.Errorf("%d callbacks and %d fan-out events stored, want 1 and none", len(own), len(fanout))
	}
	if got := f.message(t, m.ID); got.State != switchboard.MessageDelivered {
		t.Errorf("message %s, want delivered", got.State)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "this notification is lost") {
		t.Errorf("the lost notification is not logged:\n%s", logs)
	}
}

func TestStatusWebhookNeedsOutbound(t *testing.T) {
	f := newOutboundFixture(t, obOptions{off: true})
	const sid = "SM00000000000000000000000000000f06"
	f.webhookMessage(t, "off", obWebhook, sid)
	f.post(t, statusCallback(sid, "delivered"))
	f.done()
	if own, fanout := f.split(t, sid); len(own) != 1 || len(fanout) != 0 {
		t.Errorf("outbound off: %d callbacks and %d fan-out events, want 1 and none", len(own), len(fanout))
	}
}
