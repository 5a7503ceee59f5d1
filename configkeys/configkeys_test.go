package configkeys_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"

	"github.com/switchboard-dev/switchboard/configkeys"
)

type key struct {
	SID    string `koanf:"sid"`
	Secret string `koanf:"secret"`
}

type account struct {
	SID     string `koanf:"sid"`
	APIKeys []key  `koanf:"api_keys"`
}

type latency struct {
	Median time.Duration `koanf:"median"`
}

type doc struct {
	Listen  string `koanf:"listen"`
	Storage struct {
		URL string `koanf:"url"`
	} `koanf:"storage"`
	Accounts  []account         `koanf:"accounts"`
	Latency   latency           `koanf:"latency"`
	Tunnels   map[string]string `koanf:"tunnels"`
	Transport http.RoundTripper `koanf:"-"`
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		toml string
		want []string // the errors, in order; none for a valid document
	}{
		{"valid", `
listen = "x"
latency = { median = "1s" }
[storage]
url = "a.db"
[tunnels]
"https://any.example.com" = "http://127.0.0.1:1"
[[accounts]]
sid = "AC1"
  [[accounts.api_keys]]
  sid = "SK1"
  secret = "s"
`, nil},
		{"top level", "[[account]]\nsid = \"AC1\"\n", []string{`unknown key "account": did you mean "accounts"?`}},
		{"nested table", "[storage]\nur = \"a\"\n", []string{`unknown key "storage.ur": did you mean "storage.url"?`}},
		{"inline table", "latency = { medain = \"1s\" }\n", []string{`unknown key "latency.medain": did you mean "latency.median"?`}},
		{"array of tables, by index", "[[accounts]]\nsid = \"AC1\"\n[[accounts]]\nsdi = \"AC2\"\n",
			[]string{`unknown key "accounts[1].sdi": did you mean "accounts[1].sid"?`}},
		{"nested array of tables", "[[accounts]]\nsid = \"AC1\"\n[[accounts.api_keys]]\nsid = \"SK\"\nsecrt = \"s\"\n",
			[]string{`unknown key "accounts[0].api_keys[0].secrt": did you mean "accounts[0].api_keys[0].secret"?`}},
		{"nothing close", "frobnicate = 1\n",
			[]string{`unknown key "frobnicate" (this table's keys are accounts, latency, listen, storage, tunnels)`}},
		{"a key tagged - is not a key", "transport = 1\n",
			[]string{`unknown key "transport" (this table's keys are accounts, latency, listen, storage, tunnels)`}},
		{"every one, sorted", "lisen = 1\n[storage]\nurll = 1\n", []string{
			`unknown key "lisen": did you mean "listen"?`,
			`unknown key "storage.urll": did you mean "storage.url"?`,
		}},
		{"table for an array of tables", "[accounts]\nsid = \"AC1\"\n",
			[]string{`key "accounts" is a single table: write [[accounts]], once per entry`}},
		{"array of tables for a table", "[[storage]]\nurl = \"a\"\n",
			[]string{`key "storage" is an array of tables: write it once as [storage]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree, err := toml.Parser().Unmarshal([]byte(tc.toml))
			if err != nil {
				t.Fatal(err)
			}
			err = configkeys.Check(tree, reflect.TypeFor[doc]())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check: nil; want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Check:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
			var unknown *configkeys.UnknownKeyError
			var shape *configkeys.ShapeError
			if !errors.As(err, &unknown) && !errors.As(err, &shape) {
				t.Errorf("Check: %T is neither an UnknownKeyError nor a ShapeError", err)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	keys := []string{"listen", "public_url", "routes", "accounts", "storage", "auth_tokens"}
	for _, tc := range []struct {
		name, want string
	}{
		{"route", "routes"},
		{"Listen", "listen"},
		{"publicurl", "public_url"},
		{"auth_token", "auth_tokens"},
		{"acounts", "accounts"},
		{"x", ""},
		{"zzzzzzzz", ""},
		{"", ""},
	} {
		got, ok := configkeys.Closest(tc.name, keys)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Closest(%q) = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := configkeys.Closest("a", nil); ok {
		t.Error("Closest with no candidates found one")
	}
}
