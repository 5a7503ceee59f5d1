package sim

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/switchboard-dev/switchboard/configkeys"
)

// LoadConfig reads a simulator configuration from a TOML file whose keys
// are Config's koanf tags. An unreadable or malformed file is an error, and
// so is a key that names no setting (with the closest one that does);
// validation happens in New.
func LoadConfig(path string) (Config, error) {
	var c Config
	if _, err := os.Stat(path); err != nil {
		return c, fmt.Errorf("sim config: %w", err)
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
		return c, fmt.Errorf("sim config %s: %w", path, err)
	}
	if err := configkeys.Check(k.Raw(), reflect.TypeFor[Config]()); err != nil {
		return c, fmt.Errorf("sim config %s: %w", path, err)
	}
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return c, fmt.Errorf("sim config %s: decode: %w", path, err)
	}
	return c, nil
}

// DemoConfig returns a ready-to-use configuration for a seed: one account
// whose SID and auth token are drawn from the seed, owning a long code, a
// toll-free number and a short code (in the 555-01xx range reserved for
// fiction) without webhooks, and a sticky Messaging Service over the long
// code and the toll-free number.
func DemoConfig(seed int64) Config {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x64656d6f))
	hex := func(prefix string) string { return fmt.Sprintf("%s%016x%016x", prefix, rng.Uint64(), rng.Uint64()) }
	acct := Account{
		SID:        hex("AC"),
		AuthTokens: []string{fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())},
		Numbers: []Number{
			{Number: "+12065550100", Type: LongCode},
			{Number: "+18885550100", Type: TollFree},
			{Number: "55501", Type: ShortCode},
		},
	}
	acct.Services = []Service{{SID: hex("MG"), Numbers: []string{"+12065550100", "+18885550100"}, Sticky: true}}
	return Config{Seed: seed, Accounts: []Account{acct}}
}
