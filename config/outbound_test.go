package config

import (
	"strings"
	"testing"
	"time"
)

// outboundTOML is validTOML with a provider and two pools.
const outboundTOML = validTOML + `
[outbound]
status_route = "/status"
[[providers]]
name = "twilio"
account = "AC00000000000000000000000000000001"
[[pools]]
name = "otp"
provider = "twilio"
senders = ["+15550001001", "55501"]
rate = 1
purposes = ["otp", "transactional"]
brownout_delay = "30s"
[[pools]]
name = "marketing"
provider = "twilio"
senders = ["+15550001002"]
rate = 0.5
purposes = ["marketing"]
`

func TestOutboundDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, validTOML+`
[[providers]]
name = "twilio"
account = "AC00000000000000000000000000000001"
[[pools]]
name = "all"
provider = "twilio"
senders = ["+15550001001"]
rate = 1
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	if p.BaseURL != "https://api.twilio.com" || p.ConnectTimeout != 5*time.Second || p.ResponseTimeout != 15*time.Second {
		t.Errorf("provider defaults: %+v", p)
	}
	if got := strings.Join(c.Pools[0].Purposes, ","); got != "otp,transactional,marketing" {
		t.Errorf("pool purposes = %s, want every purpose", got)
	}
	if c.Outbound.SendWorkers != 256 || c.Outbound.MaxAttempts != 8 || c.Outbound.MaxAge != 24*time.Hour || c.Outbound.StatusRoute != "" {
		t.Errorf("outbound defaults: %+v", c.Outbound)
	}
	if got := c.StatusCallbackURL(); got != "" {
		t.Errorf("StatusCallbackURL = %q without a status route, want none", got)
	}
}

func TestOutboundLoads(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, outboundTOML), []string{
		"SWITCHBOARD_OUTBOUND_SEND_WORKERS=3",
		"SWITCHBOARD_OUTBOUND_MAX_ATTEMPTS=4",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 2 || c.Pools[1].Rate != 0.5 || c.Pools[0].Senders[1] != "55501" {
		t.Errorf("pools: %+v", c.Pools)
	}
	if c.Pools[0].BrownoutDelay != 30*time.Second || c.Pools[1].BrownoutDelay != 0 {
		t.Errorf("brownout delays %v and %v, want 30s and none by default", c.Pools[0].BrownoutDelay, c.Pools[1].BrownoutDelay)
	}
	if c.Outbound.SendWorkers != 3 || c.Outbound.MaxAttempts != 4 {
		t.Errorf("environment overrides of [outbound]: %+v", c.Outbound)
	}
	if got, want := c.StatusCallbackURL(), "https://hooks.example.com/status"; got != want {
		t.Errorf("StatusCallbackURL = %q, want %q", got, want)
	}
	if p, ok := c.Provider("twilio"); !ok || p.Account != "AC00000000000000000000000000000001" {
		t.Errorf("Provider(twilio) = %+v, %v", p, ok)
	}
}

func TestOutboundValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		old  string // replaced in outboundTOML by new
		new  string
		want string // in the error
	}{
		{"status route not a route", `status_route = "/status"`, `status_route = "/nowhere"`, `outbound.status_route "/nowhere": not the path of a [[routes]] entry`},
		{"send workers", "[outbound]\n", "[outbound]\nsend_workers = -1\n", "outbound.send_workers: must be positive"},
		{"max attempts", "[outbound]\n", "[outbound]\nmax_attempts = -2\n", "outbound.max_attempts: must be positive"},
		{"max age", "[outbound]\n", "[outbound]\nmax_age = \"-1h\"\n", "outbound.max_age: must be positive"},
		{"bad service sid", `senders = ["+15550001002"]`, `senders = ["MG123"]`, `pools[1].senders: "MG123" is neither an E.164 number`},
		{"provider without a name", `name = "twilio"`, `name = ""`, "providers[0].name: required"},
		{"provider base url", `name = "twilio"`, "name = \"twilio\"\nbase_url = \"ftp://x\"", `providers[0].base_url "ftp://x"`},
		{"provider account", "[[providers]]\nname = \"twilio\"\naccount = \"AC00000000000000000000000000000001\"",
			"[[providers]]\nname = \"twilio\"\naccount = \"AC9\"", `providers[0].account "AC9": not in [[accounts]]`},
		{"provider timeout", `name = "twilio"`, "name = \"twilio\"\nconnect_timeout = \"-1s\"", "providers[0].connect_timeout and response_timeout: must be positive"},
		{"pool provider", `provider = "twilio"` + "\nsenders = [\"+15550001002\"]", `provider = "nope"` + "\nsenders = [\"+15550001002\"]", `pools[1].provider "nope": not in [[providers]]`},
		{"pool name twice", `name = "marketing"`, `name = "otp"`, `pools[1].name "otp": listed twice`},
		{"no senders", `senders = ["+15550001002"]`, `senders = []`, "pools[1].senders: at least one sender is required"},
		{"bad sender", `senders = ["+15550001002"]`, `senders = ["5550001002"]`, `pools[1].senders: "5550001002" is neither an E.164 number`},
		{"sender in two pools", `senders = ["+15550001002"]`, `senders = ["55501"]`, `pools[1].senders: "55501" is also in pools[0]`},
		{"sender twice", `senders = ["+15550001002"]`, `senders = ["+15550001002", "+15550001002"]`, `pools[1].senders: "+15550001002" listed twice`},
		{"rate", `rate = 0.5`, `rate = 0`, "pools[1].rate: must be positive"},
		{"rate infinite", `rate = 0.5`, `rate = inf`, "pools[1].rate: must be positive and at most 10000"},
		{"rate not a number", `rate = 0.5`, `rate = nan`, "pools[1].rate: must be positive"},
		{"rate too high", `rate = 0.5`, `rate = 10001`, "pools[1].rate: must be positive and at most 10000"},
		{"no purposes", `purposes = ["marketing"]`, `purposes = []`, "pools[1].purposes: at least one purpose is required"},
		{"brownout delay", `brownout_delay = "30s"`, `brownout_delay = "-1s"`, "pools[0].brownout_delay: must not be negative"},
		{"unknown purpose", `purposes = ["marketing"]`, `purposes = ["spam"]`, `pools[1].purposes: "spam" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(outboundTOML, tt.old) {
				t.Fatalf("%q is not in the configuration", tt.old)
			}
			_, err := Load(writeConfig(t, strings.Replace(outboundTOML, tt.old, tt.new, 1)), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStatusRouteNeedsPublicURL(t *testing.T) {
	t.Parallel()
	toml := strings.Replace(outboundTOML, `public_url = "https://hooks.example.com"`, "", 1)
	toml = strings.Replace(toml, "[admin]", "[ingest]\ntrust_forwarded = true\n[admin]", 1)
	_, err := Load(writeConfig(t, toml), nil)
	if err == nil || !strings.Contains(err.Error(), "outbound.status_route: needs public_url") {
		t.Fatalf("Load = %v, want status_route to need public_url", err)
	}
}

func TestPoolOfAMessagingService(t *testing.T) {
	t.Parallel()
	const service = "MG0123456789abcdef0123456789abcdef"
	c, err := Load(writeConfig(t, strings.Replace(outboundTOML, `senders = ["+15550001002"]`, `senders = ["`+service+`"]`, 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Pools[1].Senders; len(got) != 1 || got[0] != service {
		t.Errorf("senders = %v, want the service", got)
	}
}
