package config

import (
	"strings"
	"testing"
	"time"
)

// [retention] has defaults that bound the store, each key can be set from
// the file or the environment, 0 keeps a kind forever, and a window too
// short to deduplicate is refused.
func TestRetention(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, validTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	if r := c.Retention; r.Rejected != 7*day || r.Delivered != 30*day || r.Dead != 90*day || r.Messages != 90*day ||
		r.StickySenders != 180*day || r.Interval != time.Minute || r.BatchSize != 500 {
		t.Errorf("retention defaults: %+v", r)
	}

	tests := []struct {
		name string
		toml string
		env  []string
		bad  []string // keys the error must name; none: valid
	}{
		{"forever", "[retention]\nrejected = \"0s\"\ndelivered = \"0s\"\ndead = \"0s\"\nmessages = \"0s\"\nsticky_senders = \"0s\"\n", nil, nil},
		{"a day of events, minutes of rejects", "[retention]\ndelivered = \"24h\"\ndead = \"24h\"\nmessages = \"24h\"\nrejected = \"10m\"\nsticky_senders = \"1h\"\n", nil, nil},
		{"environment", "", []string{"SWITCHBOARD_RETENTION_DELIVERED=48h", "SWITCHBOARD_RETENTION_BATCH_SIZE=100"}, nil},
		{"below the dedup window", "[retention]\ndelivered = \"23h\"\ndead = \"1h\"\nmessages = \"1m\"\n", nil,
			[]string{"retention.delivered", "retention.dead", "retention.messages"}},
		{"negative", "[retention]\nrejected = \"-1h\"\nsticky_senders = \"-1s\"\n", nil, []string{"retention.rejected", "retention.sticky_senders"}},
		{"interval and batch", "[retention]\ninterval = \"0s\"\nbatch_size = 0\n", nil, []string{"retention.interval", "retention.batch_size"}},
		{"huge batch", "[retention]\nbatch_size = 1000000\n", nil, []string{"retention.batch_size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, validTOML+tc.toml), tc.env)
			if len(tc.bad) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tc.env != nil && (c.Retention.Delivered != 48*time.Hour || c.Retention.BatchSize != 100) {
					t.Errorf("environment not applied: %+v", c.Retention)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, k := range tc.bad {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error does not name %s:\n%v", k, err)
				}
			}
		})
	}
}
