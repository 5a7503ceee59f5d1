package switchboard

import (
	"regexp"
	"strings"
)

// Redacted replaces what admin.redact hides: the bodies of requests,
// responses and messages, URL query strings (where GET webhooks carry
// their parameters) and phone numbers.
const Redacted = "[redacted]"

// RedactQuery hides a URL's query string, keeping the scheme, host and
// path that tell where it points.
func RedactQuery(u string) string {
	if base, _, ok := strings.Cut(u, "?"); ok {
		return base + "?" + Redacted
	}
	return u
}

// phoneNumbers finds what may be a phone number in free text: a "+" (or
// its URL encoding, %2B) followed by 6 to 15 digits, as E.164 writes them,
// or a bare run of 8 or more digits. A run inside a word, such as the hex
// of a SID, is not one: a number stands alone. A URL-encoded character
// (%20, %2C) is a separator like any other, so that a number in an
// encoded query or form ("Body=call%20%2B15551234567") goes too.
var phoneNumbers = regexp.MustCompile(`(?i)(^|[^0-9a-z%+]|%[0-9a-f]{2})((?:\+|%2b)[0-9]{6,15}|[0-9]{8,})([^0-9a-z]|$)`)

// urlQueries finds the query strings of the URLs in free text: what
// follows "?" in an http or https URL, up to a space or a quote.
var urlQueries = regexp.MustCompile(`(?i)(https?://[^\s"'<>?]*)\?[^\s"'<>]*`)

// RedactText hides what free text, such as a delivery's error, may carry
// of a person: the query strings of the URLs in it (an error of Go's HTTP
// client quotes the URL it called, and a GET webhook's parameters, the
// message's text among them, are in that URL's query), then the phone
// numbers (see RedactNumbers).
func RedactText(s string) string {
	return RedactNumbers(urlQueries.ReplaceAllString(s, "${1}?"+Redacted))
}

// RedactNumbers hides what may be a phone number in free text, such as an
// error Twilio wrote ("The 'To' number +15551234567 is not valid"). It
// errs on the side of hiding: any long run of digits goes.
func RedactNumbers(s string) string {
	// A match consumes the character after the number, so a second number
	// right after the first (separated by one character) needs another pass.
	for range 3 {
		next := phoneNumbers.ReplaceAllString(s, "${1}"+Redacted+"${3}")
		if next == s {
			break
		}
		s = next
	}
	return s
}
