// Package traffic is the simulator's traffic generator: it sends realistic,
// correctly signed Twilio webhooks at a rate and reports what Twilio would
// have seen, judging every answer the way Twilio does and counting the
// error code its debugger would log for each one it does not accept.
//
// It also provides the two servers a benchmark needs around it: a reference
// endpoint that answers TwiML without storing anything, the ceiling durable
// intake is compared against, and a sink application that counts what
// Switchboard delivers.
//
// Everything here talks to loopback only. Run refuses a target whose host
// is not a loopback IP or localhost, and its dialer refuses to connect
// anywhere else, so a run can never be pointed at someone else's server.
// Every run is bounded by Options.Duration and stops by itself.
package traffic

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Kinds of webhook Run sends.
const (
	// KindSMS is an inbound SMS, answered with messaging TwiML.
	KindSMS = "sms"
	// KindStatus is a message status callback: "sent", then "delivered".
	KindStatus = "status"
	// KindVoice is an incoming call, answered with voice TwiML.
	KindVoice = "voice"
	// KindClientNotification is a Voice SDK client notification: a JSON
	// body, signed with bodySHA256 in the URL.
	KindClientNotification = "client-notification"
)

// Kinds returns every kind Run sends, KindSMS first.
func Kinds() []string {
	return []string{KindSMS, KindStatus, KindVoice, KindClientNotification}
}

// expectations are what Twilio requires of the answer to each kind.
var expectations = map[string]twilio.Expectation{
	KindSMS:                twilio.ExpectMessagingTwiML,
	KindStatus:             twilio.ExpectStatus,
	KindVoice:              twilio.ExpectVoiceTwiML,
	KindClientNotification: twilio.ExpectClientNotification,
}

// Limits and defaults of Options.
const (
	// DefaultConcurrency is the requests in flight when
	// Options.Concurrency is zero.
	DefaultConcurrency = 64
	// MaxDuration is the longest run Options.Duration may ask for.
	MaxDuration = 10 * time.Minute

	// MaxSamples bounds the latencies kept for percentiles. Past it, each
	// worker keeps a uniform sample of its latencies, so the percentiles
	// stay representative of the whole run rather than of its start.
	MaxSamples = 2_000_000

	// RequestTimeout is Twilio's own limit on a whole webhook request,
	// from connecting to reading the last byte of the answer. A request
	// without a complete answer by then counts as Twilio's 11205.
	RequestTimeout = 15 * time.Second
)

// ErrNotLoopback is returned for a target, or a connection, whose host is
// not a loopback address.
var ErrNotLoopback = errors.New("not a loopback address")

// Options configure a run.
type Options struct {
	// Target is the URL requests are POSTed to, such as
	// http://127.0.0.1:8080/sms. Its host must be a loopback IP or
	// localhost. A fragment is dropped.
	Target string
	// SignedURL is the public URL Twilio would have requested, which the
	// signature is computed over, such as https://hooks.example.com/sms.
	// Default Target. A fragment is dropped, as Twilio never signs one.
	//
	// For KindClientNotification the signature covers SignedURL with
	// bodySHA256 added to its query, and the same parameter is added to
	// Target's query, so that a receiver whose public URL is SignedURL
	// sees the URL that was signed.
	SignedURL string
	// AccountSID is sent as AccountSid (twi_account_sid). Default an AC
	// SID derived from Seed.
	AccountSID string
	// AuthToken signs each request. Required.
	AuthToken string
	// Kind is one of Kinds. Default KindSMS.
	Kind string
	// Rate is the requests per second to offer, on a fixed schedule
	// whatever the target's latency (open loop). A request that cannot
	// start on time because Concurrency requests are in flight starts as
	// soon as one finishes. Zero sends as fast as Concurrency allows
	// (closed loop).
	Rate float64
	// Concurrency caps the requests in flight. Default
	// DefaultConcurrency.
	Concurrency int
	// Duration is how long requests are sent for. Required, at most
	// MaxDuration. Requests in flight when it ends are waited for, each up
	// to RequestTimeout.
	Duration time.Duration
	// MaxRequests, if positive, caps the requests sent.
	MaxRequests int
	// Seed makes request bodies reproducible: the nth request of every run
	// with the same options has the same body, whichever worker sends it.
	// Only the I-Twilio-Idempotency-Token headers are fresh each time.
	Seed int64
	// Meter, if set, counts each request as it ends, for a live view of
	// the run; nil counts nothing beyond the report.
	Meter *Meter
}

// Validate checks opts and fills in their defaults, the way Run does before
// it sends anything: a caller can find out whether a run would start
// without starting it. The error names the first option that is wrong; for
// a target that is not on loopback it wraps ErrNotLoopback.
func (opts *Options) Validate() error {
	opts.Target = stripFragment(opts.Target)
	if err := checkLoopback(opts.Target); err != nil {
		return err
	}
	if opts.SignedURL == "" {
		opts.SignedURL = opts.Target
	}
	opts.SignedURL = stripFragment(opts.SignedURL)
	if u, err := url.Parse(opts.SignedURL); err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("signed URL %q: not an absolute URL", opts.SignedURL)
	}
	if opts.AuthToken == "" {
		return errors.New("auth token required: requests must be signed")
	}
	if opts.Kind == "" {
		opts.Kind = KindSMS
	}
	if _, ok := expectations[opts.Kind]; !ok {
		return fmt.Errorf("kind %q: want one of %s", opts.Kind, strings.Join(Kinds(), ", "))
	}
	if opts.Rate < 0 || math.IsNaN(opts.Rate) || math.IsInf(opts.Rate, 0) {
		return fmt.Errorf("rate %v: must be zero or a positive number", opts.Rate)
	}
	if opts.Concurrency < 0 {
		return fmt.Errorf("concurrency %d: must be zero or positive", opts.Concurrency)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Duration <= 0 || opts.Duration > MaxDuration {
		return fmt.Errorf("duration %v: must be positive and at most %v", opts.Duration, MaxDuration)
	}
	if opts.MaxRequests < 0 {
		return fmt.Errorf("max requests %d: must be zero or positive", opts.MaxRequests)
	}
	return nil
}

// stripFragment returns u without its fragment, if any.
func stripFragment(u string) string {
	u, _, _ = strings.Cut(u, "#")
	return u
}
