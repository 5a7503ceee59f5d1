package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/switchboard-dev/switchboard/config"
)

// certReloadInterval is how often certificate files are read again to see
// whether they changed: a renewal (certbot, cert-manager, a mounted
// Secret) is served within about this long.
const certReloadInterval = time.Second

// maxCertFileBytes bounds what is read of a certificate or key file.
const maxCertFileBytes = 1 << 20

// certReloader serves a certificate and key pair read from files, and
// reads them again every interval: a pair that changed and loads replaces
// the one served, atomically (handshakes in flight keep the one they got);
// a pair that does not load (half written, mismatched, corrupt) leaves the
// one served in place and is logged once.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	interval          time.Duration

	cert atomic.Pointer[tls.Certificate]
	// certPEM and keyPEM are the contents last tried, loaded or not: the
	// same bad pair is not logged again at every tick.
	certPEM, keyPEM []byte
	readErr         string // the last read failure logged

	stop    chan struct{}
	done    chan struct{}
	started atomic.Bool
	once    sync.Once
}

// newCertReloader loads the pair: an error here stops serve from starting.
func newCertReloader(certFile, keyFile string, interval time.Duration, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger, interval: interval,
		stop: make(chan struct{}), done: make(chan struct{})}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	r.cert.Store(&cert)
	r.certPEM, r.keyPEM = certPEM, keyPEM
	r.checkKeyMode()
	return r, nil
}

// checkKeyMode warns when the key file can be read by other users than
// its owner (and its group, as a mounted Kubernetes Secret's may be): a
// private key anyone on the machine reads is anyone's certificate. It
// warns and goes on, since the file's access is the operator's to set;
// the key itself is never logged.
func (r *certReloader) checkKeyMode() {
	fi, err := os.Stat(r.keyFile)
	if err != nil || runtime.GOOS == "windows" {
		return
	}
	if mode := fi.Mode().Perm(); mode&0o007 != 0 {
		r.logger.Warn("tls: the key file is readable by every user of this machine; restrict it (chmod 600 or 640)",
			"key_file", r.keyFile, "mode", fmt.Sprintf("%#o", mode))
	}
}

func (r *certReloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readBounded(r.certFile); err != nil {
		return nil, nil, fmt.Errorf("tls: read certificate: %w", err)
	}
	if keyPEM, err = readBounded(r.keyFile); err != nil {
		return nil, nil, fmt.Errorf("tls: read key: %w", err)
	}
	return certPEM, keyPEM, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCertFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxCertFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxCertFileBytes)
	}
	return b, nil
}

// GetCertificate is tls.Config.GetCertificate: the pair loaded last.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// reload reads the files and swaps in the pair if it changed and loads.
func (r *certReloader) reload() {
	certPEM, keyPEM, err := r.read()
	if err != nil {
		// Between a rename and the next write, say: the next tick sees
		// it. The same failure is logged once, not at every tick.
		if err.Error() != r.readErr {
			r.readErr = err.Error()
			r.logger.Error("tls: certificate files unreadable; still serving the certificate loaded before", "err", err)
		}
		return
	}
	r.readErr = ""
	if bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return
	}
	r.certPEM, r.keyPEM = certPEM, keyPEM
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		r.logger.Error("tls: new certificate files do not load; still serving the certificate loaded before",
			"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		return
	}
	r.cert.Store(&cert)
	r.logger.Info("tls: certificate reloaded", "cert_file", r.certFile)
	r.checkKeyMode()
}

// start reads the files every interval until close.
func (r *certReloader) start() {
	r.started.Store(true)
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.reload()
			}
		}
	}()
}

// close stops the reloading started by start, if it was, and waits for
// it.
func (r *certReloader) close() {
	r.once.Do(func() {
		close(r.stop)
		if r.started.Load() {
			<-r.done
		}
	})
}

// serverTLS is the TLS configuration of both listeners, or nil for plain
// HTTP, and the certificate reloader behind it (nil with ACME).
type serverTLS struct {
	config   *tls.Config
	reloader *certReloader
}

// newServerTLS builds serve's TLS from the configuration: certificate
// files, loaded now so that a missing or bad pair stops serve at once, or
// an ACME manager that asks for certificates of the configured domains on
// first use, answering the CA's TLS-ALPN-01 challenge on the listener.
func newServerTLS(cfg *config.Config, logger *slog.Logger) (*serverTLS, error) {
	t := cfg.TLS
	switch {
	case t.CertFile != "":
		r, err := newCertReloader(t.CertFile, t.KeyFile, certReloadInterval, logger)
		if err != nil {
			return nil, err
		}
		return &serverTLS{config: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, reloader: r}, nil
	case len(t.ACME.Domains) > 0:
		m := newACMEManager(cfg)
		c := m.TLSConfig() // offers acme-tls/1 for the challenge
		c.MinVersion = tls.VersionTLS12
		return &serverTLS{config: c}, nil
	}
	return nil, nil
}

// newACMEManager is the autocert manager of cfg's tls.acme: certificates
// only for the configured domains (a handshake naming any other is
// refused before the CA is asked), kept in ACMECacheDir.
func newACMEManager(cfg *config.Config) *autocert.Manager {
	a := cfg.TLS.ACME
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Cache:      autocert.DirCache(cfg.ACMECacheDir()),
		Email:      a.Email,
	}
	if a.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: a.DirectoryURL}
	}
	return m
}
