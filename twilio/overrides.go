package twilio

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Twilio's webhook timeouts and retries when a URL's fragment does not
// override them.
const (
	DefaultConnectTimeout = 5 * time.Second  // one TCP connect
	DefaultReadTimeout    = 15 * time.Second // one request, connect included
	DefaultTotalTimeout   = 15 * time.Second // every try of one webhook
	DefaultRetries        = 1                // extra tries, on connect failures only
)

// Retry policies of the rp override: which failures a webhook is retried
// after.
const (
	RetryConnect     = "ct"  // connect failures (the default)
	RetryReadTimeout = "rt"  // connect failures and read timeouts
	Retry4xx         = "4xx" // connect failures and 4xx answers
	Retry5xx         = "5xx" // connect failures and 5xx answers
	RetryAll         = "all" // every failure
)

// overrideRange is what Twilio accepts for one numeric override, in
// milliseconds (or tries, for rc).
type overrideRange struct {
	min, max, def int
}

var overrideRanges = map[string]overrideRange{
	"ct": {100, 10000, int(DefaultConnectTimeout / time.Millisecond)},
	"rt": {100, 15000, int(DefaultReadTimeout / time.Millisecond)},
	"tt": {100, 15000, int(DefaultTotalTimeout / time.Millisecond)},
	"rc": {0, 5, DefaultRetries},
}

var retryPolicies = map[string]bool{RetryConnect: true, RetryReadTimeout: true, Retry4xx: true, Retry5xx: true, RetryAll: true}

// ConnectionOverrides are the limits Twilio applies to one webhook URL: its
// defaults, or what the URL's fragment (#ct=..&rt=..&tt=..&rc=..&rp=..)
// sets them to.
type ConnectionOverrides struct {
	Connect time.Duration // ct: one TCP connect
	Read    time.Duration // rt: one try, from connect to the whole answer
	Total   time.Duration // tt: all tries together
	Retries int           // rc: tries after the first
	Policy  string        // rp: which failures are retried; RetryConnect by default

	// Set lists the overrides the fragment gave, as "ct=1000", in Twilio's
	// order (ct, rt, tt, rc, rp).
	Set []string
	// Problems are the parts of the fragment Twilio would not accept: a
	// value that is not a number (ignored), one out of range (clamped), an
	// unknown key or policy.
	Problems []string
}

// ParseConnectionOverrides reads Twilio's connection overrides from a URL
// fragment (without the '#'). It never fails: what it cannot use is listed
// in Problems and the default stands.
func ParseConnectionOverrides(fragment string) ConnectionOverrides {
	ov := ConnectionOverrides{
		Connect: DefaultConnectTimeout,
		Read:    DefaultReadTimeout,
		Total:   DefaultTotalTimeout,
		Retries: DefaultRetries,
		Policy:  RetryConnect,
	}
	if fragment == "" {
		return ov
	}
	values, err := url.ParseQuery(fragment)
	if err != nil {
		ov.Problems = append(ov.Problems, fmt.Sprintf("unparseable fragment %q", fragment))
		return ov
	}
	for _, key := range []string{"ct", "rt", "tt", "rc", "rp"} {
		if !values.Has(key) {
			continue
		}
		v := values.Get(key)
		if key == "rp" {
			if !retryPolicies[v] {
				ov.Problems = append(ov.Problems, fmt.Sprintf("rp=%q is not a retry policy (ct, rt, 4xx, 5xx, all)", v))
				continue
			}
			ov.Set = append(ov.Set, "rp="+v)
			ov.Policy = v
			continue
		}
		r := overrideRanges[key]
		n, err := strconv.Atoi(v)
		if err != nil {
			ov.Problems = append(ov.Problems, fmt.Sprintf("%s=%q is not a number", key, v))
			continue
		}
		if n < r.min || n > r.max {
			ov.Problems = append(ov.Problems, fmt.Sprintf("%s=%d is outside %d–%d", key, n, r.min, r.max))
			n = min(max(n, r.min), r.max)
		}
		ov.Set = append(ov.Set, fmt.Sprintf("%s=%d", key, n))
		d := time.Duration(n) * time.Millisecond
		switch key {
		case "ct":
			ov.Connect = d
		case "rt":
			ov.Read = d
		case "tt":
			ov.Total = d
		case "rc":
			ov.Retries = n
		}
	}
	for key := range values {
		if _, ok := overrideRanges[key]; !ok && key != "rp" {
			ov.Problems = append(ov.Problems, fmt.Sprintf("unknown override %q", key))
		}
	}
	return ov
}

// LimitName says where a limit comes from, for messages: "the #tt
// override" when the fragment set key, "Twilio's limit" otherwise.
func (ov ConnectionOverrides) LimitName(key string) string {
	for _, s := range ov.Set {
		if strings.HasPrefix(s, key+"=") {
			return "the #" + key + " override"
		}
	}
	return "Twilio's limit"
}

// Retryable reports whether Twilio tries a webhook again after a failure of
// class c with HTTP status (zero when there was no answer), under the
// policy rp. Connect failures are retried under every policy.
func (ov ConnectionOverrides) Retryable(c ErrorClass, status int) bool {
	switch {
	case c == ClassConnect:
		return true
	case ov.Policy == RetryAll:
		return true
	case ov.Policy == RetryReadTimeout:
		return c == ClassTimeout
	case ov.Policy == Retry4xx:
		return status >= 400 && status < 500
	case ov.Policy == Retry5xx:
		return status >= 500 && status < 600
	}
	return false
}
