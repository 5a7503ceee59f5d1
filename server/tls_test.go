package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/switchboard-dev/switchboard/config"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, told
// apart from others by its serial number.
type testCert struct {
	serial          int64
	certPEM, keyPEM []byte
	x509            *x509.Certificate
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "switchboard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{serial: serial, x509: c,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}
}

// writeAtomic replaces path's content the way renewals do: a new file
// renamed over the old one.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// logRecorder is a slog handler that keeps the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func servedSerial(t *testing.T, r *certReloader) int64 {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v, %v", c, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// The reloader serves the pair it loaded at start; a changed pair that
// loads replaces it; a corrupt, mismatched, missing or oversized one
// leaves it in place, logged once per bad content.
func TestCertReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, c2, c3 := newTestCert(t, 1), newTestCert(t, 2), newTestCert(t, 3)

	if _, err := newCertReloader(certFile, keyFile, time.Hour, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("missing files: no error, want serve to refuse to start")
	}
	writeAtomic(t, certFile, c1.certPEM)
	writeAtomic(t, keyFile, c2.keyPEM)
	if _, err := newCertReloader(certFile, keyFile, time.Hour, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("mismatched pair: error %v, want one naming %s", err, certFile)
	}
	writeAtomic(t, keyFile, c1.keyPEM)
	logs := &logRecorder{}
	r, err := newCertReloader(certFile, keyFile, time.Hour, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, r); got != 1 {
		t.Fatalf("serial %d at start, want 1", got)
	}

	writeAtomic(t, certFile, c2.certPEM)
	writeAtomic(t, keyFile, c2.keyPEM)
	r.reload()
	if got := servedSerial(t, r); got != 2 {
		t.Fatalf("serial %d after a new pair, want 2", got)
	}

	bad := []struct {
		name      string
		cert, key []byte
	}{
		{"corrupt certificate", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), c2.keyPEM},
		{"half written certificate", c3.certPEM[:len(c3.certPEM)/2], c3.keyPEM},
		{"certificate of another key", c3.certPEM, c2.keyPEM},
		{"empty key", c3.certPEM, nil},
		{"oversized certificate", bytes.Repeat([]byte("A"), maxCertFileBytes+1), c3.keyPEM},
	}
	for i, b := range bad {
		writeAtomic(t, certFile, b.cert)
		writeAtomic(t, keyFile, b.key)
		r.reload()
		r.reload() // the same bad pair again: logged once
		if got := servedSerial(t, r); got != 2 {
			t.Errorf("%s: serial %d, want the previous pair's 2", b.name, got)
		}
		if n := logs.count("still serving"); n != i+1 {
			t.Errorf("%s: %d errors logged in all, want %d", b.name, n, i+1)
		}
	}
	os.Remove(keyFile)
	r.reload()
	if got := servedSerial(t, r); got != 2 {
		t.Errorf("key removed: serial %d, want 2", got)
	}

	writeAtomic(t, certFile, c3.certPEM)
	writeAtomic(t, keyFile, c3.keyPEM)
	r.reload()
	if got := servedSerial(t, r); got != 3 {
		t.Errorf("serial %d after a good pair again, want 3", got)
	}
	r.start()
	r.close()
	r.close() // twice is fine

	// A server built and shut down without starting does not wait for a
	// reloader that never ran.
	idle, err := newCertReloader(certFile, keyFile, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	idle.close()
}

// tlsConfigTOML is a configuration serving TLS from certFile and keyFile,
// with its store in dir.
func tlsConfig(t *testing.T, dir, extra string) *config.Config {
	t.Helper()
	app, _ := localApp(t)
	path := filepath.Join(dir, "switchboard.toml")
	body := `listen = "127.0.0.1:0"
public_url = "https://hooks.example.com"
[storage]
url = "` + filepath.Join(dir, "sb.db") + `"
[admin]
token = "secret"
[[accounts]]
sid = "` + testAccount + `"
auth_tokens = ["token"]
[[routes]]
path = "/sms"
account = "` + testAccount + `"
target = "` + app.URL + `/sms"
` + extra
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startServer(t *testing.T, cfg *config.Config, logger *slog.Logger) *Server {
	t.Helper()
	s, err := New(t.Context(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// handshakeSerial connects to addr trusting roots and returns the serial
// number of the certificate served.
func handshakeSerial(addr string, roots *x509.CertPool) (int64, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// serve terminates TLS with the configured files (TLS 1.2 at least), and
// serves a renewed pair once it lands; a corrupt replacement keeps the
// pair served before. A bad pair at start stops New.
func TestServeTLSReloadsCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, c2 := newTestCert(t, 101), newTestCert(t, 102)
	writeAtomic(t, certFile, []byte("garbage"))
	writeAtomic(t, keyFile, c1.keyPEM)
	extra := "[tls]\ncert_file = \"" + certFile + "\"\nkey_file = \"" + keyFile + "\"\n"
	cfg := tlsConfig(t, dir, extra)
	if _, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("New with a corrupt certificate: %v, want a TLS error", err)
	}
	writeAtomic(t, certFile, c1.certPEM)
	logs := &logRecorder{}
	s := startServer(t, cfg, slog.New(logs))
	if s.Scheme() != "https" {
		t.Errorf("Scheme() = %q, want https", s.Scheme())
	}
	roots := x509.NewCertPool()
	roots.AddCert(c1.x509)
	roots.AddCert(c2.x509)

	if got, err := handshakeSerial(s.Addr(), roots); err != nil || got != 101 {
		t.Fatalf("handshake: serial %d, %v; want 101", got, err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}}
	resp, err := client.Get("https://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over TLS: %d, want 200", resp.StatusCode)
	}
	if _, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 handshake succeeded, want it refused")
	}

	writeAtomic(t, keyFile, c2.keyPEM)
	writeAtomic(t, certFile, c2.certPEM)
	waitFor(t, "the renewed certificate served", func() bool {
		got, err := handshakeSerial(s.Addr(), roots)
		return err == nil && got == 102
	})

	writeAtomic(t, certFile, []byte("-----BEGIN CERTIFICATE-----\ncorrupt\n-----END CERTIFICATE-----\n"))
	waitFor(t, "the corrupt certificate noticed", func() bool { return logs.count("do not load") > 0 })
	if got, err := handshakeSerial(s.Addr(), roots); err != nil || got != 102 {
		t.Fatalf("after a corrupt replacement: serial %d, %v; want 102 still", got, err)
	}
}

// waitFor polls cond until it holds, failing the test past a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // a poll interval, not a wait for something
	}
}

// With ACME, certificates are asked for only for the configured domains,
// kept in the cache directory, from the configured directory; the
// listener offers the TLS-ALPN-01 protocol. A handshake for another name
// fails without the CA hearing of it.
func TestACMEManager(t *testing.T) {
	t.Parallel()
	var caHits atomic.Int64
	ca := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caHits.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(ca.Close)
	dir := t.TempDir()
	cfg := tlsConfig(t, dir, "[tls.acme]\ndomains = [\"hooks.example.com\"]\nemail = \"ops@example.com\"\ndirectory_url = \""+ca.URL+"/directory\"\n")

	m := newACMEManager(cfg)
	ctx := t.Context()
	if err := m.HostPolicy(ctx, "hooks.example.com"); err != nil {
		t.Errorf("HostPolicy(hooks.example.com) = %v, want allowed", err)
	}
	for _, h := range []string{"other.example.com", "127.0.0.1", "example.com"} {
		if err := m.HostPolicy(ctx, h); err == nil {
			t.Errorf("HostPolicy(%s) allowed, want refused", h)
		}
	}
	if got, want := string(m.Cache.(autocert.DirCache)), filepath.Join(dir, "acme"); got != want {
		t.Errorf("cache %q, want %q", got, want)
	}
	if m.Client == nil || m.Client.DirectoryURL != ca.URL+"/directory" || m.Email != "ops@example.com" {
		t.Errorf("client %+v, email %q: want the configured directory and email", m.Client, m.Email)
	}

	st, err := newServerTLS(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(st.config.NextProtos, "acme-tls/1") || st.config.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config: protocols %q, min version %x; want acme-tls/1 offered and TLS 1.2", st.config.NextProtos, st.config.MinVersion)
	}

	s := startServer(t, cfg, slog.New(slog.DiscardHandler))
	if _, err := tls.Dial("tcp", s.Addr(), &tls.Config{ServerName: "other.example.com", InsecureSkipVerify: true}); err == nil {
		t.Error("a handshake for a domain not configured succeeded")
	}
	if n := caHits.Load(); n != 0 {
		t.Errorf("the CA got %d requests for a domain not configured, want none", n)
	}
}

func newPool(certs ...testCert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.x509)
	}
	return p
}

// A key file others can read is loaded (its access is the operator's to
// set) with a warning naming the file, never its content; one only its
// owner reads is not warned of.
func TestCertReloaderWarnsOfAKeyOthersCanRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o640, false}, {0o644, true}, {0o666, true}} {
		dir := t.TempDir()
		c := newTestCert(t, 7)
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		writeAtomic(t, certFile, c.certPEM)
		writeAtomic(t, keyFile, c.keyPEM)
		if err := os.Chmod(keyFile, tc.mode); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := newCertReloader(certFile, keyFile, time.Hour, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
			t.Fatalf("mode %#o: %v", tc.mode, err)
		}
		logged := buf.String()
		if got := strings.Contains(logged, "readable by every user") && strings.Contains(logged, keyFile); got != tc.warn {
			t.Errorf("mode %#o: warned %v, want %v: %s", tc.mode, got, tc.warn, logged)
		}
		if strings.Contains(logged, "PRIVATE KEY") || strings.Contains(logged, string(c.keyPEM[40:80])) {
			t.Errorf("mode %#o: the key logged: %s", tc.mode, logged)
		}
	}
}
