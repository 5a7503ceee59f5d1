package outbound_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// When Twilio refuses a recipient for good, the Sender puts it on the
// account's suppression list with the code, and the next message to it
// fails at once with that code without a request to Twilio. Other
// permanent errors (the sender's) put nothing there.
func TestRecipientRefusalsAreRecorded(t *testing.T) {
	t.Parallel()
	e := start(t, setup{})
	ctx := context.Background()
	tests := []struct {
		to     string // Twilio's magic numbers, as the simulator plays them
		code   twilio.Code
		reason string
	}{
		{"+15005550001", twilio.CodeInvalidTo, switchboard.RefusalReason(21211)},
		{"+15005550004", twilio.CodeUnsubscribedRecipient, "21610"}, // an opt-out: START reverses it
		{"+15005550009", twilio.CodeToNotSMSCapable, switchboard.RefusalReason(21614)},
	}
	for _, tc := range tests {
		before := e.creates.Load()
		first := e.waitFinal(t, e.send(t, tc.to, "first").ID, 15*time.Second)
		if first.State != switchboard.MessageFailed || first.ErrorCode != int(tc.code) {
			t.Fatalf("%d: first message %s with %d, want failed with it", tc.code, first.State, first.ErrorCode)
		}
		if reason, err := e.store.Suppression(ctx, acct, tc.to); err != nil || reason != tc.reason {
			t.Errorf("%d: suppression reason %q, %v; want %q", tc.code, reason, err, tc.reason)
		}
		if reason, err := e.store.Suppression(ctx, "AC00000000000000000000000000000002", tc.to); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("%d: another account's list holds %q, %v", tc.code, reason, err)
		}
		second := e.waitFinal(t, e.send(t, tc.to, "second").ID, 15*time.Second)
		if second.State != switchboard.MessageFailed || second.ErrorCode != int(tc.code) || second.Attempts != 0 {
			t.Errorf("%d: second message %s with %d after %d attempts, want failed with it and none made", tc.code, second.State, second.ErrorCode, second.Attempts)
		}
		if n := e.creates.Load() - before; n != 1 {
			t.Errorf("%d: %d create requests, want 1: the second message is not sent", tc.code, n)
		}
	}

	// The sender's own permanent error says nothing of the recipient.
	const to = "+15557770123"
	m := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: uuid.NewString(),
		AccountSID: acct, Pool: pool, Purpose: switchboard.PurposeTransactional, From: "+15005550001", To: to, Body: "from an invalid sender"}
	m.PayloadHash = uuid.NewString()
	if _, err := e.store.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := e.waitFinal(t, m.ID, 15*time.Second); got.State != switchboard.MessageFailed || got.ErrorCode != int(twilio.CodeInvalidFrom) {
		t.Fatalf("message from an invalid sender: %s with %d, want failed with 21212", got.State, got.ErrorCode)
	}
	if reason, err := e.store.Suppression(ctx, acct, to); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("the sender's error suppressed the recipient: %q, %v", reason, err)
	}
}

// A message whose sender is a Messaging Service the pool does not list is
// sent through that service, paced as one of the pool's senders, and the
// recipient is not made sticky to it.
func TestSendThroughAnUnlistedService(t *testing.T) {
	t.Parallel()
	e := start(t, setup{senders: []string{senderA}})
	ctx := context.Background()
	const to = "+15557770088"
	m := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: uuid.NewString(),
		AccountSID: acct, Pool: pool, Purpose: switchboard.PurposeTransactional, From: service, To: to, Body: "through an unlisted service"}
	m.PayloadHash = uuid.NewString()
	if _, err := e.store.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := e.waitFinal(t, m.ID, 15*time.Second)
	if got.State != switchboard.MessageSent {
		t.Fatalf("message %s (%s), want sent", got.State, got.LastError)
	}
	at := e.atSim(to)
	if len(at) != 1 || at[0].ServiceSID != service {
		t.Fatalf("at the simulator: %+v, want one message through %s", at, service)
	}
	if _, err := e.store.StickySender(ctx, pool, to); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("sticky sender set for a message that named its sender: %v", err)
	}
}
