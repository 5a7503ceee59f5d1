package doctor

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
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
	// Allow, when set, is asked about every address before the probe
	// connects to it (each address a name resolves to, on every redirect
	// hop), and the probe connects to none it refuses. Refused addresses
	// are not shown in the report; a host with no other address fails
	// the probe before any request. nil allows every address.
	Allow func(netip.Addr) error
}

// normalized is a probe's options after defaults and validation.
type normalized struct {
	Options
	target *url.URL // the URL without its fragment
	ov     twilio.ConnectionOverrides
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
	n.ov = twilio.ParseConnectionOverrides(u.Fragment)
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
