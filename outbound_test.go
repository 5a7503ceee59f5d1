package switchboard

import (
	"testing"
	"time"
)

func TestPayloadHash(t *testing.T) {
	t.Parallel()
	h := func(to, body string, media []string, pool, from string, purpose Purpose) string {
		return PayloadHash(to, body, media, pool, from, purpose)
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
	}
	for name, got := range differ {
		if got == ref {
			t.Errorf("changing the %s does not change the hash", name)
		}
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
