package store

import (
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// UnknownCountry is the country of a recipient whose number names none.
const UnknownCountry = "unknown"

// countries finds the country (ISO 3166 region, such as "US") of message
// recipients for the rollups. Finding one costs tens of microseconds, so
// the answer is kept by the number's first digits: the country code and
// the leading digits that tell apart the countries sharing it (Canada's
// area codes within +1, Jersey's within +44) are within them.
type countries struct {
	mu       sync.Mutex
	byPrefix map[string]string
}

// countryPrefix is how much of a number ('+' and seven digits) decides its
// country; maxCountries bounds the prefixes kept.
const (
	countryPrefix = 8
	maxCountries  = 100_000
)

// of returns the country of number, an E.164 number optionally behind a
// channel ("whatsapp:+14155550100"), or UnknownCountry.
func (c *countries) of(number string) string {
	if i := strings.LastIndexByte(number, ':'); i >= 0 {
		number = number[i+1:]
	}
	prefix := number[:min(len(number), countryPrefix)]
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.byPrefix[prefix]; ok {
		return r
	}
	if c.byPrefix == nil || len(c.byPrefix) >= maxCountries {
		c.byPrefix = map[string]string{}
	}
	r, ok := countryOf(number)
	if ok {
		c.byPrefix[prefix] = r
	}
	return r
}

// countryOf returns the country of an E.164 number: the one whose
// numbering plan the number fits, or else the main country of its country
// code (a number too short or too long to fit any still has one); and
// UnknownCountry for no country code, an unknown one or one of no country
// (+800, +882, ...). ok is false when the number could not be read at all
// (not E.164, overlong): that answer is the number's, not its prefix's.
func countryOf(number string) (country string, ok bool) {
	if !strings.HasPrefix(number, "+") {
		return UnknownCountry, false
	}
	n, err := phonenumbers.Parse(number, "")
	if err != nil {
		return UnknownCountry, false
	}
	if r := phonenumbers.GetRegionCodeForNumber(n); r != "" && r != "001" {
		return r, true
	}
	switch r := phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode())); r {
	case phonenumbers.UNKNOWN_REGION, "001":
		return UnknownCountry, true
	default:
		return r, true
	}
}
