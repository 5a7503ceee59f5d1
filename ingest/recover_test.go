package ingest_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
)

// A process that stored status callbacks but died before applying them
// (here: intake with outbound tracking off, as if the follow-ups never
// ran) leaves the message behind; the next process's RecoverStatuses
// applies the callbacks of the moments before the newest, once.
func TestRecoverStatusesAfterACrash(t *testing.T) {
	f := newOutboundFixture(t, obOptions{off: true})
	const sid = "SM00000000000000000000000000000077"
	m := f.sentMessage(t, sid)

	f.at(-time.Minute) // long before the crash: outside the window
	f.post(t, statusCallback(sid, "queued"))
	f.at(3 * time.Second)
	f.post(t, statusCallback(sid, "sent"))
	delivered := f.at(10 * time.Second)
	f.post(t, statusCallback(sid, "delivered"))
	f.post(t, statusCallback("SM00000000000000000000000000000099", "delivered")) // not ours
	f.done()
	if got := f.message(t, m.ID); got.State != switchboard.MessageSent || len(f.history(t, m.ID)) != 0 {
		t.Fatalf("before recovery: %s with %d history entries; want untouched", got.State, len(f.history(t, m.ID)))
	}

	next := f.restarted()
	n, err := next.RecoverStatuses(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("recovered %d callbacks, want 2 (sent, delivered)", n)
	}
	got := f.message(t, m.ID)
	if got.State != switchboard.MessageDelivered || !got.DeliveredAt.Equal(delivered) {
		t.Errorf("after recovery: %s delivered at %v; want delivered at %v", got.State, got.DeliveredAt, delivered)
	}
	f.checkHistory(t, m.ID,
		change{status: "sent", at: 3 * time.Second, applied: true},
		change{status: "delivered", at: 10 * time.Second, applied: true})

	// Again: everything is in the history already.
	if n, err := next.RecoverStatuses(context.Background(), 30*time.Second); err != nil || n != 0 {
		t.Errorf("second recovery: %d, %v; want nothing to do", n, err)
	}
	if h := f.history(t, m.ID); len(h) != 2 {
		t.Errorf("history after a second recovery: %d entries, want 2", len(h))
	}
}

// restarted is the next process's intake on f's store: the same routes,
// outbound tracking on.
func (f *obFixture) restarted() *ingest.Handler {
	return ingest.New(ingest.Options{Store: f.store, PublicURL: public, Routes: obRoutes(), Outbound: true, Metrics: metrics.New(),
		AckTimeout: 5 * time.Second, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), After: atOnce})
}

// Recovery stays within each callback's route's account, as the callback
// did when it came: a callback on account's route naming another
// account's message is not applied to it, whether the stored event
// carries the route's account or (as intake once stored it, from the
// body) the other account.
func TestRecoverStatusesStaysInTheRoutesAccount(t *testing.T) {
	f := newOutboundFixture(t, obOptions{off: true})
	const sid = "SM0000000000000000000000000000b077"
	theirs := f.sentMessageOf(t, otherAccount, sid)

	f.at(2 * time.Second)
	f.post(t, statusCallback(sid, "delivered"))
	// Stored as intake stored it when it took the account from the body.
	at := f.at(5 * time.Second)
	body := statusCallback(sid, "read", "AccountSid", otherAccount).body
	item := &switchboard.Ingest{
		Request: switchboard.Request{ID: uuid.Must(uuid.NewV7()).String(), ReceivedAt: at, Route: "/status",
			Method: http.MethodPost, URL: public + "/status", Body: []byte(body), Outcome: switchboard.OutcomeAccepted,
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		Event: &switchboard.Event{ID: uuid.Must(uuid.NewV7()).String(), Route: "/status", AccountSID: otherAccount,
			Kind: switchboard.KindMessageStatus, MessageSID: sid, IdempotencyKey: "forged-read", State: switchboard.StatePending,
			CreatedAt: at, Response: switchboard.Response{Status: http.StatusOK}},
	}
	item.Event.RequestID = item.Request.ID
	if err := f.store.Ingest(context.Background(), []*switchboard.Ingest{item}); err != nil {
		t.Fatal(err)
	}
	f.done()

	n, err := f.restarted().RecoverStatuses(context.Background(), 30*time.Second)
	if err != nil || n != 0 {
		t.Errorf("recovered %d, %v; want none", n, err)
	}
	if got := f.message(t, theirs.ID); got.State != switchboard.MessageSent || got.TwilioStatus != "queued" {
		t.Errorf("recovery moved another account's message to %s/%s", got.State, got.TwilioStatus)
	}
	if h := f.history(t, theirs.ID); len(h) != 0 {
		t.Errorf("recovery wrote another account's history: %+v", h)
	}
}

// Without outbound tracking there is nothing to recover.
func TestRecoverStatusesOff(t *testing.T) {
	f := newOutboundFixture(t, obOptions{off: true})
	f.sentMessage(t, "SM00000000000000000000000000000078")
	f.post(t, statusCallback("SM00000000000000000000000000000078", "delivered"))
	f.done()
	if n, err := f.h.RecoverStatuses(context.Background(), time.Minute); err != nil || n != 0 {
		t.Errorf("RecoverStatuses with tracking off: %d, %v", n, err)
	}
}
