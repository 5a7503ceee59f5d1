package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// client sends the tests' requests: loopback only, never through a proxy.
var client = &http.Client{
	Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	},
	Timeout: 15 * time.Second, // Twilio's own limit on a webhook
}

// webhook is a request as Twilio sends it.
type webhook struct {
	method      string // default POST
	path        string // path and query under publicURL, as signed
	contentType string
	body        []byte
	token       string // signs it; empty sends it unsigned
	header      http.Header
}

// sent is a webhook as it went out: its request target and signature, and
// the answer Switchboard gave.
type sent struct {
	target    string // path and query actually requested (with bodySHA256 for JSON)
	signature string

	status      int
	contentType string
	body        []byte
}

// send signs w for publicURL and sends it to Switchboard at p.
func send(ctx context.Context, p *proc, w webhook) (*sent, error) {
	method := w.method
	if method == "" {
		method = http.MethodPost
	}
	s := &sent{target: w.path}
	if w.token != "" {
		contentType, body := w.contentType, w.body
		if method == http.MethodGet {
			contentType, body = "", nil
		}
		signedURL, signature, err := twilio.SignRequest(w.token, publicURL+w.path, contentType, body)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		s.target, s.signature = strings.TrimPrefix(signedURL, publicURL), signature
	}
	var body io.Reader = http.NoBody
	if len(w.body) > 0 {
		body = bytes.NewReader(w.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url(s.target), body)
	if err != nil {
		return nil, err
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	if w.contentType != "" {
		req.Header.Set("Content-Type", w.contentType)
	}
	if s.signature != "" {
		req.Header.Set("X-Twilio-Signature", s.signature)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if s.body, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	s.status, s.contentType = resp.StatusCode, resp.Header.Get("Content-Type")
	return s, nil
}

// mustSend sends w and returns Switchboard's answer, failing the test if
// there is none.
func mustSend(t *testing.T, p *proc, w webhook) *sent {
	t.Helper()
	s, err := send(t.Context(), p, w)
	if err != nil {
		t.Fatalf("%s %s: %v", w.method, w.path, err)
	}
	return s
}

// twilioHeader returns the headers Twilio puts on a webhook.
func twilioHeader(idempotencyToken string) http.Header {
	return http.Header{
		"User-Agent":                 {"TwilioProxy/1.1"},
		"I-Twilio-Idempotency-Token": {idempotencyToken},
		"X-Home-Region":              {"us1"},
		"Accept":                     {"*/*"},
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newSID returns a random Twilio SID with the given two-letter prefix.
func newSID(prefix string) string { return prefix + randomHex(16) }

// inboundSMS returns a signed inbound message webhook to path with a new
// MessageSid, and that MessageSid.
func inboundSMS(path, body string) (webhook, string) {
	sid := newSID("SM")
	form := url.Values{
		"MessageSid":    {sid},
		"SmsMessageSid": {sid},
		"SmsSid":        {sid},
		"AccountSid":    {accountSID},
		"From":          {"+14155550100"},
		"To":            {"+14155550199"},
		"Body":          {body},
		"NumMedia":      {"0"},
		"SmsStatus":     {"received"},
		"ApiVersion":    {"2010-04-01"},
	}
	return webhook{
		path:        path,
		contentType: "application/x-www-form-urlencoded",
		body:        []byte(form.Encode()),
		token:       authToken,
		header:      twilioHeader(randomHex(16)),
	}, sid
}

// acks records which MessageSids Switchboard answered 200, and signals once
// a number of them have been.
type acks struct {
	mu      sync.Mutex
	sids    map[string]bool
	target  int
	reached chan struct{}

	other  atomic.Int64 // answers other than 200
	errors atomic.Int64 // requests without an answer
}

func newAcks(target int) *acks {
	return &acks{sids: map[string]bool{}, target: target, reached: make(chan struct{})}
}

func (a *acks) add(sid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sids[sid] = true
	if len(a.sids) == a.target {
		close(a.reached)
	}
}

// list returns the acknowledged MessageSids.
func (a *acks) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.sids))
	for sid := range a.sids {
		out = append(out, sid)
	}
	return out
}

// waitReached waits until the target number of webhooks was acknowledged.
func (a *acks) waitReached(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-a.reached:
	case <-time.After(timeout):
		t.Fatalf("%d webhooks acknowledged after %v, want %d (%d other answers, %d errors)",
			len(a.list()), timeout, a.target, a.other.Load(), a.errors.Load())
	}
}

// blast sends inbound messages to p from workers goroutines as fast as
// they are answered, each a new message, recording in a those answered 200,
// until ctx ends. The returned function waits for the senders to stop.
func blast(ctx context.Context, p *proc, workers int, a *acks) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				w, sid := inboundSMS("/sms", "load ✓ "+randomHex(4))
				s, err := send(ctx, p, w)
				switch {
				case err != nil:
					a.errors.Add(1)
				case s.status == http.StatusOK:
					a.add(sid)
				default:
					a.other.Add(1)
				}
			}
		})
	}
	return wg.Wait
}
