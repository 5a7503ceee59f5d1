package config

import (
	"strings"
	"testing"
	"time"
)

func TestDedupWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  string // added under [outbound]; "" for none
		want time.Duration
		err  string
	}{
		{"off by default", "", 0, ""},
		{"off", `dedup_window = "0s"`, 0, ""},
		{"an hour", `dedup_window = "1h"`, time.Hour, ""},
		{"a day, the longest", `dedup_window = "24h"`, 24 * time.Hour, ""},
		{"negative", `dedup_window = "-1s"`, 0, "outbound.dedup_window: -1s must be from 0"},
		{"over a day", `dedup_window = "24h0m1s"`, 0, "outbound.dedup_window: 24h0m1s must be from 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(outboundTOML, "[outbound]\n") {
				t.Fatal("no [outbound] in the configuration")
			}
			c, err := Load(writeConfig(t, strings.Replace(outboundTOML, "[outbound]\n", "[outbound]\n"+tt.set+"\n", 1)), nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Load = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Outbound.DedupWindow != tt.want {
				t.Errorf("dedup_window = %v, want %v", c.Outbound.DedupWindow, tt.want)
			}
		})
	}
}
