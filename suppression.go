package switchboard

import (
	"strconv"
	"strings"
)

// A number is on an account's suppression list for one of two kinds of
// reason. An opt-out (the recipient replied STOP, or Twilio refused it as
// unsubscribed) is reversed by the recipient's opt-in. A refusal, Twilio
// refusing the recipient for good with another code (an invalid number,
// one that is not mobile), is reversed by no keyword: an opt-out does not
// replace it and an opt-in does not remove it (see Store.Suppress and
// Store.Unsuppress). Which codes are which is Twilio's to say; this
// package only keeps the two apart.

// refusalPrefix starts the reason of a refusal, and no opt-out's: the
// opt-outs stored are keywords or Twilio's code alone.
const refusalPrefix = "refused:"

// RefusalReason is the reason stored for a recipient Twilio refused for
// good with code: "refused:{code}".
func RefusalReason(code int) string { return refusalPrefix + strconv.Itoa(code) }

// RefusalPrefix starts every RefusalReason and no other reason.
func RefusalPrefix() string { return refusalPrefix }

// RefusalCode returns the code of a RefusalReason. ok is false for any
// other reason, an opt-out's.
func RefusalCode(reason string) (code int, ok bool) {
	rest, found := strings.CutPrefix(reason, refusalPrefix)
	if !found {
		return 0, false
	}
	code, err := strconv.Atoi(rest)
	if err != nil || code <= 0 {
		return 0, false
	}
	return code, true
}
