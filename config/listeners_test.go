package config

import (
	"slices"
	"strings"
	"testing"
)

// listenersTOML is validTOML with two routes through the listener
// "laptop", which has a key of its own.
const listenersTOML = validTOML + `
[[routes]]
path = "/dev/sms"
account = "AC00000000000000000000000000000001"
listener = "laptop"
[[routes]]
path = "/dev/voice"
account = "AC00000000000000000000000000000001"
mode = "proxy"
listener = "laptop"
[[listeners]]
name = "laptop"
key = "0123456789abcdef0123456789abcdef"
`

func TestListenerRoutes(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, listenersTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.ListenerRoutes()
	if len(got) != 1 || !slices.Equal(got["laptop"], []string{"/dev/sms", "/dev/voice"}) {
		t.Errorf("ListenerRoutes = %v", got)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Key == "" {
		t.Errorf("listeners: %+v", c.Listeners)
	}
}

func TestListenerValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string // new replaces old in listenersTOML
		want     string // in the error
	}{
		{"route listener shape", `listener = "laptop"`, `listener = "My Laptop"`, `routes[2].listener "My Laptop": want 1 to 63`},
		{"route listener and target", "listener = \"laptop\"\n", "listener = \"laptop\"\ntarget = \"http://127.0.0.1:3000/sms\"\n", `routes[2]: target and listener both set`},
		{"static route through a listener", "listener = \"laptop\"\n", "listener = \"laptop\"\nmode = \"static\"\n", `routes[2].listener: a static route delivers to no app`},
		{"key short", `key = "0123456789abcdef0123456789abcdef"`, `key = "short"`, `listeners[0].key: at least 32 characters`},
		{"key missing", "key = \"0123456789abcdef0123456789abcdef\"\n", "", `listeners[0].key: at least 32 characters`},
		{"name shape", `name = "laptop"`, `name = "../laptop"`, `listeners[0].name "../laptop": want 1 to 63`},
		{"name of no route", `name = "laptop"`, `name = "desk"`, `listeners[0].name "desk": no route names this listener`},
		{"simulator url", "[admin]\ntoken = \"secret\"\n", "[admin]\ntoken = \"secret\"\nsimulator_url = \"file:///etc/passwd\"\n", `admin.simulator_url "file:///etc/passwd": want an absolute http(s) URL`},
		{"name twice", "[[listeners]]\nname = \"laptop\"", "[[listeners]]\nname = \"laptop\"\nkey = \"0123456789abcdef0123456789abcdef\"\n[[listeners]]\nname = \"laptop\"", `listeners[1].name "laptop": listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(listenersTOML, tt.old) {
				t.Fatalf("%q is not in the configuration", tt.old)
			}
			_, err := Load(writeConfig(t, strings.Replace(listenersTOML, tt.old, tt.new, 1)), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
