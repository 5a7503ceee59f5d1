package sim

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConfigRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // in the error
	}{
		{"NoAccounts", func(c *Config) { c.Accounts = nil }, "no accounts"},
		{"AccountSID", func(c *Config) { c.Accounts[0].SID = "AC123" }, "SID must be AC"},
		{"AccountSIDUppercase", func(c *Config) { c.Accounts[0].SID = strings.ToUpper(acctSID) }, "SID must be AC"},
		{"NoToken", func(c *Config) { c.Accounts[0].AuthTokens = nil }, "no auth token"},
		{"EmptyFirstToken", func(c *Config) { c.Accounts[0].AuthTokens = []string{"", acctToken} }, "no auth token"},
		{"NumberNotE164", func(c *Config) { c.Accounts[0].Numbers[0].Number = "5550001001" }, "neither E.164 nor a short code"},
		{"NumberTooShort", func(c *Config) { c.Accounts[0].Numbers[0].Number = "1234" }, "neither E.164 nor a short code"},
		{"NumberTwice", func(c *Config) { c.Accounts[1].Numbers[0].Number = longCode }, "owned by both"},
		{"NumberTwiceInAccount", func(c *Config) { c.Accounts[0].Numbers[1].Number = longCode }, "owned by both"},
		{"SenderType", func(c *Config) { c.Accounts[0].Numbers[0].Type = "alphanumeric" }, "type"},
		{"NegativeThroughput", func(c *Config) { c.Accounts[0].Numbers[0].Throughput = -1 }, "throughput"},
		{"NaNThroughput", func(c *Config) { c.Accounts[0].Numbers[0].Throughput = math.NaN() }, "throughput"},
		{"InfiniteThroughput", func(c *Config) { c.Accounts[0].Numbers[0].Throughput = math.Inf(1) }, "throughput"},
		{"SMSMethod", func(c *Config) { c.Accounts[0].Numbers[0].SMSMethod = "PUT" }, "method"},
		{"VoiceFallbackMethod", func(c *Config) { c.Accounts[0].Numbers[0].VoiceFallbackMethod = "DELETE" }, "method"},
		{"ServiceSID", func(c *Config) { c.Accounts[0].Services[0].SID = "MG1" }, "SID must be MG"},
		{"ServiceWithoutNumbers", func(c *Config) { c.Accounts[0].Services[0].Numbers = nil }, "no numbers"},
		{"ServiceNumberNotOwned", func(c *Config) { c.Accounts[0].Services[0].Numbers = []string{"+15550000000"} }, "not the account's"},
		{"ServiceNumberOfAnotherAccount", func(c *Config) { c.Accounts[0].Services[0].Numbers = []string{otherNum} }, "not the account's"},
		{"OutcomeStatus", func(c *Config) {
			c.Carriers = []Carrier{{Outcomes: []Outcome{{Status: "delivered", Code: 30003, Rate: 0.1}}}}
		}, "want undelivered or failed"},
		{"OutcomeRate", func(c *Config) {
			c.Carriers = []Carrier{{Outcomes: []Outcome{{Status: "failed", Code: 30003, Rate: 1.5}}}}
		}, "between 0 and 1"},
		{"OutcomeRateNegative", func(c *Config) {
			c.Carriers = []Carrier{{Outcomes: []Outcome{{Status: "failed", Code: 30003, Rate: -0.1}}}}
		}, "between 0 and 1"},
		{"OutcomeRatesOver1", func(c *Config) {
			c.Carriers = []Carrier{{Prefix: "+44", Outcomes: []Outcome{{Status: "failed", Code: 30003, Rate: 0.6}, {Status: "undelivered", Code: 30005, Rate: 0.5}}}}
		}, "add up to"},
		{"ReorderRate", func(c *Config) { c.Callbacks.ReorderRate = 1.01 }, "reorder_rate"},
		{"DuplicateRate", func(c *Config) { c.Callbacks.DuplicateRate = -0.5 }, "duplicate_rate"},
		{"DuplicateRateNaN", func(c *Config) { c.Callbacks.DuplicateRate = math.NaN() }, "duplicate_rate"},
		{"ConcurrencyLimit", func(c *Config) { c.ConcurrencyLimit = -1 }, "concurrency_limit"},
		{"TunnelNotURL", func(c *Config) { c.Tunnels = map[string]string{"hooks.example.com": "http://127.0.0.1:8080"} }, "tunnel"},
		{"TunnelScheme", func(c *Config) { c.Tunnels = map[string]string{"https://hooks.example.com": "ftp://127.0.0.1"} }, "tunnel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			tt.change(&cfg)
			s, err := New(cfg, nil)
			if err == nil {
				s.Close()
				t.Fatalf("New accepted the configuration, want an error about %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "sim: ") {
				t.Errorf("error %q, want one about %q", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg := Config{Accounts: []Account{{
		SID:        acctSID,
		AuthTokens: []string{acctToken},
		Numbers: []Number{
			{Number: longCode, SMSMethod: "get"},
			{Number: "12345"},
			{Number: tollFree, Type: TollFree},
			{Number: customRate, Type: ShortCode, Throughput: 7.5},
		},
	}}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.ConcurrencyLimit != DefaultConcurrencyLimit || cfg.QueueLimit != DefaultQueueLimit || cfg.HomeRegion != "us1" ||
		cfg.Callbacks.ReorderBy != 2*time.Second || cfg.Callbacks.DuplicateAfter != time.Second {
		t.Errorf("defaults %+v", cfg)
	}
	nums := cfg.Accounts[0].Numbers
	want := []struct {
		typ  SenderType
		rate float64
	}{{LongCode, 1}, {ShortCode, 100}, {TollFree, 3}, {ShortCode, 7.5}}
	for i, w := range want {
		if nums[i].Type != w.typ || nums[i].Throughput != w.rate {
			t.Errorf("number %s: %s at %v/s, want %s at %v/s", nums[i].Number, nums[i].Type, nums[i].Throughput, w.typ, w.rate)
		}
	}
	if nums[0].SMSMethod != http.MethodGet || nums[0].VoiceMethod != http.MethodPost || nums[1].SMSFallbackMethod != http.MethodPost {
		t.Errorf("methods %+v: want GET as given, POST by default", nums[0])
	}
	// New copies the configuration: changing it later changes nothing.
	orig := testConfig()
	s := newSim(t, orig)
	orig.Accounts[0].AuthTokens[0] = "changed"
	req := apiRequest(http.MethodGet, "/2010-04-01/Accounts/"+acctSID+"/Messages.json", acctSID, acctToken, nil)
	if rec := serve(s.Handler(), req); rec.Code != http.StatusOK {
		t.Errorf("after changing the caller's configuration: %d, want the token still valid", rec.Code)
	}
}
