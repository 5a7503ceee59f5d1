package doctor

import (
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

func TestProbeTLS(t *testing.T) {
	t.Parallel()
	handler := twimlHandler("application/xml", validTwiML)
	now := time.Now()
	root := newCA(t, "Test Root CA", nil)
	intermediate := newCA(t, "Test Intermediate CA", root)

	tests := []struct {
		name    string
		server  func(t *testing.T) *httptest.Server
		roots   func(srv *httptest.Server) *x509.CertPool
		status  Status
		code    twilio.Code
		message string
	}{
		{
			name: "self-signed, unknown authority",
			server: func(t *testing.T) *httptest.Server {
				srv := quietServer(t, handler)
				srv.StartTLS()
				t.Cleanup(srv.Close)
				return srv
			},
			status:  StatusFail,
			code:    twilio.CodeCertificateInvalid,
			message: "unknown authority",
		},
		{
			name: "trusted",
			server: func(t *testing.T) *httptest.Server {
				srv := httptest.NewTLSServer(handler)
				t.Cleanup(srv.Close)
				return srv
			},
			roots: func(srv *httptest.Server) *x509.CertPool {
				p := x509.NewCertPool()
				p.AddCert(srv.Certificate())
				return p
			},
			status:  StatusPass,
			message: "valid until",
		},
		{
			name: "certificate for another name",
			server: func(t *testing.T) *httptest.Server {
				return tlsServer(t, handler, root.leaf(t, []string{"other.example"}, now.Add(-time.Hour), now.Add(time.Hour)))
			},
			roots:   func(*httptest.Server) *x509.CertPool { return root.pool() },
			status:  StatusFail,
			code:    twilio.CodeCertificateInvalid,
			message: "wrong host name: the certificate is for other.example, not 127.0.0.1",
		},
		{
			name: "expired",
			server: func(t *testing.T) *httptest.Server {
				return tlsServer(t, handler, root.leaf(t, []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
			},
			roots:   func(*httptest.Server) *x509.CertPool { return root.pool() },
			status:  StatusFail,
			code:    twilio.CodeCertificateInvalid,
			message: "expired",
		},
		{
			name: "incomplete chain",
			server: func(t *testing.T) *httptest.Server {
				return tlsServer(t, handler, intermediate.leaf(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour)))
			},
			roots:   func(*httptest.Server) *x509.CertPool { return root.pool() },
			status:  StatusFail,
			code:    twilio.CodeCertificateInvalid,
			message: "incomplete chain",
		},
		{
			name: "full chain",
			server: func(t *testing.T) *httptest.Server {
				return tlsServer(t, handler, intermediate.leaf(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(30*24*time.Hour), intermediate.cert))
			},
			roots:   func(*httptest.Server) *x509.CertPool { return root.pool() },
			status:  StatusPass,
			message: "Test Intermediate CA",
		},
		{
			name: "expiring soon",
			server: func(t *testing.T) *httptest.Server {
				return tlsServer(t, handler, root.leaf(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(2*time.Hour)))
			},
			roots:   func(*httptest.Server) *x509.CertPool { return root.pool() },
			status:  StatusWarn,
			code:    twilio.CodeCertificateInvalid,
			message: "expires in",
		},
		{
			name: "plain HTTP on the HTTPS URL",
			server: func(t *testing.T) *httptest.Server {
				srv := httptest.NewServer(handler)
				t.Cleanup(srv.Close)
				srv.URL = strings.Replace(srv.URL, "http://", "https://", 1)
				return srv
			},
			status:  StatusFail,
			code:    twilio.CodeHTTPProtocolViolation,
			message: "does not speak TLS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tt.server(t)
			o := Options{URL: srv.URL + "/sms"}
			if tt.roots != nil {
				o.RootCAs = tt.roots(srv)
			}
			r := probe(t, o)
			requireFindings(t, r, want{"tls", tt.status, tt.code})
			if f := finding(t, r, "tls"); !strings.Contains(f.Message, tt.message) {
				t.Errorf("tls finding %q does not contain %q", f.Message, tt.message)
			}
			if wantFailed := tt.status == StatusFail; r.Failed() != wantFailed {
				t.Errorf("Failed() = %v, want %v:\n%s", r.Failed(), wantFailed, r.Text())
			}
		})
	}
}

// TestProbeTLSClock checks certificates against Options.Now.
func TestProbeTLSClock(t *testing.T) {
	t.Parallel()
	srv := quietServer(t, twimlHandler("application/xml", validTwiML))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	later := srv.Certificate().NotAfter.Add(time.Hour)
	r := probe(t, Options{URL: srv.URL, RootCAs: roots, Now: func() time.Time { return later }})
	requireFindings(t, r, want{"tls", StatusFail, twilio.CodeCertificateInvalid})
	if f := finding(t, r, "tls"); !strings.Contains(f.Message, "expired") {
		t.Errorf("tls finding %q", f.Message)
	}
}
