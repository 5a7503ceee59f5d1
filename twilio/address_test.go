package twilio

import "testing"

func TestAddressForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s                                       string
		e164, short, service, sender, recipient bool
	}{
		{s: "+15551234567", e164: true, sender: true, recipient: true},
		{s: "+1555123", e164: true, sender: true, recipient: true},         // 7 digits: the shortest
		{s: "+123456789012345", e164: true, sender: true, recipient: true}, // 15 digits: the longest
		{s: "+1234567890123456"}, // 16 digits
		{s: "+05551234567"},      // leading 0
		{s: "15551234567"},       // no '+'
		{s: "+1555 123 4567"},
		{s: "12345", short: true, sender: true},
		{s: "123456", short: true, sender: true},
		{s: "1234"},
		{s: "MG" + "0123456789abcdef0123456789ABCDEF", service: true},
		{s: "MG0123"},
		{s: "whatsapp:+15551234567", recipient: true},
		{s: ":+15551234567"},
		{s: "what+sapp:+15551234567"},
		{s: "whatsapp:15551234567"},
		{s: ""},
	} {
		got := [5]bool{IsE164(tc.s), IsShortCode(tc.s), IsServiceSID(tc.s), IsSender(tc.s), IsRecipient(tc.s)}
		want := [5]bool{tc.e164, tc.short, tc.service, tc.sender, tc.recipient}
		if got != want {
			t.Errorf("%q: E164, short code, service SID, sender, recipient = %v, want %v", tc.s, got, want)
		}
	}
}
