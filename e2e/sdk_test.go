package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
)

// The official SDKs against the real binary, each pointed at Switchboard
// by its own mechanism as docs/sdks.md describes, with the simulator as
// the provider behind it. One scenario per subtest, the same for every
// SDK (sdk_node_test.go, sdk_go_test.go):
//
//   - one-sid: the SID a create answers is the one fetch, list (paged by
//     the SDK across pages) and the status callbacks delivered to the
//     app's StatusCallback carry;
//   - suppressed-recipient-21610: after the handset texted STOP, a create
//     to it is the SDK's error with code 21610, and nothing is sent;
//   - identical-creates-are-two-messages: two identical creates without an
//     idempotency header are two messages, as at Twilio;
//   - calls-pass-through: a Calls create reaches the provider, and its
//     answer reaches the SDK;
//   - api-key-*: an API key of the account (Basic auth key SID + secret,
//     the account's SID in the path) authenticates; a wrong secret, or the
//     key used for another account, does not.

// An API key of the tests' account, as [[accounts]] api_keys lists it.
// Alphanumeric: twilio-go refuses other credentials before any request.
const (
	sdkAPIKeySID    = "SKe2e0000000000000000000000000000a"
	sdkAPIKeySecret = "e2eApiKeySecret0000000000000000a"
	// unknownAccountSID is an account Switchboard does not know.
	unknownAccountSID = "ACe2e00000000000000000000000000099"
)

// The recipients of the scenarios, one each, so that no scenario sees
// another's messages.
const (
	sdkOneSIDTo     = "+15557771001"
	sdkSuppressedTo = "+15557771002"
	sdkTwiceTo      = "+15557771003"
	sdkKeyTo        = "+15557771004"
	sdkCallTo       = "+15557771005"
)

// sdkMessage is a message as an SDK returned it.
type sdkMessage struct {
	SID        string `json:"sid"`
	Status     string `json:"status"`
	To         string `json:"to"`
	From       string `json:"from"`
	Body       string `json:"body"`
	AccountSID string `json:"accountSid"`
}

// sdkError is an error answer of the API as an SDK raised it (twilio-node's
// RestException, twilio-go's *client.TwilioRestError).
type sdkError struct {
	Status   int    `json:"status"`
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"moreInfo"`
}

func (e *sdkError) String() string {
	if e == nil {
		return "no error"
	}
	return fmt.Sprintf("HTTP %d, code %d: %s", e.Status, e.Code, e.Message)
}

// sdkPaged is what one of an SDK's list operations read: the SIDs, and how
// many page requests it took.
type sdkPaged struct {
	SIDs  []string `json:"sids"`
	Pages int      `json:"pages"`
}

// sdkClient is one SDK's client, configured for Switchboard with one set
// of credentials. Each operation returns the API's error answer as an
// *sdkError and fails the test on anything else.
type sdkClient interface {
	create(t *testing.T, to, body, statusCallback string) (sdkMessage, *sdkError)
	// createTwice makes the same create request twice.
	createTwice(t *testing.T, to, body string) ([]sdkMessage, *sdkError)
	fetch(t *testing.T, sid string) (sdkMessage, *sdkError)
	// fetchUntil fetches the message until it has status, for up to 30 s,
	// and returns the last answer.
	fetchUntil(t *testing.T, sid, status string) (sdkMessage, *sdkError)
	// list reads the messages to `to` with the SDK's list and its
	// iterator (each, stream), limit records in pages of pageSize.
	list(t *testing.T, to string, limit, pageSize int) (list, each sdkPaged, _ *sdkError)
	// call creates a call and returns its SID.
	call(t *testing.T, to, from, twimlURL string) (string, *sdkError)
}

// sdkNewClient makes a client of one SDK for Switchboard at base (http://
// host:port) authenticating as user:pass (the account's SID and token, or
// an API key's SID and secret) for account.
type sdkNewClient func(t *testing.T, base, user, pass, account string) sdkClient

// sdkHarness is Switchboard with the simulator as its provider, a local
// app as its routes' target and its messages' status webhook, and a front
// before the simulator recording what reaches the provider.
type sdkHarness struct {
	tw    *sim.Sim
	front *providerFront
	app   *app
	p     *proc
	base  string // Switchboard's base URL, what the SDKs are pointed at
}

// startSDKHarness starts the simulator, the front and the app, then
// switchboard serve with pool "main" sending from outboundSender through
// the front, the status route and an SMS route going to the app, the
// tests' account's third token sdkToken and its API key.
func startSDKHarness(t *testing.T, st store) *sdkHarness {
	t.Helper()
	tunnel := newLateTunnel(t) // the simulator's webhooks, to the serve process
	tw, err := sim.New(sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers: []sim.Number{{Number: outboundSender, Throughput: 100, SMSURL: publicURL + "/sms"}},
		}},
		Carriers:  []sim.Carrier{{Latency: sim.Latency{Median: 20 * time.Millisecond, P99: 50 * time.Millisecond}}},
		Transport: tunnel,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	srv, err := tw.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	front := startProviderFront(t, srv.URL)

	a := startApp(t)
	cfg := writeConfig(t, config{
		storage: st.url,
		routes: []route{
			{path: "/status", target: a.url("/app/status")},
			{path: "/sms", target: a.url("/app/sms")},
		},
		provider:    front.srv.URL,
		pools:       []pool{{name: "main", senders: []string{outboundSender}, rate: 50}},
		statusRoute: "/status",
		egressAllow: []string{"127.0.0.0/8"}, // the status webhook is the local app
	})
	addAccountToken(t, cfg, sdkToken)
	addAccountAPIKey(t, cfg, sdkAPIKeySID, sdkAPIKeySecret)
	p := startServe(t, cfg)
	tunnel.to(p.addr)
	return &sdkHarness{tw: tw, front: front, app: a, p: p, base: "http://" + p.addr}
}

var authTokensLine = regexp.MustCompile(`(?m)^auth_tokens = \[.*\]$`)

// addAccountAPIKey gives the tests' account (the configuration's only
// [[accounts]] entry) an API key.
func addAccountAPIKey(t *testing.T, path, sid, secret string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	loc := authTokensLine.FindIndex(b)
	if loc == nil {
		t.Fatal("configuration has no auth_tokens line")
	}
	key := fmt.Sprintf("\napi_keys = [{ sid = %q, secret = %q }]", sid, secret)
	b = slices.Concat(b[:loc[1]], []byte(key), b[loc[1]:])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runSDKScenarios runs every scenario with the SDK whose clients newClient
// makes, against h.
func runSDKScenarios(t *testing.T, h *sdkHarness, newClient sdkNewClient) {
	c := newClient(t, h.base, accountSID, sdkToken, accountSID)
	t.Run("one-sid", func(t *testing.T) { testSDKOneSID(t, h, c) })
	t.Run("suppressed-recipient-21610", func(t *testing.T) { testSDKSuppressed(t, h, c) })
	t.Run("identical-creates-are-two-messages", func(t *testing.T) { testSDKIdenticalCreates(t, h, c) })
	t.Run("calls-pass-through", func(t *testing.T) { testSDKCallsPassThrough(t, h, c) })
	t.Run("api-key-auth", func(t *testing.T) {
		testSDKAPIKey(t, newClient(t, h.base, sdkAPIKeySID, sdkAPIKeySecret, accountSID))
	})
	t.Run("api-key-wrong-secret-refused", func(t *testing.T) {
		wrong := newClient(t, h.base, sdkAPIKeySID, "notTheSecret000000000000000000000", accountSID)
		_, e := wrong.create(t, sdkKeyTo, "with a wrong secret", "")
		wantAuthFailure(t, "API key with a wrong secret", e)
	})
	t.Run("api-key-other-account-refused", func(t *testing.T) {
		// The key is the tests' account's: naming another account in
		// the path must not make it that account's.
		other := newClient(t, h.base, sdkAPIKeySID, sdkAPIKeySecret, unknownAccountSID)
		_, e := other.create(t, sdkKeyTo, "for another account", "")
		wantAuthFailure(t, "API key used for another account", e)
	})
	if n := h.simMessagesTo(sdkKeyTo); n > 1 {
		t.Errorf("the simulator has %d messages to %s; want at most the one sent with the valid key", n, sdkKeyTo)
	}
}

func wantAuthFailure(t *testing.T, what string, e *sdkError) {
	t.Helper()
	if e == nil || e.Status != http.StatusUnauthorized || e.Code != 20003 {
		t.Errorf("%s: %v; want HTTP 401 with code 20003", what, e)
	}
}

// testSDKOneSID: create, fetch, list and the callbacks at the status
// webhook all carry the SID the create answered.
func testSDKOneSID(t *testing.T, h *sdkHarness, c sdkClient) {
	hookPath := "/hooks/status?scenario=one-sid"
	created, e := c.create(t, sdkOneSIDTo, "one SID 1", h.app.url(hookPath))
	if e != nil {
		t.Fatalf("create: %v", e)
	}
	if !smSIDPattern.MatchString(created.SID) || created.Status != "queued" || created.To != sdkOneSIDTo ||
		created.AccountSID != accountSID || created.Body != "one SID 1" {
		t.Fatalf("create answered %+v; want a queued message SM… of %s to %s", created, accountSID, sdkOneSIDTo)
	}
	sid := created.SID

	t.Run("fetch", func(t *testing.T) {
		got, e := c.fetchUntil(t, sid, "delivered")
		if e != nil {
			t.Fatalf("fetch %s: %v", sid, e)
		}
		if got.Status != "delivered" {
			t.Fatalf("fetch %s: status %s after 30 s; want delivered", sid, got.Status)
		}
		if got.SID != sid {
			t.Errorf("fetch of the delivered message answered SID %s; the create answered %s", got.SID, sid)
		}
		if got.From != outboundSender || got.To != sdkOneSIDTo {
			t.Errorf("fetched %+v; want from %s to %s", got, outboundSender, sdkOneSIDTo)
		}
	})

	t.Run("list-paging", func(t *testing.T) {
		want := []string{sid}
		for i := 2; i <= 3; i++ {
			m, e := c.create(t, sdkOneSIDTo, fmt.Sprintf("one SID %d", i), "")
			if e != nil {
				t.Fatalf("create %d: %v", i, e)
			}
			want = append(want, m.SID)
		}
		list, each, e := c.list(t, sdkOneSIDTo, 3, 2)
		if e != nil {
			t.Fatalf("list the messages to %s: %v", sdkOneSIDTo, e)
		}
		slices.Sort(want)
		for _, got := range []struct {
			op string
			sdkPaged
		}{{"list", list}, {"each", each}} {
			sids := slices.Sorted(slices.Values(got.SIDs))
			if !slices.Equal(sids, want) {
				t.Errorf("%s (limit 3, page size 2) read %v; want the SIDs the creates answered, %v", got.op, got.SIDs, want)
			}
			if got.Pages < 2 {
				t.Errorf("%s read 3 messages in %d page(s) of at most 2; want the SDK to follow next_page_uri", got.op, got.Pages)
			}
		}
	})

	t.Run("status-callbacks", func(t *testing.T) {
		var hooks []*delivery
		h.app.waitFor(t, 30*time.Second, "the delivered callback at the status webhook", func() bool {
			hooks = hooks[:0]
			delivered := false
			for _, d := range h.app.deliveries {
				if d.requestURI == hookPath {
					hooks = append(hooks, d)
					form, _ := url.ParseQuery(string(d.body))
					delivered = delivered || form.Get("MessageStatus") == "delivered"
				}
			}
			return delivered
		}, func() string { return fmt.Sprintf("%d callbacks so far", len(hooks)) })
		for _, d := range hooks {
			form, _ := url.ParseQuery(string(d.body))
			if d.messageSID != sid {
				t.Errorf("the %s callback carries MessageSid %s; the create answered %s", form.Get("MessageStatus"), d.messageSID, sid)
			}
			if err := checkSignature(d); err != nil {
				t.Errorf("the %s callback: %v", form.Get("MessageStatus"), err)
			}
		}
	})
}

// testSDKSuppressed: a handset that texted STOP is refused with 21610.
func testSDKSuppressed(t *testing.T, h *sdkHarness, c sdkClient) {
	res, err := h.tw.ReceiveMessage(t.Context(), sim.InboundMessage{From: sdkSuppressedTo, To: outboundSender, Body: "STOP"})
	if err != nil {
		t.Fatalf("STOP from %s: %v", sdkSuppressedTo, err)
	}
	if w := res.Webhook; w == nil || w.Final().Error != nil {
		t.Fatalf("STOP from %s: webhook %+v; want Switchboard to take it", sdkSuppressedTo, w)
	}
	// The opt-out is applied after Twilio has its answer.
	h.p.out.waitFor(t, 10*time.Second, "inbound keyword applied")

	_, e := c.create(t, sdkSuppressedTo, "after STOP", "")
	if e == nil || e.Code != 21610 || e.Status != http.StatusBadRequest || e.MoreInfo != "https://www.twilio.com/docs/errors/21610" {
		t.Errorf("create to a recipient who texted STOP: %v; want the SDK's error with HTTP 400, code 21610", e)
	}
	if n := h.simMessagesTo(sdkSuppressedTo); n != 0 {
		t.Errorf("the simulator has %d messages to the recipient who texted STOP; want none", n)
	}
}

// testSDKIdenticalCreates: two identical creates, no idempotency header,
// are two messages with two SIDs, both sent.
func testSDKIdenticalCreates(t *testing.T, h *sdkHarness, c sdkClient) {
	ms, e := c.createTwice(t, sdkTwiceTo, "the same text twice")
	if e != nil {
		t.Fatalf("two identical creates: %v", e)
	}
	if len(ms) != 2 {
		t.Fatalf("two identical creates answered %d messages", len(ms))
	}
	if ms[0].SID == ms[1].SID {
		t.Errorf("both identical creates answered SID %s; want two messages, as at Twilio", ms[0].SID)
	}
	// Two SIDs may still name one message (a create answering an earlier
	// message as it stands now): once delivered, each must be its own.
	var final []string
	for _, m := range ms {
		got, e := c.fetchUntil(t, m.SID, "delivered")
		if e != nil || got.Status != "delivered" {
			t.Fatalf("fetch %s: %+v, %v; want it delivered", m.SID, got, e)
		}
		final = append(final, got.SID)
	}
	if final[0] == final[1] {
		t.Errorf("the creates answered %s and %s, both now message %s; want two messages", ms[0].SID, ms[1].SID, final[0])
	}
	if n := h.simMessagesTo(sdkTwiceTo); n != 2 {
		t.Errorf("the simulator has %d messages to %s after two identical creates; want 2", n, sdkTwiceTo)
	}
}

// testSDKCallsPassThrough: the Calls API is not Switchboard's; the request
// reaches the provider and the provider's answer reaches the SDK.
func testSDKCallsPassThrough(t *testing.T, h *sdkHarness, c sdkClient) {
	twimlURL := publicURL + "/voice"
	sid, e := c.call(t, sdkCallTo, outboundSender, twimlURL)
	got := h.front.calls()
	if len(got) != 1 {
		t.Fatalf("the provider got %d Calls creates; want the SDK's one (SDK: sid %q, %v)", len(got), sid, e)
	}
	r := got[0]
	if r.path != "/2010-04-01/Accounts/"+accountSID+"/Calls.json" || r.form.Get("To") != sdkCallTo ||
		r.form.Get("From") != outboundSender || r.form.Get("Url") != twimlURL {
		t.Errorf("the provider got POST %s %v; want the SDK's To, From and Url for %s", r.path, r.form, accountSID)
	}
	if e != nil || sid != r.answeredSID {
		t.Errorf("calls.create answered sid %q (%v); want the provider's %s", sid, e, r.answeredSID)
	}
}

// testSDKAPIKey: an API key of the account sends and fetches.
func testSDKAPIKey(t *testing.T, c sdkClient) {
	m, e := c.create(t, sdkKeyTo, "sent with an API key", "")
	if e != nil {
		t.Fatalf("create with the account's API key: %v", e)
	}
	if !smSIDPattern.MatchString(m.SID) || m.AccountSID != accountSID {
		t.Fatalf("create with the API key answered %+v; want a message of %s", m, accountSID)
	}
	got, e := c.fetch(t, m.SID)
	if e != nil || got.SID != m.SID {
		t.Errorf("fetch %s with the API key: %+v, %v", m.SID, got, e)
	}
}

// simMessagesTo counts the messages sent to `to` at the simulator.
func (h *sdkHarness) simMessagesTo(to string) int {
	n := 0
	for _, m := range h.tw.Messages(accountSID) {
		if m.To == to && m.Direction != "inbound" {
			n++
		}
	}
	return n
}

// providerFront stands before the simulator as the provider Switchboard
// sends to: it records every request and forwards it to the simulator,
// except Calls creates, which the simulator has no API for: those it
// answers itself, as Twilio would, with a call of a new SID.
type providerFront struct {
	srv  *httptest.Server
	sim  http.Handler
	mu   sync.Mutex
	reqs []frontRequest
}

// frontRequest is a request the provider got.
type frontRequest struct {
	method, path string
	form         url.Values
	answeredSID  string // the call's SID, for a Calls create
}

var callsPath = regexp.MustCompile(`^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json$`)

func startProviderFront(t *testing.T, simURL string) *providerFront {
	t.Helper()
	target, err := url.Parse(simURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &providerFront{sim: httputil.NewSingleHostReverseProxy(target)}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *providerFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	rec := frontRequest{method: r.Method, path: r.URL.Path, form: form}
	m := callsPath.FindStringSubmatch(r.URL.Path)
	if r.Method == http.MethodPost && m != nil {
		f.mu.Lock()
		rec.answeredSID = fmt.Sprintf("CA%032x", len(f.reqs)+1)
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		now := time.Now().UTC().Format(time.RFC1123Z)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"sid": rec.answeredSID, "account_sid": m[1], "to": form.Get("To"), "from": form.Get("From"),
			"status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
			"date_created": now, "date_updated": now,
			"uri": "/2010-04-01/Accounts/" + m[1] + "/Calls/" + rec.answeredSID + ".json",
		})
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	f.sim.ServeHTTP(w, r)
}

// calls returns the Calls creates the provider got.
func (f *providerFront) calls() []frontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []frontRequest
	for _, r := range f.reqs {
		if r.method == http.MethodPost && callsPath.MatchString(r.path) {
			out = append(out, r)
		}
	}
	return out
}

// onlyTo reports the first of urls not under base, or "" when all are.
func onlyTo(base string, urls []string) string {
	for _, u := range urls {
		if !strings.HasPrefix(u, base+"/") {
			return u
		}
	}
	return ""
}
