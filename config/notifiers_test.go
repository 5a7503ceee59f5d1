package config

import (
	"strings"
	"testing"
	"time"
)

// notifiersTOML is validTOML with one notifier of each type.
const notifiersTOML = validTOML + `
[[notifiers]]
name = "ops-hook"
type = "webhook"
url = "https://alerts.example.com/switchboard"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[notifiers]]
name = "slack"
type = "slack"
url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
max_attempts = 5
max_age = "2h"
[[notifiers]]
name = "mail"
type = "smtp"
address = "smtp.example.com:587"
username = "switchboard"
password = "hunter2"
from = "Switchboard <alerts@example.com>"
to = ["oncall@example.com", "Ops <ops@example.com>"]
`

func TestNotifierDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, notifiersTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notifiers) != 3 {
		t.Fatalf("notifiers: %+v", c.Notifiers)
	}
	hook, slack, mail := c.Notifiers[0], c.Notifiers[1], c.Notifiers[2]
	if hook.MaxAttempts != 25 || hook.MaxAge != 72*time.Hour || hook.StartTLS != "" {
		t.Errorf("webhook defaults: %+v", hook)
	}
	if slack.MaxAttempts != 5 || slack.MaxAge != 2*time.Hour {
		t.Errorf("slack's own limits: %+v", slack)
	}
	if mail.StartTLS != StartTLSRequired || len(mail.To) != 2 {
		t.Errorf("smtp defaults: %+v", mail)
	}
	if n, ok := c.Notifier("mail"); !ok || n.Address != "smtp.example.com:587" {
		t.Errorf("Notifier(mail) = %+v, %v", n, ok)
	}
	if _, ok := c.Notifier("nope"); ok {
		t.Error("Notifier(nope) found")
	}
}

func TestNotifierValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string // new replaces old in notifiersTOML
		want     string // in the error
	}{
		{"name shape", `name = "ops-hook"`, `name = "Ops Hook"`, `notifiers[0].name "Ops Hook": want 1 to 63`},
		{"name empty", `name = "ops-hook"`, `name = ""`, `notifiers[0].name "": want`},
		{"name too long", `name = "ops-hook"`, `name = "` + strings.Repeat("a", 64) + `"`, `notifiers[0].name`},
		{"name twice", `name = "slack"`, `name = "ops-hook"`, `notifiers[1].name "ops-hook": listed twice`},
		{"type", `type = "slack"`, `type = "pager"`, `notifiers[1].type "pager": want webhook, slack or smtp`},
		{"webhook url", `url = "https://alerts.example.com/switchboard"`, `url = "/switchboard"`, `notifiers[0].url: want an absolute http(s) URL`},
		{"slack url scheme", `url = "https://hooks.slack.com`, `url = "ftp://hooks.slack.com`, `notifiers[1].url: want an absolute http(s) URL`},
		{"secret missing", "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "", `notifiers[0].secret: want "whsec_"`},
		{"secret prefix", `secret = "whsec_`, `secret = "`, `notifiers[0].secret: want "whsec_"`},
		{"secret base64", `secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`, `secret = "whsec_not base64!"`, `notifiers[0].secret: the part after "whsec_" is not valid base64`},
		{"secret short", `secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`, `secret = "whsec_c2hvcnQ="`, `notifiers[0].secret: the key is shorter than 16 bytes`},
		{"max attempts", `max_attempts = 5`, `max_attempts = -1`, `notifiers[1].max_attempts: must be at least 1`},
		{"max age", `max_age = "2h"`, `max_age = "-2h"`, `notifiers[1].max_age: must be positive`},
		{"smtp address", `address = "smtp.example.com:587"`, `address = "smtp.example.com"`, `notifiers[2].address "smtp.example.com": want host:port`},
		{"starttls value", `address = "smtp.example.com:587"`, "address = \"smtp.example.com:587\"\nstarttls = \"maybe\"", `notifiers[2].starttls "maybe": want "required" or "none"`},
		{"starttls none remote", `address = "smtp.example.com:587"`, "address = \"smtp.example.com:587\"\nstarttls = \"none\"", `notifiers[2].starttls = "none": only for a server on a loopback address, not "smtp.example.com"`},
		{"password without username", `username = "switchboard"`, ``, `notifiers[2].password: set without a username`},
		{"from missing", `from = "Switchboard <alerts@example.com>"`, ``, `notifiers[2].from "": want one email address`},
		{"from invalid", `from = "Switchboard <alerts@example.com>"`, `from = "alerts"`, `notifiers[2].from "alerts": want one email address`},
		{"to empty", `to = ["oncall@example.com", "Ops <ops@example.com>"]`, `to = []`, `notifiers[2].to: at least one recipient is required`},
		{"to invalid", `to = ["oncall@example.com", "Ops <ops@example.com>"]`, `to = ["oncall@example.com", "nobody"]`, `notifiers[2].to: "nobody" is not an email address`},
		// Hostile: a line break in an address would add headers to every mail.
		{"to with a header", `to = ["oncall@example.com", "Ops <ops@example.com>"]`, `to = ["oncall@example.com\r\nBcc: thief@example.net"]`, `notifiers[2].to:`},
		{"from with a header", `from = "Switchboard <alerts@example.com>"`, `from = "alerts@example.com\nBcc: thief@example.net"`, `notifiers[2].from`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(notifiersTOML, tt.old) {
				t.Fatalf("%q is not in the configuration", tt.old)
			}
			_, err := Load(writeConfig(t, strings.Replace(notifiersTOML, tt.old, tt.new, 1)), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
			// The secrets of a notifier are never quoted back.
			for _, secret := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "XXXXSECRETXXXX", "hunter2", "not base64!"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestNotifierStartTLSNoneOnLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:25", "localhost:2525", "[::1]:25"} {
		toml := strings.Replace(notifiersTOML, `address = "smtp.example.com:587"`, "address = \""+addr+"\"\nstarttls = \"none\"", 1)
		toml = strings.Replace(toml, "username = \"switchboard\"\npassword = \"hunter2\"\n", "", 1)
		if _, err := Load(writeConfig(t, toml), nil); err != nil {
			t.Errorf("starttls none on %s: %v", addr, err)
		}
	}
}

func TestWebhookKey(t *testing.T) {
	t.Parallel()
	key, err := WebhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil || len(key) != 24 {
		t.Fatalf("WebhookKey = %x, %v", key, err)
	}
}
