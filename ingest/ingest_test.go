package ingest_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	public  = "https://hooks.example.com"
	account = "AC00000000000000000000000000000001"
	token   = "primary-token"
	token2  = "rotated-token"
)

type fixture struct {
	store switchboard.Store
	srv   *httptest.Server
	path  string // the SQLite file
	// metrics are the handler's, where a fixture sets them.
	metrics *metrics.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWithAck(t, 5*time.Second)
}

func newFixtureWithAck(t *testing.T, ackTimeout time.Duration) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sb.db")
	store, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := ingest.New(ingest.Options{
		Store:        store,
		PublicURL:    public,
		MaxBodyBytes: 4096,
		AckTimeout:   ackTimeout,
		Routes: []ingest.Route{
			{Path: "/sms", AccountSID: account, Tokens: []string{token, token2}, TwiML: []byte("<Response/>")},
			{Path: "/voice", AccountSID: account, Tokens: []string{token}, TwiML: []byte("<Response><Say>hi</Say></Response>")},
			{Path: "/notify", AccountSID: account, Tokens: []string{token}},
		},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &fixture{store: store, srv: srv, path: path}
}

// webhook is a request as Twilio would send it.
type webhook struct {
	method, path, contentType, body string
	signWith, signURL               string // defaults: token and public+path
	signature                       string // overrides the computed one
	idemToken                       string
}

func (f *fixture) send(t *testing.T, w webhook) (*http.Response, string) {
	t.Helper()
	if w.method == "" {
		w.method = http.MethodPost
	}
	if w.contentType == "" && w.method == http.MethodPost {
		w.contentType = "application/x-www-form-urlencoded"
	}
	if w.signWith == "" {
		w.signWith = token
	}
	if w.signURL == "" {
		w.signURL = public + w.path
	}
	signedURL, sig, err := twilio.SignRequest(w.signWith, w.signURL, w.contentType, []byte(w.body))
	if err != nil {
		signedURL, sig = w.signURL, "unsignable"
	}
	if w.signature != "" {
		sig = w.signature
	}
	// Send to the same path and query the signature covers.
	u, _ := url.Parse(signedURL)
	req, err := http.NewRequest(w.method, f.srv.URL+u.RequestURI(), strings.NewReader(w.body))
	if err != nil {
		t.Fatal(err)
	}
	if w.contentType != "" {
		req.Header.Set("Content-Type", w.contentType)
	}
	req.Header.Set("X-Twilio-Signature", sig)
	if w.idemToken != "" {
		req.Header.Set("I-Twilio-Idempotency-Token", w.idemToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) lastRequest(t *testing.T) *switchboard.Request {
	t.Helper()
	page, err := f.store.ListRequests(context.Background(), switchboard.RequestFilter{Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("no request stored: %v", err)
	}
	return page.Items[0]
}

const smsBody = "MessageSid=SM11111111111111111111111111111111&AccountSid=" + account +
	"&From=%2B15551230000&To=%2B15559870000&Body=caf%C3%A9+%26+%F0%9F%93%9E&NumMedia=0&SmsStatus=received"

func TestAcceptedRequestsAreStoredAndAnswered(t *testing.T) {
	t.Parallel()
	jsonBody := `{"twi_message_id":"WB123","twi_account_sid":"` + account + `","twi_call_sid":"CA9"}`
	cases := []struct {
		name        string
		w           webhook
		status      int
		contentType string
		answer      string
		kind        switchboard.Kind
	}{
		{"inbound sms", webhook{path: "/sms", body: smsBody}, 200, "application/xml", "<Response/>", switchboard.KindMessage},
		{"status callback", webhook{path: "/sms", body: "MessageSid=SM2&MessageStatus=delivered&AccountSid=" + account},
			200, "", "", switchboard.KindMessageStatus},
		{"voice", webhook{path: "/voice", body: "CallSid=CA1&CallStatus=ringing&AccountSid=" + account},
			200, "application/xml", "<Response><Say>hi</Say></Response>", switchboard.KindVoice},
		{"second token during rotation", webhook{path: "/sms", body: "MessageSid=SM3&Body=x", signWith: token2},
			200, "application/xml", "<Response/>", switchboard.KindMessage},
		{"signed with default port", webhook{path: "/sms", body: "MessageSid=SM4", signURL: "https://hooks.example.com:443/sms"},
			200, "application/xml", "<Response/>", switchboard.KindMessage},
		{"query string is signed", webhook{path: "/sms?tenant=a%27b", body: "MessageSid=SM5"},
			200, "application/xml", "<Response/>", switchboard.KindMessage},
		{"GET", webhook{method: http.MethodGet, path: "/sms?MessageSid=SM6&Body=hi"},
			200, "application/xml", "<Response/>", switchboard.KindMessage},
		{"repeated keys", webhook{path: "/sms", body: "MessageSid=SM7&MediaUrl=b&MediaUrl=a"},
			200, "application/xml", "<Response/>", switchboard.KindMessage},
		{"JSON client notification", webhook{path: "/notify", contentType: "application/json", body: jsonBody},
			200, "", "", switchboard.KindClientNotification},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			resp, answer := f.send(t, tc.w)
			if resp.StatusCode != tc.status || answer != tc.answer || resp.Header.Get("Content-Type") != tc.contentType {
				t.Fatalf("answer = %d %q %q, want %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), answer,
					tc.status, tc.contentType, tc.answer)
			}
			req := f.lastRequest(t)
			if req.Outcome != switchboard.OutcomeAccepted || string(req.Body) != tc.w.body || req.Method != tc.w.method && tc.w.method != "" {
				t.Errorf("stored request: outcome %s body %q", req.Outcome, req.Body)
			}
			ev, err := f.store.Event(context.Background(), req.EventID)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tc.kind || ev.State != switchboard.StatePending || ev.AccountSID != account {
				t.Errorf("event: kind %s state %s account %s", ev.Kind, ev.State, ev.AccountSID)
			}
		})
	}
}

// An event keeps its webhook's From and To, to be found by number; one
// too long to be a number, or that no search could name (a NUL, bytes
// that are not UTF-8), is kept empty, and the request is stored all the
// same.
func TestEventKeepsTheWebhooksNumbers(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("1", 64)
	cases := []struct {
		name     string
		body     string
		from, to string
	}{
		{"inbound sms", smsBody, "+15551230000", "+15559870000"},
		{"whatsapp", "MessageSid=SM1&From=whatsapp%3A%2B15551230000&To=whatsapp%3A%2B15559870000", "whatsapp:+15551230000", "whatsapp:+15559870000"},
		{"voice client", "CallSid=CA1&CallStatus=ringing&From=client%3Aalice&To=%2B15559870000", "client:alice", "+15559870000"},
		{"none", "MessageSid=SM2&Body=hi", "", ""},
		{"64 bytes is kept", "MessageSid=SM3&From=" + long + "&To=" + long, long, long},
		{"65 bytes is not", "MessageSid=SM4&From=" + long + "2&To=%2B15559870000", "", "+15559870000"},
		{"a NUL", "MessageSid=SM5&From=%2B1555%00&To=%2B15559870000", "", "+15559870000"},
		{"not UTF-8", "MessageSid=SM6&From=%2B15551230000&To=%2B1555%FF", "+15551230000", ""},
		{"the first of repeated values", "MessageSid=SM7&From=%2B15551230000&From=%2B15550000000", "+15551230000", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if resp, answer := f.send(t, webhook{path: "/sms", body: tc.body}); resp.StatusCode != http.StatusOK {
				t.Fatalf("answer = %d %q, want 200", resp.StatusCode, answer)
			}
			req := f.lastRequest(t)
			if string(req.Body) != tc.body {
				t.Errorf("stored body %q, want %q as received", req.Body, tc.body)
			}
			ev, err := f.store.Event(context.Background(), req.EventID)
			if err != nil {
				t.Fatal(err)
			}
			if ev.From != tc.from || ev.To != tc.to {
				t.Errorf("event From %q To %q, want %q %q", ev.From, ev.To, tc.from, tc.to)
			}
		})
	}
}

func TestRejectedRequestsGetTheirStatusAndAreRecorded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		w      webhook
		status int
		reason string
	}{
		{"missing signature", webhook{path: "/sms", body: "MessageSid=SM1", signature: " "}, 403, "signature"},
		{"wrong token", webhook{path: "/sms", body: "MessageSid=SM1", signWith: "attacker"}, 403, "signature"},
		{"signed for another URL", webhook{path: "/sms", body: "MessageSid=SM1", signURL: "https://evil.example.com/sms"}, 403, "signature"},
		{"garbage signature", webhook{path: "/sms", body: "MessageSid=SM1", signature: "!!not base64!!"}, 403, "signature"},
		{"tampered JSON body", webhook{path: "/notify", contentType: "application/json", body: `{"twi_message_id":"WB1"}`,
			signURL: public + "/notify?bodySHA256=0000000000000000000000000000000000000000000000000000000000000000"}, 403, "signature"},
		{"malformed form", webhook{path: "/sms", body: "MessageSid=SM1&Body=%zz"}, 400, "malformed form"},
		{"body too large", webhook{path: "/sms", body: "Body=" + strings.Repeat("x", 5000)}, 413, "limit"},
		{"wrong method", webhook{method: http.MethodPut, path: "/sms", body: "x=1"}, 405, "not allowed"},
		{"unknown path", webhook{path: "/nope", body: "x=1"}, 404, "no route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			resp, answer := f.send(t, tc.w)
			if resp.StatusCode != tc.status || !strings.Contains(answer, tc.reason) {
				t.Fatalf("answer = %d %q, want %d mentioning %q", resp.StatusCode, answer, tc.status, tc.reason)
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			req := f.lastRequest(t)
			if req.Outcome != switchboard.OutcomeRejected || !strings.Contains(req.Reason, tc.reason) || req.EventID != "" {
				t.Errorf("recorded as %s %q → %q", req.Outcome, req.Reason, req.EventID)
			}
			page, _ := f.store.ListEvents(context.Background(), switchboard.EventFilter{})
			if len(page.Items) != 0 {
				t.Errorf("a rejected request created %d events", len(page.Items))
			}
		})
	}
}

func TestDuplicateGetsTheOriginalAnswerAndNoNewEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	w := webhook{path: "/voice", body: "CallSid=CA1&CallStatus=ringing", idemToken: "3f1a-retry"}
	first, a1 := f.send(t, w)
	again, a2 := f.send(t, w)
	if first.StatusCode != 200 || again.StatusCode != 200 || a1 != a2 || again.Header.Get("Content-Type") != "application/xml" {
		t.Fatalf("answers differ: %d %q / %d %q", first.StatusCode, a1, again.StatusCode, a2)
	}
	dup := f.lastRequest(t)
	if dup.Outcome != switchboard.OutcomeDuplicate {
		t.Errorf("second request outcome = %s", dup.Outcome)
	}
	page, _ := f.store.ListEvents(ctx, switchboard.EventFilter{})
	if len(page.Items) != 1 || page.Items[0].ID != dup.EventID {
		t.Errorf("%d events; duplicate points at %s", len(page.Items), dup.EventID)
	}
	// Without Twilio's token, the status callback's own identity dedupes.
	status := webhook{path: "/sms", body: "MessageSid=SM9&MessageStatus=sent&AccountSid=" + account}
	f.send(t, status)
	f.send(t, status)
	if got := f.lastRequest(t); got.Outcome != switchboard.OutcomeDuplicate {
		t.Errorf("repeated status callback outcome = %s", got.Outcome)
	}
}

func TestStorageFailureAnswers503AndNeverAcks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.store.Close(); err != nil { // the database goes away under the server
		t.Fatal(err)
	}
	resp, answer := f.send(t, webhook{path: "/sms", body: smsBody})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("answer = %d %q, want 503 with Retry-After", resp.StatusCode, answer)
	}
	if strings.Contains(answer, "sql") {
		t.Errorf("503 body leaks internals: %q", answer)
	}
}

func TestConcurrentRequestsShareCommits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 64
	errs := make(chan error, n)
	for i := range n {
		go func() {
			body := "MessageSid=SM" + strings.Repeat("0", 30) + string(rune('A'+i%26)) + string(rune('a'+i/26))
			resp, _ := f.send(t, webhook{path: "/sms", body: body})
			if resp.StatusCode != 200 {
				errs <- errors.New(resp.Status)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	page, err := f.store.ListEvents(context.Background(), switchboard.EventFilter{Limit: 500})
	if err != nil || len(page.Items) != n {
		t.Fatalf("%d events stored, want %d (%v)", len(page.Items), n, err)
	}
}

// Another process holding SQLite's write lock past the ack timeout: Twilio
// must get 503, never a 2xx for a request that is not stored, and intake
// must recover once the lock is released.
func TestDatabaseLockedAnswers503ThenRecovers(t *testing.T) {
	t.Parallel()
	f := newFixtureWithAck(t, 300*time.Millisecond)
	ctx := context.Background()

	other, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil { // takes the write lock
		t.Fatal(err)
	}

	locked := webhook{path: "/sms", body: "MessageSid=SMlocked&Body=x", idemToken: "locked-1"}
	resp, answer := f.send(t, locked)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with the database locked: %d %q, want 503", resp.StatusCode, answer)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// Twilio's retry of the same request: stored now (the 503'd attempt may
	// have been stored too once the lock went, so it may be a duplicate of
	// it), and answered 200 either way.
	resp, answer = f.send(t, locked)
	if resp.StatusCode != http.StatusOK || answer != "<Response/>" {
		t.Fatalf("after the lock was released: %d %q, want 200", resp.StatusCode, answer)
	}
	page, err := f.store.ListEvents(ctx, switchboard.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Errorf("%d events, want exactly 1 for the request and its retry", len(page.Items))
	}
}
