package sim

import (
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
