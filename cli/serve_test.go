package cli

import (
	"strings"
	"testing"
)

func TestCheckAdminToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen, token string
		refused       bool
		warned        bool
	}{
		{"127.0.0.1:8080", "s3cret", false, false},
		{"127.0.0.1:8080", "", false, false}, // the admin API is off, and nobody else can reach it anyway
		{"127.0.0.1:8080", "change-me", false, true},
		{"127.9.9.9:8080", "change-me", false, true},
		{"[::1]:8080", "change-me", false, true},
		{"[::ffff:127.0.0.1]:8080", "", false, false},
		{"localhost:8080", "", false, false},
		{"LocalHost:8080", "change-me", false, true},
		{"0.0.0.0:8080", "s3cret", false, false},
		{"0.0.0.0:8080", "", true, false},
		{"0.0.0.0:8080", "change-me", true, false},
		{":8080", "", true, false},
		{":8080", "change-me", true, false},
		{"[::]:8080", "change-me", true, false},
		{"10.0.0.5:8080", "", true, false},
		{"192.168.1.2:8080", "change-me", true, false},
		{"hooks.internal:8080", "", true, false},     // a name may resolve anywhere: fails closed
		{"localhost.evil.com:8080", "", true, false}, // not localhost
		{"not an address", "", true, false},
	} {
		warning, err := checkAdminToken(tc.listen, tc.token)
		if (err != nil) != tc.refused || (warning != "") != tc.warned {
			t.Errorf("listen %q, token %q: warning %q, err %v; want refused %v, warned %v",
				tc.listen, tc.token, warning, err, tc.refused, tc.warned)
		}
		if strings.Contains(warning, "change-me") || err != nil && strings.Contains(err.Error(), "change-me") {
			t.Errorf("listen %q: the token itself is printed: %q, %v", tc.listen, warning, err)
		}
		if err != nil {
			for _, want := range []string{tc.listen, "admin.token", "SWITCHBOARD_ADMIN_TOKEN", "127.0.0.1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("listen %q, token %q: %q does not say %q", tc.listen, tc.token, err, want)
				}
			}
		}
	}
}
