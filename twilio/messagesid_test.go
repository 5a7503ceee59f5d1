package twilio

import (
	"net/url"
	"testing"
)

func TestReplaceMessageSIDKeepsEveryOtherByte(t *testing.T) {
	const ours = "SM0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ name, body, want string }{
		{"all three",
			"SmsSid=SMtw&SmsStatus=sent&MessageStatus=sent&To=%2B14155550100&MessageSid=SMtw&AccountSid=AC1&SmsMessageSid=SMtw",
			"SmsSid=" + ours + "&SmsStatus=sent&MessageStatus=sent&To=%2B14155550100&MessageSid=" + ours + "&AccountSid=AC1&SmsMessageSid=" + ours},
		{"encoded key", "Message%53id=SMtw&Body=a+b%26c", "Message%53id=" + ours + "&Body=a+b%26c"},
		{"none", "CallSid=CAx&Body=MessageSid%3DSMtw", "CallSid=CAx&Body=MessageSid%3DSMtw"},
		{"empty value", "MessageSid=&X=1", "MessageSid=" + ours + "&X=1"},
		{"lookalike keys", "MessageSidX=1&xMessageSid=2", "MessageSidX=1&xMessageSid=2"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(ReplaceMessageSID([]byte(tc.body), ours)); got != tc.want {
				t.Errorf("ReplaceMessageSID(%q) =\n %q\nwant\n %q", tc.body, got, tc.want)
			}
			form, err := url.ParseQuery(tc.want)
			if err == nil && form.Has("MessageSid") && MessageSIDOf(form) != ours {
				t.Errorf("MessageSIDOf after replacing = %q", MessageSIDOf(form))
			}
		})
	}
}
