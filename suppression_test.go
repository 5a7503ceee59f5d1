package switchboard

import (
	"strings"
	"testing"
)

func TestRefusalReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason string
		code   int
		ok     bool
	}{
		{RefusalReason(21614), 21614, true},
		{RefusalReason(21211), 21211, true},
		{"STOP", 0, false},
		{"21610", 0, false}, // Twilio's opt-out is an opt-out
		{"refused:", 0, false},
		{"refused:x", 0, false},
		{"refused:-1", 0, false},
		{"REFUSED:21614", 0, false},
	}
	for _, tc := range tests {
		code, ok := RefusalCode(tc.reason)
		if code != tc.code || ok != tc.ok {
			t.Errorf("RefusalCode(%q) = %d, %v; want %d, %v", tc.reason, code, ok, tc.code, tc.ok)
		}
	}
	if r := RefusalReason(21614); r != "refused:21614" || !strings.HasPrefix(r, RefusalPrefix()) {
		t.Errorf("RefusalReason(21614) = %q, want refused:21614 starting with %q", r, RefusalPrefix())
	}
}
