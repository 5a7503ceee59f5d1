package config

import (
	"net"
	"net/url"
	"path/filepath"
	"strings"
)

// TLS configures serve's own TLS: certificate files (reloaded when they
// change) or ACME. Neither: plain HTTP, for a proxy that terminates TLS.
// With TLS on, the admin listener (admin.listen) uses the same
// certificates.
type TLS struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	ACME     ACME   `koanf:"acme"`
}

// ACME gets certificates from an ACME CA (Let's Encrypt by default) for
// Domains, answering its TLS-ALPN challenge on the listener.
type ACME struct {
	Domains      []string `koanf:"domains"`
	Email        string   `koanf:"email"`
	CacheDir     string   `koanf:"cache_dir"`     // where certificates are kept (default beside the SQLite store)
	DirectoryURL string   `koanf:"directory_url"` // default Let's Encrypt's production directory
}

// Enabled reports whether serve terminates TLS itself.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || len(t.ACME.Domains) > 0 }

// ACMECacheDir is where ACME certificates and the account key are kept:
// tls.acme.cache_dir, or an "acme" directory beside the SQLite database.
// Empty for PostgreSQL without cache_dir, which Validate refuses.
func (c *Config) ACMECacheDir() string {
	if c.TLS.ACME.CacheDir != "" || c.Storage.IsPostgres() || c.Storage.URL == "" {
		return c.TLS.ACME.CacheDir
	}
	return filepath.Join(filepath.Dir(c.Storage.URL), "acme")
}

// validateTLS adds the problems of [tls] and admin.listen to bad.
func (c *Config) validateTLS(bad func(string, ...any)) {
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.cert_file and tls.key_file: set both or neither")
	}
	acme := t.ACME
	usesACME := len(acme.Domains) > 0 || acme.Email != "" || acme.CacheDir != "" || acme.DirectoryURL != ""
	if usesACME && t.CertFile != "" {
		bad("tls: certificate files and tls.acme are exclusive: choose one")
	}
	if usesACME {
		if len(acme.Domains) == 0 {
			bad("tls.acme.domains: at least one domain is required, the names certificates are asked for")
		}
		for _, d := range acme.Domains {
			if d == "" || strings.ContainsAny(d, "/:*@ ") || net.ParseIP(d) != nil || !strings.Contains(d, ".") {
				bad("tls.acme.domains: %q is not a host name an ACME CA issues for (no IP addresses, ports or wildcards)", d)
			}
		}
		if acme.CacheDir == "" && c.Storage.IsPostgres() {
			bad("tls.acme.cache_dir: required with PostgreSQL storage (there is no SQLite file to keep certificates beside); use a directory every replica keeps across restarts")
		}
		if acme.DirectoryURL != "" {
			if u, err := url.Parse(acme.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
				bad("tls.acme.directory_url %q: want an https URL", acme.DirectoryURL)
			}
		}
		if acme.Email != "" && !strings.Contains(acme.Email, "@") {
			bad("tls.acme.email %q: want an email address", acme.Email)
		}
	}
	// Twilio signs the URL it calls: with TLS terminated here, that URL is
	// https, and a public_url saying http would fail every signature.
	if t.Enabled() && c.PublicURL != "" && !strings.HasPrefix(strings.ToLower(c.PublicURL), "https://") {
		bad("public_url %q: must be https when serve terminates TLS (tls.cert_file or tls.acme)", c.PublicURL)
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen %q: want host:port", c.Admin.Listen)
		} else if sameAddress(c.Admin.Listen, c.Listen) {
			bad("admin.listen %q: must differ from listen, which carries the webhooks", c.Admin.Listen)
		}
	}
}

// sameAddress reports whether two listen addresses are the same, or would
// collide: the same port on the same host, or one of them on every
// interface.
func sameAddress(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if ap != bp || ap == "0" {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ah == bh || any(ah) || any(bh)
}
