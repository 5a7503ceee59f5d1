package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-dev/switchboard/twilio"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, and
// a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test SMTP server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// mailbox is an in-process SMTP server: it records the mails it accepts
// and refuses as told.
type mailbox struct {
	addr string
	pool *x509.CertPool

	mu      sync.Mutex
	mails   []received
	rcptErr error // answered to every RCPT
	dataErr error // answered at the end of DATA
	user    string
	pass    string
	authed  bool
}

type received struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	authed bool
}

type mailboxOptions struct {
	noTLS    bool // offers no STARTTLS
	insecure bool // allows AUTH without TLS
}

func newMailbox(t *testing.T, o mailboxOptions) *mailbox {
	t.Helper()
	mb := &mailbox{user: "switchboard", pass: "hunter2"}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{mb: mb, conn: c}, nil
	}))
	s.Domain = "localhost"
	s.AllowInsecureAuth = o.insecure
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	if !o.noTLS {
		cert, pool := testCert(t)
		s.TLSConfig, mb.pool = &tls.Config{Certificates: []tls.Certificate{cert}}, pool
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return mb
}

func (mb *mailbox) received() []received {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]received(nil), mb.mails...)
}

func (mb *mailbox) refuse(rcpt, data error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.rcptErr, mb.dataErr = rcpt, data
}

type session struct {
	mb     *mailbox
	conn   *smtp.Conn
	authed bool
	cur    received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.mb.user || password != s.mb.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	_, tlsOn := s.conn.TLSConnectionState()
	s.cur = received{from: from, tls: tlsOn, authed: s.authed}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mb.mu.Lock()
	err := s.mb.rcptErr
	s.mb.mu.Unlock()
	if err != nil {
		return err
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	if s.mb.dataErr != nil {
		return s.mb.dataErr
	}
	s.cur.data = b
	s.mb.mails = append(s.mb.mails, s.cur)
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

func (mb *mailbox) notifier(t *testing.T, edit func(*SMTPConfig)) *SMTP {
	t.Helper()
	cfg := SMTPConfig{Address: mb.addr, Username: "switchboard", Password: "hunter2",
		From: "Switchboard <alerts@example.com>", To: []string{"oncall@example.com", "Ops <ops@example.com>"}, StartTLS: true}
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewSMTP(cfg, Options{RootCAs: mb.pool, Now: clock, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPSendsOverStartTLS(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailboxOptions{})
	s := mb.notifier(t, nil)
	ev, req := item(t, "mail", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if out.Err != nil || out.Status != 250 || out.Target != "smtp://"+mb.addr {
		t.Fatalf("Notify = %+v", out)
	}
	mails := mb.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	m := mails[0]
	if !m.tls || !m.authed || m.from != "alerts@example.com" || strings.Join(m.to, ",") != "oncall@example.com,ops@example.com" {
		t.Errorf("mail over TLS %v, authenticated %v, from %q to %q", m.tls, m.authed, m.from, m.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		t.Fatalf("mail %q: %v", m.data, err)
	}
	h := msg.Header
	if subject, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); subject != "[FIRING] webhook-delivery-failing /sms" {
		t.Errorf("Subject %q", subject)
	}
	if h.Get("From") != `"Switchboard" <alerts@example.com>` || h.Get("To") != `<oncall@example.com>, "Ops" <ops@example.com>` {
		t.Errorf("From %q, To %q", h.Get("From"), h.Get("To"))
	}
	if d, err := h.Date(); err != nil || !d.Equal(epoch) {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	id := h.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ".switchboard@example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	for _, want := range []string{"FIRING: webhook-delivery-failing", "62% of 40 deliveries", "Value:     0.62 (threshold 0.5)",
		"Runbook:   https://github.com/switchboard-dev/switchboard/blob/main/docs/runbooks.md#webhook-error-spike",
		"Console:   https://sb.example.com/console/alerts/webhook-delivery-failing"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}

	// A retry of the same notification is the same message to a mail
	// client: the Message-ID is the notification's.
	s.Notify(t.Context(), ev, req, 2)
	again, _ := mail.ReadMessage(strings.NewReader(string(mb.received()[1].data)))
	if again.Header.Get("Message-ID") != id {
		t.Errorf("retry's Message-ID %q, want %q", again.Header.Get("Message-ID"), id)
	}
}

// TestSMTPRefusesWithoutTLS: with STARTTLS required, a server that does
// not offer it gets neither credentials nor mail.
func TestSMTPRefusesWithoutTLS(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailboxOptions{noTLS: true, insecure: true})
	s := mb.notifier(t, nil)
	ev, req := item(t, "mail", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if out.Err == nil || !strings.Contains(out.Err.Error(), "STARTTLS") || out.Permanent || out.Class != twilio.ClassTLS {
		t.Errorf("outcome %+v, want a refusal to send without TLS, tried again", out)
	}
	if n := len(mb.received()); n != 0 {
		t.Errorf("%d mails sent without TLS", n)
	}
	if strings.Contains(out.Err.Error(), "hunter2") {
		t.Errorf("error reveals the password: %v", out.Err)
	}
}

// TestSMTPUntrustedCertificate: STARTTLS to a server whose certificate
// does not verify sends nothing.
func TestSMTPUntrustedCertificate(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailboxOptions{})
	mb.pool = x509.NewCertPool() // trusts nothing
	s := mb.notifier(t, nil)
	ev, req := item(t, "mail", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if out.Err == nil || out.Permanent || !out.Unhealthy || out.Class != twilio.ClassTLS {
		t.Errorf("outcome %+v, want a retried TLS failure", out)
	}
	if len(mb.received()) != 0 {
		t.Error("mail sent to an unverified server")
	}
}

// TestSMTPWithoutTLSOnLoopback: starttls = "none" (loopback only, which
// configuration enforces) sends in the clear.
func TestSMTPWithoutTLSOnLoopback(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailboxOptions{noTLS: true, insecure: true})
	s := mb.notifier(t, func(c *SMTPConfig) { c.StartTLS = false })
	ev, req := item(t, "mail", testNotification())
	if out := s.Notify(t.Context(), ev, req, 1); out.Err != nil {
		t.Fatalf("Notify = %+v", out)
	}
	if m := mb.received(); len(m) != 1 || m[0].tls || !m[0].authed {
		t.Errorf("mails %+v, want one in the clear, authenticated", m)
	}
}

func TestSMTPReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		rcpt, data           error
		status               int
		permanent, unhealthy bool
	}{
		{"rcpt 450 busy", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}, nil, 450, false, true},
		{"rcpt 550 unknown", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, nil, 550, true, false},
		{"data 451", nil, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}, 451, false, true},
		{"data 554", nil, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected as spam"}, 554, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mb := newMailbox(t, mailboxOptions{})
			mb.refuse(tt.rcpt, tt.data)
			s := mb.notifier(t, nil)
			ev, req := item(t, "mail", testNotification())
			out := s.Notify(t.Context(), ev, req, 1)
			if out.Err == nil || out.Status != tt.status || out.Permanent != tt.permanent || out.Unhealthy != tt.unhealthy {
				t.Errorf("outcome %+v, want status %d, permanent %v, unhealthy %v", out, tt.status, tt.permanent, tt.unhealthy)
			}
			if len(out.Excerpt) == 0 {
				t.Error("the server's reply is not kept")
			}
			if len(mb.received()) != 0 {
				t.Error("a refused mail was recorded")
			}
		})
	}
}

func TestSMTPWrongPasswordIsPermanent(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailboxOptions{})
	s := mb.notifier(t, func(c *SMTPConfig) { c.Password = "wrong-secret" })
	ev, req := item(t, "mail", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if out.Err == nil || out.Status != 535 || !out.Permanent {
		t.Errorf("outcome %+v, want a permanent 535", out)
	}
	if strings.Contains(out.Err.Error(), "wrong-secret") {
		t.Errorf("error reveals the password: %v", out.Err)
	}
}

func TestSMTPConnectionRefused(t *testing.T) {
	t.Parallel()
	addr := strings.TrimPrefix(deadURL(t), "http://")
	s, err := NewSMTP(SMTPConfig{Address: addr, From: "a@example.com", To: []string{"b@example.com"}, StartTLS: true}, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ev, req := item(t, "mail", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if out.Err == nil || out.Permanent || !out.Unhealthy || out.Class != twilio.ClassConnect {
		t.Errorf("outcome %+v, want a retried connect failure", out)
	}
}

// TestSMTPHeaderInjection: a notification whose text carries line breaks
// adds no header, and addresses with line breaks are refused.
func TestSMTPHeaderInjection(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailboxOptions{})
	s := mb.notifier(t, nil)
	n := testNotification()
	n.Rule = "rule\r\nBcc: thief@example.net"
	n.Key = "/sms\nX-Injected: yes\r\n\r\nfake body"
	n.Summary = "line one\r\n.\r\nMAIL FROM:<thief@example.net>"
	ev, req := item(t, "mail", n)
	if out := s.Notify(t.Context(), ev, req, 1); out.Err != nil {
		t.Fatalf("Notify = %+v", out)
	}
	m := mb.received()
	if len(m) != 1 || len(m[0].to) != 2 {
		t.Fatalf("mails %+v, want one to the two configured recipients", m)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m[0].data)))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" || msg.Header.Get("X-Injected") != "" {
		t.Errorf("headers injected: %v", msg.Header)
	}
	if subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); strings.ContainsAny(subject, "\r\n") {
		t.Errorf("Subject %q holds a line break", subject)
	}

	for _, bad := range []SMTPConfig{
		{Address: mb.addr, From: "alerts@example.com\r\nBcc: thief@example.net", To: []string{"b@example.com"}},
		{Address: mb.addr, From: "alerts@example.com", To: []string{"b@example.com\nBcc: thief@example.net"}},
		{Address: mb.addr, From: "not an address", To: []string{"b@example.com"}},
		{Address: mb.addr, From: "alerts@example.com"},
		{Address: "no-port", From: "alerts@example.com", To: []string{"b@example.com"}},
	} {
		if _, err := NewSMTP(bad, Options{}); err == nil {
			t.Errorf("NewSMTP(%+v) accepted", bad)
		}
	}
}
