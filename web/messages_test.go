package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/web"
)

const outAccount = "AC00000000000000000000000000000001"

// testPools: otp serves OTP and transactional messages, bulk marketing.
var testPools = []web.OutboundPool{
	{Name: "otp", AccountSID: outAccount, Senders: []string{"+15550001001", "55501"},
		Purposes: []switchboard.Purpose{switchboard.PurposeOTP, switchboard.PurposeTransactional}},
	{Name: "bulk", AccountSID: outAccount, Senders: []string{"+15550002001"},
		Purposes: []switchboard.Purpose{switchboard.PurposeMarketing}},
}

func newOutboundFixture(t *testing.T, opts ...web.Option) *fixture {
	t.Helper()
	return newFixtureWith(t, token, nil, append([]web.Option{web.WithOutbound(testPools)}, opts...)...)
}

// send calls POST /api/v1/messages with an idempotency key ("" for none).
func (f *fixture) send(t *testing.T, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+"/api/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestCreateMessageIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	const msg = `{"to": "+15557770001", "body": "Your code is 123456", "purpose": "otp", "status_webhook": "https://app.example.com/status"}`

	resp, body := f.send(t, "key-1", msg)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first create = %d %s, want 202", resp.StatusCode, body)
	}
	first := decodeJSON[web.MessageJSON](t, body)
	if first.ID == "" || first.State != "queued" || first.Pool != "otp" || first.Purpose != "otp" || first.AccountSID != outAccount ||
		first.To != "+15557770001" || first.Body != "Your code is 123456" || first.IdempotencyKey != "key-1" ||
		first.StatusWebhook != "https://app.example.com/status" || first.Attempts != 0 {
		t.Errorf("created message = %+v", first)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/messages/"+first.ID {
		t.Errorf("Location = %q", loc)
	}

	resp, body = f.send(t, "key-1", msg)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("repeat = %d %s, want 200", resp.StatusCode, body)
	}
	if again := decodeJSON[web.MessageJSON](t, body); again.ID != first.ID || again.State != "queued" {
		t.Errorf("repeat answered %+v, want message %s", again, first.ID)
	}

	resp, body = f.send(t, "key-1", strings.Replace(msg, "123456", "654321", 1))
	checkError(t, resp, body, http.StatusConflict, "different payload")

	resp, body = f.get(t, "/api/v1/messages/"+first.ID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET message = %d %s", resp.StatusCode, body)
	}
	detail := decodeJSON[web.MessageDetailJSON](t, body)
	if detail.Message.ID != first.ID || detail.History == nil || len(detail.History) != 0 {
		t.Errorf("GET message = %+v, want the message with an empty history", detail)
	}
	page := decodeJSON[web.Page[web.MessageJSON]](t, must200(t, f, "/api/v1/messages"))
	if len(page.Items) != 1 || page.Items[0].ID != first.ID {
		t.Errorf("list = %+v, want only %s: a repeat stores nothing", page.Items, first.ID)
	}

	resp, body = f.get(t, "/api/v1/messages/"+uuid.NewString())
	checkError(t, resp, body, http.StatusNotFound, "not found")
}

func must200(t *testing.T, f *fixture, path string) []byte {
	t.Helper()
	resp, body := f.get(t, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
	}
	return body
}

func TestCreateMessageRouting(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	tests := []struct {
		name     string
		body     string
		wantPool string // "" for a 400 mentioning wantErr
		wantErr  string
	}{
		{"otp by purpose", `{"to": "+15557770001", "body": "1", "purpose": "otp"}`, "otp", ""},
		{"marketing by purpose", `{"to": "+15557770001", "body": "2", "purpose": "marketing"}`, "bulk", ""},
		{"transactional by default", `{"to": "+15557770001", "body": "3"}`, "otp", ""},
		{"named pool", `{"to": "+15557770001", "body": "4", "pool": "bulk", "purpose": "marketing"}`, "bulk", ""},
		{"pool of a from", `{"to": "+15557770001", "body": "5", "from": "+15550002001", "purpose": "marketing"}`, "bulk", ""},
		{"short code from", `{"to": "+15557770001", "body": "6", "from": "55501"}`, "otp", ""},
		{"media only", `{"to": "whatsapp:+15557770001", "media_urls": ["https://cdn.example.com/a.png"]}`, "otp", ""},
		{"unknown pool", `{"to": "+15557770001", "body": "x", "pool": "nope"}`, "", `pool "nope": no such pool`},
		{"pool not serving the purpose", `{"to": "+15557770001", "body": "x", "pool": "bulk"}`, "", `pool "bulk" does not serve purpose "transactional"`},
		{"from outside the pool", `{"to": "+15557770001", "body": "x", "pool": "otp", "from": "+15550002001"}`, "", `not a sender of pool "otp"`},
		{"from of no pool", `{"to": "+15557770001", "body": "x", "from": "+15559990000"}`, "", "not a sender of any pool"},
		{"from of a pool not serving the purpose", `{"to": "+15557770001", "body": "x", "from": "+15550002001"}`, "", `pool "bulk" does not serve purpose "transactional"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := f.send(t, fmt.Sprintf("routing-%d", i), tt.body)
			if tt.wantPool == "" {
				checkError(t, resp, body, http.StatusBadRequest, tt.wantErr)
				return
			}
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("create = %d %s, want 202", resp.StatusCode, body)
			}
			if m := decodeJSON[web.MessageJSON](t, body); m.Pool != tt.wantPool {
				t.Errorf("pool = %q, want %q", m.Pool, tt.wantPool)
			}
		})
	}
}

func TestCreateMessageRefused(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	const ok = `{"to": "+15557770001", "body": "hi"}`
	tests := []struct {
		name, key, body string
		want            string
	}{
		{"no idempotency key", "", ok, "Idempotency-Key header is required"},
		{"idempotency key too long", strings.Repeat("k", 256), ok, "Idempotency-Key: longer than 255"},
		{"not JSON", "k", `to=+15557770001`, "message body"},
		{"unknown field", "k", `{"to": "+15557770001", "body": "hi", "tmpl": "otp"}`, `unknown field "tmpl"`},
		{"bad template", "k", `{"to": "+15557770001", "body": "hi", "template": "two words"}`, `template "two words"`},
		{"trailing data", "k", ok + `{}`, "unexpected data after the JSON object"},
		{"no recipient", "k", `{"body": "hi"}`, "to: required"},
		{"recipient not E.164", "k", `{"to": "5557770001", "body": "hi"}`, `to "5557770001"`},
		{"neither body nor media", "k", `{"to": "+15557770001"}`, "body or media_urls: one is required"},
		{"body too long", "k", `{"to": "+15557770001", "body": "` + strings.Repeat("a", 1601) + `"}`, "longer than 1600 characters"},
		{"relative media URL", "k", `{"to": "+15557770001", "media_urls": ["/a.png"]}`, `"/a.png" is not an absolute http(s) URL`},
		{"bad status webhook", "k", `{"to": "+15557770001", "body": "hi", "status_webhook": "ftp://x"}`, `status_webhook "ftp://x"`},
		{"unknown purpose", "k", `{"to": "+15557770001", "body": "hi", "purpose": "spam"}`, `purpose "spam"`},
		{"bad from", "k", `{"to": "+15557770001", "body": "hi", "from": "sender"}`, `from "sender"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := f.send(t, tt.key, tt.body)
			checkError(t, resp, body, http.StatusBadRequest, tt.want)
		})
	}
	page := decodeJSON[web.Page[web.MessageJSON]](t, must200(t, f, "/api/v1/messages"))
	if len(page.Items) != 0 {
		t.Errorf("refused creates stored %d messages", len(page.Items))
	}
}

func TestMessagesNeedTheToken(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	for _, c := range []call{
		{method: http.MethodPost, path: "/api/v1/messages", body: `{"to": "+15557770001", "body": "hi"}`},
		{method: http.MethodPost, path: "/api/v1/messages", body: `{"to": "+15557770001", "body": "hi"}`, auth: "Bearer wrong"},
		{method: http.MethodGet, path: "/api/v1/messages"},
		{method: http.MethodGet, path: "/api/v1/messages/x", auth: "Basic " + token},
	} {
		resp, body := f.do(t, c)
		checkError(t, resp, body, http.StatusUnauthorized, "bearer token")
	}
}

func TestCreateMessageWithoutPools(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, body := f.send(t, "k", `{"to": "+15557770001", "body": "hi"}`)
	checkError(t, resp, body, http.StatusBadRequest, `no pool serves purpose "transactional"`)
}

func TestCreateMessageToSuppressedRecipient(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	const before = `{"to": "+15557770001", "body": "stored before the STOP"}`
	resp, body := f.send(t, "before", before)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	stored := decodeJSON[web.MessageJSON](t, body)
	if err := f.store.Suppress(t.Context(), outAccount, "+15557770001", "STOP"); err != nil {
		t.Fatal(err)
	}

	resp, body = f.send(t, "after", `{"to": "+15557770001", "body": "after the STOP"}`)
	checkError(t, resp, body, http.StatusUnprocessableEntity, "21610")
	if _, err := f.store.OutboundMessageByKey(t.Context(), "after"); err == nil {
		t.Error("a message to a suppressed recipient was stored")
	}

	// A repeat of what was stored before the opt-out is still that message.
	resp, body = f.send(t, "before", before)
	if resp.StatusCode != http.StatusOK || decodeJSON[web.MessageJSON](t, body).ID != stored.ID {
		t.Errorf("repeat after the opt-out = %d %s, want 200 with %s", resp.StatusCode, body, stored.ID)
	}

	// Another account's suppression list does not apply.
	if err := f.store.Unsuppress(t.Context(), outAccount, "+15557770001"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Suppress(t.Context(), "AC00000000000000000000000000000002", "+15557770001", "STOP"); err != nil {
		t.Fatal(err)
	}
	if resp, body = f.send(t, "after", `{"to": "+15557770001", "body": "after the STOP"}`); resp.StatusCode != http.StatusAccepted {
		t.Errorf("create after START = %d %s, want 202", resp.StatusCode, body)
	}
}

// seedMessages stores six messages, created a minute apart from base:
//
//	0 otp  otp           +15557770001 failed
//	1 otp  transactional +15557770002 queued
//	2 bulk marketing     +15557770001 queued
//	3 otp  otp           +15557770002 failed
//	4 otp  transactional +15557770001 queued
//	5 bulk marketing     +15557770001 queued
func seedMessages(t *testing.T, f *fixture) []string {
	t.Helper()
	purposes := []switchboard.Purpose{switchboard.PurposeOTP, switchboard.PurposeTransactional, switchboard.PurposeMarketing}
	var ids []string
	for i := range 6 {
		p := purposes[i%3]
		pool := "otp"
		if p == switchboard.PurposeMarketing {
			pool = "bulk"
		}
		to := "+15557770001"
		if i == 1 || i == 3 {
			to = "+15557770002"
		}
		body := fmt.Sprintf("message %d", i)
		m := &switchboard.OutboundMessage{
			ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: fmt.Sprintf("seed-%d", i), AccountSID: outAccount,
			Pool: pool, Purpose: p, To: to, Body: body, CreatedAt: base.Add(time.Duration(i) * time.Minute),
			PayloadHash: switchboard.Payload{To: to, Body: body, Pool: pool, Purpose: p}.Hash(),
		}
		if _, err := f.store.CreateMessage(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		if p == switchboard.PurposeOTP {
			if err := f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: m.ID, Attempts: 1,
				State: switchboard.MessageFailed, ErrorCode: 21211, Error: "invalid To"}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, m.ID)
	}
	return ids
}

func TestListMessagesFilters(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	ids := seedMessages(t, f)
	at := func(minutes int) string { return base.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339) }
	tests := []struct {
		name     string
		query    url.Values
		want     []int // indexes into ids, newest first
		wantNext bool
	}{
		{"no filter", url.Values{}, []int{5, 4, 3, 2, 1, 0}, false},
		{"pool", url.Values{"pool": {"bulk"}}, []int{5, 2}, false},
		{"purpose", url.Values{"purpose": {"otp"}}, []int{3, 0}, false},
		{"state failed", url.Values{"state": {"failed"}}, []int{3, 0}, false},
		{"state queued", url.Values{"state": {"queued"}}, []int{5, 4, 2, 1}, false},
		{"state sent", url.Values{"state": {"sent"}}, []int{}, false},
		{"to", url.Values{"to": {"+15557770002"}}, []int{3, 1}, false},
		{"pool and to", url.Values{"pool": {"otp"}, "to": {"+15557770001"}}, []int{4, 0}, false},
		{"since is inclusive", url.Values{"since": {at(4)}}, []int{5, 4}, false},
		{"until is exclusive", url.Values{"until": {at(2)}}, []int{1, 0}, false},
		{"limit", url.Values{"limit": {"2"}}, []int{5, 4}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page := decodeJSON[web.Page[web.MessageJSON]](t, must200(t, f, "/api/v1/messages?"+tt.query.Encode()))
			got := []string{}
			for _, m := range page.Items {
				got = append(got, m.ID)
			}
			want := []string{}
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if !slices.Equal(got, want) {
				t.Errorf("messages = %v, want %v", got, want)
			}
			if (page.Next != "") != tt.wantNext {
				t.Errorf("next = %q, want a cursor: %v", page.Next, tt.wantNext)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		var got []string
		path := "/api/v1/messages?limit=4"
		for path != "" {
			page := decodeJSON[web.Page[web.MessageJSON]](t, must200(t, f, path))
			for _, m := range page.Items {
				got = append(got, m.ID)
			}
			path = ""
			if page.Next != "" {
				path = "/api/v1/messages?limit=4&cursor=" + url.QueryEscape(page.Next)
			}
		}
		if want := []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
			t.Errorf("paged = %v, want %v", got, want)
		}
	})

	for _, q := range []string{"purpose=spam", "state=lost", "since=yesterday", "limit=0"} {
		resp, body := f.get(t, "/api/v1/messages?"+q)
		checkError(t, resp, body, http.StatusBadRequest, strings.Split(q, "=")[0])
	}
}

func TestMessagesRedacted(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t, web.WithRedaction())
	resp, body := f.send(t, "k", `{"to": "+15557770001", "body": "secret code 1", "media_urls": ["https://cdn.example.com/a.png"]}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "+15557770001") || strings.Contains(string(body), "secret code") ||
		strings.Contains(string(body), "cdn.example.com") {
		t.Errorf("redacted answer shows the recipient, body or media: %s", body)
	}
	if body := must200(t, f, "/api/v1/messages?to=%2B15557770001"); strings.Contains(string(body), "secret code") ||
		!strings.Contains(string(body), "[redacted]") {
		t.Errorf("redacted list: %s", body)
	}
}

func TestMessageTemplate(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	resp, body := f.send(t, "tpl-1", `{"to": "+15557770001", "body": "code 1", "purpose": "otp", "template": "otp.login"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	m := decodeJSON[web.MessageJSON](t, body)
	if m.Template != "otp.login" {
		t.Errorf("template = %q", m.Template)
	}
	// The template is part of the payload: the same key with another is a conflict.
	resp, body = f.send(t, "tpl-1", `{"to": "+15557770001", "body": "code 1", "purpose": "otp", "template": "otp.reset"}`)
	checkError(t, resp, body, http.StatusConflict, "different payload")
	f.send(t, "tpl-2", `{"to": "+15557770001", "body": "code 2", "purpose": "otp"}`)
	page := decodeJSON[web.Page[web.MessageJSON]](t, must200(t, f, "/api/v1/messages?template=otp.login"))
	if len(page.Items) != 1 || page.Items[0].ID != m.ID {
		t.Errorf("list by template: %+v", page.Items)
	}
}

func TestReplayMessage(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	resp, body := f.send(t, "replay-1", `{"to": "+15557770001", "body": "hi"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	m := decodeJSON[web.MessageJSON](t, body)
	replay := call{method: http.MethodPost, path: "/api/v1/messages/" + m.ID + "/replay", auth: bearer}

	resp, body = f.do(t, replay)
	checkError(t, resp, body, http.StatusConflict, "only failed messages are replayed")
	if err := f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: m.ID, Attempts: 3,
		State: switchboard.MessageFailed, ErrorCode: 20429, Error: "out of attempts"}); err != nil {
		t.Fatal(err)
	}
	resp, body = f.do(t, replay)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("replay of a failed message: %d %s", resp.StatusCode, body)
	}
	got := decodeJSON[web.MessageJSON](t, body)
	if got.State != "queued" || got.Attempts != 0 || got.ReplayedAt.IsZero() {
		t.Errorf("replayed: %+v", got)
	}
	resp, body = f.do(t, call{method: http.MethodPost, path: "/api/v1/messages/missing/replay", auth: bearer})
	checkError(t, resp, body, http.StatusNotFound, "not found")
	resp, body = f.do(t, call{method: http.MethodPost, path: "/api/v1/messages/" + m.ID + "/replay"})
	checkError(t, resp, body, http.StatusUnauthorized, "bearer token")
}
