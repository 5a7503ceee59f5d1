package store

import (
	"fmt"
	"strings"
	"testing"
)

func TestCountryOfRecipients(t *testing.T) {
	var c countries
	for _, tc := range []struct{ number, want string }{
		{"+14155550100", "US"},
		{"+14165550123", "CA"},  // +1 shared: the area code decides
		{"+441534123456", "JE"}, // +44 shared: Jersey
		{"+447700900123", "GB"}, // fits no plan: the code's main country
		{"+77012345678", "KZ"},  // +7 shared: Kazakhstan
		{"+33612345678", "FR"},
		{"whatsapp:+5511987654321", "BR"}, // behind a channel
		{"+80012345678", UnknownCountry},  // a code of no country
		{"+999123", UnknownCountry},       // no such code
		{"14155550100", UnknownCountry},   // not E.164
		{"", UnknownCountry},
		{"+", UnknownCountry},
		{"whatsapp:", UnknownCountry},
		{"+1" + strings.Repeat("9", 300), UnknownCountry}, // overlong
		{"+14155550111", "US"},                            // its prefix is not taken by the overlong one
	} {
		if got := c.of(tc.number); got != tc.want {
			t.Errorf("country of %q = %q, want %q", tc.number, got, tc.want)
		}
	}
}

// The countries found are kept by prefix, and no more than maxCountries
// of them.
func TestCountriesAreBounded(t *testing.T) {
	var c countries
	for i := range maxCountries + 10 {
		c.of(fmt.Sprintf("+%d", 10_000_000+i))
	}
	if len(c.byPrefix) > maxCountries {
		t.Errorf("%d prefixes kept, over %d", len(c.byPrefix), maxCountries)
	}
}
