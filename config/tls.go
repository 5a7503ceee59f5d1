package config

// TLS configures serve's own TLS: certificate files (reloaded when they
// change) or ACME. Neither: plain HTTP, for a proxy that terminates TLS.
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

// validateTLS adds the problems of [tls] and admin.listen to bad.
func (c *Config) validateTLS(bad func(string, ...any)) {
	// Filled in with TLS.
}
