package twilio

import (
	"bytes"
	"net/url"
	"slices"
)

// messageSIDParams are the parameters that carry a message's SID, in the
// order they are read (MessageSIDOf).
var messageSIDParams = []string{"MessageSid", "SmsMessageSid", "SmsSid"}

// MessageSIDOf returns the message SID a webhook's parameters carry, or
// "" when they carry none.
func MessageSIDOf(form url.Values) string {
	for _, k := range messageSIDParams {
		if v := form.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// ReplaceMessageSID returns the form body with the value of each parameter
// that carries the message's SID (MessageSid, SmsMessageSid, SmsSid) set to
// sid, and every other byte as it was: the other parameters keep their
// order and their encoding. sid is written as given, so it must need no
// escaping, as no SID does (letters and digits).
func ReplaceMessageSID(body []byte, sid string) []byte {
	pairs := bytes.Split(body, []byte("&"))
	for i, p := range pairs {
		k, _, _ := bytes.Cut(p, []byte("="))
		name, err := url.QueryUnescape(string(k))
		if err == nil && slices.Contains(messageSIDParams, name) {
			pairs[i] = []byte(string(k) + "=" + sid)
		}
	}
	return bytes.Join(pairs, []byte("&"))
}
