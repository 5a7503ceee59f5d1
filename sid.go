package switchboard

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// One SID per message. A message created through Switchboard is known to
// the app that created it by the SID Switchboard gives it at create, before
// Twilio has seen it: "SM" and the 32 hex digits of its id. That SID stays
// its identity everywhere the app looks (the Twilio-compatible API's
// create, fetch and list, the events API, and every status callback
// delivered to the app), whatever SID Twilio gives the message when it is
// sent, which is kept beside it (OutboundMessage.TwilioSID).
//
// Status callbacks learn it without a look-up: each message is sent with a
// StatusCallback URL carrying its SID in SIDParam, which Twilio signs with
// the rest of the URL and sends back with every callback, however those
// race Twilio's answer to the send.

// SIDParam is the query parameter of a message's StatusCallback URL that
// carries its Switchboard SID.
const SIDParam = "SwitchboardSid"

// SID is the message's Switchboard SID (see MessageIDOfSID).
func (m *OutboundMessage) SID() string { return "SM" + strings.ReplaceAll(m.ID, "-", "") }

var sidPattern = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

// MessageIDOfSID returns the message id that sid, in the form of a
// Switchboard SID, stands for. Twilio's message SIDs have the same form,
// so ok says only that sid could be one of Switchboard's: whether a message
// has that id is the store's to say.
func MessageIDOfSID(sid string) (id string, ok bool) {
	if !sidPattern.MatchString(sid) {
		return "", false
	}
	u, err := uuid.Parse(sid[2:])
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// StatusCallbackURL is the StatusCallback URL m is sent with: base, the
// status route's public URL, with m's SID in SIDParam. An empty base (no
// status route) stays empty.
func (m *OutboundMessage) StatusCallbackURL(base string) string {
	if base == "" {
		return ""
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + SIDParam + "=" + m.SID()
}

// SIDOfCallbackURL returns the Switchboard SID that a status callback's
// URL carries in SIDParam (see StatusCallbackURL); ok is false when it
// carries none, or anything else there.
func SIDOfCallbackURL(rawURL string) (sid string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || len(q[SIDParam]) != 1 {
		return "", false // several would leave which one ambiguous
	}
	sid = q.Get(SIDParam)
	if _, ok := MessageIDOfSID(sid); !ok {
		return "", false
	}
	return sid, true
}
