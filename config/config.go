// Package config loads Switchboard's configuration from a TOML file with
// SWITCHBOARD_* environment overrides, fills in defaults and validates it.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/configkeys"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Config is the whole configuration. The koanf tags are the TOML keys.
type Config struct {
	Listen    string    `koanf:"listen"`
	PublicURL string    `koanf:"public_url"`
	Log       Log       `koanf:"log"`
	Storage   Storage   `koanf:"storage"`
	Admin     Admin     `koanf:"admin"`
	Ingest    Ingest    `koanf:"ingest"`
	Delivery  Delivery  `koanf:"delivery"`
	Doctor    Doctor    `koanf:"doctor"`
	Outbound  Outbound  `koanf:"outbound"`
	Egress    Egress    `koanf:"egress"`
	Retention Retention `koanf:"retention"`
	Accounts  []Account `koanf:"accounts"`
	Routes    []Route   `koanf:"routes"`
	// Providers and Pools configure outbound messaging; with no pool,
	// Switchboard sends nothing.
	Providers []Provider `koanf:"providers"`
	Pools     []Pool     `koanf:"pools"`
	// Alerting, Alerts and Notifiers say what Switchboard watches and who
	// it tells (see config/alerts.go and config/notifiers.go).
	Alerting  Alerting   `koanf:"alerting"`
	Alerts    []Alert    `koanf:"alerts"`
	Notifiers []Notifier `koanf:"notifiers"`
	// TLS makes serve terminate TLS itself (see config/tls.go).
	TLS TLS `koanf:"tls"`
	// Listeners give listeners (switchboard listen) keys of their own
	// (see config/listeners.go).
	Listeners []Listener `koanf:"listeners"`
}

// Log configures logging.
type Log struct {
	Level string `koanf:"level"` // debug, info, warn, error
}

// Storage selects the store.
type Storage struct {
	// URL is a SQLite file path (the default engine) or a postgres:// URL.
	URL string `koanf:"url"`
	// IntegrityCheck is the check a SQLite database passes before it is
	// used: "quick" (PRAGMA quick_check), "full" (PRAGMA integrity_check)
	// or "off". A damaged database is refused. Ignored for PostgreSQL.
	IntegrityCheck string `koanf:"integrity_check"`
}

// IsPostgres reports whether the storage URL names PostgreSQL.
func (s Storage) IsPostgres() bool {
	return strings.HasPrefix(s.URL, "postgres://") || strings.HasPrefix(s.URL, "postgresql://")
}

// Admin configures the admin API.
type Admin struct {
	// Token is the bearer token for /api/v1. Empty disables the API: it
	// answers 401 to everything (fail closed).
	Token string `koanf:"token"`
	// Redact hides what can identify a person in the admin API: request
	// bodies (numbers, message text), query strings and response excerpts.
	Redact bool `koanf:"redact"`
	// Console serves the web console at /console/ (default true); it
	// signs in with Token, so without one nobody can sign in.
	Console bool `koanf:"console"`
	// SessionTTL is how long a console sign-in lasts (default 12h).
	SessionTTL time.Duration `koanf:"session_ttl"`
	// DashboardInterval is how often the dashboard's per-minute
	// aggregates are brought up to date (default 1m): its newest figures
	// are at most that far behind. Each pass reads the last few minutes'
	// rows again, so a shorter interval costs more.
	DashboardInterval time.Duration `koanf:"dashboard_interval"`
	// Listen, when set, serves the admin API, the console and /metrics
	// on their own address, and the public listener carries only
	// webhooks (and /healthz, /readyz for load balancers).
	Listen string `koanf:"listen"`
	// SimulatorURL, when set, is a Twilio simulator (switchboard sim) the
	// console's phone sends inbound messages and calls through, to act as
	// a handset in local work; switchboard dev sets it. Empty: no phone.
	SimulatorURL string `koanf:"simulator_url"`
}

// ExampleAdminToken is the admin token switchboard.example.toml ships
// with: known to everyone who has read the example, so no secret.
const ExampleAdminToken = "change-me"

// Ingest bounds webhook intake.
type Ingest struct {
	// MaxBodyBytes refuses larger bodies with 413. The default, 64 KiB,
	// holds any webhook Twilio sends: a 1600-character message of 4-byte
	// characters with ten media URLs is under 25 KiB form-encoded.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// MaxBodyMemory bounds the body bytes of all webhooks held in memory
	// at once; past it a request waits up to a second, then gets 503.
	MaxBodyMemory int64 `koanf:"max_body_memory"`
	// BodyReadTimeout bounds the reading of one webhook body.
	BodyReadTimeout time.Duration `koanf:"body_read_timeout"`
	// RecordPerSecond and RecordPerSource bound the rejected requests,
	// and separately the duplicates, recorded per second, in all and from
	// one source address (after a burst of 5); the rest are only counted.
	RecordPerSecond float64       `koanf:"record_per_second"`
	RecordPerSource float64       `koanf:"record_per_source"`
	AckTimeout      time.Duration `koanf:"ack_timeout"` // longest wait for storage before answering 503
	QueueSize       int           `koanf:"queue_size"`  // requests waiting for a group commit
	MaxBatch        int           `koanf:"max_batch"`   // requests in one commit
	// TrustForwarded takes the public URL's scheme and host from
	// X-Forwarded-Proto/Host when public_url is empty. Only for a trusted
	// proxy that overwrites those headers.
	TrustForwarded bool `koanf:"trust_forwarded"`
}

// Delivery configures forwarding to the app. Routes may override the retry
// limits.
type Delivery struct {
	// Enabled false makes this process store webhooks (and take messages)
	// but deliver and send nothing: the events and messages wait in the
	// store for a process that does. For an intake-only replica, or to
	// measure intake alone.
	Enabled        bool          `koanf:"enabled"`
	Workers        int           `koanf:"workers"`
	PollInterval   time.Duration `koanf:"poll_interval"`
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	Timeout        time.Duration `koanf:"timeout"` // whole attempt, connect included
	MaxAttempts    int           `koanf:"max_attempts"`
	MaxAge         time.Duration `koanf:"max_age"`
	BackoffBase    time.Duration `koanf:"backoff_base"`
	BackoffMax     time.Duration `koanf:"backoff_max"`
	// Breaker opens a target's circuit after BreakerFailures consecutive
	// failures and keeps it open for BreakerOpenFor before one trial.
	BreakerFailures int           `koanf:"breaker_failures"`
	BreakerOpenFor  time.Duration `koanf:"breaker_open_for"`
}

// Doctor configures route checks.
type Doctor struct {
	// CheckAtStartup probes every route's target when serve starts and logs
	// what Twilio would make of it. Off by default: a probe is a realistic,
	// correctly signed webhook, and an app may act on it (reply, store it).
	CheckAtStartup bool `koanf:"check_at_startup"`
	// AllowPrivate lets POST /api/v1/doctor probe any address, internal
	// ones included. Off by default: a probe reports what answered
	// (status, headers, timing, TLS), so an API caller could map the
	// private network with it. Route checks are not limited by it.
	AllowPrivate bool `koanf:"allow_private"`
}

// Egress limits where Switchboard connects for URLs API callers choose:
// status webhooks and probes of the doctor endpoint.
type Egress struct {
	// Allow lists CIDR prefixes of internal addresses (loopback, private,
	// link-local, CGNAT…) those URLs may reach anyway, such as
	// ["127.0.0.0/8", "::1/128"] for an app on the same machine during
	// local development. Empty (default): none.
	Allow []string `koanf:"allow"`
}

// Retention says how long stored data is kept, by kind (see
// switchboard.PruneKind), and how it is pruned. A retention of 0 keeps
// that kind forever. Events' and messages' retentions are their
// deduplication windows, and so at least switchboard.MinRetention.
type Retention struct {
	Rejected      time.Duration `koanf:"rejected"`       // rejected requests, by when received
	Delivered     time.Duration `koanf:"delivered"`      // delivered events, by when delivered
	Dead          time.Duration `koanf:"dead"`           // dead events, by when they died
	Messages      time.Duration `koanf:"messages"`       // outbound messages no longer being sent, by their last change
	StickySenders time.Duration `koanf:"sticky_senders"` // a recipient's sender, by its last message
	Interval      time.Duration `koanf:"interval"`       // from one pruning run's end to the next's start
	BatchSize     int           `koanf:"batch_size"`     // most items deleted per transaction
}

// Policy is the retention of each kind.
func (r Retention) Policy() switchboard.Retention {
	return switchboard.Retention{Rejected: r.Rejected, Delivered: r.Delivered, Dead: r.Dead,
		Messages: r.Messages, StickySenders: r.StickySenders}
}

// Outbound configures the sending of outbound messages.
type Outbound struct {
	// StatusRoute is the path of a [[routes]] entry; its public URL
	// (public_url + path) is the StatusCallback of every message sent.
	// Empty sends no StatusCallback, and messages are tracked only until
	// Twilio accepts them.
	StatusRoute string `koanf:"status_route"`
	SendWorkers int    `koanf:"send_workers"` // concurrent sends per process
	MaxAttempts int    `koanf:"max_attempts"` // requests to Twilio before a message fails
	// MaxAge is how long a message may wait to be sent (since it was
	// created or replayed) before it fails as expired (30036), a dead
	// letter that can be replayed.
	MaxAge time.Duration `koanf:"max_age"`
	// DedupWindow, when set, makes a Twilio-compatible create without an
	// idempotency header the same message as an identical create of the
	// same account within the window. Zero (default) is Twilio's own
	// behaviour: two identical creates are two messages.
	DedupWindow time.Duration `koanf:"dedup_window"`
}

// Provider is an upstream Twilio REST API that outbound messages are sent
// through.
type Provider struct {
	Name    string `koanf:"name"`
	BaseURL string `koanf:"base_url"` // default twilio.DefaultBaseURL
	// Account is the SID of an [[accounts]] entry; its first auth token
	// authenticates the REST requests.
	Account         string        `koanf:"account"`
	ConnectTimeout  time.Duration `koanf:"connect_timeout"`  // TCP connect and TLS handshake, each
	ResponseTimeout time.Duration `koanf:"response_timeout"` // from the request written to the response headers
}

// Pool is a set of senders of one provider that share a message stream.
// Every pool keeps a recipient on the sender it first had (Sticky Sender).
type Pool struct {
	Name     string   `koanf:"name"`
	Provider string   `koanf:"provider"` // a [[providers]] name
	Senders  []string `koanf:"senders"`  // E.164 numbers, short codes or Messaging Service SIDs (MG…)
	Rate     float64  `koanf:"rate"`     // segments per second per sender
	// Purposes are the purposes the pool serves, for messages that name no
	// pool; default all of them.
	Purposes []string `koanf:"purposes"`
	// BrownoutDelay pauses the pool's marketing sends while its OTP and
	// transactional sends are later than this, until they are no later
	// than half of it (outbound.Pool.BrownoutDelay); zero (default) never
	// pauses marketing.
	BrownoutDelay time.Duration `koanf:"brownout_delay"`
}

// Account is a Twilio account whose webhooks Switchboard checks.
type Account struct {
	SID string `koanf:"sid"`
	// AuthTokens: every token is accepted on intake (two during rotation);
	// the first signs requests forwarded to the app.
	AuthTokens []string `koanf:"auth_tokens"`
	// APIKeys authenticate the Twilio-compatible API as this account
	// (HTTP Basic auth: the key's SID and secret), as Twilio's API keys
	// do; several at once during a rotation.
	APIKeys []APIKey `koanf:"api_keys"`
}

// APIKey is a Twilio API key: its SID (SK…) and secret.
type APIKey struct {
	SID    string `koanf:"sid"`
	Secret string `koanf:"secret"`
}

// Route is one webhook URL path and where its events go.
type Route struct {
	Path    string `koanf:"path"`    // exact path
	Account string `koanf:"account"` // account SID
	Mode    string `koanf:"mode"`    // ack, proxy or static
	Target  string `koanf:"target"`  // the app's URL; optional for static and debugger routes
	// Kind forces the event kind; "auto" (default) classifies each request.
	Kind string `koanf:"kind"`
	// TwiML is the answer to messages and voice in ack mode, the fallback
	// in proxy mode, and the answer to everything in static mode.
	TwiML       string        `koanf:"twiml"`
	MaxAttempts int           `koanf:"max_attempts"` // 0: delivery.max_attempts
	MaxAge      time.Duration `koanf:"max_age"`      // 0: delivery.max_age

	// Budget is how long proxy mode waits for the app's answer before
	// Twilio gets the fallback TwiML. 0: 3 s for calls, 5 s for the rest.
	Budget time.Duration `koanf:"budget"`
	// RedeliverOn lists the failures after which a proxied event is
	// delivered again asynchronously (see RedeliverClasses). Default: the
	// failures in which the app never received the request (connect, dns,
	// tls).
	RedeliverOn []string `koanf:"redeliver_on"`
	// MaxInFlight bounds the proxied requests in flight to the target; past
	// it Twilio gets the fallback at once and the event is delivered
	// asynchronously. Default 64.
	MaxInFlight int `koanf:"max_in_flight"`
	// Listener, instead of Target, names the listener (switchboard
	// listen) the route's events go through: they wait while none of that
	// name is connected (see config/listeners.go).
	Listener string `koanf:"listener"`
}

// Modes a route can have.
const (
	// ModeAck stores the request, answers Twilio at once and delivers to
	// the app asynchronously.
	ModeAck = "ack"
	// ModeProxy stores the request and forwards it at once, passing the
	// app's answer to Twilio when Twilio would accept it, the route's
	// fallback TwiML otherwise.
	ModeProxy = "proxy"
	// ModeStatic stores the request and answers the route's TwiML to every
	// request, with no dependency on any app: a canary.
	ModeStatic = "static"
)

// MaxBudget is the longest proxy budget: Twilio gives up on a webhook after
// 15 s, and the fallback must reach it before that.
const MaxBudget = 14 * time.Second

// RedeliverClasses are the failures redeliver_on may name: the error
// classes of package twilio, and 4xx or 5xx for an answer with such a
// status.
var RedeliverClasses = []string{"connect", "dns", "tls", "timeout", "protocol", "4xx", "5xx", "3xx", "too-large", "content-type", "parse"}

// DefaultRedeliverOn are the failures in which the app never received the
// request, so delivering it again cannot process it twice.
var DefaultRedeliverOn = []string{"connect", "dns", "tls"}

// Default returns the configuration used where the file and environment are
// silent.
func Default() Config {
	return Config{
		Listen:   "127.0.0.1:8080",
		Log:      Log{Level: "info"},
		Storage:  Storage{URL: "switchboard-data/switchboard.db", IntegrityCheck: "quick"},
		Admin:    Admin{Console: true, SessionTTL: 12 * time.Hour, DashboardInterval: time.Minute},
		Alerting: Alerting{Enabled: true, Defaults: true, Interval: 30 * time.Second, RunbookBase: switchboard.RunbooksURL},
		Ingest: Ingest{
			MaxBodyBytes:    64 << 10,
			MaxBodyMemory:   32 << 20,
			BodyReadTimeout: 10 * time.Second,
			RecordPerSecond: 20,
			RecordPerSource: 1,
			AckTimeout:      5 * time.Second,
			QueueSize:       8192,
			MaxBatch:        512,
		},
		Delivery: Delivery{
			Enabled:         true,
			Workers:         64,
			PollInterval:    50 * time.Millisecond,
			ConnectTimeout:  5 * time.Second,
			Timeout:         15 * time.Second,
			MaxAttempts:     25,
			MaxAge:          72 * time.Hour,
			BackoffBase:     time.Second,
			BackoffMax:      10 * time.Minute,
			BreakerFailures: 5,
			BreakerOpenFor:  30 * time.Second,
		},
		Outbound: Outbound{SendWorkers: 256, MaxAttempts: 8, MaxAge: 24 * time.Hour},
		// About 30 days of traffic, 90 of what an operator may want to
		// look into or replay: bounded, whatever the uptime.
		Retention: Retention{
			Rejected:      7 * 24 * time.Hour,
			Delivered:     30 * 24 * time.Hour,
			Dead:          90 * 24 * time.Hour,
			Messages:      90 * 24 * time.Hour,
			StickySenders: 180 * 24 * time.Hour,
			Interval:      time.Minute,
			BatchSize:     500,
		},
	}
}

// EnvPrefix starts every environment override.
const EnvPrefix = "SWITCHBOARD_"

// Load reads the TOML file at path (none when path is empty) over the
// defaults, then SWITCHBOARD_* variables from environ over that. A variable
// names a key with dots written as underscores: SWITCHBOARD_STORAGE_URL sets
// storage.url, SWITCHBOARD_PUBLIC_URL sets public_url. Variables that name no
// key are an error, so a typo does not pass silently.
func Load(path string, environ []string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(structs.Provider(Default(), "koanf"), nil); err != nil {
		return nil, fmt.Errorf("load defaults: %w", err)
	}
	if path != "" {
		if err := loadFile(k, path); err != nil {
			return nil, err
		}
	}
	keys := envKeys()
	var unknown []string
	envProvider := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			if notConfig(name) {
				return "", nil
			}
			key, ok := keys[strings.ToLower(strings.TrimPrefix(name, EnvPrefix))]
			if !ok {
				unknown = append(unknown, name)
				return "", nil
			}
			if listKeys[key] {
				return "", nil
			}
			if stringLists[key] {
				return key, strings.Split(value, ",")
			}
			return key, value
		},
	})
	if err := k.Load(envProvider, nil); err != nil {
		return nil, fmt.Errorf("load environment: %w", err)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown environment variables %s", strings.Join(unknown, ", "))
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	c.applyRouteDefaults()
	c.applyOutboundDefaults()
	c.applyNotifierDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// loadFile loads the TOML file at path over k, refusing keys that name no
// field of Config, and resolves the relative paths the file's settings
// (and defaults) hold against the file's directory.
func loadFile(k *koanf.Koanf, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	tree, err := toml.Parser().Unmarshal(raw)
	if err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	// Fails closed: a misspelt key would otherwise leave its setting at
	// the default without a word, such as a [[route]] that routes nothing.
	if err := configkeys.Check(tree, reflect.TypeFor[Config]()); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := k.Load(tomlTree(tree), nil); err != nil {
		return fmt.Errorf("load config %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if u := k.String("storage.url"); isRelativePath(u) {
		if err := k.Set("storage.url", filepath.Join(dir, u)); err != nil {
			return fmt.Errorf("config %s: storage.url: %w", path, err)
		}
	}
	return nil
}

// isRelativePath reports whether a storage URL is a relative SQLite file
// path, which a configuration file's directory anchors.
func isRelativePath(storageURL string) bool {
	s := Storage{URL: storageURL}
	return storageURL != "" && !s.IsPostgres() && !filepath.IsAbs(storageURL)
}

// tomlTree is a parsed TOML document as a koanf provider.
type tomlTree map[string]any

func (t tomlTree) Read() (map[string]any, error) { return t, nil }

func (t tomlTree) ReadBytes() ([]byte, error) {
	return nil, errors.New("a parsed TOML document has no bytes")
}

// listKeys are the keys of lists of tables, which come from the file only.
var listKeys = map[string]bool{"accounts": true, "routes": true, "providers": true, "pools": true, "alerts": true, "notifiers": true}

// stringLists are the keys of lists of strings outside those tables, which
// a variable sets as a comma-separated list.
var stringLists = map[string]bool{"egress.allow": true, "tls.acme.domains": true}

// notConfig reports whether a SWITCHBOARD_ variable is not a config key:
// the config file's own path and the test suite's settings.
func notConfig(name string) bool {
	return name == EnvPrefix+"CONFIG" || strings.HasPrefix(name, EnvPrefix+"TEST_")
}

// envKeys maps each scalar key, dots written as underscores, to its dotted
// form: "storage_url" → "storage.url".
func envKeys() map[string]string {
	keys := map[string]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := prefix + f.Tag.Get("koanf")
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, name+".")
				continue
			}
			keys[strings.ReplaceAll(name, ".", "_")] = name
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

func (c *Config) applyRouteDefaults() {
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Mode == "" {
			r.Mode = ModeAck
		}
		if r.Kind == "" {
			r.Kind = "auto"
		}
		if r.TwiML == "" {
			r.TwiML = "<Response/>"
		}
		if r.MaxAttempts == 0 {
			r.MaxAttempts = c.Delivery.MaxAttempts
		}
		if r.MaxAge == 0 {
			r.MaxAge = c.Delivery.MaxAge
		}
		if r.RedeliverOn == nil {
			r.RedeliverOn = DefaultRedeliverOn
		}
		if r.MaxInFlight == 0 {
			r.MaxInFlight = 64
		}
	}
}

// Defaults of [[providers]] entries.
const (
	DefaultProviderBaseURL  = "https://api.twilio.com"
	DefaultProviderConnect  = 5 * time.Second
	DefaultProviderResponse = 15 * time.Second
)

func (c *Config) applyOutboundDefaults() {
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.BaseURL == "" {
			p.BaseURL = DefaultProviderBaseURL
		}
		if p.ConnectTimeout == 0 {
			p.ConnectTimeout = DefaultProviderConnect
		}
		if p.ResponseTimeout == 0 {
			p.ResponseTimeout = DefaultProviderResponse
		}
	}
	for i := range c.Pools {
		p := &c.Pools[i]
		if p.Purposes == nil {
			for _, pu := range switchboard.Purposes {
				p.Purposes = append(p.Purposes, string(pu))
			}
		}
	}
}

// validateOutbound adds the problems of [outbound], [[providers]] and
// [[pools]] to bad; accounts and paths are the SIDs and route paths
// configured.
// maxPoolRate is the highest rate a pool may pace a sender at, in segments
// per second.
const maxPoolRate = 10000.0

func (c *Config) validateOutbound(bad func(string, ...any), accounts, paths map[string]bool) {
	o := c.Outbound
	if o.SendWorkers <= 0 {
		bad("outbound.send_workers: must be positive")
	}
	if o.MaxAttempts <= 0 {
		bad("outbound.max_attempts: must be positive")
	}
	if o.MaxAge <= 0 {
		bad("outbound.max_age: must be positive")
	}
	// A derived key is remembered only while its message is stored, and a
	// message may be pruned once switchboard.MinRetention has passed: a
	// longer window would promise what retention does not keep.
	if o.DedupWindow < 0 || o.DedupWindow > switchboard.MinRetention {
		bad("outbound.dedup_window: %v must be from 0 (off: every create without an idempotency header is a message) to %v", o.DedupWindow, switchboard.MinRetention)
	}
	if o.StatusRoute != "" {
		if !paths[o.StatusRoute] {
			bad("outbound.status_route %q: not the path of a [[routes]] entry", o.StatusRoute)
		}
		if c.PublicURL == "" {
			bad("outbound.status_route: needs public_url, the base of the StatusCallback URL")
		}
	}
	providers := map[string]bool{}
	for i, p := range c.Providers {
		if p.Name == "" {
			bad("providers[%d].name: required", i)
		} else if providers[p.Name] {
			bad("providers[%d].name %q: listed twice", i, p.Name)
		}
		providers[p.Name] = true
		if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			bad("providers[%d].base_url %q: want an absolute http(s) URL without query", i, p.BaseURL)
		}
		if !accounts[p.Account] {
			bad("providers[%d].account %q: not in [[accounts]]", i, p.Account)
		}
		if p.ConnectTimeout <= 0 || p.ResponseTimeout <= 0 {
			bad("providers[%d].connect_timeout and response_timeout: must be positive", i)
		}
	}
	pools := map[string]bool{}
	senders := map[string]int{} // sender → index of its pool
	for i, p := range c.Pools {
		if p.Name == "" {
			bad("pools[%d].name: required", i)
		} else if pools[p.Name] {
			bad("pools[%d].name %q: listed twice", i, p.Name)
		}
		pools[p.Name] = true
		if !providers[p.Provider] {
			bad("pools[%d].provider %q: not in [[providers]]", i, p.Provider)
		}
		if len(p.Senders) == 0 {
			bad("pools[%d].senders: at least one sender is required", i)
		}
		for _, n := range p.Senders {
			if !twilio.IsSender(n) && !twilio.IsServiceSID(n) {
				bad("pools[%d].senders: %q is neither an E.164 number (+15551234567), a short code nor a Messaging Service SID (MG…)", i, n)
			}
			if j, ok := senders[n]; ok && j != i {
				bad("pools[%d].senders: %q is also in pools[%d]: a sender belongs to one pool", i, n, j)
			} else if ok {
				bad("pools[%d].senders: %q listed twice", i, n)
			}
			senders[n] = i
		}
		// Bounded above too: an infinite rate would be a turn interval of
		// nothing, which the shared turns of replicas refuse (every send
		// would fail), and no carrier takes more than this from one sender.
		if !(p.Rate > 0) || p.Rate > maxPoolRate {
			bad("pools[%d].rate: must be positive and at most %v (segments per second per sender)", i, maxPoolRate)
		}
		if p.BrownoutDelay < 0 {
			bad("pools[%d].brownout_delay: must not be negative (0 never pauses marketing)", i)
		}
		if len(p.Purposes) == 0 {
			bad("pools[%d].purposes: at least one purpose is required (or leave it out for all)", i)
		}
		for _, pu := range p.Purposes {
			if !switchboard.Purpose(pu).Valid() {
				bad("pools[%d].purposes: %q is not one of %v", i, pu, switchboard.Purposes)
			}
		}
	}
}

// Validate reports every problem in the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Listen == "" {
		bad("listen: required")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("public_url %q: want an absolute http(s) URL", c.PublicURL)
		} else if u.RawQuery != "" || u.Fragment != "" {
			bad("public_url %q: must not carry a query or fragment", c.PublicURL)
		}
	} else if !c.Ingest.TrustForwarded && len(c.Routes) > 0 {
		bad("public_url: required to check signatures (or set ingest.trust_forwarded behind a trusted proxy)")
	}
	if c.Storage.URL == "" {
		bad("storage.url: required")
	}
	switch c.Storage.IntegrityCheck {
	case "quick", "full", "off":
	default:
		bad("storage.integrity_check %q: want \"quick\", \"full\" or \"off\"", c.Storage.IntegrityCheck)
	}
	if c.Ingest.MaxBodyBytes <= 0 {
		bad("ingest.max_body_bytes: must be positive")
	}
	if c.Admin.Console && (c.Admin.SessionTTL < time.Minute || c.Admin.SessionTTL > 30*24*time.Hour) {
		bad("admin.session_ttl: must be between 1m and 720h")
	}
	if c.Admin.DashboardInterval < time.Second || c.Admin.DashboardInterval > 10*time.Minute {
		bad("admin.dashboard_interval: must be between 1s and 10m")
	}
	if c.Ingest.MaxBodyMemory < c.Ingest.MaxBodyBytes {
		bad("ingest.max_body_memory: must be at least ingest.max_body_bytes")
	}
	if c.Ingest.BodyReadTimeout <= 0 {
		bad("ingest.body_read_timeout: must be positive")
	}
	if !(c.Ingest.RecordPerSecond > 0) || !(c.Ingest.RecordPerSource > 0) {
		bad("ingest.record_per_second and record_per_source: must be positive")
	}
	if c.Ingest.AckTimeout <= 0 {
		bad("ingest.ack_timeout: must be positive")
	}
	if c.Delivery.Workers <= 0 {
		bad("delivery.workers: must be positive")
	}
	if c.Delivery.Timeout <= 0 || c.Delivery.ConnectTimeout <= 0 {
		bad("delivery.timeout and delivery.connect_timeout: must be positive")
	}
	if c.Delivery.BackoffBase <= 0 || c.Delivery.BackoffMax < c.Delivery.BackoffBase {
		bad("delivery.backoff_base/backoff_max: want 0 < base <= max")
	}
	accounts := map[string]bool{}
	keys := map[string]string{} // API key SID → where it was first listed
	for i, a := range c.Accounts {
		// No ':' either: it separates the account in stored idempotency
		// keys (switchboard.MessageKey).
		if !strings.HasPrefix(a.SID, "AC") || strings.Contains(a.SID, ":") {
			bad("accounts[%d].sid %q: want an AC... account SID", i, a.SID)
		}
		if accounts[a.SID] {
			bad("accounts[%d].sid %q: listed twice", i, a.SID)
		}
		accounts[a.SID] = true
		if len(a.AuthTokens) == 0 || a.AuthTokens[0] == "" {
			bad("accounts[%d].auth_tokens: at least one token is required", i)
		}
		for j, k := range a.APIKeys {
			if !apiKeySID.MatchString(k.SID) {
				bad("accounts[%d].api_keys[%d].sid %q: want SK followed by 32 lowercase hexadecimal digits", i, j, k.SID)
			} else if where, ok := keys[k.SID]; ok {
				// One key, one account: the key names the account it
				// authenticates.
				bad("accounts[%d].api_keys[%d].sid %q: also %s", i, j, k.SID, where)
			} else {
				keys[k.SID] = fmt.Sprintf("accounts[%d].api_keys[%d]", i, j)
			}
			if k.Secret == "" {
				bad("accounts[%d].api_keys[%d].secret: required", i, j)
			}
		}
	}
	paths := map[string]bool{}
	for i, r := range c.Routes {
		if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, "?#") {
			bad("routes[%d].path %q: want an absolute path without query", i, r.Path)
		}
		if reserved(r.Path) {
			bad("routes[%d].path %q: reserved for Switchboard itself", i, r.Path)
		}
		if paths[r.Path] {
			bad("routes[%d].path %q: listed twice", i, r.Path)
		}
		paths[r.Path] = true
		if !accounts[r.Account] {
			bad("routes[%d].account %q: not in [[accounts]]", i, r.Account)
		}
		switch r.Mode {
		case ModeAck, ModeProxy, ModeStatic:
		default:
			bad("routes[%d].mode %q: want %q, %q or %q", i, r.Mode, ModeAck, ModeProxy, ModeStatic)
		}
		debugger := r.Kind == string(switchboard.KindDebugger)
		if debugger && r.Mode == ModeProxy {
			bad("routes[%d].mode: a debugger route answers Twilio an empty 200 itself; want %q or %q", i, ModeAck, ModeStatic)
		}
		// A static route, or a debugger route (its alerts are stored
		// whatever), may have no app to deliver to.
		if r.Listener != "" {
			validateRouteListener(bad, i, r)
		} else if u, err := url.Parse(r.Target); (r.Target != "" || (r.Mode != ModeStatic && !debugger)) &&
			(err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			bad("routes[%d].target %q: want an absolute http(s) URL", i, r.Target)
		}
		if r.Budget < 0 || r.Budget > MaxBudget {
			bad("routes[%d].budget %v: want at most %v, so that Twilio gets the fallback before its 15 s limit", i, r.Budget, MaxBudget)
		}
		for _, c := range r.RedeliverOn {
			if !slices.Contains(RedeliverClasses, c) {
				bad("routes[%d].redeliver_on: %q is not one of %v", i, c, RedeliverClasses)
			}
		}
		if r.MaxInFlight < 1 {
			bad("routes[%d].max_in_flight: must be at least 1", i)
		}
		if r.Kind != "auto" && !switchboard.Kind(r.Kind).Valid() {
			bad("routes[%d].kind %q: want auto or one of %v", i, r.Kind, switchboard.Kinds)
		}
		if r.MaxAttempts < 1 {
			bad("routes[%d].max_attempts: must be at least 1", i)
		}
		if r.MaxAge <= 0 {
			bad("routes[%d].max_age: must be positive", i)
		}
	}
	c.validateOutbound(bad, accounts, paths)
	c.validateAlerts(bad)
	c.validateNotifiers(bad)
	c.validateTLS(bad)
	c.validateListeners(bad)
	c.validateSimulatorURL(bad)
	if _, err := egress.Parse(c.Egress.Allow); err != nil {
		bad("egress.allow: %v", err)
	}
	for _, k := range switchboard.PruneKinds {
		if err := k.CheckRetention(c.Retention.Policy().Of(k)); err != nil {
			bad("retention.%s: %v", k, err)
		}
	}
	if c.Retention.Interval <= 0 {
		bad("retention.interval: must be positive")
	}
	if c.Retention.BatchSize < 1 || c.Retention.BatchSize > 10000 {
		bad("retention.batch_size: want 1 to 10000 items per transaction")
	}
	return errors.Join(errs...)
}

// apiKeySID is the shape of a Twilio API key's SID.
var apiKeySID = regexp.MustCompile(`^SK[0-9a-f]{32}$`)

// reserved reports whether a path belongs to Switchboard's own endpoints:
// the admin API, the Twilio-compatible API under /2010-04-01/, the
// pass-through to Twilio's other hosts (a first segment ending in
// .twilio.com), the console and the operational endpoints.
func reserved(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/console":
		return true
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/2010-04-01/") || strings.HasPrefix(path, "/console/") ||
		strings.HasSuffix(strings.ToLower(first), ".twilio.com")
}

// Account returns the account with the given SID.
func (c *Config) Account(sid string) (Account, bool) {
	for _, a := range c.Accounts {
		if a.SID == sid {
			return a, true
		}
	}
	return Account{}, false
}

// Provider returns the provider with the given name.
func (c *Config) Provider(name string) (Provider, bool) {
	for _, p := range c.Providers {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// StatusCallbackURL is the StatusCallback of every outbound message:
// public_url followed by outbound.status_route, or empty when no status
// route is configured.
func (c *Config) StatusCallbackURL() string {
	if c.Outbound.StatusRoute == "" {
		return ""
	}
	return strings.TrimSuffix(c.PublicURL, "/") + c.Outbound.StatusRoute
}
