package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// want is a finding a test expects.
type want struct {
	check  string
	status Status
	code   twilio.Code
}

// requireFindings checks that the report has each wanted finding.
func requireFindings(t *testing.T, r *Report, wants ...want) {
	t.Helper()
	for _, w := range wants {
		if findFinding(r, w) == nil {
			t.Errorf("no %s finding %q with code %d in:\n%s", w.status, w.check, w.code, r.Text())
		}
	}
}

func findFinding(r *Report, w want) *Finding {
	for i, f := range r.Findings {
		if f.Check == w.check && f.Status == w.status && f.Code == w.code {
			return &r.Findings[i]
		}
	}
	return nil
}

// finding returns the first finding of a check, failing the test if there
// is none.
func finding(t *testing.T, r *Report, check string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no %q finding in:\n%s", check, r.Text())
	return Finding{}
}

func probe(t *testing.T, o Options) *Report {
	t.Helper()
	r, err := Probe(context.Background(), o)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	return r
}

// quietServer starts a test server that does not log TLS handshake
// failures, which the TLS tests cause on purpose.
func quietServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	return srv
}

// testCA is a certificate authority made up for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newCA makes a CA signed by parent, or a self-signed root when parent is
// nil.
func newCA(t *testing.T, name string, parent *testCA) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf issues a server certificate for names (host names or IP addresses)
// valid from notBefore to notAfter, with extra certificates appended to
// the chain the server sends.
func (ca *testCA) leaf(t *testing.T, names []string, notBefore, notAfter time.Time, extra ...*x509.Certificate) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	for _, e := range extra {
		c.Certificate = append(c.Certificate, e.Raw)
	}
	return c
}

// tlsServer starts an HTTPS test server presenting cert.
func tlsServer(t *testing.T, h http.Handler, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := quietServer(t, h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// fakeResolver resolves every name to ip, or fails every lookup when ip
// is nil, without touching the network: its "DNS server" is the other end
// of an in-memory pipe.
func fakeResolver(ip net.IP) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if ip == nil {
				return nil, errors.New("no DNS server in tests")
			}
			client, server := net.Pipe()
			go serveDNS(server, ip.To4())
			return client, nil
		},
	}
}

// serveDNS answers DNS queries framed as over TCP, which is how the Go
// resolver talks to a connection that is not a net.PacketConn.
func serveDNS(c net.Conn, ip net.IP) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := dnsAnswer(q, ip)
		if resp == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// dnsAnswer answers an A query with ip and any other query with no
// records.
func dnsAnswer(q []byte, ip net.IP) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil
	}
	isA := binary.BigEndian.Uint16(q[i:]) == 1
	var an byte
	if isA {
		an = 1
	}
	r := []byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, an, 0, 0, 0, 0} // response, recursion desired and available
	r = append(r, q[12:i+4]...)
	if isA {
		r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		r = append(r, ip...)
	}
	return r
}

// twimlHandler answers TwiML with the given Content-Type.
func twimlHandler(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType == "" {
			w.Header()["Content-Type"] = nil // no sniffing by net/http either
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		_, _ = io.WriteString(w, body)
	}
}

func statusHandler(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

func hasLine(text, prefix string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// parseParams returns the parameters of a received request: its query
// for GET, its form body for POST.
func parseParams(t *testing.T, method, uri string, body []byte) url.Values {
	t.Helper()
	if method == "GET" {
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query()
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
