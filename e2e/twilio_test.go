package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Twilio, in these tests, is the simulator (package sim) running in the
// test process: it signs every webhook for publicURL with the account's
// token, sets Twilio's headers, sends it through a tunnel to the
// Switchboard process on loopback, and judges the answer as Twilio would.

// The tests' phone numbers.
const (
	// twilioNumber is the account's number; its SMS URL is
	// publicURL+"/sms".
	twilioNumber = "+14155550199"
	// handset sends the inbound messages.
	handset = "+14155550100"
)

// client sends the tests' own requests: loopback only, never through a
// proxy.
var client = &http.Client{
	Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	},
	Timeout: 15 * time.Second, // Twilio's own limit on a webhook
}

// simSeeds gives every simulator a seed of its own, so that two of them in
// one test never draw the same MessageSids.
var simSeeds atomic.Int64

// newTwilio returns a simulated Twilio with the tests' account, owning
// twilioNumber, whose webhooks for publicURL go to the Switchboard process
// p. configure may change its configuration before it starts. It is closed
// when the test ends.
func newTwilio(t *testing.T, p *proc, configure ...func(*sim.Config)) *sim.Sim {
	t.Helper()
	cfg := sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID:        accountSID,
			AuthTokens: []string{authToken},
			Numbers:    []sim.Number{{Number: twilioNumber, SMSURL: publicURL + "/sms"}},
		}},
		Tunnels: map[string]string{publicURL: "http://" + p.addr},
	}
	for _, f := range configure {
		f(&cfg)
	}
	tw, err := sim.New(cfg, nil) // failures are in its debugger log, tw.Alerts
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	return tw
}

// signingWith makes the simulated account sign its webhooks with token.
func signingWith(token string) func(*sim.Config) {
	return func(c *sim.Config) { c.Accounts[0].AuthTokens = []string{token} }
}

// tappedBy makes the simulator send its webhooks through tap.
func tappedBy(tap *wiretap) func(*sim.Config) {
	return func(c *sim.Config) { c.Transport = tap }
}

// mustSend has Twilio send w, a webhook of the tests' account, and returns
// what became of it, failing the test if it could not be sent at all.
func mustSend(t *testing.T, tw *sim.Sim, w sim.Webhook) *sim.WebhookResult {
	t.Helper()
	if w.AccountSID == "" {
		w.AccountSID = accountSID
	}
	r, err := tw.Send(t.Context(), w)
	if err != nil {
		t.Fatalf("%s %s: %v", w.Method, w.URL, err)
	}
	return r
}

// receive makes a message from handset to twilioNumber happen, and
// returns its MessageSid and what became of the webhook Twilio sent for it.
func receive(ctx context.Context, tw *sim.Sim, body string) (string, *sim.WebhookResult, error) {
	res, err := tw.ReceiveMessage(ctx, sim.InboundMessage{From: handset, To: twilioNumber, Body: body})
	if err != nil {
		return "", nil, err
	}
	if res.Webhook == nil {
		return res.SID, nil, errors.New("no webhook sent: the number has no SMS URL")
	}
	return res.SID, res.Webhook, nil
}

// mustReceive makes a message happen whose webhook Switchboard must
// acknowledge, and returns its MessageSid.
func mustReceive(t *testing.T, tw *sim.Sim, body string) string {
	t.Helper()
	sid, r, err := receive(t.Context(), tw, body)
	if err != nil {
		t.Fatalf("inbound message: %v", err)
	}
	if !acknowledged(r) {
		t.Fatalf("inbound message %s: %s; want 200, accepted", sid, describe(r))
	}
	return sid
}

// acknowledged reports whether Switchboard answered a webhook 200 and
// Twilio accepted the answer.
func acknowledged(r *sim.WebhookResult) bool {
	return r.Status == http.StatusOK && r.Error == nil
}

// describe says what became of a webhook, in a few words.
func describe(r *sim.WebhookResult) string {
	s := fmt.Sprintf("status %d after %d tries", r.Status, r.Tries)
	if r.Error != nil {
		s += fmt.Sprintf(", Twilio error %v", r.Error)
	}
	if len(r.Body) > 0 {
		s += fmt.Sprintf(", body %q", r.Body[:min(len(r.Body), 200)])
	}
	return s
}

// answer is what Switchboard answered Twilio.
type answer struct {
	status      int
	contentType string
	body        string
}

func answerOf(r *sim.WebhookResult) answer { return answer{r.Status, r.ContentType, string(r.Body)} }

// wiretap carries a simulator's webhooks over loopback and keeps each
// request as it went out, for tests that look at what Twilio sent (its
// signature) or send the very same request again.
type wiretap struct {
	rt http.RoundTripper

	mu      sync.Mutex
	byToken map[string]*wireRequest // by I-Twilio-Idempotency-Token
}

// wireRequest is a request as the simulator sent it.
type wireRequest struct {
	method string
	url    string // as requested, on loopback
	target string // its path and query
	header http.Header
	body   []byte
}

func newWiretap(t *testing.T) *wiretap {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &wiretap{rt: tr, byToken: map[string]*wireRequest{}}
}

func (w *wiretap) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	w.mu.Lock()
	w.byToken[req.Header.Get("I-Twilio-Idempotency-Token")] = &wireRequest{
		method: req.Method,
		url:    req.URL.String(),
		target: req.URL.RequestURI(),
		header: req.Header.Clone(),
		body:   body,
	}
	w.mu.Unlock()
	return w.rt.RoundTrip(out)
}

// request returns the request sent with an idempotency token.
func (w *wiretap) request(t *testing.T, token string) *wireRequest {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.byToken[token]
	if r == nil {
		t.Fatalf("no request with I-Twilio-Idempotency-Token %q went out", token)
	}
	return r
}

// resend sends a request again exactly as it went out, idempotency token
// included, and returns Switchboard's answer. Twilio does this when it
// times out waiting for an answer; the simulator reuses a token only among
// the tries of one Send, after a failed connect, and Send always draws a
// fresh one, so the repeat is made here by hand.
func resend(t *testing.T, r *wireRequest) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.header.Clone()
	return do(t, req)
}

// sendForged sends Switchboard at p an inbound message webhook Twilio
// would never send: signed with token for publicURL+path, or unsigned when
// token is empty. It is built by hand, as the simulator only sends requests
// signed with its account's token.
func sendForged(t *testing.T, p *proc, path, token string) answer {
	t.Helper()
	sid := newSID("SM")
	body := []byte(url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {accountSID},
		"From": {handset}, "To": {twilioNumber}, "Body": {"forged"}, "NumMedia": {"0"},
		"SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
	}.Encode())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url(path), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("I-Twilio-Idempotency-Token", newSID("ID"))
	if token != "" {
		req.Header.Set("X-Twilio-Signature", signature(t, token, publicURL+path, body))
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(body)}
}

// signature returns Twilio's X-Twilio-Signature of a form POST to
// fullURL, made with token.
func signature(t *testing.T, token, fullURL string, form []byte) string {
	t.Helper()
	_, sig, err := twilio.SignRequest(token, fullURL, "application/x-www-form-urlencoded", form)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newSID returns a random Twilio SID with the given two-letter prefix.
func newSID(prefix string) string { return prefix + randomHex(16) }

// acks records which MessageSids Switchboard acknowledged, and signals
// once a number of them have been.
type acks struct {
	mu      sync.Mutex
	sids    map[string]bool
	target  int
	reached chan struct{}

	other  atomic.Int64 // answers other than an accepted 200
	errors atomic.Int64 // webhooks without an answer
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
		t.Fatalf("%d webhooks acknowledged after %v, want %d (%d other answers, %d without an answer)",
			len(a.list()), timeout, a.target, a.other.Load(), a.errors.Load())
	}
}

// blast makes inbound messages happen from workers goroutines, each as
// soon as the previous one's webhook is answered, recording in a those
// Switchboard acknowledged, until ctx ends. The returned function waits
// for the senders to stop.
func blast(ctx context.Context, tw *sim.Sim, workers int, a *acks) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				sid, r, err := receive(ctx, tw, "load ✓ "+randomHex(4))
				switch {
				case err != nil || r.Status == 0:
					a.errors.Add(1)
				case acknowledged(r):
					a.add(sid)
				default:
					a.other.Add(1)
				}
			}
		})
	}
	return wg.Wait
}
