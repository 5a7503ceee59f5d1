package twilio

import (
	"regexp"
	"strings"
)

// The forms of the addresses Twilio's Messages API takes. These are the
// one place they are written: the send APIs check requests with them, the
// configuration checks pool senders, and the simulator checks its numbers.
var (
	e164Pattern       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	shortCodePattern  = regexp.MustCompile(`^[0-9]{5,6}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

// IsE164 reports whether s is a phone number in E.164 form: '+', then 7 to
// 15 digits, the first not 0.
func IsE164(s string) bool { return e164Pattern.MatchString(s) }

// IsShortCode reports whether s is a short code: 5 or 6 digits.
func IsShortCode(s string) bool { return shortCodePattern.MatchString(s) }

// IsServiceSID reports whether s is a Messaging Service SID: MG and 32 hex
// digits.
func IsServiceSID(s string) bool { return serviceSIDPattern.MatchString(s) }

// IsSender reports whether s can be a message's From: an E.164 number or a
// short code.
func IsSender(s string) bool { return IsE164(s) || IsShortCode(s) }

// IsRecipient reports whether to can be a message's To: an E.164 number,
// optionally on a channel such as whatsapp:+15551234567.
func IsRecipient(to string) bool {
	if channel, number, ok := strings.Cut(to, ":"); ok {
		return channel != "" && !strings.ContainsAny(channel, "+/ ") && IsE164(number)
	}
	return IsE164(to)
}
