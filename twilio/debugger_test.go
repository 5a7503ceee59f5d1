package twilio

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

const dbgAccount = "AC0123456789abcdef0123456789abcdef"

func dbgForm(set map[string]string) url.Values {
	f := url.Values{
		"Sid":         {"NO0123456789abcdef0123456789abcdef"},
		"AccountSid":  {dbgAccount},
		"Timestamp":   {"2026-11-01T12:00:00Z"},
		"Level":       {"Warning"},
		"PayloadType": {"application/json"},
		"Payload": {`{"resource_sid":"CA0123456789abcdef0123456789abcdef","error_code":11200,` +
			`"more_info":{"url":"https://www.twilio.com/docs/errors/11200"},` +
			`"webhook":{"request":{"url":"https://app.example.com/voice","method":"get"},"response":{"status_code":503}}}`},
	}
	for k, v := range set {
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
	}
	return f
}

func TestParseDebugger(t *testing.T) {
	t.Parallel()
	a, err := ParseDebugger(dbgForm(nil), dbgAccount)
	if err != nil {
		t.Fatal(err)
	}
	if a.ResourceSID != "CA0123456789abcdef0123456789abcdef" || a.ErrorCode != 11200 || a.Method != "GET" || a.Status != 503 ||
		a.URL != "https://app.example.com/voice" || a.Level != "Warning" || !a.Timestamp.Equal(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) ||
		a.MoreInfo != "https://www.twilio.com/docs/errors/11200" {
		t.Errorf("parsed %+v", a)
	}
	// Older documentation spells TimeStamp; codes may come as strings;
	// a payload without the webhook still names its resource.
	a, err = ParseDebugger(dbgForm(map[string]string{"Timestamp": "", "TimeStamp": "2026-11-01T12:00:00.5+01:00",
		"Payload": `{"resource_sid":"SM0123456789abcdef0123456789abcdef","error_code":"30007","more_info":"javascript:alert(1)"}`}), dbgAccount)
	if err != nil || a.ErrorCode != 30007 || a.Status != 0 || a.URL != "" || a.MoreInfo != "https://www.twilio.com/docs/errors/30007" ||
		!a.Timestamp.Equal(time.Date(2026, 11, 1, 11, 0, 0, 5e8, time.UTC)) {
		t.Errorf("parsed %+v, %v", a, err)
	}
}

func TestParseDebuggerRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  map[string]string
		want string
	}{
		{"no Sid", map[string]string{"Sid": ""}, "Sid"},
		{"Sid of another kind", map[string]string{"Sid": "SM0123456789abcdef0123456789abcdef"}, "Sid"},
		{"Sid upper hex", map[string]string{"Sid": "NO0123456789ABCDEF0123456789ABCDEF"}, "Sid"},
		{"Sid with more", map[string]string{"Sid": "NO0123456789abcdef0123456789abcdef0"}, "Sid"},
		{"another account", map[string]string{"AccountSid": "ACffffffffffffffffffffffffffffffff"}, "route's account"},
		{"no account", map[string]string{"AccountSid": ""}, "AccountSid"},
		{"no level", map[string]string{"Level": ""}, "Level"},
		{"control in level", map[string]string{"Level": "Err\x00or"}, "Level"},
		{"no timestamp", map[string]string{"Timestamp": ""}, "Timestamp"},
		{"other payload type", map[string]string{"PayloadType": "text/xml"}, "PayloadType"},
		{"payload not JSON", map[string]string{"Payload": "{"}, "JSON object"},
		{"payload a string", map[string]string{"Payload": `"x"`}, "JSON object"},
		{"payload empty", map[string]string{"Payload": ""}, "JSON object"},
		{"payload oversized", map[string]string{"Payload": `{"x":"` + strings.Repeat("a", MaxDebuggerPayload) + `"}`}, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseDebugger(dbgForm(tc.set), dbgAccount)
			if !errors.Is(err, ErrDebuggerForm) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrDebuggerForm about %s", err, tc.want)
			}
		})
	}
	// What is taken out of a hostile payload is bounded and printable.
	a, err := ParseDebugger(dbgForm(map[string]string{"Payload": `{"resource_sid":"SM1' OR 1=1","error_code":"-5",` +
		`"webhook":{"request":{"url":"https://x.example.com/` + strings.Repeat("a", 5000) + `","method":"DELETE"},"response":{"status_code":"99999"}}}`}), dbgAccount)
	if err != nil || a.ResourceSID != "" || a.ErrorCode != 0 || a.Method != "" || a.Status != 0 || len(a.URL) > maxDebuggerURL {
		t.Errorf("hostile payload parsed as %+v (%v)", a, err)
	}
	if a, err := ParseDebugger(dbgForm(map[string]string{"Payload": `{"webhook":{"request":{"url":"https://x.example.com/\u0000"}}}`}), dbgAccount); err != nil || a.URL != "" {
		t.Errorf("a URL with a NUL kept as %q (%v)", a.URL, err)
	}
}
