package twilio

import "strings"

// OptAction is what an inbound message asks of its sender's subscription to
// an account's messages.
type OptAction int

// The actions an inbound message can ask for.
const (
	OptNone OptAction = iota // an ordinary message: nothing changes
	OptOut                   // an opt-out keyword: stop sending to the sender
	OptIn                    // an opt-in keyword: the sender may be sent to again
)

// String returns "none", "opt-out" or "opt-in".
func (a OptAction) String() string {
	switch a {
	case OptOut:
		return "opt-out"
	case OptIn:
		return "opt-in"
	}
	return "none"
}

// The keywords Twilio handles for an account by default. Kept unexported so
// that no caller can change them; MatchOptKeyword documents them.
var (
	optOutKeywords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	optInKeywords  = []string{"START", "YES", "UNSTOP"}
)

// MatchOptKeyword tells whether an inbound message's body is an opt-out or
// an opt-in keyword. As with Twilio, the whole body must be the keyword:
// leading and trailing white space is ignored and letters may be in any
// case, but "STOP please" or "STOP." is an ordinary message. The opt-out
// keywords are STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE and
// OPTOUT; the opt-in keywords are START, YES and UNSTOP. Case is folded in
// ASCII only, so a look-alike such as "ſtop" (long s) matches nothing.
func MatchOptKeyword(body string) OptAction {
	w, ok := asciiUpper(strings.TrimSpace(body))
	if !ok {
		return OptNone
	}
	for _, k := range optOutKeywords {
		if w == k {
			return OptOut
		}
	}
	for _, k := range optInKeywords {
		if w == k {
			return OptIn
		}
	}
	return OptNone
}

// InboundOptAction is the action of an inbound message webhook, given its
// OptOutType and Body parameters. Twilio sets OptOutType to STOP, START or
// HELP when its Advanced Opt-Out matched a keyword, the account's own
// keywords included; STOP and START decide, whatever the body. Otherwise
// (no OptOutType, HELP, or a value Switchboard does not know) the body
// decides, by MatchOptKeyword.
func InboundOptAction(optOutType, body string) OptAction {
	switch t, _ := asciiUpper(strings.TrimSpace(optOutType)); t {
	case "STOP":
		return OptOut
	case "START":
		return OptIn
	}
	return MatchOptKeyword(body)
}

// asciiUpper upper-cases s, reporting false when s is not all ASCII (no
// keyword is) or longer than any keyword.
func asciiUpper(s string) (string, bool) {
	const longest = len("UNSUBSCRIBE")
	if len(s) > longest {
		return "", false
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 0x80:
			return "", false
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b), true
}
