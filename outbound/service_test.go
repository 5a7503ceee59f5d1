package outbound_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	svcOther   = "AC00000000000000000000000000000002"
	svcHandset = "+15557770001"
)

// svcPools: otp serves OTP and transactional messages of acct, through a
// number, a short code and a Messaging Service; bulk marketing of acct;
// theirs transactional of svcOther.
var svcPools = []outbound.PoolRoute{
	{Name: "otp", AccountSID: acct, Senders: []string{senderA, "55501", service},
		Purposes: []switchboard.Purpose{switchboard.PurposeOTP, switchboard.PurposeTransactional}},
	{Name: "bulk", AccountSID: acct, Senders: []string{senderB},
		Purposes: []switchboard.Purpose{switchboard.PurposeMarketing}},
	{Name: "theirs", AccountSID: svcOther, Senders: []string{"+15550009001"},
		Purposes: []switchboard.Purpose{switchboard.PurposeTransactional}},
}

// newService returns a Service over a fresh store counting in m, and its
// clock, which only moves when set.
func newService(t *testing.T, m *metrics.Metrics) (*outbound.Service, *sqlite.Store, *time.Time) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "switchboard.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	clock := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	return outbound.NewService(st, outbound.ServiceOptions{Pools: svcPools, Now: now, Metrics: m}), st, &clock
}

func native(key string, p switchboard.Payload) outbound.Draft {
	if p.To == "" {
		p.To = svcHandset
	}
	if p.Body == "" {
		p.Body = "hi"
	}
	return outbound.Draft{API: switchboard.KeyAPINative, Key: key, Payload: p}
}

func twilioDraft(account, key string, p switchboard.Payload) outbound.Draft {
	d := native(key, p)
	d.API, d.Account = switchboard.KeyAPITwilio, account
	return d
}

func TestServiceRoutes(t *testing.T) {
	t.Parallel()
	s, _, _ := newService(t, nil)
	tests := []struct {
		name          string
		draft         outbound.Draft
		pool, from    string
		purpose       switchboard.Purpose
		unroutableMsg string // non-empty: refused with this text
	}{
		{name: "native: purpose defaults to transactional", draft: native("n1", switchboard.Payload{}),
			pool: "otp", purpose: switchboard.PurposeTransactional},
		{name: "native: first pool serving the purpose", draft: native("n2", switchboard.Payload{Purpose: switchboard.PurposeMarketing}),
			pool: "bulk", purpose: switchboard.PurposeMarketing},
		{name: "native: by sender", draft: native("n3", switchboard.Payload{From: "55501", Purpose: switchboard.PurposeOTP}),
			pool: "otp", from: "55501", purpose: switchboard.PurposeOTP},
		{name: "native: by name, another account's", draft: native("n4", switchboard.Payload{Pool: "theirs"}),
			pool: "theirs", purpose: switchboard.PurposeTransactional},
		{name: "native: sender not of the named pool", draft: native("n5", switchboard.Payload{Pool: "bulk", From: senderA}),
			unroutableMsg: `invalid input: from "+15550001001": not a sender of pool "bulk"`},
		{name: "native: pool not serving the purpose", draft: native("n6", switchboard.Payload{Pool: "bulk"}),
			unroutableMsg: `invalid input: pool "bulk" does not serve purpose "transactional"`},
		{name: "native: no such pool", draft: native("n7", switchboard.Payload{Pool: "nope"}),
			unroutableMsg: `invalid input: pool "nope": no such pool`},
		{name: "native: sender of no pool", draft: native("n8", switchboard.Payload{From: "+15550000000"}),
			unroutableMsg: `invalid input: from "+15550000000": not a sender of any pool`},

		{name: "twilio: transactional pool of the account", draft: twilioDraft(acct, "t1", switchboard.Payload{}),
			pool: "otp", purpose: switchboard.PurposeTransactional},
		{name: "twilio: the sender's pool, its first purpose", draft: twilioDraft(acct, "t2", switchboard.Payload{From: senderB}),
			pool: "bulk", from: senderB, purpose: switchboard.PurposeMarketing},
		{name: "twilio: the service's pool sends through it", draft: twilioDraft(acct, "t3", switchboard.Payload{Pool: service}),
			pool: "otp", from: service, purpose: switchboard.PurposeTransactional},
		{name: "twilio: only the account's pools", draft: twilioDraft(svcOther, "t4", switchboard.Payload{From: senderA}),
			unroutableMsg: `invalid input: from "+15550001001": not a sender of any pool of account ` + svcOther},
		{name: "twilio: an unknown service falls back to transactional", draft: twilioDraft(svcOther, "t5",
			switchboard.Payload{Pool: "MG00000000000000000000000000000000"}), pool: "theirs", purpose: switchboard.PurposeTransactional},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, created, err := s.Create(t.Context(), tt.draft)
			if tt.unroutableMsg != "" {
				if !errors.Is(err, outbound.ErrUnroutable) || !errors.Is(err, switchboard.ErrInvalid) || err.Error() != tt.unroutableMsg {
					t.Fatalf("err = %v, want %q wrapping ErrUnroutable and ErrInvalid", err, tt.unroutableMsg)
				}
				return
			}
			if err != nil || !created {
				t.Fatalf("create: created %v, %v", created, err)
			}
			if m.Pool != tt.pool || m.From != tt.from || m.Purpose != tt.purpose {
				t.Errorf("routed to pool %q from %q as %q, want %q from %q as %q", m.Pool, m.From, m.Purpose, tt.pool, tt.from, tt.purpose)
			}
			key := switchboard.MessageKey{API: tt.draft.API, Account: m.AccountSID, Key: tt.draft.Key}.String()
			if m.IdempotencyKey != key {
				t.Errorf("key %q, want %q: the API's key space of the pool's account", m.IdempotencyKey, key)
			}
			p := tt.draft.Payload
			p.Purpose = tt.purpose
			if m.PayloadHash != p.Hash() {
				t.Error("the hash is not the payload's as asked, with the purpose routed")
			}
		})
	}
}

func TestServiceIsIdempotent(t *testing.T) {
	t.Parallel()
	s, _, _ := newService(t, nil)
	ctx := t.Context()
	first, created, err := s.Create(ctx, native("k", switchboard.Payload{Body: "one"}))
	if err != nil || !created {
		t.Fatalf("create: created %v, %v", created, err)
	}
	again, created, err := s.Create(ctx, native("k", switchboard.Payload{Body: "one"}))
	if err != nil || created || again.ID != first.ID {
		t.Errorf("repeat: created %v, %v, id %s; want the stored %s", created, err, again.ID, first.ID)
	}
	if _, _, err := s.Create(ctx, native("k", switchboard.Payload{Body: "two"})); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("another payload under the key: %v, want ErrConflict", err)
	}
	other, created, err := s.Create(ctx, twilioDraft(acct, "k", switchboard.Payload{Body: "two"}))
	if err != nil || !created || other.ID == first.ID {
		t.Errorf("the key through the other API: created %v, %v; want a message of its own", created, err)
	}
}

// A create without a key is the message an identical one made less than
// AutoKeyWindow before it is, across the windows' boundary too.
func TestServiceDerivesAKeyWithinTheWindow(t *testing.T) {
	t.Parallel()
	s, _, clock := newService(t, nil)
	ctx := t.Context()
	// Windows are counted in whole AutoKeyWindows from the Unix epoch.
	window := int64(outbound.AutoKeyWindow / time.Second)
	windowEnd := time.Unix((clock.Unix()/window+1)*window, 0)
	create := func(at time.Time) (*switchboard.OutboundMessage, bool) {
		t.Helper()
		*clock = at
		m, created, err := s.Create(ctx, twilioDraft(acct, "", switchboard.Payload{Body: "no key"}))
		if err != nil {
			t.Fatal(err)
		}
		return m, created
	}
	first, _ := create(windowEnd.Add(-time.Second))
	tests := []struct {
		name string
		at   time.Time
		same bool
	}{
		{"same window", windowEnd.Add(-time.Millisecond), true},
		{"next window, within AutoKeyWindow", windowEnd.Add(outbound.AutoKeyWindow - 2*time.Second), true},
		{"next window, AutoKeyWindow later", windowEnd.Add(outbound.AutoKeyWindow - time.Second), false},
	}
	for _, tt := range tests {
		m, created := create(tt.at)
		if same := m.ID == first.ID && !created; same != tt.same {
			t.Errorf("%s: same message %v, want %v", tt.name, same, tt.same)
		}
	}
}

func TestServiceRefusesSuppressedRecipients(t *testing.T) {
	t.Parallel()
	s, st, _ := newService(t, nil)
	ctx := t.Context()
	before, _, err := s.Create(ctx, native("before", switchboard.Payload{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Suppress(ctx, acct, svcHandset, "STOP"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []outbound.Draft{native("after", switchboard.Payload{}), twilioDraft(acct, "", switchboard.Payload{})} {
		if _, _, err := s.Create(ctx, d); !errors.Is(err, outbound.ErrSuppressed) {
			t.Errorf("%s create after the opt-out: %v, want ErrSuppressed", d.API, err)
		}
	}
	if m, created, err := s.Create(ctx, native("before", switchboard.Payload{})); err != nil || created || m.ID != before.ID {
		t.Errorf("repeat of a message stored before the opt-out: created %v, %v; want the stored one", created, err)
	}
	if _, created, err := s.Create(ctx, native("theirs", switchboard.Payload{Pool: "theirs"})); err != nil || !created {
		t.Errorf("another account's list applied: created %v, %v", created, err)
	}
}

func TestServiceAppliesStatuses(t *testing.T) {
	t.Parallel()
	counted := metrics.New()
	s, st, clock := newService(t, counted)
	ctx := t.Context()
	m, _, err := s.Create(ctx, native("k", switchboard.Payload{}))
	if err != nil {
		t.Fatal(err)
	}
	t0 := *clock
	if err := st.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		TwilioSID: "SM1", TwilioStatus: "queued", At: t0}); err != nil {
		t.Fatal(err)
	}
	update := func(status string, at time.Duration) switchboard.StatusUpdate {
		return switchboard.StatusUpdate{AccountSID: acct, TwilioSID: "SM1", Status: status, At: t0.Add(at), Source: "callback"}
	}
	tests := []struct {
		u       switchboard.StatusUpdate
		applied bool
	}{
		{update("delivered", 2*time.Second), true},
		{update("sent", time.Second), false},        // out of order
		{update("delivered", 3*time.Second), false}, // repeated, received later
	}
	var hist []switchboard.StatusUpdate
	for _, tt := range tests {
		got, err := s.ApplyStatus(ctx, tt.u)
		if err != nil {
			t.Fatalf("%s: %v", tt.u.Status, err)
		}
		if applied := outbound.Applied(got, tt.u); applied != tt.applied || got.State != switchboard.MessageDelivered {
			t.Errorf("%s: applied %v, state %s; want applied %v, delivered", tt.u.Status, applied, got.State, tt.applied)
		}
		hist = append(hist, tt.u)
	}
	delivered := metricstest.Sample(t, counted, "switchboard_outbound_status_total", "pool", "otp", "status", "delivered")
	if n := delivered.GetCounter().GetValue(); n != 1 {
		t.Errorf("delivered counted %v times, want once: only an applied update counts", n)
	}
	if metricstest.Sample(t, counted, "switchboard_outbound_status_total", "status", "sent") != nil {
		t.Error("an update that did not apply was counted")
	}
	recorded, err := st.MessageHistory(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range hist {
		if !outbound.InHistory(recorded, u) {
			t.Errorf("%s at %v not in the history", u.Status, u.At)
		}
	}
	if outbound.InHistory(recorded, update("delivered", 4*time.Second)) {
		t.Error("an update never made is in the history")
	}
	u := update("read", 4*time.Second)
	u.AccountSID = svcOther
	if _, err := s.ApplyStatus(ctx, u); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("another account's update: %v, want ErrNotFound", err)
	}
}

// Keywords of one sender apply in the order they were received, whatever
// order they are applied in.
func TestServiceOrdersKeywords(t *testing.T) {
	t.Parallel()
	s, st, clock := newService(t, nil)
	ctx := t.Context()
	t0 := *clock
	suppressed := func() bool {
		t.Helper()
		ok, err := st.Suppressed(ctx, acct, svcHandset)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	steps := []struct {
		action     twilio.OptAction
		at         time.Duration
		err        error
		suppressed bool
	}{
		{twilio.OptIn, 2 * time.Second, nil, false}, // START, received after the STOP, applied first
		{twilio.OptOut, time.Second, outbound.ErrStaleKeyword, false},
		{twilio.OptOut, 3 * time.Second, nil, true},
		{twilio.OptNone, 4 * time.Second, nil, true},
	}
	for i, step := range steps {
		err := s.ApplyKeyword(ctx, acct, svcHandset, step.action, t0.Add(step.at))
		if !errors.Is(err, step.err) || suppressed() != step.suppressed {
			t.Errorf("step %d (%s at %v): %v, suppressed %v; want %v, %v", i, step.action, step.at, err, suppressed(), step.err, step.suppressed)
		}
	}
	if err := s.ApplyKeyword(ctx, svcOther, svcHandset, twilio.OptOut, t0); err != nil {
		t.Errorf("another account's sender is another sender: %v", err)
	}
}
