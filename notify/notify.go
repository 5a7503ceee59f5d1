// Package notify sends alert notifications (switchboard.Notification) to
// where an operator asked: a webhook signed with Standard Webhooks' HMAC
// scheme, a Slack incoming webhook, or email over SMTP. A notifier makes
// one attempt and says what came of it (deliver.NotifyOutcome); retries,
// backoff, the circuit breaker and dead letters are package deliver's,
// which calls it as a route's Notify.
//
// Notifiers' URLs and servers are the operator's own configuration, like
// route targets, so they are not subject to the egress policy. Their
// secrets (a webhook's key, a Slack URL's path, SMTP credentials) never
// appear in what a notifier reports: outcomes name only the origin.
package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Notifier sends the notifications of one [[notifiers]] entry.
type Notifier interface {
	// Target is where notifications go, without secrets: an origin, or
	// smtp://host:port. Package deliver keys the breaker by it.
	Target() string
	// Notify makes one attempt to send the notification that is req's
	// body. ctx bounds it.
	Notify(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, attempt int) deliver.NotifyOutcome
}

// Options are what every notifier shares.
type Options struct {
	// ConnectTimeout bounds connecting (and a TLS handshake); the whole
	// attempt is bounded by the context Notify is given.
	ConnectTimeout time.Duration
	// RootCAs verifies servers' certificates; nil: the system's.
	RootCAs *x509.CertPool
	// Now is the clock of signatures' timestamps and mails' dates.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// New returns the notifier a validated [[notifiers]] entry describes.
func New(c config.Notifier, o Options) (Notifier, error) {
	o.defaults()
	switch c.Type {
	case config.NotifierWebhook:
		key, err := config.WebhookKey(c.Secret)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: secret: %w", c.Name, err)
		}
		return NewWebhook(c.URL, key, o)
	case config.NotifierSlack:
		return NewSlack(c.URL, o)
	case config.NotifierSMTP:
		return NewSMTP(SMTPConfig{Address: c.Address, Username: c.Username, Password: c.Password, From: c.From, To: c.To,
			StartTLS: c.StartTLS != config.StartTLSNone}, o)
	}
	return nil, fmt.Errorf("notifier %s: unknown type %q", c.Name, c.Type)
}

// decode reads the notification a notification event's request holds.
func decode(req *switchboard.Request) (*switchboard.Notification, error) {
	var n switchboard.Notification
	if err := json.Unmarshal(req.Body, &n); err != nil {
		return nil, fmt.Errorf("decode notification: %w", err)
	}
	return &n, nil
}

// undecodable is the outcome of a stored body that is not a notification:
// no attempt can fix it.
func undecodable(target string, err error) deliver.NotifyOutcome {
	return deliver.NotifyOutcome{Target: target, Err: err, Class: twilio.ClassProtocol, Permanent: true}
}

const (
	excerptBytes = 4 << 10  // the start of an answer kept with the attempt
	drainBytes   = 64 << 10 // read past it so the connection can be reused
)

// poster POSTs JSON to an operator's URL.
type poster struct {
	url    string
	origin string // the URL without its path and query, which may be secret
	client *http.Client
}

func newPoster(rawURL string, o Options) (*poster, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL itself is not quoted: its path may be the secret.
		return nil, errors.New("want an absolute http(s) URL")
	}
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &poster{url: rawURL, origin: u.Scheme + "://" + u.Host, client: &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // the operator's URL is reached directly, as route targets are
			DialContext:         dialer.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: o.ConnectTimeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// A redirect is a failure: following it could send a signed
		// notification somewhere the operator did not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// post sends body with header and judges the answer: 2xx delivered, 410
// refused for good, anything else tried again (5xx, 429 and no answer
// count against the target's health).
func (p *poster) post(ctx context.Context, header http.Header, body []byte) deliver.NotifyOutcome {
	out := deliver.NotifyOutcome{Target: p.origin}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, nil)
	if err != nil {
		out.Err, out.Class, out.Permanent = errors.New("build request"), twilio.ClassProtocol, true
		return out
	}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header = header
	req.Header.Set("User-Agent", "Switchboard/"+switchboard.Version)
	resp, err := p.client.Do(req)
	if err != nil {
		out.Class, out.Unhealthy = twilio.ClassifyError(err), true
		out.Err = fmt.Errorf("POST %s: %w", p.origin, withoutURL(err))
		return out
	}
	defer resp.Body.Close()
	kept, readErr := io.ReadAll(io.LimitReader(resp.Body, excerptBytes))
	if readErr == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	}
	out.Status, out.Header, out.Excerpt = resp.StatusCode, resp.Header, kept
	switch {
	case readErr != nil && resp.StatusCode/100 != 2:
		out.Class, out.Unhealthy = twilio.ClassifyError(readErr), true
		out.Err = fmt.Errorf("HTTP %d, then reading the answer: %w", resp.StatusCode, withoutURL(readErr))
	case resp.StatusCode/100 == 2:
		// Delivered: the answer's body, even cut short, changes nothing.
	default:
		out.Class = twilio.ClassHTTPStatus
		out.Err = fmt.Errorf("HTTP %d", resp.StatusCode)
		out.Permanent = resp.StatusCode == http.StatusGone
		out.Unhealthy = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	}
	return out
}

// withoutURL is err without the URL net/http wraps it with, whose path or
// query may be a secret (a Slack webhook's is).
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
