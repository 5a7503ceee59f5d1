package switchboard_test

import (
	"testing"

	"github.com/switchboard-dev/switchboard"
)

func TestRedactNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"The 'To' number +15551234567 is not a valid phone number.", "The 'To' number [redacted] is not a valid phone number."},
		{"+15551234567", "[redacted]"},
		{"From=%2B15551234567&To=%2b15557654321", "From=[redacted]&To=[redacted]"},
		{"call 15551234567,15557654321 now", "call [redacted],[redacted] now"},
		{"whatsapp:+447700900123", "whatsapp:[redacted]"},
		// Not numbers: a SID's hex, a date, a status code, a short code.
		{"SM12345678901234567890123456789012", "SM12345678901234567890123456789012"},
		{"at 2026-01-02 answered 503 from 12345", "at 2026-01-02 answered 503 from 12345"},
		{"", ""},
	} {
		if got := switchboard.RedactNumbers(tc.in); got != tc.want {
			t.Errorf("RedactNumbers(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://a.example/sms?From=%2B1555", "https://a.example/sms?[redacted]"},
		{"https://a.example/sms", "https://a.example/sms"},
		{"", ""},
	} {
		if got := switchboard.RedactQuery(tc.in); got != tc.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
