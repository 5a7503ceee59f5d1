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
		// After a URL-encoded separator, in a query or form quoted in text.
		{"Body=call%20%2B15551234567%2C%2B15557654321", "Body=call%20[redacted]%2C%2B[redacted]"},
		{"Body=call%2015551234567", "Body=call%20[redacted]"},
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

func TestRedactText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`Get "https://app.example/sms?Body=meet%20me&From=%2B1555": dial tcp: refused`,
			`Get "https://app.example/sms?[redacted]": dial tcp: refused`},
		{"see http://a.example/x?q=1 and HTTPS://b.example/?n=2, then +15551234567",
			"see http://a.example/x?[redacted] and HTTPS://b.example/?[redacted] then [redacted]"},
		{"https://app.example/sms answered 502", "https://app.example/sms answered 502"},
		{"is this? no, +15551234567 is", "is this? no, [redacted] is"},
		{"", ""},
	} {
		if got := switchboard.RedactText(tc.in); got != tc.want {
			t.Errorf("RedactText(%q) = %q, want %q", tc.in, got, tc.want)
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
