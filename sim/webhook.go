package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Webhook is a request Twilio makes to an application.
type Webhook struct {
	// AccountSID is the account whose first auth token signs the request.
	AccountSID string
	// Method is POST (the default) or GET.
	Method string
	// URL is the URL as Twilio requests and signs it. Its fragment may
	// carry connection overrides (#ct, #rt, #tt, #rc, #rp), which are
	// applied and never sent.
	URL string
	// Params are the webhook's parameters: the form body of a POST, added
	// to the query of a GET.
	Params url.Values
	// Body and ContentType, when Body is set, are sent as they are instead
	// of Params: a JSON body is signed with bodySHA256, as Twilio signs
	// client notifications.
	Body        []byte
	ContentType string
	// Header holds extra headers; Twilio's own are always set.
	Header http.Header
	// Expect is what the answer must be for Twilio to accept it.
	Expect twilio.Expectation
	// FallbackURL, when set, is requested when the URL fails, with
	// ErrorCode and ErrorUrl added to the parameters.
	FallbackURL    string
	FallbackMethod string
	// ResourceSID is the message, call or notification the webhook is
	// about, for the debugger log.
	ResourceSID string
}

// WebhookResult is what became of a webhook, as Twilio saw it.
type WebhookResult struct {
	Method string `json:"method"`
	URL    string `json:"url"` // as signed, without the fragment
	// Status, ContentType and Body are the final try's answer (Body cut at
	// 64 kB and one byte); Status is 0 when there was none.
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"-"`
	// Tries counts the requests made, retries included.
	Tries int `json:"tries"`
	// Latency is from the first try to the final answer.
	Latency time.Duration `json:"-"`
	// IdempotencyToken is the I-Twilio-Idempotency-Token of every try.
	IdempotencyToken string `json:"idempotency_token"`
	// Error is why Twilio refused the answer; nil when it accepted it.
	Error *twilio.AnswerError `json:"error,omitempty"`
	// Fallback is the fallback URL's result, when it was requested.
	Fallback *WebhookResult `json:"fallback,omitempty"`
}

// MarshalJSON adds the body as text and the latency in milliseconds.
func (r *WebhookResult) MarshalJSON() ([]byte, error) {
	type plain WebhookResult // without this method
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the body is TwiML: keep its < and > readable
	err := enc.Encode(struct {
		*plain
		Body      string  `json:"body,omitempty"`
		LatencyMS float64 `json:"latency_ms"`
	}{(*plain)(r), string(r.Body), float64(r.Latency.Microseconds()) / 1000})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// Accepted reports whether Twilio got an answer it accepts, from the URL or
// its fallback.
func (r *WebhookResult) Accepted() bool {
	return r.Error == nil || (r.Fallback != nil && r.Fallback.Error == nil)
}

// Final returns the result whose answer Twilio used: the fallback's when
// it was requested, r's otherwise.
func (r *WebhookResult) Final() *WebhookResult {
	if r.Fallback != nil {
		return r.Fallback
	}
	return r
}

// Send makes a webhook request as Twilio would, records any failure in the
// debugger log, and returns what became of it. The error is for a webhook
// that cannot be sent at all (an unknown account, a malformed URL); the
// application's failures are in the result.
func (s *Sim) Send(ctx context.Context, wh Webhook) (*WebhookResult, error) {
	s.mu.Lock()
	acct, ok := s.accounts[wh.AccountSID]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("sim: send webhook: unknown account %q", wh.AccountSID)
	}
	r, err := s.client.send(ctx, acct.AuthTokens[0], wh)
	if err != nil {
		return nil, fmt.Errorf("sim: send webhook to %s: %w", redactURL(wh.URL), err)
	}
	s.alertOn(wh, r)
	if r.Error == nil || wh.FallbackURL == "" || wh.Body != nil {
		return r, nil
	}
	fb := wh
	fb.URL, fb.Method, fb.FallbackURL = wh.FallbackURL, wh.FallbackMethod, ""
	fb.Params = cloneValues(wh.Params)
	fb.Params.Set("ErrorCode", fmt.Sprint(int(r.Error.Code)))
	fb.Params.Set("ErrorUrl", r.URL)
	if r.Fallback, err = s.client.send(ctx, acct.AuthTokens[0], fb); err != nil {
		return nil, fmt.Errorf("sim: send webhook to fallback %s: %w", redactURL(fb.URL), err)
	}
	s.alertOn(fb, r.Fallback)
	return r, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+2)
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// webhookClient sends webhooks the way Twilio's client does.
type webhookClient struct {
	transport  http.RoundTripper // fixed transport, or nil for one per connect timeout
	tunnels    map[string]string
	homeRegion string

	mu         sync.Mutex
	transports map[time.Duration]*http.Transport
}

func newWebhookClient(rt http.RoundTripper, tunnels map[string]string, homeRegion string) *webhookClient {
	return &webhookClient{transport: rt, tunnels: tunnels, homeRegion: homeRegion, transports: map[time.Duration]*http.Transport{}}
}

// roundTripper returns the transport for a connect timeout: connections
// are kept alive and shared between webhooks with the same timeout.
func (c *webhookClient) roundTripper(connect time.Duration) http.RoundTripper {
	if c.transport != nil {
		return c.transport
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.transports[connect]; ok {
		return t
	}
	t := &http.Transport{
		Proxy:                  nil, // Twilio calls the URL directly
		DialContext:            (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    connect,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // Twilio sends no Accept-Encoding
	}
	c.transports[connect] = t
	return t
}

func (c *webhookClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.transports {
		t.CloseIdleConnections()
	}
}

// tunnel returns where a request for public is really sent: through the
// tunnel with the longest matching prefix, or to public itself.
func (c *webhookClient) tunnel(public string) string {
	best, bestLen := public, -1
	for from, to := range c.tunnels {
		from = strings.TrimSuffix(from, "/")
		rest, ok := strings.CutPrefix(public, from)
		if ok && (rest == "" || rest[0] == '/' || rest[0] == '?') && len(from) > bestLen {
			best, bestLen = strings.TrimSuffix(to, "/")+rest, len(from)
		}
	}
	return best
}

// send makes one webhook's tries: the first, and retries while the
// failure is retryable under the URL's policy, the tries left (#rc) and
// the total time (#tt) allow.
func (c *webhookClient) send(ctx context.Context, token string, wh Webhook) (*WebhookResult, error) {
	u, err := url.Parse(wh.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q: not an http(s) URL", redactURL(wh.URL))
	}
	ov := twilio.ParseConnectionOverrides(u.Fragment)
	u.Fragment, u.RawFragment = "", ""
	method := strings.ToUpper(wh.Method)
	if method == "" {
		method = http.MethodPost
	}
	contentType, body := wh.ContentType, wh.Body
	if body == nil {
		contentType, body = "", nil
		if method == http.MethodGet {
			u.RawQuery = joinQuery(u.RawQuery, wh.Params.Encode())
		} else {
			contentType, body = "application/x-www-form-urlencoded", []byte(wh.Params.Encode())
		}
	}
	signedURL, signature, err := twilio.SignRequest(token, u.String(), contentType, body)
	if err != nil {
		return nil, err
	}
	r := &WebhookResult{Method: method, URL: signedURL, IdempotencyToken: uuid.NewString()}
	total, cancel := context.WithTimeout(ctx, ov.Total)
	defer cancel()
	start := time.Now()
	for {
		r.Tries++
		class, err := c.try(total, ov, r, wh, contentType, body, signature)
		if err != nil {
			return nil, err
		}
		r.Latency = time.Since(start)
		if class == twilio.ClassNone {
			r.Error = twilio.CheckAnswer(wh.Expect, r.Status, r.ContentType, r.Body)
			if r.Error == nil {
				return r, nil
			}
			class = twilio.ClassHTTPStatus
		}
		// The deadline, not total.Err(): when a try's own timeout ends it
		// at the total's deadline, total's timer may not have fired yet.
		deadline, _ := total.Deadline()
		if r.Tries > ov.Retries || !time.Now().Before(deadline) || ctx.Err() != nil || !ov.Retryable(class, r.Status) {
			return r, nil
		}
	}
}

// try sends one request within the read timeout and what is left of the
// total, filling in r's answer. It returns the class of a failure to get an
// answer (ClassNone when one arrived, whatever it was), and an error only
// for a request that cannot be built.
func (c *webhookClient) try(total context.Context, ov twilio.ConnectionOverrides, r *WebhookResult, wh Webhook, contentType string, body []byte, signature string) (twilio.ErrorClass, error) {
	ctx, cancel := context.WithTimeout(total, ov.Read)
	defer cancel()
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.tunnel(r.URL), rd)
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	for k, v := range wh.Header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Twilio-Signature", signature)
	req.Header.Set("I-Twilio-Idempotency-Token", r.IdempotencyToken)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Home-Region", c.homeRegion)
	req.Header.Set("Accept", "*/*")
	client := &http.Client{Transport: c.roundTripper(ov.Connect)}
	resp, err := client.Do(req)
	r.Status, r.ContentType, r.Body = 0, "", nil
	if err != nil {
		r.Error = &twilio.AnswerError{Code: twilio.ClassifyError(err).Code(), Reason: failureReason(err, ov)}
		return twilio.ClassifyError(err), nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, twilio.MaxTwiMLBytes+1))
	if err != nil {
		r.Error = &twilio.AnswerError{Code: twilio.ClassifyError(err).Code(), Reason: "reading the answer: " + failureReason(err, ov)}
		return twilio.ClassifyError(err), nil
	}
	r.Status, r.ContentType, r.Body = resp.StatusCode, resp.Header.Get("Content-Type"), data
	return twilio.ClassNone, nil
}

// failureReason describes a request that got no answer in one line.
func failureReason(err error, ov twilio.ConnectionOverrides) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %v (%s) or %v for every try (%s)", ov.Read, ov.LimitName("rt"), ov.Total, ov.LimitName("tt"))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// joinQuery appends query b to query a.
func joinQuery(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "&" + b
}

// redactURL hides any password in a URL, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
