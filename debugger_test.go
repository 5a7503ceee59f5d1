package switchboard

import (
	"strings"
	"testing"
)

func TestDebuggerAlertRedact(t *testing.T) {
	t.Parallel()
	a := &DebuggerAlert{
		URL: "https://app.example.com/sms?From=%2B15551230000",
		Payload: []byte(`{"resource_sid":"SM0123456789abcdef0123456789abcdef","error_code":"30007",` +
			`"more_info":{"Msg":"to +15559870000 failed","url":"https://x.example.com/a?To=1"},` +
			`"webhook":{"request":{"url":"https://app.example.com/sms?Body=hi","method":"POST","parameters":{"Body":"my secret","From":"+15551230000"},` +
			`"headers":{"X-Secret":"s"}},"response":{"status_code":"502","body":"+15551230000 unknown"}}}`),
	}
	r := a.Redact()
	got := string(r.Payload)
	for _, leak := range []string{"15551230000", "15559870000", "my secret", "Body=hi", "X-Secret", "To=1"} {
		if strings.Contains(got, leak) || strings.Contains(r.URL, leak) {
			t.Errorf("redacted alert still carries %q: %s %s", leak, r.URL, got)
		}
	}
	for _, kept := range []string{"SM0123456789abcdef0123456789abcdef", "30007", "POST", "502", "https://app.example.com/sms"} {
		if !strings.Contains(got, kept) {
			t.Errorf("redacted payload lost %q: %s", kept, got)
		}
	}
	if strings.Contains(string(a.Payload), Redacted) {
		t.Error("Redact changed the original")
	}
	if bad := (&DebuggerAlert{Payload: []byte("+15551230000 not json")}).Redact(); string(bad.Payload) != `"[redacted]"` {
		t.Errorf("a payload that is not JSON became %s", bad.Payload)
	}
}
