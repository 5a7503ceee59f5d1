package server

import (
	"testing"

	"github.com/switchboard-dev/switchboard/config"
)

func TestPhones(t *testing.T) {
	t.Parallel()
	accounts := []config.Account{
		{SID: "AC1", AuthTokens: []string{"first", "second"}},
		{SID: "AC2"}, // no token: cannot authenticate, so no phone
		{SID: "AC3", AuthTokens: []string{"third"}},
	}
	if got := phones(&config.Config{Accounts: accounts}); got != nil {
		t.Errorf("without admin.simulator_url: %d phones, want none", len(got))
	}
	cfg := &config.Config{Accounts: accounts, Admin: config.Admin{SimulatorURL: "http://127.0.0.1:3901"}}
	got := phones(cfg)
	if len(got) != 2 || got[0].Account != "AC1" || got[0].Token != "first" || got[1].Account != "AC3" || got[0].URL != "http://127.0.0.1:3901" {
		t.Errorf("phones %+v", got)
	}
}
