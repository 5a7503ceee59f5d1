package deliver

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// TwilioSIDHeader carries, on a status callback delivered with the
// message's Switchboard SID in place of Twilio's (asTheAppKnowsIt), the
// SID Twilio gave the message, for an app that reconciles with Twilio.
const TwilioSIDHeader = "X-Switchboard-Twilio-Sid"

// asTheAppKnowsIt returns the URL Twilio called and the body of req as the
// app gets them. A status callback of a message sent through Switchboard
// names it by its Switchboard SID, the one its app was given at create:
// intake took that SID from the callback's signed URL into the event (see
// switchboard.SIDParam). Such a callback reaches the app with that SID in
// place of Twilio's in MessageSid, SmsSid and SmsMessageSid, and without
// the parameter in its URL; every other byte is Twilio's, and the result
// is signed again for the app's URL like any delivery. twilioSID is the
// SID it replaced, "" when nothing was replaced.
//
// Anything else (a webhook that is not such a callback, a GET, a body
// that is not a form) is returned as received: this fails toward
// delivering what Twilio sent, never toward rewriting content it did not
// sign.
func asTheAppKnowsIt(ev *switchboard.Event, req *switchboard.Request) (received string, body []byte, twilioSID string, err error) {
	sid, ok := switchboard.SIDOfCallbackURL(req.URL)
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if !ok || sid != ev.MessageSID || req.Method != http.MethodPost || mediaType != "application/x-www-form-urlencoded" {
		return req.URL, req.Body, "", nil
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return "", nil, "", fmt.Errorf("parse status callback: %w", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return "", nil, "", fmt.Errorf("parse received URL: %w", err)
	}
	u.RawQuery = withoutParam(u.RawQuery, switchboard.SIDParam)
	return u.String(), twilio.ReplaceMessageSID(req.Body, sid), twilio.MessageSIDOf(form), nil
}

// withoutParam is the raw query without the pairs named name, the others
// as they were.
func withoutParam(rawQuery, name string) string {
	pairs := strings.Split(rawQuery, "&")
	kept := pairs[:0]
	for _, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == name {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
