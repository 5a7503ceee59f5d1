package doctor

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of webhook request a probe sends.
type Kind string

// Kinds of webhook request. Messaging and voice expect TwiML back; status
// callbacks and client notifications only a status code.
const (
	KindSMS                Kind = "sms"
	KindVoice              Kind = "voice"
	KindStatus             Kind = "status"
	KindClientNotification Kind = "client-notification"
)

// expectsTwiML reports whether Twilio reads the response body as TwiML.
func (k Kind) expectsTwiML() bool { return k == KindSMS || k == KindVoice }

// Options configure a Probe.
type Options struct {
	// URL is the webhook to probe. It may carry Twilio's connection-override
	// fragment (#ct=..&rt=..&tt=..&rc=..&rp=..), which is read for the
	// timeouts and never sent or signed.
	URL string
	// Method is POST (the default) or GET.
	Method string
	// Kind is the kind of request to send; the default is KindSMS.
	Kind Kind
	// AccountSID is the AccountSid the request carries; a random one when
	// empty.
	AccountSID string
	// AuthToken, when set, signs requests with X-Twilio-Signature as Twilio
	// would with this token.
	AuthToken string
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// RootCAs are the certificate authorities trusted for HTTPS; nil means
	// the system's roots.
	RootCAs *x509.CertPool
	// Now tells the current time, against which certificates are checked;
	// nil means time.Now. Durations are always measured on the real clock.
	Now func() time.Time
}

// Twilio's timeouts and the ranges its connection overrides accept, in
// milliseconds.
const (
	defaultConnect = 5000
	defaultRead    = 15000
	defaultTotal   = 15000
)

type overrideRange struct {
	min, max, def int
}

var overrideRanges = map[string]overrideRange{
	"ct": {100, 10000, defaultConnect},
	"rt": {100, 15000, defaultRead},
	"tt": {100, 15000, defaultTotal},
	"rc": {0, 5, 1},
}

// retryPolicies are the values rp accepts.
var retryPolicies = map[string]bool{"ct": true, "rt": true, "4xx": true, "5xx": true, "all": true}

// overrides are the timeouts a probe applies: Twilio's defaults, or what
// the URL's fragment sets them to.
type overrides struct {
	connect, read, total time.Duration
	// set names the overrides the fragment gave, as "ct=1000", in order.
	set []string
	// problems are the parts of the fragment Twilio would not accept.
	problems []string
}

// limitName describes where the total limit comes from, for messages.
func (ov overrides) limitName(key string) string {
	for _, s := range ov.set {
		if strings.HasPrefix(s, key+"=") {
			return "the #" + key + " override"
		}
	}
	return "Twilio's limit"
}

// parseOverrides reads Twilio's connection overrides from a URL fragment.
// A value that is not a number is ignored and one out of range is clamped,
// and both are reported as problems, since the URL does not do what its
// author meant.
func parseOverrides(fragment string) overrides {
	ov := overrides{
		connect: defaultConnect * time.Millisecond,
		read:    defaultRead * time.Millisecond,
		total:   defaultTotal * time.Millisecond,
	}
	if fragment == "" {
		return ov
	}
	values, err := url.ParseQuery(fragment)
	if err != nil {
		ov.problems = append(ov.problems, fmt.Sprintf("unparseable fragment %q", fragment))
		return ov
	}
	for _, key := range []string{"ct", "rt", "tt", "rc", "rp"} {
		if !values.Has(key) {
			continue
		}
		v := values.Get(key)
		if key == "rp" {
			if !retryPolicies[v] {
				ov.problems = append(ov.problems, fmt.Sprintf("rp=%q is not a retry policy (ct, rt, 4xx, 5xx, all)", v))
				continue
			}
			ov.set = append(ov.set, "rp="+v)
			continue
		}
		r := overrideRanges[key]
		n, err := strconv.Atoi(v)
		if err != nil {
			ov.problems = append(ov.problems, fmt.Sprintf("%s=%q is not a number", key, v))
			continue
		}
		if n < r.min || n > r.max {
			ov.problems = append(ov.problems, fmt.Sprintf("%s=%d is outside %d–%d", key, n, r.min, r.max))
			n = min(max(n, r.min), r.max)
		}
		ov.set = append(ov.set, fmt.Sprintf("%s=%d", key, n))
		d := time.Duration(n) * time.Millisecond
		switch key {
		case "ct":
			ov.connect = d
		case "rt":
			ov.read = d
		case "tt":
			ov.total = d
		}
	}
	for key := range values {
		if _, ok := overrideRanges[key]; !ok && key != "rp" {
			ov.problems = append(ov.problems, fmt.Sprintf("unknown override %q", key))
		}
	}
	return ov
}

// normalized is a probe's options after defaults and validation.
type normalized struct {
	Options
	target *url.URL // the URL without its fragment
	ov     overrides
}

// normalize applies defaults and rejects options a probe cannot run with.
func normalize(o Options) (*normalized, error) {
	n := &normalized{Options: o}
	if n.Kind == "" {
		n.Kind = KindSMS
	}
	switch n.Kind {
	case KindSMS, KindVoice, KindStatus, KindClientNotification:
	default:
		return nil, fmt.Errorf("doctor: unknown kind %q (want sms, voice, status or client-notification)", o.Kind)
	}
	n.Method = strings.ToUpper(strings.TrimSpace(n.Method))
	if n.Method == "" {
		n.Method = "POST"
	}
	if n.Method != "POST" && n.Method != "GET" {
		return nil, fmt.Errorf("doctor: method %q: want POST or GET", o.Method)
	}
	if n.Kind == KindClientNotification && n.Method != "POST" {
		return nil, fmt.Errorf("doctor: client notifications are JSON POSTs, not %s", n.Method)
	}
	u, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil {
		return nil, fmt.Errorf("doctor: parse URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("doctor: URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("doctor: URL %q has no host", u.Redacted())
	}
	n.ov = parseOverrides(u.Fragment)
	u.Fragment, u.RawFragment = "", ""
	n.target = u
	if n.Resolver == nil {
		n.Resolver = net.DefaultResolver
	}
	if n.Now == nil {
		n.Now = time.Now
	}
	return n, nil
}
