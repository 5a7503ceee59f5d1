package deliver

import (
	"net/http"
	"testing"

	"github.com/switchboard-dev/switchboard"
)

func TestStatusCallbacksReachTheAppWithItsSID(t *testing.T) {
	const (
		ours   = "SM01a2477cea977644bead0a286e1eccd4"
		theirs = "SMffffffffffffffffffffffffffffffff"
		form   = "application/x-www-form-urlencoded"
		body   = "SmsSid=" + theirs + "&SmsStatus=sent&MessageStatus=sent&MessageSid=" + theirs + "&AccountSid=AC1"
	)
	withSID := "https://hooks.example.com/status?SwitchboardSid=" + ours
	for _, tc := range []struct {
		name                    string
		eventSID, method, ctype string
		url, body               string
		wantURL, wantBody       string
		wantTwilioSID           string
	}{
		{name: "a callback of a message sent through Switchboard", eventSID: ours, method: http.MethodPost, ctype: form,
			url: withSID, body: body,
			wantURL:  "https://hooks.example.com/status",
			wantBody: "SmsSid=" + ours + "&SmsStatus=sent&MessageStatus=sent&MessageSid=" + ours + "&AccountSid=AC1", wantTwilioSID: theirs},
		{name: "other parameters of the URL kept", eventSID: ours, method: http.MethodPost, ctype: form + "; charset=utf-8",
			url: "https://hooks.example.com/status?a=1&SwitchboardSid=" + ours + "&b=%2F", body: body,
			wantURL:  "https://hooks.example.com/status?a=1&b=%2F",
			wantBody: "SmsSid=" + ours + "&SmsStatus=sent&MessageStatus=sent&MessageSid=" + ours + "&AccountSid=AC1", wantTwilioSID: theirs},
		// The event does not carry the URL's SID: intake did not take it
		// as a status callback's (another kind, say), so nothing changes.
		{name: "an event that does not name the message by it", eventSID: theirs, method: http.MethodPost, ctype: form,
			url: withSID, body: body, wantURL: withSID, wantBody: body},
		{name: "a GET", eventSID: ours, method: http.MethodGet, ctype: "", url: withSID + "&MessageSid=" + theirs,
			wantURL: withSID + "&MessageSid=" + theirs},
		{name: "a JSON body", eventSID: ours, method: http.MethodPost, ctype: "application/json",
			url: withSID, body: `{"MessageSid":"` + theirs + `"}`, wantURL: withSID, wantBody: `{"MessageSid":"` + theirs + `"}`},
		// Only the SID parameters change: text in another parameter that
		// reads like one (a message body, an error message) stays Twilio's.
		{name: "a parameter whose value reads like a SID parameter", eventSID: ours, method: http.MethodPost, ctype: form,
			url: withSID, body: "MessageSid=" + theirs + "&Body=hi%26MessageSid%3D" + theirs + "&ErrorMessage=SmsSid%3D" + theirs,
			wantURL:  "https://hooks.example.com/status",
			wantBody: "MessageSid=" + ours + "&Body=hi%26MessageSid%3D" + theirs + "&ErrorMessage=SmsSid%3D" + theirs, wantTwilioSID: theirs},
		{name: "the parameter's name escaped in the URL", eventSID: ours, method: http.MethodPost, ctype: form,
			url: "https://hooks.example.com/status?Switchboard%53id=" + ours, body: body,
			wantURL:  "https://hooks.example.com/status",
			wantBody: "SmsSid=" + ours + "&SmsStatus=sent&MessageStatus=sent&MessageSid=" + ours + "&AccountSid=AC1", wantTwilioSID: theirs},
		// Two SIDs in the URL name no message (switchboard.SIDOfCallbackURL).
		{name: "the parameter twice in the URL", eventSID: ours, method: http.MethodPost, ctype: form,
			url: withSID + "&SwitchboardSid=" + theirs, body: body, wantURL: withSID + "&SwitchboardSid=" + theirs, wantBody: body},
		{name: "the parameter in the body, not the URL", eventSID: ours, method: http.MethodPost, ctype: form,
			url: "https://hooks.example.com/status", body: body + "&SwitchboardSid=" + ours,
			wantURL: "https://hooks.example.com/status", wantBody: body + "&SwitchboardSid=" + ours},
		{name: "no SID in the URL", eventSID: theirs, method: http.MethodPost, ctype: form,
			url: "https://hooks.example.com/status", body: body, wantURL: "https://hooks.example.com/status", wantBody: body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &switchboard.Request{Method: tc.method, URL: tc.url, Header: http.Header{}, Body: []byte(tc.body)}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			u, b, sid, err := asTheAppKnowsIt(&switchboard.Event{MessageSID: tc.eventSID}, req)
			if err != nil {
				t.Fatal(err)
			}
			if u != tc.wantURL || string(b) != tc.wantBody || sid != tc.wantTwilioSID {
				t.Errorf("got\n %s\n %s\n %q\nwant\n %s\n %s\n %q", u, b, sid, tc.wantURL, tc.wantBody, tc.wantTwilioSID)
			}
			if string(req.Body) != tc.body {
				t.Errorf("the stored request's body changed: %s", req.Body)
			}
		})
	}
}
