package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig("../sim.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("sim.example.toml does not validate: %v", err)
	}
	defer s.Close()
	if got := len(cfg.Accounts[0].Numbers); got != 3 {
		t.Errorf("%d numbers, want 3", got)
	}
	if got := cfg.Carriers[0].Latency.P99; got != 20*time.Second {
		t.Errorf("carrier p99 %v, want 20s", got)
	}
	if got := cfg.Callbacks.DuplicateRate; got != 0.02 {
		t.Errorf("duplicate rate %v, want 0.02", got)
	}
	if got := cfg.Tunnels["https://hooks.example.com"]; got != "http://127.0.0.1:8080" {
		t.Errorf("tunnel %q", got)
	}
}

func TestDemoConfig(t *testing.T) {
	t.Parallel()
	a, b := DemoConfig(7), DemoConfig(7)
	if a.Accounts[0].SID != b.Accounts[0].SID || a.Accounts[0].AuthTokens[0] != b.Accounts[0].AuthTokens[0] {
		t.Error("the same seed gave different credentials")
	}
	if DemoConfig(8).Accounts[0].SID == a.Accounts[0].SID {
		t.Error("different seeds gave the same account")
	}
	s, err := New(a, nil)
	if err != nil {
		t.Fatalf("demo config does not validate: %v", err)
	}
	s.Close()
}

func TestLoadConfigRefusesUnknownKeys(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../sim.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"top level", "seed = 1", "sed = 1", `unknown key "sed": did you mean "seed"?`},
		{"account", `auth_tokens = ["primary-auth-token"]`, `auth_token = ["primary-auth-token"]`,
			`unknown key "accounts[0].auth_token": did you mean "accounts[0].auth_tokens"?`},
		{"number", `voice_url =`, `voice_ulr =`, `unknown key "accounts[0].numbers[0].voice_ulr": did you mean "accounts[0].numbers[0].voice_url"?`},
		{"service", `sticky = true`, `stiky = true`, `unknown key "accounts[0].services[0].stiky": did you mean "accounts[0].services[0].sticky"?`},
		{"inline table", `latency = { median = "3s"`, `latency = { medain = "3s"`,
			`unknown key "carriers[0].latency.medain": did you mean "carriers[0].latency.median"?`},
		{"inline array of tables", `{ status = "failed",      code = 30008, rate = 0.005 }`, `{ status = "failed", cod = 30008, rate = 0.005 }`,
			`unknown key "carriers[0].outcomes[2].cod": did you mean "carriers[0].outcomes[2].code"?`},
		{"table", `reorder_rate = 0.05`, `reorder_rat = 0.05`, `unknown key "callbacks.reorder_rat": did you mean "callbacks.reorder_rate"?`},
		{"array of tables", "[[carriers]]\nprefix = \"+44\"", "[[carrier]]\nprefix = \"+44\"", `unknown key "carrier": did you mean "carriers"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(string(example), tc.old) {
				t.Fatalf("sim.example.toml has no %q", tc.old)
			}
			path := filepath.Join(t.TempDir(), "sim.toml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(example), tc.old, tc.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadConfig: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
