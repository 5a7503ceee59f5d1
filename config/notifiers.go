package config

import (
	"encoding/base64"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Notifier is one [[notifiers]] entry: where alert notifications go. Each
// notifier's notifications are events of their own route
// (switchboard.NotifierRoute), delivered with retries and dead letter like
// webhooks.
type Notifier struct {
	Name string `koanf:"name"`
	// Type is "webhook" (JSON signed with Standard Webhooks' HMAC),
	// "slack" (an incoming webhook) or "smtp" (email).
	Type string `koanf:"type"`
	// URL is where webhook and slack notifiers POST.
	URL string `koanf:"url"`
	// Secret signs webhook notifications: "whsec_" and base64, as
	// Standard Webhooks gives it.
	Secret string `koanf:"secret"`
	// SMTP: the server's host:port, its credentials (PLAIN or LOGIN auth,
	// only over TLS), the sender and recipients, and whether STARTTLS is
	// "required" (default), or "none" for a server on loopback only.
	Address  string   `koanf:"address"`
	Username string   `koanf:"username"`
	Password string   `koanf:"password"`
	From     string   `koanf:"from"`
	To       []string `koanf:"to"`
	StartTLS string   `koanf:"starttls"`
	// MaxAttempts and MaxAge bound the retries of one notification
	// (defaults 25 and 72h, as delivery's).
	MaxAttempts int           `koanf:"max_attempts"`
	MaxAge      time.Duration `koanf:"max_age"`
}

// Notifier types.
const (
	NotifierWebhook = "webhook"
	NotifierSlack   = "slack"
	NotifierSMTP    = "smtp"
)

// STARTTLS settings of an SMTP notifier.
const (
	StartTLSRequired = "required"
	StartTLSNone     = "none"
)

// WebhookSecretPrefix starts a Standard Webhooks signing secret; the rest
// is the key in base64.
const WebhookSecretPrefix = "whsec_"

// Notifier defaults: a notification gets the same patience as a webhook.
const (
	defaultNotifierAttempts = 25
	defaultNotifierMaxAge   = 72 * time.Hour
)

// notifierName is the shape of an alert's name: a notifier's name is part
// of its route, of idempotency keys and of metric labels.
var notifierName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (c *Config) applyNotifierDefaults() {
	for i := range c.Notifiers {
		n := &c.Notifiers[i]
		if n.MaxAttempts == 0 {
			n.MaxAttempts = defaultNotifierAttempts
		}
		if n.MaxAge == 0 {
			n.MaxAge = defaultNotifierMaxAge
		}
		if n.Type == NotifierSMTP && n.StartTLS == "" {
			n.StartTLS = StartTLSRequired
		}
	}
}

// Notifier returns the notifier of that name.
func (c *Config) Notifier(name string) (Notifier, bool) {
	for _, n := range c.Notifiers {
		if n.Name == name {
			return n, true
		}
	}
	return Notifier{}, false
}

// WebhookKey decodes a Standard Webhooks secret ("whsec_" and base64) to
// the HMAC key.
func WebhookKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, WebhookSecretPrefix)
	if !ok {
		return nil, errNoPrefix
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errBadBase64
	}
	if len(key) < 16 {
		return nil, errShortKey
	}
	return key, nil
}

type secretError string

func (e secretError) Error() string { return string(e) }

// The errors of WebhookKey never quote the secret.
const (
	errNoPrefix  secretError = "want \"whsec_\" followed by base64"
	errBadBase64 secretError = "the part after \"whsec_\" is not valid base64"
	errShortKey  secretError = "the key is shorter than 16 bytes"
)

// validateNotifiers adds the problems of [[notifiers]] to bad. Secrets are
// never quoted in what it reports.
func (c *Config) validateNotifiers(bad func(string, ...any)) {
	names := map[string]bool{}
	for i, n := range c.Notifiers {
		if !notifierName.MatchString(n.Name) {
			bad("notifiers[%d].name %q: want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit", i, n.Name)
		} else if names[n.Name] {
			bad("notifiers[%d].name %q: listed twice", i, n.Name)
		}
		names[n.Name] = true
		if n.MaxAttempts < 1 {
			bad("notifiers[%d].max_attempts: must be at least 1", i)
		}
		if n.MaxAge <= 0 {
			bad("notifiers[%d].max_age: must be positive", i)
		}
		switch n.Type {
		case NotifierWebhook, NotifierSlack:
			// The query of a Slack webhook's URL is its secret: only the
			// origin is quoted.
			if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("notifiers[%d].url: want an absolute http(s) URL", i)
			}
			if n.Type == NotifierWebhook {
				if _, err := WebhookKey(n.Secret); err != nil {
					bad("notifiers[%d].secret: %v", i, err)
				}
			}
		case NotifierSMTP:
			c.validateSMTP(bad, i, n)
		default:
			bad("notifiers[%d].type %q: want %s, %s or %s", i, n.Type, NotifierWebhook, NotifierSlack, NotifierSMTP)
		}
	}
}

// validateSMTP adds the problems of an SMTP notifier to bad.
func (c *Config) validateSMTP(bad func(string, ...any), i int, n Notifier) {
	host, port, err := net.SplitHostPort(n.Address)
	if err != nil || host == "" || port == "" {
		bad("notifiers[%d].address %q: want host:port", i, n.Address)
	}
	switch n.StartTLS {
	case StartTLSRequired:
	case StartTLSNone:
		// Without TLS, mail and credentials cross the network in the
		// clear: only a server on this machine may be reached so.
		if !isLoopback(host) {
			bad("notifiers[%d].starttls = \"none\": only for a server on a loopback address, not %q", i, host)
		}
	default:
		bad("notifiers[%d].starttls %q: want %q or %q", i, n.StartTLS, StartTLSRequired, StartTLSNone)
	}
	if n.Password != "" && n.Username == "" {
		bad("notifiers[%d].password: set without a username", i)
	}
	if !isAddress(n.From) {
		bad("notifiers[%d].from %q: want one email address", i, n.From)
	}
	if len(n.To) == 0 {
		bad("notifiers[%d].to: at least one recipient is required", i)
	}
	for _, to := range n.To {
		if !isAddress(to) {
			bad("notifiers[%d].to: %q is not an email address", i, to)
		}
	}
}

// isAddress reports whether s is one bare or named email address with no
// line break in it (which would let it add headers).
func isAddress(s string) bool {
	if strings.ContainsAny(s, "\r\n") {
		return false
	}
	_, err := mail.ParseAddress(s)
	return err == nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
