package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	twiliogo "github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

// TestSDKGo runs the SDK scenarios (sdk_test.go) with Twilio's own Go
// library, twilio-go, given an http.Client whose transport sends Twilio's
// hosts to Switchboard (docs/sdks.md).
func TestSDKGo(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store) {
		h := startSDKHarness(t, st)
		runSDKScenarios(t, h, newGoClient)
	})
}

// switchboardTransport sends each request for https://<host>.twilio.com
// to Switchboard at base instead: api.twilio.com's paths as they are,
// another Twilio host's under /<host>. Other URLs go out unchanged. It
// records the URL of every request it sends.
type switchboardTransport struct {
	base *url.URL
	next http.RoundTripper

	mu   sync.Mutex
	sent []*url.URL
}

func (s *switchboardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req
	if host := req.URL.Hostname(); req.URL.Scheme == "https" && strings.HasSuffix(host, ".twilio.com") {
		prefix := ""
		if host != "api.twilio.com" {
			prefix = "/" + host
		}
		u := *s.base
		u.Path = strings.TrimSuffix(s.base.Path, "/") + prefix + req.URL.Path
		u.RawPath = strings.TrimSuffix(s.base.EscapedPath(), "/") + prefix + req.URL.EscapedPath()
		u.RawQuery = req.URL.RawQuery
		out = req.Clone(req.Context())
		out.URL, out.Host = &u, ""
	}
	s.mu.Lock()
	s.sent = append(s.sent, out.URL)
	s.mu.Unlock()
	return s.next.RoundTrip(out)
}

// pagesSince counts the GET requests for the Messages list sent after the
// first n requests, and checks every request went to Switchboard.
func (s *switchboardTransport) pagesSince(t *testing.T, n int) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	pages := 0
	for _, u := range s.sent[n:] {
		if strings.HasSuffix(u.Path, "/Messages.json") {
			pages++
		}
	}
	return pages
}

func (s *switchboardTransport) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// goClient is twilio-go configured for Switchboard as docs/sdks.md says.
type goClient struct {
	rc   *twiliogo.RestClient
	tr   *switchboardTransport
	base string
}

func newGoClient(t *testing.T, base, user, pass, account string) sdkClient {
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	next := &http.Transport{}
	t.Cleanup(next.CloseIdleConnections)
	tr := &switchboardTransport{base: b, next: next}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: tr, Timeout: 15 * time.Second},
	}
	c.SetAccountSid(account) // the path's account; with an API key, not the user
	rc := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: c})
	rc.Edge, rc.Region = "", "" // not from TWILIO_EDGE, TWILIO_REGION: they change the host
	return &goClient{rc: rc, tr: tr, base: base}
}

// check returns err as an *sdkError when it is the API's error answer, and
// fails the test on anything else. Every request must have gone to
// Switchboard.
func (c *goClient) check(t *testing.T, what string, err error) *sdkError {
	t.Helper()
	c.tr.mu.Lock()
	var urls []string
	for _, u := range c.tr.sent {
		urls = append(urls, u.String())
	}
	c.tr.mu.Unlock()
	if u := onlyTo(c.base, urls); u != "" {
		t.Errorf("twilio-go sent a request to %s, not to Switchboard at %s", u, c.base)
	}
	if err == nil {
		return nil
	}
	var te *twclient.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("twilio-go %s: %v (%T), want a response of the API", what, err, err)
	}
	return &sdkError{Status: te.Status, Code: te.Code, Message: te.Message, MoreInfo: te.MoreInfo}
}

func goMessage(m *api.ApiV2010Message) sdkMessage {
	if m == nil {
		return sdkMessage{}
	}
	return sdkMessage{SID: deref(m.Sid), Status: deref(m.Status), To: deref(m.To), From: deref(m.From),
		Body: deref(m.Body), AccountSID: deref(m.AccountSid)}
}

func (c *goClient) create(t *testing.T, to, body, statusCallback string) (sdkMessage, *sdkError) {
	p := (&api.CreateMessageParams{}).SetTo(to).SetFrom(outboundSender).SetBody(body)
	if statusCallback != "" {
		p.SetStatusCallback(statusCallback)
	}
	m, err := c.rc.Api.CreateMessage(p)
	return goMessage(m), c.check(t, "CreateMessage", err)
}

func (c *goClient) createTwice(t *testing.T, to, body string) ([]sdkMessage, *sdkError) {
	var out []sdkMessage
	for range 2 {
		m, e := c.create(t, to, body, "")
		if e != nil {
			return out, e
		}
		out = append(out, m)
	}
	return out, nil
}

func (c *goClient) fetch(t *testing.T, sid string) (sdkMessage, *sdkError) {
	m, err := c.rc.Api.FetchMessage(sid, &api.FetchMessageParams{})
	return goMessage(m), c.check(t, "FetchMessage", err)
}

func (c *goClient) fetchUntil(t *testing.T, sid, status string) (sdkMessage, *sdkError) {
	var m sdkMessage
	var e *sdkError
	deadline := time.Now().Add(30 * time.Second)
	// Polling the API, as an app would: the status changes in another
	// process, which sends no signal this side could wait on.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if m, e = c.fetch(t, sid); e != nil || m.Status == status || time.Now().After(deadline) {
			return m, e
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			return m, e
		}
	}
}

func (c *goClient) list(t *testing.T, to string, limit, pageSize int) (sdkPaged, sdkPaged, *sdkError) {
	params := func() *api.ListMessageParams {
		return (&api.ListMessageParams{}).SetTo(to).SetLimit(limit).SetPageSize(pageSize)
	}
	var list, each sdkPaged
	n := c.tr.count()
	ms, err := c.rc.Api.ListMessage(params())
	if e := c.check(t, "ListMessage", err); e != nil {
		return list, each, e
	}
	for _, m := range ms {
		list.SIDs = append(list.SIDs, deref(m.Sid))
	}
	list.Pages = c.tr.pagesSince(t, n)

	n = c.tr.count()
	records, errs := c.rc.Api.StreamMessage(params())
	for m := range records {
		each.SIDs = append(each.SIDs, deref(m.Sid))
	}
	if e := c.check(t, "StreamMessage", <-errs); e != nil {
		return list, each, e
	}
	each.Pages = c.tr.pagesSince(t, n)
	return list, each, nil
}

func (c *goClient) call(t *testing.T, to, from, twimlURL string) (string, *sdkError) {
	call, err := c.rc.Api.CreateCall((&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetUrl(twimlURL))
	if e := c.check(t, "CreateCall", err); e != nil {
		return "", e
	}
	return deref(call.Sid), nil
}

// TestSwitchboardTransportRewrites checks the rule docs/sdks.md gives for
// every SDK, as the Go transport applies it: api.twilio.com's paths under
// Switchboard's base, another Twilio host's under /<host>, anything else
// untouched.
func TestSwitchboardTransportRewrites(t *testing.T) {
	for _, tc := range []struct {
		base, in, want string
	}{
		{"http://sb:8080", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2",
			"http://sb:8080/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"},
		{"http://sb:8080/", "https://lookups.twilio.com/v2/PhoneNumbers/%2B15551234567?Fields=line_type_intelligence",
			"http://sb:8080/lookups.twilio.com/v2/PhoneNumbers/%2B15551234567?Fields=line_type_intelligence"},
		{"https://gw.example.com/twilio", "https://messaging.twilio.com/v1/Services",
			"https://gw.example.com/twilio/messaging.twilio.com/v1/Services"},
		{"http://sb:8080", "https://example.com/media.jpg", "https://example.com/media.jpg"},
		{"http://sb:8080", "http://api.twilio.com/2010-04-01/Accounts.json", "http://api.twilio.com/2010-04-01/Accounts.json"},
		{"http://sb:8080", "https://api.twilio.com.evil.example/x", "https://api.twilio.com.evil.example/x"},
	} {
		b, _ := url.Parse(tc.base)
		var got string
		tr := &switchboardTransport{base: b, next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.URL.String()
			return nil, errors.New("not sent")
		})}
		req, err := http.NewRequest(http.MethodGet, tc.in, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tr.RoundTrip(req)
		if got != tc.want {
			t.Errorf("base %s: %s went to %s; want %s", tc.base, tc.in, got, tc.want)
		}
		if req.URL.String() != tc.in {
			t.Errorf("the caller's request was changed to %s", req.URL)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
