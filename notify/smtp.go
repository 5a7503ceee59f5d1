package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// SMTPConfig is where and how an SMTP notifier sends mail.
type SMTPConfig struct {
	Address            string // host:port
	Username, Password string // empty Username: no authentication
	From               string
	To                 []string
	// StartTLS requires the STARTTLS upgrade (with a verified certificate)
	// before credentials or mail are sent; false sends in the clear, which
	// configuration allows only to a server on loopback.
	StartTLS bool
}

// SMTP sends each notification as a plain-text email.
//
// It uses go-smtp's client rather than net/smtp: net/smtp is frozen, has
// no LOGIN mechanism, and go-smtp reports a server's refusals as
// *smtp.SMTPError with the reply code, which decides between a retry (4xx)
// and a dead letter (5xx). It is also the library of the server the tests
// run against.
type SMTP struct {
	cfg     SMTPConfig
	host    string
	from    *mail.Address
	to      []*mail.Address
	target  string
	tls     *tls.Config
	connect time.Duration
	now     func() time.Time
}

// NewSMTP returns a notifier sending through the server at cfg.Address.
// It refuses addresses that do not parse or hold a line break.
func NewSMTP(cfg SMTPConfig, o Options) (*SMTP, error) {
	o.defaults()
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("smtp address %q: want host:port", cfg.Address)
	}
	s := &SMTP{cfg: cfg, host: host, target: "smtp://" + cfg.Address, connect: o.ConnectTimeout, now: o.Now,
		tls: &tls.Config{ServerName: host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}}
	if s.from, err = address(cfg.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if len(cfg.To) == 0 {
		return nil, errors.New("to: at least one recipient is required")
	}
	for _, t := range cfg.To {
		a, err := address(t)
		if err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		s.to = append(s.to, a)
	}
	return s, nil
}

// address parses one email address, refusing any with a line break in it
// (a header of its own).
func address(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("an address with a line break")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address", s)
	}
	if strings.ContainsAny(a.Address, "\r\n<>") {
		return nil, fmt.Errorf("%q is not an email address", s)
	}
	return a, nil
}

// Target is smtp://host:port.
func (s *SMTP) Target() string { return s.target }

// Notify sends the notification as one mail to every recipient, or to
// none: a refused recipient ends the attempt before the message is sent,
// so a retry never mails the others twice.
func (s *SMTP) Notify(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, _ int) deliver.NotifyOutcome {
	n, err := decode(req)
	if err != nil {
		return undecodable(s.target, err)
	}
	msg := s.message(n)
	if err := s.send(ctx, msg); err != nil {
		return s.outcome(err)
	}
	return deliver.NotifyOutcome{Target: s.target, Status: 250}
}

// errNoStartTLS: the server did not offer STARTTLS, and nothing is sent
// in the clear.
var errNoStartTLS = errors.New("server does not offer STARTTLS: neither credentials nor mail sent without TLS")

// send runs one SMTP session: connect, STARTTLS, AUTH, MAIL, RCPT, DATA.
func (s *SMTP) send(ctx context.Context, msg []byte) error {
	dialer := &net.Dialer{Timeout: s.connect}
	conn, err := dialer.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return err
	}
	// The context bounds the whole session: its deadline is the
	// connection's, and its cancellation closes it.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	if s.cfg.StartTLS {
		c, err = smtp.NewClientStartTLS(conn, s.tls)
		if err != nil {
			conn.Close()
			var se *smtp.SMTPError
			if !errors.As(err, &se) && strings.Contains(err.Error(), "STARTTLS") {
				return errNoStartTLS
			}
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if s.cfg.Username != "" {
		if err := c.Auth(s.auth(c)); err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
	}
	if err := c.Mail(s.from.Address, nil); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range s.to {
		if err := c.Rcpt(to.Address, nil); err != nil {
			return fmt.Errorf("RCPT TO: %w", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of message: %w", err)
	}
	// The mail is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// auth is PLAIN, or LOGIN for a server that offers only that.
func (s *SMTP) auth(c *smtp.Client) sasl.Client {
	if !c.SupportsAuth(sasl.Plain) && c.SupportsAuth(sasl.Login) {
		return sasl.NewLoginClient(s.cfg.Username, s.cfg.Password)
	}
	return sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)
}

// outcome judges a failed session: a 4xx reply is tried again, a 5xx is
// this notification's dead letter, and no reply at all (a refused
// connection, a timeout, a failed handshake) is tried again and counts
// against the server's health. Errors carry the server's reply, never the
// credentials.
func (s *SMTP) outcome(err error) deliver.NotifyOutcome {
	out := deliver.NotifyOutcome{Target: s.target, Err: err}
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		out.Status = se.Code
		out.Excerpt = []byte(cut(se.Message, excerptBytes))
		out.Class = twilio.ClassProtocol
		if se.Code >= 500 {
			out.Permanent = true
		} else {
			out.Unhealthy = true
		}
	case errors.Is(err, errNoStartTLS):
		out.Class = twilio.ClassTLS
	default:
		out.Class, out.Unhealthy = twilio.ClassifyError(err), true
	}
	return out
}

// message is n as an RFC 5322 message: From, To, Subject, Date, a
// Message-ID derived from the notification's id (the same on every
// attempt, so a mail client folds a retried duplicate), and a
// quoted-printable plain-text body.
func (s *SMTP) message(n *switchboard.Notification) []byte {
	var b bytes.Buffer
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}
	sum := sha256.Sum256([]byte(n.ID))
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	header := [][2]string{
		{"From", s.from.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", cut(headerText(fmt.Sprintf("[%s] %s %s", statusWord(n.Status), n.Rule, n.Key)), subjectMax))},
		{"Date", s.now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(sum[:16]) + ".switchboard@" + headerText(domain) + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", "auto-generated"},
	}
	for _, h := range header {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(mailBody(n))) // text mode: line breaks become CRLF
	_ = qp.Close()
	return b.Bytes()
}

// subjectMax bounds a subject, whose key may be long.
const subjectMax = 200

// headerText replaces control characters, line breaks among them, with
// spaces: a value from a notification can never start a header of its own.
func headerText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// mailBody is the plain text of a notification's mail.
func mailBody(n *switchboard.Notification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n\n", statusWord(n.Status), n.Rule)
	if n.Summary != "" {
		fmt.Fprintf(&b, "%s\n\n", n.Summary)
	}
	fmt.Fprintf(&b, "Rule:      %s\n", n.Rule)
	fmt.Fprintf(&b, "Key:       %s\n", orNone(n.Key))
	fmt.Fprintf(&b, "Severity:  %s\n", n.Severity)
	fmt.Fprintf(&b, "Value:     %s (threshold %s)\n", number(n.Value), number(n.Threshold))
	if !n.FiredAt.IsZero() {
		fmt.Fprintf(&b, "Fired at:  %s\n", n.FiredAt.UTC().Format(time.RFC3339))
	}
	if n.Status != switchboard.AlertFiring && !n.At.IsZero() {
		fmt.Fprintf(&b, "Resolved:  %s\n", n.At.UTC().Format(time.RFC3339))
	}
	if n.Runbook != "" {
		fmt.Fprintf(&b, "\nRunbook:   %s\n", n.Runbook)
	}
	if n.Console != "" {
		fmt.Fprintf(&b, "Console:   %s\n", n.Console)
	}
	fmt.Fprintf(&b, "\nNotification %s\n", n.ID)
	return b.String()
}
