package outbound_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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
	return newServiceWith(t, outbound.ServiceOptions{Metrics: m})
}

// newServiceWith is newService with options o, its pools and clock
// newService's.
func newServiceWith(t *testing.T, o outbound.ServiceOptions) (*outbound.Service, *sqlite.Store, *time.Time) {
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
	o.Pools, o.Now = svcPools, now
	return outbound.NewService(st, o), st, &clock
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
		// Sent through the service asked for, by the account's
		// transactional pool, never from one of the pool's numbers.
		{name: "twilio: an unlisted service is sent through by the transactional pool", draft: twilioDraft(svcOther, "t5",
			switchboard.Payload{Pool: "MG00000000000000000000000000000000"}), pool: "theirs", from: "MG00000000000000000000000000000000",
			purpose: switchboard.PurposeTransactional},
		{name: "twilio: an unlisted service of an account without a transactional pool", draft: twilioDraft("AC00000000000000000000000000000003", "t6",
			switchboard.Payload{Pool: "MG00000000000000000000000000000000"}),
			unroutableMsg: "invalid input: no pool of account AC00000000000000000000000000000003 serves transactional messages"},
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

// Without a dedup window, a create without a key is a message of its own,
// as at Twilio, however alike: a user asking for the code again gets it.
func TestServiceWithoutAKeyEveryCreateIsAMessage(t *testing.T) {
	t.Parallel()
	s, _, clock := newService(t, nil)
	ctx := t.Context()
	seen := map[string]bool{}
	keys := map[string]bool{}
	for i := range 3 {
		*clock = clock.Add(time.Millisecond * time.Duration(i))
		m, created, err := s.Create(ctx, twilioDraft(acct, "", switchboard.Payload{Body: "Your code is 1234"}))
		if err != nil || !created {
			t.Fatalf("create %d: created %v, %v", i, created, err)
		}
		if seen[m.ID] || keys[m.IdempotencyKey] {
			t.Fatalf("create %d is message %s again (key %q)", i, m.ID, m.IdempotencyKey)
		}
		seen[m.ID], keys[m.IdempotencyKey] = true, true
		if want := "twilio:" + acct + ":msg:" + m.ID; m.IdempotencyKey != want {
			t.Errorf("key %q, want %q", m.IdempotencyKey, want)
		}
	}
}

// Under a dedup window, a create without a key is the message an identical
// one made less than the window before it is, across the intervals'
// boundary too.
func TestServiceDerivesAKeyWithinTheWindow(t *testing.T) {
	t.Parallel()
	for _, window := range []time.Duration{24 * time.Hour, time.Hour, 90 * time.Second} {
		t.Run(window.String(), func(t *testing.T) {
			t.Parallel()
			s, _, clock := newServiceWith(t, outbound.ServiceOptions{DedupWindow: window})
			ctx := t.Context()
			// Intervals are counted in whole windows from the Unix epoch.
			intervalEnd := time.Unix(0, (clock.UnixNano()/int64(window)+1)*int64(window))
			create := func(at time.Time) (*switchboard.OutboundMessage, bool) {
				t.Helper()
				*clock = at
				m, created, err := s.Create(ctx, twilioDraft(acct, "", switchboard.Payload{Body: "no key"}))
				if err != nil {
					t.Fatal(err)
				}
				return m, created
			}
			first, _ := create(intervalEnd.Add(-time.Second))
			tests := []struct {
				name string
				at   time.Time
				same bool
			}{
				{"same interval", intervalEnd.Add(-time.Millisecond), true},
				{"next interval, within the window", intervalEnd.Add(window - 2*time.Second), true},
				{"next interval, the window later", intervalEnd.Add(window - time.Second), false},
			}
			for _, tt := range tests {
				m, created := create(tt.at)
				if same := m.ID == first.ID && !created; same != tt.same {
					t.Errorf("%s: same message %v, want %v", tt.name, same, tt.same)
				}
			}
		})
	}
}

// A day-long window's keys have the form every derived key had while the
// window was fixed at a day, so those stored then still match; a window of
// another length never meets them, even where its interval numbers do.
func TestServiceDerivedKeysOfWindowLengths(t *testing.T) {
	t.Parallel()
	day, st, clock := newServiceWith(t, outbound.ServiceOptions{DedupWindow: 24 * time.Hour})
	ctx := t.Context()
	d := twilioDraft(acct, "", switchboard.Payload{Body: "no key"})
	m, _, err := day.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Payload
	p.Purpose = switchboard.PurposeTransactional
	n := clock.Unix() / 86400
	if want := fmt.Sprintf("twilio:%s:auto:%s:%d", acct, p.Hash(), n); m.IdempotencyKey != want {
		t.Errorf("day-long window's key %q, want the stored form %q", m.IdempotencyKey, want)
	}
	// An hour-long window's interval n began long ago: at that time its
	// key would be the day's key above, were the length not in it.
	hour := outbound.NewService(st, outbound.ServiceOptions{Pools: svcPools, DedupWindow: time.Hour,
		Now: func() time.Time { return time.Unix(n*3600+1, 0) }})
	other, created, err := hour.Create(ctx, d)
	if err != nil || !created || other.ID == m.ID {
		t.Errorf("an hour-long window's create in its interval %d: created %v, %v; want a message of its own", n, created, err)
	}
	if want := fmt.Sprintf("twilio:%s:auto:%s:%d:1h0m0s", acct, p.Hash(), n); other.IdempotencyKey != want {
		t.Errorf("hour-long window's key %q, want %q", other.IdempotencyKey, want)
	}
}

func TestServiceRefusesSuppressedRecipients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason string
		code   twilio.Code
	}{
		{"STOP", twilio.CodeUnsubscribedRecipient},
		{"21610", twilio.CodeUnsubscribedRecipient},
		{switchboard.RefusalReason(21614), twilio.CodeToNotSMSCapable},
		{switchboard.RefusalReason(21211), twilio.CodeInvalidTo},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			s, st, _ := newServiceWith(t, outbound.ServiceOptions{DedupWindow: time.Hour})
			ctx := t.Context()
			before, _, err := s.Create(ctx, native("before", switchboard.Payload{}))
			if err != nil {
				t.Fatal(err)
			}
			beforeTwilio, _, err := s.Create(ctx, twilioDraft(acct, "", switchboard.Payload{Body: "derived"}))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Suppress(ctx, acct, svcHandset, tc.reason); err != nil {
				t.Fatal(err)
			}
			for _, d := range []outbound.Draft{native("after", switchboard.Payload{}), twilioDraft(acct, "", switchboard.Payload{}),
				twilioDraft(acct, "header", switchboard.Payload{})} {
				_, _, err := s.Create(ctx, d)
				var refused *outbound.RecipientRefused
				if !errors.As(err, &refused) || refused.Code != tc.code || !errors.Is(err, outbound.ErrSuppressed) {
					t.Errorf("%s create after %q: %v, want a refusal with %d", d.API, tc.reason, err, tc.code)
				}
				if err != nil && strings.Contains(err.Error(), svcHandset) {
					t.Errorf("the refusal names the recipient: %v", err)
				}
			}
			// Repeats of messages stored before are answered as repeats.
			if m, created, err := s.Create(ctx, native("before", switchboard.Payload{})); err != nil || created || m.ID != before.ID {
				t.Errorf("repeat of a message stored before: created %v, %v; want the stored one", created, err)
			}
			if m, created, err := s.Create(ctx, twilioDraft(acct, "", switchboard.Payload{Body: "derived"})); err != nil || created || m.ID != beforeTwilio.ID {
				t.Errorf("repeat of a derived key stored before: created %v, %v; want the stored one", created, err)
			}
			// Another account's list: its creates to the number go on.
			if _, created, err := s.Create(ctx, native("theirs", switchboard.Payload{Pool: "theirs"})); err != nil || !created {
				t.Errorf("native create of another account: created %v, %v", created, err)
			}
			if _, created, err := s.Create(ctx, twilioDraft(svcOther, "", switchboard.Payload{})); err != nil || !created {
				t.Errorf("Twilio-compatible create of another account: created %v, %v", created, err)
			}
		})
	}
}

// An opt-in reverses an opt-out, Twilio's 21610 included, and never a
// refusal Twilio gave for good.
func TestServiceOptInReversesOnlyOptOuts(t *testing.T) {
	t.Parallel()
	counted := metrics.New()
	s, st, clock := newService(t, counted)
	ctx := t.Context()
	tests := []struct {
		number, reason string
		refusedAfter   bool
	}{
		{"+15557770011", "STOP", false},
		{"+15557770012", "21610", false},
		{"+15557770013", switchboard.RefusalReason(21614), true},
		{"+15557770014", switchboard.RefusalReason(21211), true},
	}
	for i, tc := range tests {
		if err := st.Suppress(ctx, acct, tc.number, tc.reason); err != nil {
			t.Fatal(err)
		}
		// The handset replies STOP, then START.
		if err := s.ApplyKeyword(ctx, acct, tc.number, twilio.OptOut, clock.Add(time.Duration(2*i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyKeyword(ctx, acct, tc.number, twilio.OptIn, clock.Add(time.Duration(2*i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Create(ctx, native("k"+tc.number, switchboard.Payload{To: tc.number}))
		if refused := errors.Is(err, outbound.ErrSuppressed); refused != tc.refusedAfter || (err != nil && !refused) {
			t.Errorf("%s after STOP and START: %v, want refused %v", tc.reason, err, tc.refusedAfter)
		}
		reason, err := st.Suppression(ctx, acct, tc.number)
		if tc.refusedAfter && reason != tc.reason {
			t.Errorf("%s after STOP and START: reason %q, %v; want it kept", tc.reason, reason, err)
		}
	}
	// Every STOP applied is counted, whatever the number's reason.
	if got := metricstest.Sample(t, counted, "switchboard_opt_outs_total").GetCounter().GetValue(); got != float64(len(tests)) {
		t.Errorf("opt-outs counted %v, want %d", got, len(tests))
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
