package twilio

// A small client for Twilio's Messages REST resource.
//
// It is written by hand rather than on twilio-go because the send path
// needs what twilio-go does not give back: its *client.TwilioRestError
// carries the status and code but not the Retry-After header of a 429 or
// 503, and a network error comes back as whatever net/http returned, with
// no way to tell whether the request was written before it failed — the
// difference between "not sent, resend" and "maybe sent, look it up
// first". Three endpoints (create, fetch, list) are little code.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// Timeouts of NewHTTPClient.
const (
	ConnectTimeout  = 5 * time.Second  // TCP connect and TLS handshake, each
	ResponseTimeout = 15 * time.Second // from the request written to the response headers
	RequestTimeout  = 30 * time.Second // the whole request, body included
)

// maxResponseBytes bounds a REST answer read into memory.
const maxResponseBytes = 4 << 20

// NewHTTPClient returns an http.Client for Twilio's REST API: keep-alive
// connections (many per host, since sends run concurrently), a connect and
// TLS handshake timeout, a response header timeout and an overall one.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: RequestTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   ConnectTimeout,
			ResponseHeaderTimeout: ResponseTimeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
		},
	}
}

// MessagesClient creates, fetches and lists messages of one account with
// Twilio's REST API. Its fields are set before first use; it is then safe
// for concurrent use.
type MessagesClient struct {
	BaseURL    string // default DefaultBaseURL; tests point it at the simulator
	AccountSID string
	AuthToken  string
	HTTPClient *http.Client // default NewHTTPClient(), made on first use
}

// NewMessagesClient returns a client of accountSID at baseURL (empty for
// DefaultBaseURL) with NewHTTPClient.
func NewMessagesClient(baseURL, accountSID, authToken string) *MessagesClient {
	return &MessagesClient{BaseURL: baseURL, AccountSID: accountSID, AuthToken: authToken, HTTPClient: NewHTTPClient()}
}

// CreateParams are the parameters of a message create.
type CreateParams struct {
	To                  string
	From                string // or MessagingServiceSID
	MessagingServiceSID string
	Body                string
	MediaURLs           []string
	StatusCallback      string
}

// ListParams filter a message list. Zero fields do not filter.
type ListParams struct {
	To       string
	From     string
	DateSent time.Time // the UTC day the message was sent; unsent messages never match
	PageSize int       // default 50, at most 1000
	MaxPages int       // pages followed by next_page_uri; default 5
}

// RestMessage is a message as Twilio's REST API describes it.
type RestMessage struct {
	SID                 string  `json:"sid"`
	AccountSID          string  `json:"account_sid"`
	MessagingServiceSID string  `json:"messaging_service_sid"`
	From                string  `json:"from"`
	To                  string  `json:"to"`
	Body                string  `json:"body"`
	Status              string  `json:"status"`
	Direction           string  `json:"direction"`
	NumSegments         string  `json:"num_segments"`
	ErrorCode           *int    `json:"error_code"`
	ErrorMessage        *string `json:"error_message"`
	DateCreated         Time    `json:"date_created"`
	DateUpdated         Time    `json:"date_updated"`
	DateSent            Time    `json:"date_sent"`
	URI                 string  `json:"uri"`
}

// Time is a timestamp in Twilio's REST format (RFC 1123 with a numeric
// zone); null is the zero Time.
type Time struct{ time.Time }

// UnmarshalJSON reads an RFC 1123 time string or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, time.RFC3339} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("twilio: time %q is not RFC 1123", s)
}

// RestError is an error answer of Twilio's REST API.
type RestError struct {
	Status   int  // HTTP status
	Code     Code // Twilio's error code; 0 when the answer had none
	Message  string
	MoreInfo string
	// RetryAfter is the delay the Retry-After header asked for; zero
	// without one. It is not capped here (a huge value is the longest
	// Duration): the sender's switchboard.RetryPolicy caps it.
	RetryAfter time.Duration
}

func (e *RestError) Error() string {
	return fmt.Sprintf("twilio: %d %d: %s", e.Status, int(e.Code), e.Message)
}

// permanentCodes are errors no retry of the same request can fix.
var permanentCodes = map[Code]bool{
	CodeAuthenticationFailed:  true, // 20003
	CodeInvalidTo:             true, // 21211
	CodeInvalidFrom:           true, // 21212
	CodeBodyRequired:          true, // 21602
	21603:                     true, // From or MessagingServiceSid required
	21604:                     true, // To required
	CodeFromNotCapable:        true, // 21606
	21608:                     true, // unverified number (trial account)
	21609:                     true, // invalid StatusCallback
	CodeUnsubscribedRecipient: true, // 21610
	CodeToNotSMSCapable:       true, // 21614
	CodeBodyTooLong:           true, // 21617
	21619:                     true, // a text or media body required
	21620:                     true, // invalid media URL
	21623:                     true, // too many media URLs
	21626:                     true, // invalid ValidityPeriod
	21701:                     true, // Messaging Service not found
}

// Permanent reports whether the error is one no retry can fix: an invalid
// or unreachable recipient, an invalid or foreign sender, a refused body,
// an opted-out recipient, failed authentication.
func (e *RestError) Permanent() bool { return permanentCodes[e.Code] }

// Retryable reports whether the same request may succeed later: 429 or
// 20429 (too many concurrent requests, never processed), 21611 (the
// sender's queue is full for now), and any 5xx.
func (e *RestError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Code == CodeTooManyRequests ||
		e.Code == CodeFromQueueFull || e.Status >= 500
}

// NetError is a request that got no answer from Twilio.
type NetError struct {
	Op  string // "create", "fetch" or "list"
	Err error
	// Written is true when the request was written out before the error
	// (or an answer had begun to arrive): Twilio may have acted on it.
	Written bool
}

func (e *NetError) Error() string {
	return fmt.Sprintf("twilio: %s message: %v", e.Op, e.Err)
}

func (e *NetError) Unwrap() error { return e.Err }

// Ambiguous reports whether the request may have reached Twilio: anything
// after the request was written (a response timeout, a reset connection,
// an EOF, a garbled answer), and any failure this client cannot place.
// Failures to connect — DNS, dial, TLS — or a context ended before the
// request was written are definitely not sent.
func (e *NetError) Ambiguous() bool {
	if e.Written {
		return true
	}
	if errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded) {
		return false
	}
	switch ClassifyError(e.Err) {
	case ClassDNS, ClassConnect, ClassTLS:
		return false
	}
	return true
}

// IsAmbiguous reports whether err is a *NetError for a request that may
// have reached Twilio. A create that failed so must not be repeated
// blindly: look the message up first.
func IsAmbiguous(err error) bool {
	var ne *NetError
	return errors.As(err, &ne) && ne.Ambiguous()
}

func (c *MessagesClient) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

func (c *MessagesClient) messagesPath() string {
	return "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID) + "/Messages"
}

var defaultHTTPClient = NewHTTPClient()

func (c *MessagesClient) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

// Create sends a message. A *RestError is Twilio's refusal; a *NetError is
// no answer (see IsAmbiguous).
func (c *MessagesClient) Create(ctx context.Context, p CreateParams) (*RestMessage, error) {
	form := url.Values{}
	form.Set("To", p.To)
	if p.From != "" {
		form.Set("From", p.From)
	}
	if p.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", p.MessagingServiceSID)
	}
	if p.Body != "" {
		form.Set("Body", p.Body)
	}
	for _, u := range p.MediaURLs {
		form.Add("MediaUrl", u)
	}
	if p.StatusCallback != "" {
		form.Set("StatusCallback", p.StatusCallback)
	}
	var m RestMessage
	if err := c.do(ctx, "create", http.MethodPost, c.baseURL()+c.messagesPath()+".json", form, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Fetch returns the message with the given SID.
func (c *MessagesClient) Fetch(ctx context.Context, sid string) (*RestMessage, error) {
	var m RestMessage
	if err := c.do(ctx, "fetch", http.MethodGet, c.baseURL()+c.messagesPath()+"/"+url.PathEscape(sid)+".json", nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// List returns the messages matching p, newest first, following
// next_page_uri for at most p.MaxPages pages.
func (c *MessagesClient) List(ctx context.Context, p ListParams) ([]RestMessage, error) {
	q := url.Values{}
	if p.To != "" {
		q.Set("To", p.To)
	}
	if p.From != "" {
		q.Set("From", p.From)
	}
	if !p.DateSent.IsZero() {
		q.Set("DateSent", p.DateSent.UTC().Format(time.DateOnly))
	}
	size := p.PageSize
	if size <= 0 {
		size = 50
	}
	q.Set("PageSize", strconv.Itoa(min(size, 1000)))
	pages := p.MaxPages
	if pages <= 0 {
		pages = 5
	}
	next := c.baseURL() + c.messagesPath() + ".json?" + q.Encode()
	var out []RestMessage
	for range pages {
		var page struct {
			Messages    []RestMessage `json:"messages"`
			NextPageURI *string       `json:"next_page_uri"`
		}
		if err := c.do(ctx, "list", http.MethodGet, next, nil, &page); err != nil {
			return out, err
		}
		out = append(out, page.Messages...)
		if page.NextPageURI == nil || *page.NextPageURI == "" {
			break
		}
		// next_page_uri is a path on the same host; only follow that.
		u, err := url.Parse(*page.NextPageURI)
		if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, c.messagesPath()) {
			return out, fmt.Errorf("twilio: list messages: unexpected next_page_uri %q", *page.NextPageURI)
		}
		next = c.baseURL() + u.RequestURI()
	}
	return out, nil
}

// do makes one request and decodes a 2xx answer into v, or returns a
// *RestError or a *NetError.
func (c *MessagesClient) do(ctx context.Context, op, method, target string, form url.Values, v any) error {
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) },
		// A first response byte means the request got there, even if
		// writing it ended with an error.
		GotFirstResponseByte: func() { written.Store(true) },
	})
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("twilio: %s message: %w", op, err)
	}
	req.SetBasicAuth(c.AccountSID, c.AuthToken)
	req.Header.Set("Accept", "application/json")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return &NetError{Op: op, Err: err, Written: written.Load()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		// The answer began: Twilio has seen the request.
		return &NetError{Op: op, Err: fmt.Errorf("read answer: %w", err), Written: true}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return restError(resp, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &NetError{Op: op, Err: fmt.Errorf("decode %d answer: %w", resp.StatusCode, err), Written: true}
	}
	return nil
}

// restError reads Twilio's error JSON, or keeps a short prefix of any
// other body as the message.
func restError(resp *http.Response, raw []byte) *RestError {
	e := &RestError{Status: resp.StatusCode}
	var body struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
	}
	if json.Unmarshal(raw, &body) == nil && (body.Code != 0 || body.Message != "") {
		e.Code, e.Message, e.MoreInfo = Code(body.Code), body.Message, body.MoreInfo
	} else {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.Message = msg
	}
	if d, ok := switchboard.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}
