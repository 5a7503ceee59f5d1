package config

import (
	"strings"
	"testing"
)

// A debugger route may go without a target (its alerts are stored
// whatever), but not in proxy mode: Twilio gets an empty 200 from it.
func TestDebuggerRoute(t *testing.T) {
	t.Parallel()
	route := func(extra string) string {
		return validTOML + `[[routes]]
path = "/twilio/debugger"
account = "AC00000000000000000000000000000001"
kind = "debugger"
` + extra
	}
	cases := []struct {
		name, extra, wantErr string
	}{
		{"no target", "", ""},
		{"with a target", `target = "https://app.example.com/debugger"` + "\n", ""},
		{"static", `mode = "static"` + "\n", ""},
		{"proxy", `mode = "proxy"` + "\n" + `target = "https://app.example.com/debugger"` + "\n", "routes[2].mode"},
		{"bad target", `target = "nope"` + "\n", "routes[2].target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeConfig(t, route(tc.extra)), nil)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %s refused", err, tc.wantErr)
			}
		})
	}
}
