package sim

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// SenderType is the kind of number a message is sent from, which sets its
// default throughput.
type SenderType string

// Sender types and their default throughput, in message segments per
// second, as Twilio gives them in the US.
const (
	LongCode  SenderType = "long-code"  // 1 segment/s
	TollFree  SenderType = "toll-free"  // 3 segments/s
	ShortCode SenderType = "short-code" // 100 segments/s
)

// DefaultThroughput returns the segments per second a sender of type t
// sends when its number does not say.
func (t SenderType) DefaultThroughput() float64 {
	switch t {
	case TollFree:
		return 3
	case ShortCode:
		return 100
	default:
		return 1
	}
}

// Defaults of Config.
const (
	DefaultQueueLimit       = 10 * time.Hour // Twilio's backlog limit per sender
	DefaultValidityPeriod   = 36000 * time.Second
	DefaultConcurrencyLimit = 100 // REST requests in flight per account
	DefaultHomeRegion       = "us1"
)

// Config describes a simulated Twilio: its accounts and numbers, what the
// carriers do with messages, and how status callbacks misbehave. The koanf
// tags are the keys of `switchboard sim serve`'s TOML file.
type Config struct {
	// Seed makes the simulator deterministic: SIDs, carrier outcomes and
	// latencies are drawn from a source seeded with it, so the same seed
	// and the same sequence of requests give the same results.
	Seed int64 `koanf:"seed"`
	// Accounts are the accounts the REST API authenticates and whose
	// numbers send and receive.
	Accounts []Account `koanf:"accounts"`
	// Carriers decide each message's fate by destination prefix: the rule
	// with the longest matching Prefix applies, "" matching every number.
	// With no rule, every message is delivered after 1 s (median).
	Carriers []Carrier `koanf:"carriers"`
	// Callbacks are the knobs that make status callbacks arrive late,
	// out of order or twice, as Twilio's do.
	Callbacks Callbacks `koanf:"callbacks"`
	// ConcurrencyLimit is how many REST requests of one account may be in
	// flight at once; one more is answered 429 with code 20429. Default
	// DefaultConcurrencyLimit.
	ConcurrencyLimit int `koanf:"concurrency_limit"`
	// APILatency is how long each REST request takes to process, holding
	// its place in the concurrency limit. Zero answers at once.
	APILatency time.Duration `koanf:"api_latency"`
	// QueueLimit is the most backlog a sender may have: a message that
	// would wait longer is refused with 21611 (From) or failed with 30001
	// (Messaging Service). Default DefaultQueueLimit.
	QueueLimit time.Duration `koanf:"queue_limit"`
	// HomeRegion is sent as X-Home-Region. Default "us1".
	HomeRegion string `koanf:"home_region"`
	// Tunnels map public URL prefixes to where requests for them are really
	// sent, as a reverse proxy or tunnel would: a webhook for
	// https://hooks.example.com/sms is signed for that URL and sent to
	// http://127.0.0.1:8080/sms when Tunnels has
	// "https://hooks.example.com" = "http://127.0.0.1:8080".
	Tunnels map[string]string `koanf:"tunnels"`
	// Transport, when set, carries every webhook instead of a TCP
	// connection per origin; tests use it to stay in process. Connect
	// timeouts (#ct) apply only without it.
	Transport http.RoundTripper `koanf:"-"`
}

// Account is a Twilio account.
type Account struct {
	SID string `koanf:"sid"` // AC followed by 32 hex digits
	// AuthTokens authenticate REST requests; the first signs webhooks. Two
	// are valid at once during a rotation.
	AuthTokens []string `koanf:"auth_tokens"`
	// Numbers are the numbers the account owns.
	Numbers []Number `koanf:"numbers"`
	// Services are the account's Messaging Services.
	Services []Service `koanf:"services"`
	// OptOuts are numbers that have already replied STOP.
	OptOuts []string `koanf:"opt_outs"`
	// DebuggerURL is the Console's "Debugger webhook" URL: when set, each
	// alert of the account's debugger log is also POSTed there as Twilio
	// sends it (see debuggerhook.go), signed with the first auth token.
	DebuggerURL string `koanf:"debugger_url"`
}

// Number is a phone number (or short code) an account owns, with its
// webhooks.
type Number struct {
	Number string     `koanf:"number"` // E.164, or 5–6 digits for a short code
	Type   SenderType `koanf:"type"`   // default long-code
	// Throughput is the segments per second the number sends; default its
	// type's.
	Throughput float64 `koanf:"throughput"`

	SMSURL              string `koanf:"sms_url"`
	SMSMethod           string `koanf:"sms_method"` // POST (default) or GET
	SMSFallbackURL      string `koanf:"sms_fallback_url"`
	SMSFallbackMethod   string `koanf:"sms_fallback_method"`
	VoiceURL            string `koanf:"voice_url"`
	VoiceMethod         string `koanf:"voice_method"`
	VoiceFallbackURL    string `koanf:"voice_fallback_url"`
	VoiceFallbackMethod string `koanf:"voice_fallback_method"`
}

// Service is a Messaging Service: a pool of the account's numbers.
type Service struct {
	SID     string   `koanf:"sid"`     // MG followed by 32 hex digits
	Numbers []string `koanf:"numbers"` // owned numbers in the pool
	// StatusCallback receives the status callbacks of the service's
	// messages that name none of their own.
	StatusCallback string `koanf:"status_callback"`
	// Sticky sends every message to one recipient from the same number.
	Sticky bool `koanf:"sticky"`
}

// Carrier is what the carriers do with messages to numbers starting with
// Prefix.
type Carrier struct {
	Prefix string `koanf:"prefix"` // such as "+44"; "" for every number
	// Latency is from sent to the delivery receipt.
	Latency Latency `koanf:"latency"`
	// Outcomes are the failures, each with the share of messages it
	// befalls; the rest are delivered.
	Outcomes []Outcome `koanf:"outcomes"`
}

// Outcome is one way a message fails.
type Outcome struct {
	Status string  `koanf:"status"` // "undelivered" (reached the carrier) or "failed" (never sent)
	Code   int     `koanf:"code"`   // such as 30003, 30005, 30006, 30007, 30008
	Rate   float64 `koanf:"rate"`   // share of messages, 0–1
}

// Latency is a log-normal distribution of delays, given by its median and
// 99th percentile. With P99 at or below Median every delay is Median.
type Latency struct {
	Median time.Duration `koanf:"median"`
	P99    time.Duration `koanf:"p99"`
}

// Callbacks make status callbacks misbehave the way Twilio's do.
type Callbacks struct {
	// Delay is from a status change to its callback being sent.
	Delay Latency `koanf:"delay"`
	// ReorderRate is the share of callbacks held back by ReorderBy, so
	// that the next status's callback overtakes them.
	ReorderRate float64       `koanf:"reorder_rate"`
	ReorderBy   time.Duration `koanf:"reorder_by"` // default 2 s
	// DuplicateRate is the share of callbacks sent a second time, as a new
	// request (a fresh I-Twilio-Idempotency-Token), DuplicateAfter later.
	DuplicateRate  float64       `koanf:"duplicate_rate"`
	DuplicateAfter time.Duration `koanf:"duplicate_after"` // default 1 s
}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-f]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-f]{32}$`)
)

// clone returns a copy of c that shares no slice or map with it.
func (c Config) clone() Config {
	c.Accounts = slices.Clone(c.Accounts)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		a.AuthTokens = slices.Clone(a.AuthTokens)
		a.Numbers = slices.Clone(a.Numbers)
		a.OptOuts = slices.Clone(a.OptOuts)
		a.Services = slices.Clone(a.Services)
		for j := range a.Services {
			a.Services[j].Numbers = slices.Clone(a.Services[j].Numbers)
		}
	}
	c.Carriers = slices.Clone(c.Carriers)
	for i := range c.Carriers {
		c.Carriers[i].Outcomes = slices.Clone(c.Carriers[i].Outcomes)
	}
	c.Tunnels = maps.Clone(c.Tunnels)
	return c
}

// validate fills in defaults and rejects a configuration the simulator
// cannot run.
func (c *Config) validate() error {
	if c.ConcurrencyLimit == 0 {
		c.ConcurrencyLimit = DefaultConcurrencyLimit
	}
	if c.ConcurrencyLimit < 0 {
		return fmt.Errorf("concurrency_limit %d: must be positive", c.ConcurrencyLimit)
	}
	if c.QueueLimit == 0 {
		c.QueueLimit = DefaultQueueLimit
	}
	if c.HomeRegion == "" {
		c.HomeRegion = DefaultHomeRegion
	}
	if c.Callbacks.ReorderBy == 0 {
		c.Callbacks.ReorderBy = 2 * time.Second
	}
	if c.Callbacks.DuplicateAfter == 0 {
		c.Callbacks.DuplicateAfter = time.Second
	}
	if err := checkRate("callbacks.reorder_rate", c.Callbacks.ReorderRate); err != nil {
		return err
	}
	if err := checkRate("callbacks.duplicate_rate", c.Callbacks.DuplicateRate); err != nil {
		return err
	}
	if len(c.Accounts) == 0 {
		return errors.New("no accounts: the simulator needs at least one")
	}
	owners := map[string]string{}
	for i := range c.Accounts {
		if err := c.Accounts[i].validate(owners); err != nil {
			return err
		}
	}
	for _, cr := range c.Carriers {
		total := 0.0
		for _, o := range cr.Outcomes {
			if o.Status != "undelivered" && o.Status != "failed" {
				return fmt.Errorf("carrier %q: outcome status %q: want undelivered or failed", cr.Prefix, o.Status)
			}
			if err := checkRate(fmt.Sprintf("carrier %q outcome %d", cr.Prefix, o.Code), o.Rate); err != nil {
				return err
			}
			total += o.Rate
		}
		if total > 1 {
			return fmt.Errorf("carrier %q: outcome rates add up to %v, over 1", cr.Prefix, total)
		}
	}
	for public, local := range c.Tunnels {
		for _, raw := range []string{public, local} {
			if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("tunnel %q = %q: both sides must be http(s) URLs", public, local)
			}
		}
	}
	return nil
}

func (a *Account) validate(owners map[string]string) error {
	if !accountSIDPattern.MatchString(a.SID) {
		return fmt.Errorf("account %q: SID must be AC followed by 32 lowercase hex digits", a.SID)
	}
	if len(a.AuthTokens) == 0 || a.AuthTokens[0] == "" {
		return fmt.Errorf("account %s: no auth token", a.SID)
	}
	if a.DebuggerURL != "" {
		if u, err := url.Parse(a.DebuggerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("account %s: debugger_url %q: want an http(s) URL", a.SID, a.DebuggerURL)
		}
	}
	for i := range a.Numbers {
		n := &a.Numbers[i]
		if !twilio.IsSender(n.Number) {
			return fmt.Errorf("account %s: number %q is neither E.164 nor a short code", a.SID, n.Number)
		}
		if prev, ok := owners[n.Number]; ok {
			return fmt.Errorf("number %s is owned by both %s and %s", n.Number, prev, a.SID)
		}
		owners[n.Number] = a.SID
		switch n.Type {
		case "":
			n.Type = LongCode
			if twilio.IsShortCode(n.Number) {
				n.Type = ShortCode
			}
		case LongCode, TollFree, ShortCode:
		default:
			return fmt.Errorf("number %s: type %q: want long-code, toll-free or short-code", n.Number, n.Type)
		}
		if n.Throughput == 0 {
			n.Throughput = n.Type.DefaultThroughput()
		}
		if n.Throughput < 0 || math.IsNaN(n.Throughput) || math.IsInf(n.Throughput, 0) {
			return fmt.Errorf("number %s: throughput %v: must be positive", n.Number, n.Throughput)
		}
		for _, m := range []*string{&n.SMSMethod, &n.SMSFallbackMethod, &n.VoiceMethod, &n.VoiceFallbackMethod} {
			*m = strings.ToUpper(*m)
			if *m == "" {
				*m = http.MethodPost
			}
			if *m != http.MethodPost && *m != http.MethodGet {
				return fmt.Errorf("number %s: method %q: want POST or GET", n.Number, *m)
			}
		}
	}
	for _, s := range a.Services {
		if !serviceSIDPattern.MatchString(s.SID) {
			return fmt.Errorf("account %s: service %q: SID must be MG followed by 32 lowercase hex digits", a.SID, s.SID)
		}
		if len(s.Numbers) == 0 {
			return fmt.Errorf("service %s: no numbers in its pool", s.SID)
		}
		for _, num := range s.Numbers {
			if owners[num] != a.SID {
				return fmt.Errorf("service %s: number %s is not the account's", s.SID, num)
			}
		}
	}
	return nil
}

func checkRate(name string, r float64) error {
	if r < 0 || r > 1 || math.IsNaN(r) {
		return fmt.Errorf("%s %v: must be between 0 and 1", name, r)
	}
	return nil
}

// errorCode is the Twilio code of an outcome, for the REST shapes.
func (o Outcome) errorCode() twilio.Code { return twilio.Code(o.Code) }
