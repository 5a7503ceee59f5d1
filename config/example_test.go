package config_test

import (
	"testing"

	"github.com/switchboard-dev/switchboard/config"
)

// The example configuration README points at must load and validate.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("../switchboard.example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int{}
	for _, r := range cfg.Routes {
		modes[r.Mode]++
	}
	if modes[config.ModeAck] == 0 || modes[config.ModeProxy] == 0 || modes[config.ModeStatic] == 0 {
		t.Errorf("example routes by mode %v: want one of each", modes)
	}
	if cfg.Admin.Token != config.ExampleAdminToken {
		t.Errorf("example admin token %q; config.ExampleAdminToken is %q: serve would take the example's for a real one",
			cfg.Admin.Token, config.ExampleAdminToken)
	}
	if len(cfg.Pools) == 0 || cfg.Outbound.StatusRoute == "" || len(cfg.Providers) == 0 {
		t.Errorf("example outbound: %d pools, status route %q, %d providers; want it configured", len(cfg.Pools),
			cfg.Outbound.StatusRoute, len(cfg.Providers))
	}
}
