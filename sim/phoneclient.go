package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/twilio"
)

// MaxPhoneAnswer bounds what a PhoneClient reads of the simulator's
// answer: a webhook body is cut at 64 kB by the simulator, and JSON
// escaping at most sextuples it.
const MaxPhoneAnswer = 1 << 20

// Control endpoints a PhoneClient posts to.
const (
	EndpointInboundMessages = "InboundMessages"
	EndpointInboundCalls    = "InboundCalls"
)

// PhoneClient acts as a handset on a running simulator, through its
// control endpoints: it texts or calls one of the account's numbers, and
// returns what the simulator did (the webhook it called and the answer).
type PhoneClient struct {
	// URL is the simulator's base URL; only http and https are used.
	URL string
	// Account and Token authenticate as one of the simulator's accounts,
	// which must own the number called.
	Account, Token string
	// HTTP makes the request; nil is a client that follows no redirect.
	// Its timeout, or the context's, bounds the wait.
	HTTP *http.Client
}

// PhoneAnswer is the simulator's InboundResult as its JSON has it.
type PhoneAnswer struct {
	SID     string        `json:"sid"`
	Webhook *PhoneWebhook `json:"webhook"`
	OptOut  string        `json:"opt_out"`
	Replies []string      `json:"replies"`
}

// PhoneWebhook is one webhook call (a WebhookResult) as its JSON has it.
type PhoneWebhook struct {
	Method      string              `json:"method"`
	URL         string              `json:"url"`
	Status      int                 `json:"status"`
	ContentType string              `json:"content_type"`
	Body        string              `json:"body"`
	Tries       int                 `json:"tries"`
	LatencyMS   float64             `json:"latency_ms"`
	Error       *twilio.AnswerError `json:"error"`
	Fallback    *PhoneWebhook       `json:"fallback"`
}

// Final is the call whose answer Twilio acts on: the fallback's when the
// fallback was called.
func (w *PhoneWebhook) Final() *PhoneWebhook {
	for w.Fallback != nil {
		w = w.Fallback
	}
	return w
}

// noRedirects is the default client: a simulator answers its control
// endpoints itself, so a redirect is refused rather than followed.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// SMS texts body from the handset from to the number to, and returns the
// simulator's answer.
func (c *PhoneClient) SMS(ctx context.Context, from, to, body string) (*PhoneAnswer, error) {
	form := url.Values{"From": {from}, "To": {to}, "Body": {body}}
	return c.answer(ctx, EndpointInboundMessages, form)
}

// Call calls the number to from the handset from, and returns the
// simulator's answer.
func (c *PhoneClient) Call(ctx context.Context, from, to string) (*PhoneAnswer, error) {
	return c.answer(ctx, EndpointInboundCalls, url.Values{"From": {from}, "To": {to}})
}

func (c *PhoneClient) answer(ctx context.Context, endpoint string, form url.Values) (*PhoneAnswer, error) {
	raw, err := c.Post(ctx, endpoint, form)
	if err != nil {
		return nil, err
	}
	var ans PhoneAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("sim: read the answer: %w", err)
	}
	return &ans, nil
}

// Post posts form to the account's control endpoint and returns the
// answer's JSON (at most MaxPhoneAnswer bytes), or the simulator's error.
func (c *PhoneClient) Post(ctx context.Context, endpoint string, form url.Values) ([]byte, error) {
	base, err := url.Parse(c.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		// Fails closed: nothing but a web URL is asked.
		return nil, errors.New("sim: the simulator's URL is not an http or https URL")
	}
	u := strings.TrimSuffix(c.URL, "/") + "/sim/v1/Accounts/" + url.PathEscape(c.Account) + "/" + endpoint
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.Account, c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = noRedirects
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sim: is sim serve running at %s? %w", c.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxPhoneAnswer))
	if err != nil {
		return nil, fmt.Errorf("sim: read the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("sim answered %d: %d %s", resp.StatusCode, e.Code, oneLine(e.Message, 200))
		}
		return nil, fmt.Errorf("sim answered %s", resp.Status)
	}
	return raw, nil
}

// oneLine is s on one line, cut to max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f
	}), " ")
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}
