package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Accounts and key spaces: every store query that serves an account
// answers within it. A Twilio SID or an idempotency key, which a caller
// may name whatever its account, never reaches another account's message.

// sentMessageOf stores a message of account, accepted by Twilio as sid.
func sentMessageOf(t *testing.T, s switchboard.Store, account, key, sid string) *switchboard.OutboundMessage {
	t.Helper()
	ctx := context.Background()
	m := NewMessage(key, "+15550001", base)
	m.AccountSID = account
	createMessage(t, s, m)
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		TwilioSID: sid, TwilioStatus: "queued", At: base}); err != nil {
		t.Fatal(err)
	}
	got, err := s.OutboundMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// An account's status update naming another account's SID is not found:
// the message and its history stay as they were, also when the update
// shares a batch with its own account's updates of that message. An
// update without an account is refused.
func testStatusUpdateStaysInItsAccount(t *testing.T, o Opened) {
	ctx := context.Background()
	const sid = "SMscope-status"
	m := sentMessageOf(t, o.Store, "AC1", "scope-status", sid)

	hostile := []struct {
		name string
		u    switchboard.StatusUpdate
		want error
	}{
		{"another account", switchboard.StatusUpdate{AccountSID: "AC2", TwilioSID: sid, Status: "read", At: base.Add(time.Second),
			Source: "callback"}, switchboard.ErrNotFound},
		{"another account, a failure", switchboard.StatusUpdate{AccountSID: "AC2", TwilioSID: sid, Status: "failed",
			ErrorCode: 30007, At: base.Add(time.Second), Source: "callback"}, switchboard.ErrNotFound},
		{"an account that is a prefix", switchboard.StatusUpdate{AccountSID: "AC", TwilioSID: sid, Status: "delivered",
			At: base.Add(time.Second), Source: "callback"}, switchboard.ErrNotFound},
		{"no account", switchboard.StatusUpdate{TwilioSID: sid, Status: "delivered", At: base.Add(time.Second),
			Source: "callback"}, switchboard.ErrInvalid},
	}
	for _, tc := range hostile {
		got, err := o.Store.UpdateMessageStatus(ctx, tc.u)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: %+v, %v; want %v and no message", tc.name, got, err, tc.want)
		}
	}
	if got, err := o.Store.OutboundMessage(ctx, m.ID); err != nil || got.State != switchboard.MessageSent ||
		got.TwilioStatus != "queued" || got.ErrorCode != 0 || !got.UpdatedAt.Equal(m.UpdatedAt) || !got.DeliveredAt.IsZero() {
		t.Errorf("another account's updates changed the message: %+v, %v", got, err)
	}
	if h, err := o.Store.MessageHistory(ctx, m.ID); err != nil || len(h) != 0 {
		t.Errorf("another account's updates are in the message's history: %+v, %v", h, err)
	}

	// At once, so that a store batching updates puts both accounts' in
	// one transaction: only the owner's applies and is recorded.
	stores := []switchboard.Store{o.Store}
	if o.Replica != nil {
		stores = append(stores, o.Replica(t))
	}
	updates := []switchboard.StatusUpdate{
		{AccountSID: "AC2", TwilioSID: sid, Status: "read", At: base.Add(3 * time.Second), Source: "callback"},
		{AccountSID: "AC1", TwilioSID: sid, Status: "delivered", At: base.Add(2 * time.Second), Source: "callback"},
		{AccountSID: "AC2", TwilioSID: sid, Status: "undelivered", ErrorCode: 30003, At: base.Add(time.Second), Source: "callback"},
	}
	errs := make([]error, len(updates))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, u := range updates {
		st := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			_, errs[i] = st.UpdateMessageStatus(ctx, u)
		})
	}
	close(start)
	wg.Wait()
	for i, u := range updates {
		if want := u.AccountSID == "AC1"; (errs[i] == nil) != want || !want && !errors.Is(errs[i], switchboard.ErrNotFound) {
			t.Errorf("update %s by %s: %v", u.Status, u.AccountSID, errs[i])
		}
	}
	got, err := o.Store.OutboundMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != switchboard.MessageDelivered || got.ErrorCode != 0 || !got.DeliveredAt.Equal(base.Add(2*time.Second)) {
		t.Errorf("message = %s code %d delivered %v; want delivered at +2s by its own account alone", got.State, got.ErrorCode, got.DeliveredAt)
	}
	h, err := o.Store.MessageHistory(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Status != "delivered" || !h[0].Applied {
		t.Errorf("history = %+v, want only its own account's delivered", h)
	}
}

// A look-up by SID answers only the message's own account.
func testLookupBySIDStaysInItsAccount(t *testing.T, o Opened) {
	ctx := context.Background()
	a := sentMessageOf(t, o.Store, "AC1", "scope-sid-1", "SMscope-sid-1")
	b := sentMessageOf(t, o.Store, "AC2", "scope-sid-2", "SMscope-sid-2")
	for _, tc := range []struct {
		account, sid string
		want         *switchboard.OutboundMessage // nil: ErrNotFound
	}{
		{"AC1", a.TwilioSID, a},
		{"AC2", b.TwilioSID, b},
		{"AC2", a.TwilioSID, nil},
		{"AC1", b.TwilioSID, nil},
		{"AC", a.TwilioSID, nil},
	} {
		got, err := o.Store.OutboundMessageBySID(ctx, tc.account, tc.sid)
		switch {
		case tc.want == nil && (!errors.Is(err, switchboard.ErrNotFound) || got != nil):
			t.Errorf("OutboundMessageBySID(%s, %s) = %+v, %v; want ErrNotFound", tc.account, tc.sid, got, err)
		case tc.want != nil && (err != nil || got.ID != tc.want.ID):
			t.Errorf("OutboundMessageBySID(%s, %s) = %+v, %v; want message %s", tc.account, tc.sid, got, err, tc.want.ID)
		}
	}
	if got, err := o.Store.OutboundMessageBySID(ctx, "", a.TwilioSID); !errors.Is(err, switchboard.ErrInvalid) || got != nil {
		t.Errorf("look-up without an account: %+v, %v; want ErrInvalid", got, err)
	}
	// Either SID of a message, Switchboard's or Twilio's, finds it for its
	// own account only.
	for _, tc := range []struct {
		account, sid string
		want         *switchboard.OutboundMessage // nil: ErrNotFound
	}{
		{"AC1", a.SID(), a},
		{"AC1", a.TwilioSID, a},
		{"AC2", b.SID(), b},
		{"AC2", a.SID(), nil},
		{"AC1", b.SID(), nil},
		{"AC1", b.TwilioSID, nil},
		{"", a.SID(), nil},
		{"AC1", "SM" + strings.Repeat("0", 32), nil},
	} {
		got, err := o.Store.MessageBySID(ctx, tc.account, tc.sid)
		switch {
		case tc.want == nil && (err == nil || got != nil):
			t.Errorf("MessageBySID(%s, %s) = %+v, %v; want an error", tc.account, tc.sid, got, err)
		case tc.want != nil && (err != nil || got.ID != tc.want.ID):
			t.Errorf("MessageBySID(%s, %s) = %+v, %v; want message %s", tc.account, tc.sid, got, err, tc.want.ID)
		}
	}
}

// One caller key under two accounts or two APIs is two messages; a native
// key that spells another key space's stored form stays in its own.
func testKeysOfAccountsAndAPIsNeverMeet(t *testing.T, o Opened) {
	ctx := context.Background()
	keys := []switchboard.MessageKey{
		{API: switchboard.KeyAPINative, Account: "AC1", Key: "order-17"},
		{API: switchboard.KeyAPINative, Account: "AC2", Key: "order-17"},
		{API: switchboard.KeyAPITwilio, Account: "AC1", Key: "order-17"},
		{API: switchboard.KeyAPITwilio, Account: "AC2", Key: "order-17"},
		{API: switchboard.KeyAPINative, Account: "AC1", Key: "twilio:AC2:order-17"},
		{API: switchboard.KeyAPINative, Account: "AC1", Key: "api:AC2:order-17"},
	}
	ids := map[string]switchboard.MessageKey{}
	for _, k := range keys {
		// The same payload every time: only the key tells them apart.
		m := NewMessage(k.String(), "+15550001", base)
		m.AccountSID = k.Account
		created, err := o.Store.CreateMessage(ctx, m)
		if err != nil || !created {
			t.Fatalf("create with %+v: created %v, %v; want a message of its own", k, created, err)
		}
		if prev, ok := ids[m.ID]; ok {
			t.Errorf("%+v and %+v are one message", prev, k)
		}
		ids[m.ID] = k
		got, err := o.Store.OutboundMessageByKey(ctx, k.String())
		if err != nil || got.ID != m.ID || got.AccountSID != k.Account {
			t.Errorf("OutboundMessageByKey(%+v) = %+v, %v; want message %s", k, got, err, m.ID)
		}
	}
	if len(ids) != len(keys) {
		t.Errorf("%d messages for %d keys", len(ids), len(keys))
	}
}

// OldKey is an outbound message stored before idempotency keys had a
// space per API and account (migration 0005), with the key it was stored
// under then and the MessageKey it has after the migration.
type OldKey struct {
	ID, Account, Stored string
	Want                switchboard.MessageKey
}

// OldKeys are the messages an engine's migration test stores, in this
// order, with a schema before migration 0005, before opening the store;
// CheckOldKeys then checks what the migration made of them. The order
// matters: "plain" moves to the form that "native-look-alike" has before
// it moved, so a migration that moved keys in one step, row by row, would
// meet the unique index.
var OldKeys = []OldKey{
	{"0190e6a0-0000-7000-8000-000000000001", "AC1", "plain",
		switchboard.MessageKey{API: switchboard.KeyAPINative, Account: "AC1", Key: "plain"}},
	{"0190e6a0-0000-7000-8000-000000000002", "AC1", "api:AC1:plain",
		switchboard.MessageKey{API: switchboard.KeyAPINative, Account: "AC1", Key: "api:AC1:plain"}},
	{"0190e6a0-0000-7000-8000-000000000003", "AC1", "twilio:AC1:tok-1",
		switchboard.MessageKey{API: switchboard.KeyAPITwilio, Account: "AC1", Key: "tok-1"}},
	{"0190e6a0-0000-7000-8000-000000000004", "AC2", "twilio:AC2:auto:abc123:20393",
		switchboard.MessageKey{API: switchboard.KeyAPITwilio, Account: "AC2", Key: "auto:abc123:20393"}},
	// A native key that named another account's Twilio key space.
	{"0190e6a0-0000-7000-8000-000000000005", "AC1", "twilio:AC2:tok-2",
		switchboard.MessageKey{API: switchboard.KeyAPINative, Account: "AC1", Key: "twilio:AC2:tok-2"}},
	{"0190e6a0-0000-7000-8000-000000000006", "AC2", "order-17",
		switchboard.MessageKey{API: switchboard.KeyAPINative, Account: "AC2", Key: "order-17"}},
}

// OldKeyMessage is the message of k as an engine's test stores it before
// migration 0005, with the old key: columns beyond these keep their
// defaults.
func OldKeyMessage(k OldKey) *switchboard.OutboundMessage {
	m := NewMessage(k.Stored, "+15550001", base)
	m.ID, m.AccountSID = k.ID, k.Account
	return m
}

// CheckOldKeys checks, on a store opened after OldKeys were stored with
// the schema before migration 0005, that each message is now found by its
// key's stored form, and that creating it again with its new key (an
// idempotent retry across the upgrade) finds it instead of creating
// another.
func CheckOldKeys(t *testing.T, s switchboard.Store) {
	t.Helper()
	ctx := context.Background()
	for _, k := range OldKeys {
		got, err := s.OutboundMessageByKey(ctx, k.Want.String())
		if err != nil || got.ID != k.ID {
			t.Errorf("old key %q: OutboundMessageByKey(%q) = %+v, %v; want message %s", k.Stored, k.Want.String(), got, err, k.ID)
			continue
		}
		if parsed, ok := switchboard.ParseMessageKey(got.IdempotencyKey); !ok || parsed != k.Want {
			t.Errorf("old key %q is stored as %q, which parses as %+v, %v; want %+v", k.Stored, got.IdempotencyKey, parsed, ok, k.Want)
		}
		retry := OldKeyMessage(k)
		retry.ID, retry.IdempotencyKey = fmt.Sprintf("%s-retry", k.ID), k.Want.String()
		created, err := s.CreateMessage(ctx, retry)
		if err != nil || created || retry.ID != k.ID {
			t.Errorf("old key %q: a retry with %q created %v (%s), %v; want message %s", k.Stored, k.Want.String(), created, retry.ID, err, k.ID)
		}
	}
}
