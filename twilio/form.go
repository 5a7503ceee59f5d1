package twilio

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrMalformedForm reports a request body that is not a valid
// application/x-www-form-urlencoded document.
var ErrMalformedForm = errors.New("malformed form body")

// maxPairExcerpt bounds how much of an offending pair an error quotes, so a
// hostile body cannot blow up logs.
const maxPairExcerpt = 64

// ParseForm parses an application/x-www-form-urlencoded body.
//
// Every pair is kept: a key that repeats has all its values, in the order
// they appear. "+" decodes to a space. A pair without "=" is a key with an
// empty value, and empty pairs ("a=1&&b=2") are skipped. ";" is ordinary
// data, not a separator. An empty body gives empty, non-nil Values.
//
// Unlike url.ParseQuery, which drops bad pairs and carries on, ParseForm
// fails on the first invalid percent-encoding ("%zz", "%4") with an error
// wrapping ErrMalformedForm that names the pair. The signature of a form
// request covers every parameter, so a body that cannot be decoded exactly
// cannot be verified and must not be half-accepted.
func ParseForm(body []byte) (url.Values, error) {
	values := make(url.Values)
	rest := string(body)
	for n := 1; rest != ""; n++ {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, fmt.Errorf("%w: pair %d %q: key: %w", ErrMalformedForm, n, excerpt(pair), err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("%w: pair %d %q: value: %w", ErrMalformedForm, n, excerpt(pair), err)
		}
		values[key] = append(values[key], value)
	}
	return values, nil
}

// excerpt shortens s for quoting in an error message.
func excerpt(s string) string {
	if len(s) <= maxPairExcerpt {
		return s
	}
	return s[:maxPairExcerpt] + "..."
}
