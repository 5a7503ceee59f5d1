package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// certWarnWithin is how close to its expiry a valid certificate is worth a
// warning.
const certWarnWithin = 7 * 24 * time.Hour

// certError is a certificate that failed verification, with the chain the
// server sent, so that a report can tell a self-signed certificate from an
// incomplete chain.
type certError struct {
	err   error // from x509.Certificate.Verify
	chain []*x509.Certificate
	host  string
	now   time.Time
}

func (e *certError) Error() string { return "verify certificate: " + e.err.Error() }
func (e *certError) Unwrap() error { return e.err }

// dialTLS returns a dialer of TLS connections over dial. It verifies
// certificates itself, in VerifyConnection, rather than leaving it to the
// handshake: that way it checks them against the probe's clock, for the
// host name dialed even when that is an IP address, and keeps the chain the
// server sent for the report.
func dialTLS(o *normalized, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial TLS: %w", err)
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := tls.Client(raw, &tls.Config{
			ServerName:         host,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         []string{"http/1.1"}, // what Twilio speaks
			InsecureSkipVerify: true,                 // replaced by VerifyConnection
			VerifyConnection: func(cs tls.ConnectionState) error {
				return verifyChain(cs.PeerCertificates, host, o.RootCAs, o.Now())
			},
		})
		if err := conn.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return conn, nil
	}
}

// verifyChain checks a server's certificates as a client trusting roots
// (nil for the system's) would at time now.
func verifyChain(chain []*x509.Certificate, host string, roots *x509.CertPool, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("verify certificate: the server sent none")
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
	})
	if err != nil {
		return &certError{err: err, chain: chain, host: host, now: now}
	}
	return nil
}

// tlsFinding describes a failed TLS handshake.
func tlsFinding(err error) Finding {
	f := Finding{Check: "tls", Status: StatusFail, Code: twilio.CodeCertificateInvalid}
	var (
		ce        *certError
		hostErr   x509.HostnameError
		authErr   x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &recordErr):
		f.Code = twilio.CodeHTTPProtocolViolation
		f.Message = "the server does not speak TLS on this port (plain HTTP?)"
		f.Fix = "use http:// for this port, or serve HTTPS on it"
	case errors.As(err, &ce) && errors.As(err, &hostErr):
		f.Message = fmt.Sprintf("wrong host name: the certificate is for %s, not %s", certNames(hostErr.Certificate), hostErr.Host)
		f.Fix = "serve a certificate whose names include " + hostErr.Host
	case errors.As(err, &ce) && errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		leaf := ce.chain[0]
		if ce.now.Before(leaf.NotBefore) {
			f.Message = "certificate not valid yet: valid from " + leaf.NotBefore.UTC().Format(time.RFC3339)
			f.Fix = "check the server's clock or reissue the certificate"
		} else {
			f.Message = "certificate expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
			f.Fix = "renew the certificate (automate it, e.g. with ACME/Let's Encrypt)"
		}
	case errors.As(err, &ce) && errors.As(err, &authErr):
		leaf := ce.chain[0]
		switch {
		case bytes.Equal(leaf.RawIssuer, leaf.RawSubject):
			f.Message = "self-signed certificate (" + leaf.Subject.String() + "): signed by unknown authority"
			f.Fix = "use a certificate from a public CA such as Let's Encrypt; Twilio does not trust self-signed ones"
		case len(ce.chain) == 1:
			f.Message = "incomplete chain: the server sent only its own certificate, issued by " + leaf.Issuer.String() + ", unknown authority without intermediates"
			f.Fix = "serve the full chain (certificate followed by the intermediates, e.g. fullchain.pem)"
		default:
			f.Message = "certificate signed by unknown authority (" + ce.chain[len(ce.chain)-1].Issuer.String() + ")"
			f.Fix = fixTLS
		}
	case errors.As(err, &invalid):
		f.Message = "invalid certificate: " + invalid.Error()
		f.Fix = "reissue the certificate from a public CA"
	default:
		f.Message = "TLS handshake failed: " + err.Error()
		f.Fix = "serve TLS 1.2 or later with a certificate from a public CA"
	}
	return f
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return c.Subject.CommonName + " (common name only, which is no longer honoured)"
		}
		return "no host name"
	}
	return strings.Join(names, ", ")
}

// tlsPassFinding describes a successful handshake, warning about a
// certificate close to its expiry.
func tlsPassFinding(cs *tls.ConnectionState, now time.Time) Finding {
	f := Finding{Check: "tls", Status: StatusPass}
	if len(cs.PeerCertificates) == 0 {
		f.Message = tls.VersionName(cs.Version)
		return f
	}
	leaf := cs.PeerCertificates[0]
	host := cs.ServerName
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	f.Message = fmt.Sprintf("%s, certificate for %s valid until %s, issued by %s",
		tls.VersionName(cs.Version), host, leaf.NotAfter.UTC().Format(time.DateOnly), leaf.Issuer.String())
	if left := leaf.NotAfter.Sub(now); left < certWarnWithin {
		f.Status = StatusWarn
		f.Code = twilio.CodeCertificateInvalid
		f.Message = fmt.Sprintf("certificate expires in %s (%s)", left.Round(time.Hour), leaf.NotAfter.UTC().Format(time.RFC3339))
		f.Fix = "renew the certificate now"
	}
	return f
}
