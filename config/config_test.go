package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validTOML = `
listen = "127.0.0.1:9999"
public_url = "https://hooks.example.com"
[storage]
url = "data/sb.db"
[admin]
token = "secret"
[delivery]
max_attempts = 7
[[accounts]]
sid = "AC00000000000000000000000000000001"
auth_tokens = ["primary", "secondary"]
[[routes]]
path = "/sms"
account = "AC00000000000000000000000000000001"
target = "http://127.0.0.1:3000/sms"
[[routes]]
path = "/status"
account = "AC00000000000000000000000000000001"
target = "http://127.0.0.1:3000/status"
max_attempts = 3
max_age = "1h"
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "switchboard.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileDefaultsAndRouteInheritance(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, validTOML)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.Storage.URL != filepath.Join(filepath.Dir(path), "data/sb.db") || c.Admin.Token != "secret" {
		t.Errorf("file values not applied: %+v", c)
	}
	if c.Ingest.MaxBodyBytes != 64<<10 || c.Ingest.MaxBodyMemory != 32<<20 || c.Delivery.Workers != 64 || !c.Delivery.Enabled {
		t.Errorf("defaults not applied: ingest %+v delivery %+v", c.Ingest, c.Delivery)
	}
	sms, status := c.Routes[0], c.Routes[1]
	if sms.Mode != ModeAck || sms.Kind != "auto" || sms.TwiML != "<Response/>" || sms.MaxAttempts != 7 || sms.MaxAge != 72*time.Hour {
		t.Errorf("route defaults: %+v", sms)
	}
	if status.MaxAttempts != 3 || status.MaxAge != time.Hour {
		t.Errorf("route overrides: %+v", status)
	}
	if a, ok := c.Account("AC00000000000000000000000000000001"); !ok || a.AuthTokens[1] != "secondary" {
		t.Errorf("account lookup: %+v %v", a, ok)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	env := []string{
		"SWITCHBOARD_STORAGE_URL=postgres://db/x",
		"SWITCHBOARD_PUBLIC_URL=https://other.example.com",
		"SWITCHBOARD_ADMIN_TOKEN=from-env",
		"SWITCHBOARD_DELIVERY_BACKOFF_MAX=1m",
		"SWITCHBOARD_DELIVERY_ENABLED=false",
		"SWITCHBOARD_TEST_POSTGRES_URL=ignored",
		"PATH=/bin",
	}
	c, err := Load(writeConfig(t, validTOML), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.URL != "postgres://db/x" || !c.Storage.IsPostgres() {
		t.Errorf("storage.url = %q", c.Storage.URL)
	}
	if c.PublicURL != "https://other.example.com" || c.Admin.Token != "from-env" || c.Delivery.BackoffMax != time.Minute || c.Delivery.Enabled {
		t.Errorf("overrides not applied: %q %q %v enabled %v", c.PublicURL, c.Admin.Token, c.Delivery.BackoffMax, c.Delivery.Enabled)
	}
}

func TestUnknownEnvironmentVariableIsAnError(t *testing.T) {
	t.Parallel()
	_, err := Load(writeConfig(t, validTOML), []string{"SWITCHBOARD_STORAGE_ULR=x"})
	if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_STORAGE_ULR") {
		t.Fatalf("err = %v, want it to name the unknown variable", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := `
public_url = "ftp://x"
[delivery]
timeout = "0s"
[[accounts]]
sid = "XX1"
auth_tokens = []
[[routes]]
path = "sms"
account = "AC404"
mode = "carrier-pigeon"
target = "not a url"
kind = "telegram"
[[routes]]
path = "/api/v1/events"
account = "XX1"
target = "http://app/"
`
	_, err := Load(writeConfig(t, bad), nil)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"public_url", "accounts[0].sid", "auth_tokens", "routes[0].path", "routes[0].account", "routes[0].mode", "routes[0].target", "routes[0].kind", "routes[1].path", "delivery.timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

// An account SID with ':' would make two accounts' stored idempotency
// keys ambiguous (switchboard.MessageKey).
func TestAccountSIDWithAColonIsRefused(t *testing.T) {
	t.Parallel()
	const sid = "AC00000000000000000000000000000001"
	_, err := Load(writeConfig(t, strings.ReplaceAll(validTOML, sid, "AC1:x")), nil)
	if err == nil || !strings.Contains(err.Error(), "accounts[0].sid") {
		t.Fatalf("err = %v, want accounts[0].sid refused", err)
	}
}

// TestReservedRoutePaths: a webhook route may not take a path Switchboard
// serves itself, the Twilio-compatible API's included.
func TestReservedRoutePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path     string
		reserved bool
	}{
		{"/api/v1/events", true},
		{"/healthz", true},
		{"/metrics", true},
		{"/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json", true},
		{"/2010-04-01/", true},
		{"/2010-04-01-sms", false},
		{"/sms/2010-04-01/x", false},
		{"/console", true},
		{"/console/events", true},
		{"/consoles", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			toml := strings.Replace(validTOML, `path = "/sms"`, fmt.Sprintf("path = %q", tt.path), 1)
			_, err := Load(writeConfig(t, toml), nil)
			if got := err != nil && strings.Contains(err.Error(), "reserved"); got != tt.reserved {
				t.Errorf("route path %s: err = %v, want reserved=%v", tt.path, err, tt.reserved)
			}
		})
	}
}

func TestMissingFileIsAnError(t *testing.T) {
	t.Parallel()
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml"), nil); err == nil {
		t.Fatal("want an error for a missing file")
	}
}

func TestRouteModes(t *testing.T) {
	t.Parallel()
	const head = `
public_url = "https://hooks.example.com"
[[accounts]]
sid = "AC00000000000000000000000000000001"
auth_tokens = ["primary"]
`
	route := func(extra string) string {
		return head + "[[routes]]\npath = \"/r\"\naccount = \"AC00000000000000000000000000000001\"\n" + extra
	}
	tests := []struct {
		name    string
		toml    string
		wantErr string // "" when valid
	}{
		{"proxy with defaults", route("mode = \"proxy\"\ntarget = \"http://127.0.0.1:3000/r\""), ""},
		{"proxy with settings", route("mode = \"proxy\"\ntarget = \"http://127.0.0.1:3000/r\"\nbudget = \"2s\"\nredeliver_on = [\"connect\", \"timeout\", \"5xx\"]\nmax_in_flight = 8"), ""},
		{"static without target", route("mode = \"static\""), ""},
		{"static with target", route("mode = \"static\"\ntarget = \"http://127.0.0.1:3000/r\""), ""},
		{"proxy without target", route("mode = \"proxy\""), "routes[0].target"},
		{"budget past Twilio's limit", route("mode = \"proxy\"\ntarget = \"http://127.0.0.1:3000/r\"\nbudget = \"15s\""), "routes[0].budget"},
		{"unknown redeliver class", route("mode = \"proxy\"\ntarget = \"http://127.0.0.1:3000/r\"\nredeliver_on = [\"sometimes\"]"), "routes[0].redeliver_on"},
		{"zero in flight", route("mode = \"proxy\"\ntarget = \"http://127.0.0.1:3000/r\"\nmax_in_flight = -1"), "routes[0].max_in_flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(writeConfig(t, tt.toml), nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Load error %v, want one naming %s", err, tt.wantErr)
			case err == nil:
				r := c.Routes[0]
				if len(r.RedeliverOn) == 0 || r.MaxInFlight < 1 {
					t.Errorf("defaults not applied: %+v", r)
				}
			}
		})
	}
}

func TestIntegrityCheck(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, validTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.IntegrityCheck != "quick" {
		t.Errorf("storage.integrity_check defaults to %q, want quick", c.Storage.IntegrityCheck)
	}
	c, err = Load(writeConfig(t, validTOML), []string{"SWITCHBOARD_STORAGE_INTEGRITY_CHECK=full"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.IntegrityCheck != "full" {
		t.Errorf("storage.integrity_check = %q, want full from the environment", c.Storage.IntegrityCheck)
	}
	_, err = Load(writeConfig(t, validTOML), []string{"SWITCHBOARD_STORAGE_INTEGRITY_CHECK=sometimes"})
	if err == nil || !strings.Contains(err.Error(), "storage.integrity_check") {
		t.Errorf("integrity_check = sometimes: err = %v, want it refused", err)
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	t.Parallel()
	const provider = `
[[providers]]
name = "twilio"
account = "AC00000000000000000000000000000001"
`
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"top-level array of tables", validTOML + "[[route]]\npath = \"/x\"\n", `unknown key "route": did you mean "routes"?`},
		{"top-level key", "lisen = \"127.0.0.1:1\"\n" + validTOML, `unknown key "lisen": did you mean "listen"?`},
		{"table", strings.Replace(validTOML, `url = "data/sb.db"`, `ur = "data/sb.db"`, 1), `unknown key "storage.ur": did you mean "storage.url"?`},
		{"route", strings.Replace(validTOML, `target = "http://127.0.0.1:3000/status"`, `targt = "http://127.0.0.1:3000/status"`, 1),
			`unknown key "routes[1].targt": did you mean "routes[1].target"?`},
		{"account", strings.Replace(validTOML, "auth_tokens =", "auth_token =", 1),
			`unknown key "accounts[0].auth_token": did you mean "accounts[0].auth_tokens"?`},
		{"account api key", validTOML + "[[accounts.api_keys]]\nsid = \"SK1\"\nsecet = \"s\"\n",
			`unknown key "accounts[0].api_keys[0].secet": did you mean "accounts[0].api_keys[0].secret"?`},
		{"provider", validTOML + provider + "baseurl = \"http://127.0.0.1:3901\"\n",
			`unknown key "providers[0].baseurl": did you mean "providers[0].base_url"?`},
		{"pool", validTOML + provider + "[[pools]]\nname = \"p\"\nprovider = \"twilio\"\nsender = [\"+15550001001\"]\nrate = 1\n",
			`unknown key "pools[0].sender": did you mean "pools[0].senders"?`},
		{"nothing close", validTOML + "[whatever]\nx = 1\n", `unknown key "whatever" (this table's keys are accounts, admin, `},
		{"single table for an array", strings.Replace(validTOML, "[[accounts]]", "[accounts]", 1),
			`key "accounts" is a single table: write [[accounts]], once per entry`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, tc.toml)
			_, err := Load(path, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load: %v; want an error naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}

func TestPathsAreRelativeToTheConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "switchboard.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "elsewhere", "sb.db")
	for _, tc := range []struct {
		name    string
		storage string   // the file's [storage] url; "" leaves it out
		env     []string // over the file
		want    string
	}{
		{"relative path", "data/sb.db", nil, filepath.Join(dir, "etc", "data", "sb.db")},
		{"dot-dot", "../var/sb.db", nil, filepath.Join(dir, "var", "sb.db")},
		{"default", "", nil, filepath.Join(dir, "etc", "switchboard-data", "switchboard.db")},
		{"absolute path", abs, nil, abs},
		{"postgres URL", "postgres://db/x", nil, "postgres://db/x"},
		{"postgresql URL", "postgresql://db/x", nil, "postgresql://db/x"},
		// A variable is written in a shell, so it means what the shell
		// means: relative to the working directory.
		{"environment", "data/sb.db", []string{"SWITCHBOARD_STORAGE_URL=from/env.db"}, "from/env.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := strings.Replace(validTOML, `url = "data/sb.db"`, fmt.Sprintf("url = %q", tc.storage), 1)
			if tc.storage == "" {
				body = strings.Replace(validTOML, `url = "data/sb.db"`, "", 1)
			}
			p := filepath.Join(filepath.Dir(path), strings.ReplaceAll(tc.name, " ", "-")+".toml")
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Storage.URL != tc.want {
				t.Errorf("storage.url = %q; want %q", c.Storage.URL, tc.want)
			}
		})
	}
	// Without a file, there is no directory but the working one.
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.URL != "switchboard-data/switchboard.db" {
		t.Errorf("without a file, storage.url = %q; want the default as it is", c.Storage.URL)
	}
}

// TestAPIKeys: an API key is SK and 32 hex digits with a secret, and
// belongs to one account only, since the key alone names the account it
// authenticates.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	const (
		key1 = "SK0123456789abcdef0123456789abcdef"
		key2 = "SKfedcba9876543210fedcba9876543210"
	)
	second := "\n[[accounts]]\nsid = \"AC00000000000000000000000000000002\"\nauth_tokens = [\"t2\"]\n"
	tests := []struct {
		name  string
		extra string // TOML after the first account's auth_tokens
		more  string // TOML appended: a second account
		want  []string
	}{
		{"two keys for a rotation", fmt.Sprintf("api_keys = [{ sid = %q, secret = \"s1\" }, { sid = %q, secret = \"s2\" }]", key1, key2), "", nil},
		{"no keys", "", "", nil},
		{"not SK", `api_keys = [{ sid = "AC0123456789abcdef0123456789abcdef", secret = "s" }]`, "", []string{"api_keys[0].sid"}},
		{"too short", `api_keys = [{ sid = "SK0123", secret = "s" }]`, "", []string{"api_keys[0].sid"}},
		{"not hex", `api_keys = [{ sid = "SK0123456789abcdef0123456789abcdeg", secret = "s" }]`, "", []string{"api_keys[0].sid"}},
		{"upper case", `api_keys = [{ sid = "SK0123456789ABCDEF0123456789ABCDEF", secret = "s" }]`, "", []string{"api_keys[0].sid"}},
		{"no secret", fmt.Sprintf("api_keys = [{ sid = %q }]", key1), "", []string{"api_keys[0].secret"}},
		{"twice in one account", fmt.Sprintf("api_keys = [{ sid = %q, secret = \"a\" }, { sid = %q, secret = \"b\" }]", key1, key1), "",
			[]string{"accounts[0].api_keys[1].sid", "also accounts[0].api_keys[0]"}},
		{"in two accounts", fmt.Sprintf("api_keys = [{ sid = %q, secret = \"a\" }]", key1),
			second + fmt.Sprintf("api_keys = [{ sid = %q, secret = \"b\" }]\n", key1),
			[]string{"accounts[1].api_keys[0].sid", "also accounts[0].api_keys[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			toml := strings.Replace(validTOML, `auth_tokens = ["primary", "secondary"]`, `auth_tokens = ["primary", "secondary"]`+"\n"+tt.extra, 1)
			toml = strings.Replace(toml, "[[routes]]", strings.TrimPrefix(tt.more, "\n")+"[[routes]]", 1)
			c, err := Load(writeConfig(t, toml), nil)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				if a, _ := c.Account("AC00000000000000000000000000000001"); tt.extra != "" && (len(a.APIKeys) != 2 || a.APIKeys[1].SID != key2 || a.APIKeys[1].Secret != "s2") {
					t.Errorf("api_keys = %+v", a.APIKeys)
				}
				return
			}
			if err == nil {
				t.Fatal("err = nil, want one")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %s", err, w)
				}
			}
		})
	}
}
