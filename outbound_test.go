package switchboard

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPayloadHashIsPinned pins hashes of known payloads: stored messages
// carry the hash, and a repeat of a create compares against it, so its
// value for the same payload must never change.
func TestPayloadHashIsPinned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		to, body   string
		media      []string
		pool, from string
		purpose    Purpose
		template   string
		want       string
	}{
		{"every field", "+15557770001", "your code is 123456", []string{"https://example.com/a.png", "https://example.com/b.png"},
			"otp", "+15550001001", PurposeOTP, "login.v2", "dd8da3501c7f44848e27d36a8cc127b86d2e89790b0fecf41f4ccc08e456d697"},
		// sha256 of {"to":"+15557770001","body":"hi","media":[],"pool":"","from":"","purpose":"transactional"}
		{"no media, pool, sender or template", "+15557770001", "hi", nil, "", "", PurposeTransactional, "",
			"5b8f0a35347900bcd1a99393b89ff5e738ed82b56902faaad47436d800b33bf0"},
		{"escaped body, channel, service", "whatsapp:+15557770001", "a \"quoted\" <b>&\u00e9</b>\n", []string{},
			"MG0123456789abcdef0123456789abcdef", "", PurposeMarketing, "", "6ebfa06716800d9eb8c57d2b666837ea9305dc85dfd884185c49262a0f702315"},
	}
	for _, tt := range tests {
		p := Payload{To: tt.to, Body: tt.body, MediaURLs: tt.media, Pool: tt.pool, From: tt.from, Purpose: tt.purpose, Template: tt.template}
		if got := p.Hash(); got != tt.want {
			t.Errorf("%s: hash = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestPayloadHash(t *testing.T) {
	t.Parallel()
	h := func(to, body string, media []string, pool, from string, purpose Purpose) string {
		return Payload{To: to, Body: body, MediaURLs: media, Pool: pool, From: from, Purpose: purpose}.Hash()
	}
	ref := h("+1555", "hi", []string{"u1"}, "p", "", PurposeOTP)
	if len(ref) != 64 || ref != h("+1555", "hi", []string{"u1"}, "p", "", PurposeOTP) {
		t.Fatalf("hash %q is not a stable hex SHA-256", ref)
	}
	if h("+1555", "hi", nil, "p", "", PurposeOTP) != h("+1555", "hi", []string{}, "p", "", PurposeOTP) {
		t.Error("nil and empty media hash differently")
	}
	differ := map[string]string{
		"to":              h("+1556", "hi", []string{"u1"}, "p", "", PurposeOTP),
		"body":            h("+1555", "hi!", []string{"u1"}, "p", "", PurposeOTP),
		"media":           h("+1555", "hi", []string{"u2"}, "p", "", PurposeOTP),
		"media order":     h("+1555", "hi", []string{"u1", "u2"}, "p", "", PurposeOTP),
		"pool":            h("+1555", "hi", []string{"u1"}, "q", "", PurposeOTP),
		"from":            h("+1555", "hi", []string{"u1"}, "p", "+1999", PurposeOTP),
		"purpose":         h("+1555", "hi", []string{"u1"}, "p", "", PurposeMarketing),
		"field boundary":  h("+1555h", "i", []string{"u1"}, "p", "", PurposeOTP),
		"media vs fields": h("+1555", "hi", []string{"u1", "p"}, "", "", PurposeOTP),
		"template":        Payload{To: "+1555", Body: "hi", MediaURLs: []string{"u1"}, Pool: "p", Purpose: PurposeOTP, Template: "welcome"}.Hash(),
	}
	for name, got := range differ {
		if got == ref {
			t.Errorf("changing the %s does not change the hash", name)
		}
	}
}

func TestValidTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		template string
		ok       bool
	}{
		{"", true},
		{"otp.login:v2", true},
		{"Welcome_Series-3", true},
		{strings.Repeat("a", MaxTemplateLen), true},
		{strings.Repeat("a", MaxTemplateLen+1), false},
		{"has space", false},
		{"quote\"", false},
		{"naïve", false},
		{"new\nline", false},
	} {
		if got := ValidTemplate(tc.template); got != tc.ok {
			t.Errorf("ValidTemplate(%q) = %v, want %v", tc.template, got, tc.ok)
		}
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := created.Add(48 * time.Hour)
	for _, tc := range []struct {
		name  string
		state MessageState
		sid   string
		ok    bool
	}{
		{"failed before Twilio", MessageFailed, "", true},
		{"failed by the carrier", MessageFailed, "SM1", false},
		{"queued", MessageQueued, "", false},
		{"sending", MessageSending, "", false},
		{"delivered", MessageDelivered, "SM1", false},
		{"undelivered", MessageUndelivered, "SM1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &OutboundMessage{ID: "m", State: tc.state, TwilioSID: tc.sid, Attempts: 8, CreatedAt: created, ErrorCode: 21611}
			err := m.Replay(now)
			if tc.ok != (err == nil) {
				t.Fatalf("Replay = %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, ErrConflict) || m.State != tc.state || m.Attempts != 8 {
					t.Fatalf("refused replay: err %v, message %s/%d changed", err, m.State, m.Attempts)
				}
				return
			}
			if m.State != MessageQueued || m.Attempts != 0 || !m.NextAttemptAt.Equal(now) || !m.ReplayedAt.Equal(now) || m.ErrorCode != 21611 {
				t.Fatalf("replayed: %+v", m)
			}
			if m.Age(now) != 0 || m.Age(now.Add(time.Minute)) != time.Minute {
				t.Errorf("age counts from the replay: %v", m.Age(now.Add(time.Minute)))
			}
		})
	}
}

func TestMessageStateRank(t *testing.T) {
	t.Parallel()
	for i, s := range MessageStates {
		if !s.Valid() || s.Rank() < 0 {
			t.Errorf("%s: valid %v rank %d", s, s.Valid(), s.Rank())
		}
		if i > 0 && s.Rank() < MessageStates[i-1].Rank() {
			t.Errorf("MessageStates is not in rank order at %s", s)
		}
		if s.Terminal() != (s.Rank() >= MessageDelivered.Rank()) {
			t.Errorf("%s: terminal %v", s, s.Terminal())
		}
	}
	if MessageState("bogus").Valid() || MessageState("bogus").Rank() != -1 {
		t.Error("an unknown state is valid or ranked")
	}
}

// ApplyStatus itself; the conformance suite checks the stores apply it.
func TestApplyStatus(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		from   MessageState
		twilio string
		status string
		want   bool
	}{
		{MessageSent, "queued", "sent", true},
		{MessageSent, "sent", "queued", false},
		{MessageSent, "sent", "sent", false},
		{MessageSent, "sent", "delivered", true},
		{MessageDelivered, "delivered", "undelivered", false},
		{MessageUndelivered, "undelivered", "delivered", false},
		{MessageFailed, "failed", "read", false},
		{MessageDelivered, "delivered", "read", true},
		{MessageRead, "read", "delivered", false},
		{MessageSending, "", "queued", true},
		{MessageSent, "queued", "canceled", true},
		{MessageSent, "queued", "partially_delivered", false}, // unknown: recorded only
	}
	for _, tc := range cases {
		m := &OutboundMessage{State: tc.from, TwilioStatus: tc.twilio, ErrorCode: 30008}
		got := m.ApplyStatus(StatusUpdate{Status: tc.status, At: at})
		if got != tc.want {
			t.Errorf("%s (%s) + %s: applied %v, want %v", tc.from, tc.twilio, tc.status, got, tc.want)
		}
		if !got && (m.State != tc.from || m.TwilioStatus != tc.twilio) {
			t.Errorf("%s + %s: not applied but changed to %s (%s)", tc.from, tc.status, m.State, m.TwilioStatus)
		}
		if m.ErrorCode != 30008 {
			t.Errorf("%s + %s: an update without a code cleared it", tc.from, tc.status)
		}
	}
}

func TestMessageKey(t *testing.T) {
	t.Parallel()
	const a, b = "AC00000000000000000000000000000001", "AC00000000000000000000000000000002"
	keys := []MessageKey{
		{KeyAPINative, a, "order-17"},
		{KeyAPINative, b, "order-17"},
		{KeyAPITwilio, a, "order-17"},
		{KeyAPITwilio, b, "order-17"},
		// Native keys that spell another namespace's stored form stay
		// native, and of their own account.
		{KeyAPINative, a, "twilio:" + b + ":order-17"},
		{KeyAPINative, a, "api:" + b + ":order-17"},
		{KeyAPINative, a, ""},
		{KeyAPITwilio, a, "auto:abc:1"},
	}
	seen := map[string]MessageKey{}
	for _, k := range keys {
		stored := k.String()
		if prev, ok := seen[stored]; ok {
			t.Errorf("%+v and %+v are both stored as %q", prev, k, stored)
		}
		seen[stored] = k
		if got, ok := ParseMessageKey(stored); !ok || got != k {
			t.Errorf("ParseMessageKey(%q) = %+v, %v; want %+v", stored, got, ok, k)
		}
	}
	for _, stored := range []string{"", "order-17", "api", "api:", "api::x", "other:" + a + ":x", "twilio" + a} {
		if k, ok := ParseMessageKey(stored); ok {
			t.Errorf("ParseMessageKey(%q) = %+v, want not a stored key", stored, k)
		}
	}
}

func TestStatusUpdateNeedsAnAccount(t *testing.T) {
	t.Parallel()
	if err := (StatusUpdate{TwilioSID: "SM1", Status: "delivered"}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("update without an account: %v, want ErrInvalid", err)
	}
	if err := (StatusUpdate{AccountSID: "AC1", TwilioSID: "SM1", Status: "delivered"}).Validate(); err != nil {
		t.Errorf("update with an account: %v", err)
	}
}
