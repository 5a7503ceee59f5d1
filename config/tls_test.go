package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// [tls] takes certificate files (both) or ACME (with domains), never
// both; public_url is https once serve terminates TLS; admin.listen is an
// address of its own.
func TestTLSAndAdminListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, toml string
		env        []string
		wantErr    string // empty: valid
	}{
		{name: "none", toml: ""},
		{name: "files", toml: "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"},
		{name: "cert without key", toml: "[tls]\ncert_file = \"c.pem\"\n", wantErr: "tls.cert_file and tls.key_file"},
		{name: "key without cert", toml: "[tls]\nkey_file = \"k.pem\"\n", wantErr: "tls.cert_file and tls.key_file"},
		{name: "acme", toml: "[tls.acme]\ndomains = [\"hooks.example.com\"]\nemail = \"ops@example.com\"\n"},
		{name: "acme from the environment", env: []string{"SWITCHBOARD_TLS_ACME_DOMAINS=hooks.example.com,alt.example.com"}},
		{name: "acme with a test CA", toml: "[tls.acme]\ndomains = [\"hooks.example.com\"]\ndirectory_url = \"https://127.0.0.1:14000/dir\"\n"},
		{name: "acme plain directory", toml: "[tls.acme]\ndomains = [\"hooks.example.com\"]\ndirectory_url = \"http://ca.example/dir\"\n", wantErr: "tls.acme.directory_url"},
		{name: "acme without domains", toml: "[tls.acme]\nemail = \"ops@example.com\"\n", wantErr: "tls.acme.domains"},
		{name: "acme for an IP", toml: "[tls.acme]\ndomains = [\"192.0.2.1\"]\n", wantErr: "tls.acme.domains"},
		{name: "acme wildcard", toml: "[tls.acme]\ndomains = [\"*.example.com\"]\n", wantErr: "tls.acme.domains"},
		{name: "files and acme", toml: "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[tls.acme]\ndomains = [\"hooks.example.com\"]\n", wantErr: "exclusive"},
		{name: "acme on postgres without cache", toml: "[tls.acme]\ndomains = [\"hooks.example.com\"]\n",
			env: []string{"SWITCHBOARD_STORAGE_URL=postgres://db/sb"}, wantErr: "tls.acme.cache_dir"},
		{name: "acme on postgres with cache", toml: "[tls.acme]\ndomains = [\"hooks.example.com\"]\ncache_dir = \"/var/lib/sb/acme\"\n",
			env: []string{"SWITCHBOARD_STORAGE_URL=postgres://db/sb"}},
		{name: "plain public url with tls", toml: "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
			env: []string{"SWITCHBOARD_PUBLIC_URL=http://hooks.example.com"}, wantErr: "must be https"},
		{name: "admin listen", env: []string{"SWITCHBOARD_ADMIN_LISTEN=127.0.0.1:9090"}},
		{name: "admin listen same", env: []string{"SWITCHBOARD_ADMIN_LISTEN=127.0.0.1:9999"}, wantErr: "must differ from listen"},
		{name: "admin listen same port every interface", env: []string{"SWITCHBOARD_ADMIN_LISTEN=:9999"}, wantErr: "must differ from listen"},
		{name: "admin listen other interface", env: []string{"SWITCHBOARD_ADMIN_LISTEN=10.0.0.1:9999"}},
		{name: "admin listen no port", env: []string{"SWITCHBOARD_ADMIN_LISTEN=localhost"}, wantErr: "admin.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeConfig(t, validTOML+"\n"+tt.toml), tt.env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// ACME certificates are kept beside the SQLite database unless cache_dir
// says otherwise.
func TestACMECacheDir(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, validTOML+"\n[tls.acme]\ndomains = [\"hooks.example.com\"]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ACMECacheDir(), filepath.Join(filepath.Dir(c.Storage.URL), "acme"); got != want {
		t.Errorf("ACMECacheDir() = %q, want %q", got, want)
	}
	c.TLS.ACME.CacheDir = "/elsewhere"
	if got := c.ACMECacheDir(); got != "/elsewhere" {
		t.Errorf("ACMECacheDir() with cache_dir = %q, want /elsewhere", got)
	}
}
