package config

import (
	"slices"
	"strings"
	"testing"
)

// The egress allowlist and the doctor's private probes are off unless
// configured; the allowlist comes from the file or, comma-separated, from
// SWITCHBOARD_EGRESS_ALLOW, and every entry must be a CIDR prefix.
func TestEgressAllowlist(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, validTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Egress.Allow) != 0 || c.Doctor.AllowPrivate {
		t.Errorf("defaults: egress.allow %q, doctor.allow_private %v; want none and false", c.Egress.Allow, c.Doctor.AllowPrivate)
	}

	c, err = Load(writeConfig(t, validTOML+"\n[egress]\nallow = [\"127.0.0.0/8\", \"::1/128\"]\n[doctor]\nallow_private = true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.0/8", "::1/128"}; !slices.Equal(c.Egress.Allow, want) || !c.Doctor.AllowPrivate {
		t.Errorf("from the file: egress.allow %q, doctor.allow_private %v; want %q and true", c.Egress.Allow, c.Doctor.AllowPrivate, want)
	}

	c, err = Load(writeConfig(t, validTOML), []string{"SWITCHBOARD_EGRESS_ALLOW=127.0.0.0/8,::1/128", "SWITCHBOARD_DOCTOR_ALLOW_PRIVATE=true"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.0/8", "::1/128"}; !slices.Equal(c.Egress.Allow, want) || !c.Doctor.AllowPrivate {
		t.Errorf("from the environment: egress.allow %q, doctor.allow_private %v; want %q and true", c.Egress.Allow, c.Doctor.AllowPrivate, want)
	}

	for _, bad := range []string{`["localhost"]`, `["127.0.0.1/8"]`, `["10.0.0.0/33"]`} {
		_, err := Load(writeConfig(t, validTOML+"\n[egress]\nallow = "+bad+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "egress.allow") {
			t.Errorf("egress.allow = %s: error %v, want one naming egress.allow", bad, err)
		}
	}
}
