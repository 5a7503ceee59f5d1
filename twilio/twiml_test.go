package twilio

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseTwiML(t *testing.T) {
	t.Parallel()
	doc, err := ParseTwiML([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<Response><Message>Thanks &amp; bye</Message><Message><Body>two</Body></Message><Frobnicate/></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Message", "Message", "Frobnicate"}; !slices.Equal(doc.Verbs, want) {
		t.Errorf("verbs %q, want %q", doc.Verbs, want)
	}
	if want := []string{"Thanks & bye", "two"}; !slices.Equal(doc.Messages, want) {
		t.Errorf("messages %q, want %q", doc.Messages, want)
	}
	if want := []string{"Frobnicate"}; !slices.Equal(doc.Unknown, want) {
		t.Errorf("unknown %q, want %q", doc.Unknown, want)
	}

	for _, bad := range []string{"", "hello", "<Response>", "<Reply/>", "<Response/><Response/>", "<Response><Say>x</Response>"} {
		if _, err := ParseTwiML([]byte(bad)); !errors.Is(err, ErrMalformedTwiML) {
			t.Errorf("ParseTwiML(%q) = %v, want ErrMalformedTwiML", bad, err)
		}
	}
	if _, err := ParseTwiML([]byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Response><Say>caf\xe9</Say></Response>")); err != nil {
		t.Errorf("latin-1 TwiML: %v", err)
	}
}

func TestCheckAnswer(t *testing.T) {
	t.Parallel()
	const xml = "application/xml"
	big := "<Response><Say>" + strings.Repeat("a", MaxTwiMLBytes) + "</Say></Response>"
	tests := []struct {
		name        string
		x           Expectation
		status      int
		contentType string
		body        string
		want        Code // 0: accepted
	}{
		{"messaging empty TwiML", ExpectMessagingTwiML, 200, xml, "<Response/>", 0},
		{"messaging empty body, no type", ExpectMessagingTwiML, 200, "", "", 0},
		{"messaging 204", ExpectMessagingTwiML, 204, "", "", 0},
		{"text/xml with charset", ExpectMessagingTwiML, 200, "text/xml; charset=utf-8", "<Response/>", 0},
		{"text/html tolerated", ExpectVoiceTwiML, 200, "text/html", "<Response><Say>hi</Say></Response>", 0},
		{"messaging 500", ExpectMessagingTwiML, 500, xml, "<Response/>", CodeHTTPRetrievalFailure},
		{"messaging 302 not followed", ExpectMessagingTwiML, 302, "", "", CodeHTTPRetrievalFailure},
		{"no content type", ExpectMessagingTwiML, 200, "", "<Response/>", CodeInvalidContentType},
		{"json content type", ExpectVoiceTwiML, 200, "application/json", "<Response/>", CodeInvalidContentType},
		{"malformed", ExpectVoiceTwiML, 200, xml, "<Response><Say></Response>", CodeDocumentParseFailure},
		{"voice empty", ExpectVoiceTwiML, 200, xml, "", CodeDocumentParseFailure},
		{"too large", ExpectVoiceTwiML, 200, xml, big, CodeResponseTooLarge},
		{"status 204", ExpectStatus, 204, "", "", 0},
		{"status ignores body", ExpectStatus, 200, "text/plain", "ok", 0},
		{"status 404", ExpectStatus, 404, "", "", CodeHTTPRetrievalFailure},
		{"client notification 200", ExpectClientNotification, 200, "", "", 0},
		{"client notification 404", ExpectClientNotification, 404, "", "", 0},
		{"client notification 204", ExpectClientNotification, 204, "", "", CodeClientNotificationFailed},
		{"client notification 500", ExpectClientNotification, 500, "", "", CodeClientNotificationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckAnswer(tt.x, tt.status, tt.contentType, []byte(tt.body))
			var got Code
			if err != nil {
				got = err.Code
				if err.Reason == "" || !strings.Contains(err.Error(), err.Reason) {
					t.Errorf("error %q has no reason", err)
				}
			}
			if got != tt.want {
				t.Errorf("CheckAnswer = %v, want code %d", err, tt.want)
			}
		})
	}
}

func FuzzParseTwiML(f *testing.F) {
	for _, s := range []string{"<Response/>", "<Response><Message>hi</Message></Response>", "<Response><Say>", "<?xml version=\"1.0\"?><Response/>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := ParseTwiML(body)
		if (doc == nil) == (err == nil) {
			t.Fatalf("ParseTwiML returned doc %v and err %v", doc, err)
		}
		if err != nil && !errors.Is(err, ErrMalformedTwiML) {
			t.Fatalf("error %v does not wrap ErrMalformedTwiML", err)
		}
		if doc != nil && len(doc.Messages) > len(doc.Verbs) {
			t.Fatalf("%d messages but %d verbs", len(doc.Messages), len(doc.Verbs))
		}
	})
}
