package config

import "time"

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
	// SMTP: the server's host:port, its credentials (PLAIN auth, only
	// over TLS), the sender and recipients, and whether STARTTLS is
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

func (c *Config) applyNotifierDefaults() {}

// validateNotifiers adds the problems of [[notifiers]] to bad.
func (c *Config) validateNotifiers(bad func(string, ...any)) {
	// Filled in with the notifiers.
}
