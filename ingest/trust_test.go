package ingest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// rawRequest sends a request exactly as written, request target included
// (net/http's client would drop a fragment), and returns the status.
func rawRequest(t *testing.T, f *fixture, method, target string, header http.Header, body string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hooks.example.com\r\nContent-Length: %d\r\nConnection: close\r\n", method, target, len(body))
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) events(t *testing.T) []*switchboard.Event {
	t.Helper()
	page, err := f.store.ListEvents(context.Background(), switchboard.EventFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func (f *fixture) requests(t *testing.T, outcome switchboard.Outcome) []*switchboard.Request {
	t.Helper()
	page, err := f.store.ListRequests(context.Background(), switchboard.RequestFilter{Outcome: outcome, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// A signature over a bare URL (any GET webhook, or a POST to a URL with a
// query) must not vouch for a body sent with it: delivery would sign that
// body again for the app, and the app's own validation would accept it.
func TestContentTheSignatureDidNotCoverIsRefused(t *testing.T) {
	t.Parallel()
	const target = "/sms?MessageSid=SM1&Body=hi"
	captured := twilio.Signature(token, public+target, nil) // from one genuine GET webhook
	cases := []struct {
		name, method, contentType, body string
	}{
		{"GETWithFormBody", http.MethodGet, "application/x-www-form-urlencoded", "Body=forged&From=%2B15550000000"},
		{"GETWithJSONBody", http.MethodGet, "application/json", `{"Body":"forged"}`},
		{"POSTJSONWithoutBodySHA256", http.MethodPost, "application/json", `{"twi_message_id":"WBforged","Body":"forged"}`},
		{"POSTText", http.MethodPost, "text/plain", "Body=forged"},
		{"POSTNoContentType", http.MethodPost, "", "Body=forged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			h := http.Header{"X-Twilio-Signature": {captured}}
			if tc.contentType != "" {
				h.Set("Content-Type", tc.contentType)
			}
			if got := rawRequest(t, f, tc.method, target, h, tc.body); got != http.StatusForbidden {
				t.Fatalf("status %d, want 403", got)
			}
			rej := f.requests(t, switchboard.OutcomeRejected)
			if len(rej) != 1 || !strings.Contains(rej[0].Reason, "not covered") {
				t.Fatalf("recorded %+v, want one rejection saying the content was not covered", rej)
			}
			if evs := f.events(t); len(evs) != 0 {
				t.Fatalf("%d events created from unsigned content", len(evs))
			}
		})
	}
	// The genuine GET itself, without a body, is still accepted.
	f := newFixture(t)
	if got := rawRequest(t, f, http.MethodGet, target, http.Header{"X-Twilio-Signature": {captured}}, ""); got != http.StatusOK {
		t.Fatalf("genuine GET: status %d, want 200", got)
	}
}

// Twilio's retries and an attacker's replays of one signed request carry
// the same signed content, whatever the unsigned parts say: one event,
// one delivery, every copy answered as a duplicate.
func TestReplaysOfSignedContentAreDuplicates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, path, body string
		kind             switchboard.Kind
	}{
		{"InboundSMS", "/sms", smsBody, switchboard.KindMessage},
		{"StatusCallback", "/sms", "MessageSid=SM2&MessageStatus=delivered&AccountSid=" + account, switchboard.KindMessageStatus},
		{"Voice", "/voice", "CallSid=CA1&CallStatus=ringing&AccountSid=" + account, switchboard.KindVoice},
		{"NoIdentity", "/sms", "Foo=bar&Baz=1", switchboard.KindOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			form, err := twilio.ParseForm([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			sig := twilio.Signature(token, public+tc.path, form)
			send := func(target, idem, body string) int {
				h := http.Header{"X-Twilio-Signature": {sig}, "Content-Type": {"application/x-www-form-urlencoded"}}
				if idem != "" {
					h.Set("I-Twilio-Idempotency-Token", idem)
				}
				return rawRequest(t, f, http.MethodPost, target, h, body)
			}
			if got := send(tc.path, "token-1", tc.body); got != http.StatusOK {
				t.Fatalf("original: status %d", got)
			}
			// Replays with fresh idempotency tokens, none, and the pairs
			// reordered: all verify, all duplicates.
			reordered := strings.Join(reverse(strings.Split(tc.body, "&")), "&")
			for i, body := range []string{tc.body, tc.body, reordered, tc.body + "&&"} {
				idem := fmt.Sprintf("attacker-%d", i)
				if i == 1 {
					idem = ""
				}
				if got := send(tc.path, idem, body); got != http.StatusOK {
					t.Fatalf("replay %d: status %d, want 200 (a duplicate)", i, got)
				}
			}
			// A fragment in the request target: Twilio never sends one; it
			// is refused, never a key of its own.
			for _, target := range []string{tc.path + "#x=1", tc.path + "?q=1#x=1"} {
				if got := send(target, "token-9", tc.body); got != http.StatusBadRequest {
					t.Fatalf("fragment %s: status %d, want 400", target, got)
				}
			}
			evs := f.events(t)
			if len(evs) != 1 || evs[0].Kind != tc.kind {
				t.Fatalf("%d events from one signed request, want 1 of kind %s", len(evs), tc.kind)
			}
			if dups := f.requests(t, switchboard.OutcomeDuplicate); len(dups) != 4 {
				t.Errorf("%d duplicates recorded, want 4", len(dups))
			}
		})
	}
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// The account is the one whose token verified the request: a body naming
// another account, signed with this route's token, is refused and
// recorded, so it can act on no other account's opt-outs or messages.
func TestBodyNamingAnotherAccountIsRefused(t *testing.T) {
	t.Parallel()
	const other = "AC99999999999999999999999999999999"
	cases := []webhook{
		{path: "/sms", body: "MessageSid=SM1&AccountSid=" + other + "&From=%2B15551230000&Body=START"},
		{path: "/sms", body: "MessageSid=SM1&MessageStatus=read&AccountSid=" + other},
		{path: "/notify", contentType: "application/json", body: `{"twi_message_id":"WB1","twi_account_sid":"` + other + `"}`},
	}
	for _, w := range cases {
		f := newFixture(t)
		resp, answer := f.send(t, w)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(answer, other) {
			t.Fatalf("%s: answer %d %q, want 403 naming the account", w.body, resp.StatusCode, answer)
		}
		if rej := f.requests(t, switchboard.OutcomeRejected); len(rej) != 1 {
			t.Errorf("%s: %d rejections recorded, want 1", w.body, len(rej))
		}
		if evs := f.events(t); len(evs) != 0 {
			t.Errorf("%s: %d events created", w.body, len(evs))
		}
	}
	// The route's own account, or none named, is the route's account.
	f := newFixture(t)
	if resp, _ := f.send(t, webhook{path: "/sms", body: "MessageSid=SM2&Body=hi"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("no account named: %d", resp.StatusCode)
	}
	if evs := f.events(t); len(evs) != 1 || evs[0].AccountSID != account {
		t.Fatalf("events %+v, want one of the route's account", evs)
	}
}

// A rejected request is recorded as metadata and a short excerpt, and a
// flood of them from one source is recorded only up to the limit: forged
// requests cannot fill the disk.
func TestRejectedRequestsAreTrimmedAndLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	big := "Body=" + strings.Repeat("x", 4000)
	resp, _ := f.send(t, webhook{path: "/sms", body: big, signWith: "attacker"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged: %d", resp.StatusCode)
	}
	rej := f.requests(t, switchboard.OutcomeRejected)
	if len(rej) != 1 {
		t.Fatalf("%d rejections recorded, want 1", len(rej))
	}
	r := rej[0]
	if len(r.Body) > 256 || !strings.HasPrefix(big, string(r.Body)) || !strings.Contains(r.Reason, "4005 bytes") {
		t.Errorf("recorded body of %d bytes, reason %q: want a 256-byte excerpt and the size in the reason", len(r.Body), r.Reason)
	}
	for name := range r.Header {
		switch name {
		case "Content-Type", "Content-Length", "User-Agent", "X-Twilio-Signature":
		default:
			t.Errorf("recorded header %s", name)
		}
	}

	// A flood from the same source: only a few more are recorded.
	for range 50 {
		f.send(t, webhook{path: "/sms", body: "Body=x", signWith: "attacker"})
	}
	if n := len(f.requests(t, switchboard.OutcomeRejected)); n > 10 {
		t.Errorf("%d of 51 forged requests from one source recorded, want at most a burst", n)
	}
}

// Slow bodies hold at most the body memory budget; past it a request waits
// briefly, then gets 503 (never an answer for a request not stored), and
// intake takes requests again as soon as memory is given back.
func TestBodyMemoryIsBounded(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	h := ingest.New(ingest.Options{
		Store: store, PublicURL: public, MaxBodyBytes: 4096, MaxBodyMemory: 8192, BodyWait: 20 * time.Millisecond,
		// The slow senders hold their share until they leave, however
		// slowly a busy machine runs the genuine sends meanwhile: past
		// the read deadline their shares would come back, and the 503
		// this test waits for would never come.
		BodyReadTimeout: 10 * time.Minute,
		AckTimeout:      5 * time.Second, Metrics: m,
		Routes: []ingest.Route{{Path: "/sms", AccountSID: account, Tokens: []string{token}, TwiML: []byte("<Response/>")}},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); store.Close() })
	f := &fixture{store: store, srv: srv}

	// Two slow senders declare 4 KiB each and send nothing more.
	var conns []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		// Closed before the server is (cleanups run last first): a server
		// waits for its open connections, and a failure below would
		// otherwise hang until the test binary's timeout.
		t.Cleanup(func() { conn.Close() })
		head := "POST /sms HTTP/1.1\r\nHost: hooks.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
			"X-Twilio-Signature: forged\r\nContent-Length: 4096\r\n\r\nBody="
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
	}
	// A genuine webhook meanwhile: 503 once the budget is taken (polled,
	// since nothing signals when the slow requests have reserved it).
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for tries := 1; ; tries++ {
		resp, _ := f.send(t, webhook{path: "/sms", body: smsBody})
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			break
		}
		// 200 (or a duplicate's 200): sent before the slow ones had
		// reserved their share. Again.
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("genuine webhook: %d while slow bodies hold the budget, want 503 (try %d, after %v)",
				resp.StatusCode, tries, time.Since(start))
		}
	}
	if got := metricstest.Sample(t, m, "switchboard_requests_total", "route", "/sms", "outcome", "busy").GetCounter().GetValue(); got < 1 {
		t.Errorf("busy answers counted %v times", got)
	}
	for _, c := range conns {
		c.Close() // the slow senders give up; their bodies' memory comes back
	}
	// Polled: the server notices the closed connections on its own time.
	for {
		resp, _ := f.send(t, webhook{path: "/sms", body: strings.Replace(smsBody, "SM1111", "SM3333", 1)})
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline.Add(30*time.Second)) {
			t.Fatalf("after the slow senders left: %d, want 200", resp.StatusCode)
		}
	}
}

// Replays of one captured, validly signed request are answered as
// duplicates, every one, but recorded only as metadata and only up to the
// recording limit: a replay flood cannot fill the disk.
func TestReplayFloodIsAnsweredButRecordedWithinLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := smsBody + "&Padding=" + strings.Repeat("p", 3000)
	if resp, _ := f.send(t, webhook{path: "/sms", body: body}); resp.StatusCode != http.StatusOK {
		t.Fatalf("original: %d", resp.StatusCode)
	}
	for i := range 50 {
		if resp, answer := f.send(t, webhook{path: "/sms", body: body, idemToken: fmt.Sprintf("replay-%d", i)}); resp.StatusCode != http.StatusOK || answer != "<Response/>" {
			t.Fatalf("replay %d: %d %q, want the original's answer", i, resp.StatusCode, answer)
		}
	}
	dups := f.requests(t, switchboard.OutcomeDuplicate)
	if len(dups) == 0 || len(dups) > 10 {
		t.Errorf("%d of 50 replays recorded, want a few (the burst) and no more", len(dups))
	}
	for _, d := range dups {
		if len(d.Body) > switchboard.MetadataBodyBytes || d.EventID == "" {
			t.Errorf("duplicate %s recorded with %d body bytes and event %q, want metadata naming its original", d.ID, len(d.Body), d.EventID)
		}
	}
	acc := f.requests(t, switchboard.OutcomeAccepted)
	if len(acc) != 1 || string(acc[0].Body) != body {
		t.Errorf("the original is not stored whole: %d accepted", len(acc))
	}
	if evs := f.events(t); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
}
