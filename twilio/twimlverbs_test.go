package twilio

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDescribeTwiML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"empty is no reply", "  \n", nil},
		{"empty response", `<Response/>`, nil},
		{"message", `<Response><Message to="+15551230000" from="+12065550100">Thanks &amp; bye</Message></Response>`,
			[]string{`reply SMS: "Thanks & bye" (to +15551230000, from +12065550100)`}},
		{"message body and media", `<Response><Message><Body>look</Body><Media>https://x.test/a.jpg</Media></Message></Response>`,
			[]string{`reply MMS: "look" (media https://x.test/a.jpg)`}},
		{"say", `<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="alice" language="en-GB">Hello</Say></Response>`,
			[]string{`say: "Hello" (voice alice, language en-GB)`}},
		{"play and pause", `<Response><Play loop="2">https://x.test/a.mp3</Play><Pause/><Pause length="3"/></Response>`,
			[]string{"play: https://x.test/a.mp3 (loop 2)", "pause 1s", "pause 3s"}},
		{"gather with nested say", `<Response><Gather input="dtmf" numDigits="1" action="/menu"><Say>Press 1</Say></Gather></Response>`,
			[]string{"gather input (input dtmf, digits 1, action /menu)", `  say: "Press 1"`}},
		{"dial", `<Response><Dial callerId="+12065550100"><Number sendDigits="ww1">+15551230000</Number></Dial><Dial>+15550000000</Dial></Response>`,
			[]string{"dial (caller ID +12065550100)", "  number: +15551230000 (send digits ww1)", "dial: +15550000000"}},
		{"redirect hangup reject", `<Response><Redirect method="GET">/next</Redirect><Hangup/><Reject reason="busy"/></Response>`,
			[]string{"redirect to /next (method GET)", "hang up", "reject the call (reason busy)"}},
		{"unknown verb", `<Response><Frobnicate/><say>lower case</say></Response>`,
			[]string{"unknown verb <Frobnicate>: Twilio skips it (warning 12200)", "unknown verb <say>: Twilio skips it (warning 12200)"}},
		{"other known verb", `<Response><Connect><Stream url="wss://x.test/s"/></Connect></Response>`,
			[]string{"connect", "  stream (url wss://x.test/s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verbs, err := DescribeTwiML([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := DescribeLines(verbs); !slices.Equal(got, tt.want) {
				t.Errorf("lines\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// Hostile and broken answers are refused with ErrMalformedTwiML, within
// bounds, never walked whole.
func TestDescribeTwiMLRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"not XML", "Thanks for your message!", "no XML element"},
		{"JSON", `{"reply":"hi"}`, "malformed TwiML"},
		{"HTML", `<html><body>Error</body></html>`, "not <Response>"},
		{"unclosed", `<Response><Say>hi</Response>`, "malformed TwiML"},
		{"huge", "<Response><Say>" + strings.Repeat("a", MaxTwiMLBytes) + "</Say></Response>", "over 65536 bytes"},
		{"deep", "<Response>" + strings.Repeat("<Gather>", 20) + strings.Repeat("</Gather>", 20) + "</Response>", "nested deeper than 8"},
		{"wide", "<Response>" + strings.Repeat("<Pause/>", 2000) + "</Response>", "more than 512 elements"},
		{"entity", `<!DOCTYPE r [<!ENTITY x "boom">]><Response><Say>&x;</Say></Response>`, "malformed TwiML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verbs, err := DescribeTwiML([]byte(tt.body))
			if !errors.Is(err, ErrMalformedTwiML) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DescribeTwiML = %v, %v; want ErrMalformedTwiML saying %q", verbs, err, tt.want)
			}
		})
	}
}
