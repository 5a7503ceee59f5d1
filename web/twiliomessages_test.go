package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	twiliogo "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/web"
)

// twilio-go takes only alphanumeric tokens, as Twilio issues them.
const (
	sdkToken      = "ourtoken0123456789abcdef01234567"
	sdkOtherToken = "theirtoken0123456789abcdef012345"
)

// messagesEnv serves the Twilio-compatible API over a real store of one
// engine, for two accounts with a pool each.
type messagesEnv struct {
	store switchboard.Store
	srv   *httptest.Server
	f     *fixture // for twilioCall requests; its store is not used
}

func newMessagesEnv(t *testing.T, engine string) *messagesEnv {
	t.Helper()
	var (
		st  switchboard.Store
		err error
	)
	logger := slog.New(slog.DiscardHandler)
	switch engine {
	case "sqlite":
		st, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), logger)
	case "postgres":
		st, err = postgres.Open(context.Background(), pgtest.URL(t), logger)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pools := append(slices.Clone(testPools), web.OutboundPool{Name: "theirs", AccountSID: otherAccount,
		Senders: []string{theirSender}, Purposes: []switchboard.Purpose{switchboard.PurposeTransactional}})
	h := web.New(st, token, nil, logger, web.WithOutbound(pools), web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken, sdkToken}},
		{SID: otherAccount, Tokens: []string{otherToken, sdkOtherToken}},
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &messagesEnv{store: st, srv: srv, f: &fixture{handler: h, srv: srv}}
}

// forEngine runs fn on SQLite, and on PostgreSQL when it is configured.
func forEngine(t *testing.T, fn func(t *testing.T, e *messagesEnv)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, newMessagesEnv(t, engine))
		})
	}
}

// rewrite sends twilio-go's requests for api.twilio.com to the test
// server, refuses any other host, and counts the list requests.
type rewrite struct {
	to    *url.URL
	next  http.RoundTripper
	lists atomic.Int64
}

func (rw *rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "api.twilio.com" || req.URL.Scheme != "https" {
		return nil, fmt.Errorf("request for %s: not Twilio's API", req.URL)
	}
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/Messages.json") {
		rw.lists.Add(1)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = rw.to.Scheme, rw.to.Host, ""
	return rw.next.RoundTrip(out)
}

// sdk returns twilio-go's REST client, unchanged, talking to the test
// server as account with its token.
func (e *messagesEnv) sdk(t *testing.T, account, tok string) (*twiliogo.RestClient, *rewrite) {
	t.Helper()
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rw := &rewrite{to: u, next: tr}
	c := &client.Client{Credentials: client.NewCredentials(account, tok),
		HTTPClient: &http.Client{Transport: rw, Timeout: 30 * time.Second}}
	c.SetAccountSid(account)
	rc := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: c})
	rc.Edge, rc.Region = "", ""
	return rc, rw
}

func sval(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// idOf is the message id behind a SID Switchboard issued.
func idOf(t *testing.T, sid string) string {
	t.Helper()
	id, err := uuid.Parse(strings.TrimPrefix(sid, "SM"))
	if err != nil {
		t.Fatalf("SID %s: %v", sid, err)
	}
	return id.String()
}

// markSent records the message of sid as sent from the pool's sender at at.
func (e *messagesEnv) markSent(t *testing.T, sid, twilioSID string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	id := idOf(t, sid)
	for _, r := range []switchboard.SendResult{
		{MessageID: id, Attempts: 1, State: switchboard.MessageSending, From: "+15550001001", At: at},
		{MessageID: id, Attempts: 1, State: switchboard.MessageSent, TwilioSID: twilioSID, TwilioStatus: "queued", At: at},
	} {
		if err := e.store.RecordSend(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

func bodies(ms []api.ApiV2010Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = sval(m.Body)
	}
	return out
}

// twilio-go's own list, stream, update and delete work unchanged: paging
// across several pages with PageSize and Limit, its filters, cancel,
// redaction and deletion, each answered in Twilio's shape, on both
// engines, never reaching another account's messages.
func TestTwilioGoMessagesResource(t *testing.T) {
	t.Parallel()
	forEngine(t, func(t *testing.T, e *messagesEnv) {
		ours, rw := e.sdk(t, outAccount, sdkToken)
		theirs, _ := e.sdk(t, otherAccount, sdkOtherToken)
		const n = 23
		var created []string // bodies, oldest first
		for i := range n {
			to := "+15557770001"
			if i%3 == 0 {
				to = "+15557770002"
			}
			body := fmt.Sprintf("message %02d", i)
			if _, err := ours.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetMessagingServiceSid(serviceSID).SetBody(body)); err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
			created = append(created, body)
			if _, err := theirs.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetFrom(theirSender).SetBody("theirs " + body)); err != nil {
				t.Fatalf("CreateMessage of theirs: %v", err)
			}
		}
		newestFirst := slices.Clone(created)
		slices.Reverse(newestFirst)

		lists := func(fn func()) int64 {
			before := rw.lists.Load()
			fn()
			return rw.lists.Load() - before
		}
		var all []api.ApiV2010Message
		if got := lists(func() {
			var err error
			if all, err = ours.Api.ListMessage((&api.ListMessageParams{}).SetPageSize(5).SetLimit(100)); err != nil {
				t.Fatalf("ListMessage: %v", err)
			}
		}); got != 5 {
			t.Errorf("ListMessage of %d, 5 a page: %d requests, want 5", n, got)
		}
		if got := bodies(all); !slices.Equal(got, newestFirst) {
			t.Errorf("ListMessage = %v, want ours newest first %v", got, newestFirst)
		}

		// StreamMessage stops at its limit, across pages.
		if got := lists(func() {
			records, errs := ours.Api.StreamMessage((&api.ListMessageParams{}).SetPageSize(4).SetLimit(10))
			var streamed []api.ApiV2010Message
			for m := range records {
				streamed = append(streamed, m)
			}
			if err := <-errs; err != nil {
				t.Fatalf("StreamMessage: %v", err)
			}
			if got := bodies(streamed); !slices.Equal(got, newestFirst[:10]) {
				t.Errorf("StreamMessage = %v, want %v", got, newestFirst[:10])
			}
		}); got != 3 {
			t.Errorf("StreamMessage of 10, 4 a page: %d requests, want 3", got)
		}

		// To filters; so does DateSent, as twilio-go encodes it.
		toTwo, err := ours.Api.ListMessage((&api.ListMessageParams{}).SetTo("+15557770002").SetPageSize(3))
		if err != nil || len(toTwo) != 8 {
			t.Fatalf("ListMessage To: %d, %v; want 8", len(toTwo), err)
		}
		day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
		sids := map[string]string{} // body → SID
		for _, m := range all {
			sids[sval(m.Body)] = sval(m.Sid)
		}
		e.markSent(t, sids["message 00"], "SMa0000000000000000000000000000000", day.Add(-time.Minute))
		e.markSent(t, sids["message 01"], "SMa0000000000000000000000000000001", day.Add(time.Hour))
		e.markSent(t, sids["message 02"], "SMa0000000000000000000000000000002", day.Add(25*time.Hour))
		for _, c := range []struct {
			name string
			p    *api.ListMessageParams
			want []string
		}{
			{"DateSent", (&api.ListMessageParams{}).SetDateSent(day), []string{"message 01"}},
			{"DateSent in another zone", (&api.ListMessageParams{}).SetDateSent(day.Add(3 * time.Hour).In(time.FixedZone("X", -2*3600))),
				[]string{"message 01"}},
			{"DateSentBefore", (&api.ListMessageParams{}).SetDateSentBefore(day.Add(time.Hour)), []string{"message 01", "message 00"}},
			{"DateSentAfter", (&api.ListMessageParams{}).SetDateSentAfter(day), []string{"message 02", "message 01"}},
			{"From", (&api.ListMessageParams{}).SetFrom("+15550001001"), []string{"message 02", "message 01", "message 00"}},
			{"From of another account", (&api.ListMessageParams{}).SetFrom(theirSender), nil},
		} {
			got, err := ours.Api.ListMessage(c.p.SetPageSize(2))
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !slices.Equal(bodies(got), c.want) {
				t.Errorf("%s: %v, want %v", c.name, bodies(got), c.want)
			}
		}

		// Cancel a queued message; a sent one cannot be.
		queuedSID := sids["message 10"]
		canceled, err := ours.Api.UpdateMessage(queuedSID, (&api.UpdateMessageParams{}).SetStatus("canceled"))
		if err != nil || sval(canceled.Status) != "canceled" || sval(canceled.Sid) != queuedSID || sval(canceled.Body) != "message 10" {
			t.Fatalf("cancel = %+v, %v", canceled, err)
		}
		if got, err := ours.Api.FetchMessage(queuedSID, nil); err != nil || sval(got.Status) != "canceled" {
			t.Errorf("fetch after cancel = %v, %v", sval(got.Status), err)
		}
		sent, err := ours.Api.FetchMessage(sids["message 01"], nil)
		if err != nil {
			t.Fatal(err)
		}
		sentSID := sval(sent.Sid)
		var te *client.TwilioRestError
		if _, err := ours.Api.UpdateMessage(sentSID, (&api.UpdateMessageParams{}).SetStatus("canceled")); !errors.As(err, &te) || te.Code != 30409 {
			t.Errorf("cancel of a sent message: %v, want 30409", err)
		}

		// Redact a sent message; a queued one cannot be.
		redacted, err := ours.Api.UpdateMessage(sentSID, (&api.UpdateMessageParams{}).SetBody(""))
		if err != nil || sval(redacted.Body) != "" || sval(redacted.Status) != "sent" {
			t.Fatalf("redact = %+v, %v", redacted, err)
		}
		if _, err := ours.Api.UpdateMessage(sids["message 11"], (&api.UpdateMessageParams{}).SetBody("")); !errors.As(err, &te) || te.Code != 20009 {
			t.Errorf("redact of a queued message: %v, want 20009", err)
		}

		// Delete the sent one and the canceled one; not a queued one.
		for _, sid := range []string{sentSID, queuedSID} {
			if err := ours.Api.DeleteMessage(sid, nil); err != nil {
				t.Errorf("DeleteMessage %s: %v", sid, err)
			}
			if _, err := ours.Api.FetchMessage(sid, nil); !errors.As(err, &te) || te.Status != http.StatusNotFound {
				t.Errorf("fetch after delete: %v, want 404", err)
			}
		}
		if err := ours.Api.DeleteMessage(sids["message 12"], nil); !errors.As(err, &te) || te.Code != 20009 {
			t.Errorf("delete of a queued message: %v, want 20009", err)
		}
		left, err := ours.Api.ListMessage((&api.ListMessageParams{}).SetPageSize(1000))
		if err != nil || len(left) != n-2 || slices.Contains(bodies(left), "message 10") || slices.Contains(bodies(left), "") {
			t.Errorf("list after two deletes: %d, %v", len(left), err)
		}

		// Another account reaches none of ours, by any SID, and lists only
		// its own.
		for _, sid := range []string{sids["message 12"], sids["message 02"], "SMa0000000000000000000000000000002"} {
			_, err := theirs.Api.UpdateMessage(sid, (&api.UpdateMessageParams{}).SetStatus("canceled"))
			if !errors.As(err, &te) || te.Status != http.StatusNotFound {
				t.Errorf("their cancel of %s: %v, want 404", sid, err)
			}
			if _, err := theirs.Api.UpdateMessage(sid, (&api.UpdateMessageParams{}).SetBody("")); !errors.As(err, &te) || te.Status != http.StatusNotFound {
				t.Errorf("their redaction of %s: %v, want 404", sid, err)
			}
			if err := theirs.Api.DeleteMessage(sid, nil); !errors.As(err, &te) || te.Status != http.StatusNotFound {
				t.Errorf("their delete of %s: %v, want 404", sid, err)
			}
		}
		if got, err := ours.Api.FetchMessage(sids["message 12"], nil); err != nil || sval(got.Status) != "queued" || sval(got.Body) != "message 12" {
			t.Errorf("our message after their attempts: %+v, %v", got, err)
		}
		if got, err := ours.Api.FetchMessage(sids["message 02"], nil); err != nil || sval(got.Body) != "message 02" {
			t.Errorf("our sent message after their attempts: %+v, %v", got, err)
		}
		theirList, err := theirs.Api.ListMessage((&api.ListMessageParams{}).SetPageSize(7))
		if err != nil || len(theirList) != n {
			t.Fatalf("their list: %d, %v", len(theirList), err)
		}
		for _, m := range theirList {
			if sval(m.AccountSid) != otherAccount || !strings.HasPrefix(sval(m.Body), "theirs ") {
				t.Errorf("their list holds %+v", m)
			}
		}
	})
}

// twilioPage is the paging envelope of a list answer.
type twilioPage struct {
	Messages        []twilioMessage `json:"messages"`
	Page            *int            `json:"page"`
	PageSize        *int            `json:"page_size"`
	Start           *int            `json:"start"`
	End             *int            `json:"end"`
	URI             string          `json:"uri"`
	FirstPageURI    string          `json:"first_page_uri"`
	NextPageURI     *string         `json:"next_page_uri"`
	PreviousPageURI *string         `json:"previous_page_uri"`
}

// list GETs a list URI (relative to the account's Messages.json when it
// starts with '?') as outAccount and decodes the page.
func (e *messagesEnv) list(t *testing.T, uri string) twilioPage {
	t.Helper()
	if uri == "" || strings.HasPrefix(uri, "?") {
		uri = "/2010-04-01/Accounts/" + outAccount + "/Messages.json" + uri
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(outAccount, outToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", uri, resp.StatusCode)
	}
	var p twilioPage
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func pageBodies(p twilioPage) []string {
	out := make([]string, len(p.Messages))
	for i, m := range p.Messages {
		out[i] = m.Body
	}
	return out
}

// Twilio's paging envelope: links that carry the filters and the page
// size, next_page_uri null on the last page, previous_page_uri back to
// the page before, and pages that stay put while messages are created.
func TestTwilioListPaging(t *testing.T) {
	t.Parallel()
	forEngine(t, func(t *testing.T, e *messagesEnv) {
		create := func(body, to string) {
			t.Helper()
			e.f.twilioOK(t, twilioCall{form: form("To", to, "MessagingServiceSid", serviceSID, "Body", body)}, http.StatusCreated)
		}
		for i := range 7 {
			create(fmt.Sprintf("m%d", i), "+15557770001")
		}
		create("other recipient", "+15557770002")

		p0 := e.list(t, "?To=%2B15557770001&PageSize=3&Unknown=1")
		if got := pageBodies(p0); !slices.Equal(got, []string{"m6", "m5", "m4"}) {
			t.Fatalf("page 0 = %v", got)
		}
		base := "/2010-04-01/Accounts/" + outAccount + "/Messages.json"
		if *p0.Page != 0 || *p0.PageSize != 3 || *p0.Start != 0 || *p0.End != 2 || p0.PreviousPageURI != nil ||
			p0.NextPageURI == nil || p0.URI != base+"?To=%2B15557770001&PageSize=3&Unknown=1" ||
			p0.FirstPageURI != base+"?Page=0&PageSize=3&To=%2B15557770001" {
			t.Errorf("page 0 envelope = %+v", p0)
		}
		next, err := url.Parse(*p0.NextPageURI)
		if err != nil || next.Path != base || next.Query().Get("To") != "+15557770001" || next.Query().Get("Page") != "1" ||
			!strings.HasPrefix(next.Query().Get("PageToken"), "PA") {
			t.Errorf("next_page_uri = %s", *p0.NextPageURI)
		}

		// Created between pages: the next page is where it was.
		create("m7", "+15557770001")
		p1 := e.list(t, *p0.NextPageURI)
		if got := pageBodies(p1); !slices.Equal(got, []string{"m3", "m2", "m1"}) || *p1.Page != 1 || *p1.Start != 3 || *p1.End != 5 {
			t.Errorf("page 1 = %v %+v", got, p1)
		}
		if p1.PreviousPageURI == nil || p1.NextPageURI == nil {
			t.Fatalf("page 1 links: %+v", p1)
		}
		p2 := e.list(t, *p1.NextPageURI)
		if got := pageBodies(p2); !slices.Equal(got, []string{"m0"}) || p2.NextPageURI != nil || *p2.End != 6 {
			t.Errorf("last page = %v, next %v", got, p2.NextPageURI)
		}
		// Back from page 2 to page 1, then to page 0, which now starts
		// with the message created meanwhile: nothing precedes it.
		back := e.list(t, *p2.PreviousPageURI)
		if got := pageBodies(back); !slices.Equal(got, []string{"m3", "m2", "m1"}) || *back.Page != 1 || back.PreviousPageURI == nil {
			t.Errorf("page before the last = %v %+v", got, back)
		}
		front := e.list(t, *back.PreviousPageURI)
		if got := pageBodies(front); !slices.Equal(got, []string{"m6", "m5", "m4"}) || *front.Page != 0 || front.PreviousPageURI == nil {
			t.Errorf("page 0 read backward = %v %+v", got, front)
		}
		if newest := e.list(t, *front.PreviousPageURI); !slices.Equal(pageBodies(newest), []string{"m7"}) || newest.PreviousPageURI != nil {
			t.Errorf("before page 0 = %v, previous %v", pageBodies(newest), newest.PreviousPageURI)
		}

		// Defaults and caps; an empty listing.
		if p := e.list(t, ""); *p.PageSize != 50 || len(p.Messages) != 9 || p.NextPageURI != nil {
			t.Errorf("default page: size %d, %d messages", *p.PageSize, len(p.Messages))
		}
		if p := e.list(t, "?PageSize=5000"); *p.PageSize != 1000 {
			t.Errorf("PageSize 5000 = %d, want 1000", *p.PageSize)
		}
		if p := e.list(t, "?To=%2B15550000000"); p.Messages == nil || len(p.Messages) != 0 || *p.End != 0 || p.NextPageURI != nil {
			t.Errorf("empty list = %+v", p)
		}
	})
}

// Malformed list parameters and updates are refused in Twilio's error
// shape; a forged or tampered PageToken is refused, and a token naming a
// position in another account's messages lists only the caller's own.
func TestTwilioMessagesRefusals(t *testing.T) {
	t.Parallel()
	e := newMessagesEnv(t, "sqlite")
	f := e.f
	mine := f.twilioOK(t, twilioCall{form: form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", "mine")}, http.StatusCreated)
	theirs := f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
		form: form("To", "+15557770001", "From", theirSender, "Body", "theirs")}, http.StatusCreated)
	p := e.list(t, "?PageSize=1")
	if len(p.Messages) != 1 || p.Messages[0].SID != mine.SID {
		t.Fatalf("our list = %+v", p)
	}

	f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
		form: form("To", "+15557770001", "From", theirSender, "Body", "theirs 2")}, http.StatusCreated)
	resp, body := f.twilio(t, twilioCall{method: http.MethodGet, path: "Messages.json?PageSize=1", account: otherAccount,
		user: otherAccount, pass: otherToken})
	var tp twilioPage
	if err := json.Unmarshal(body, &tp); resp.StatusCode != http.StatusOK || err != nil || tp.NextPageURI == nil {
		t.Fatalf("their list: %d %s", resp.StatusCode, body)
	}
	next, err := url.Parse(*tp.NextPageURI)
	if err != nil {
		t.Fatal(err)
	}
	theirToken := next.Query().Get("PageToken")
	// Their token, replayed by us, is only a position: we see our own.
	if got := e.list(t, "?PageToken="+theirToken+"&Page=1"); len(got.Messages) > 1 ||
		(len(got.Messages) == 1 && got.Messages[0].SID != mine.SID) {
		t.Errorf("our list from their token = %+v", got)
	}

	valid := strings.TrimPrefix(theirToken, "PA")
	for _, q := range []string{
		"PageSize=0", "PageSize=-1", "PageSize=abc", "Page=-1", "Page=abc", "Page=2",
		"PageToken=nope", "PageToken=PX" + valid, "PageToken=PA" + valid + "A", "PageToken=PA" + valid[:len(valid)-1] + "!",
		"PageToken=PA" + strings.Repeat("A", 32), // a position all the same: see below
		"DateSent=yesterday", "DateSent%3C=2026-13-01", "DateSent%3E=1e9",
	} {
		resp, body := f.twilio(t, twilioCall{method: http.MethodGet, path: "Messages.json?" + q})
		if q == "PageToken=PA"+strings.Repeat("A", 32) {
			// All zero bytes: the epoch and the nil UUID, a valid
			// position before every message; the page is empty.
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s = %d %s", q, resp.StatusCode, body)
			}
			continue
		}
		checkTwilioError(t, resp, body, http.StatusBadRequest, 20001)
	}

	for _, c := range []struct {
		name string
		form url.Values
	}{
		{"nothing", form()},
		{"both", form("Status", "canceled", "Body", "")},
		{"another status", form("Status", "delivered")},
		{"a new body", form("Body", "changed")},
	} {
		resp, body := f.twilio(t, twilioCall{path: "Messages/" + mine.SID + ".json", form: c.form})
		checkTwilioError(t, resp, body, http.StatusBadRequest, 30400)
	}
	if got := f.twilioOK(t, twilioCall{method: http.MethodGet, path: "Messages/" + mine.SID + ".json"}, http.StatusOK); got.Status != "queued" || got.Body != "mine" {
		t.Errorf("after refused updates: %+v", got)
	}

	// Unknown SIDs, paths without .json, other accounts' paths and no
	// credentials.
	for _, c := range []struct {
		call   twilioCall
		status int
		code   int
	}{
		{twilioCall{path: "Messages/SMffffffffffffffffffffffffffffffff.json", form: form("Status", "canceled")}, 404, 20404},
		{twilioCall{path: "Messages/" + mine.SID, form: form("Status", "canceled")}, 404, 20404},
		{twilioCall{method: http.MethodDelete, path: "Messages/" + mine.SID}, 404, 20404},
		{twilioCall{method: http.MethodDelete, path: "Messages/" + theirs.SID + ".json"}, 404, 20404},
		{twilioCall{path: "Messages/" + theirs.SID + ".json", form: form("Status", "canceled")}, 404, 20404},
		{twilioCall{method: http.MethodGet, path: "Messages.json", user: "-"}, 401, 20003},
		{twilioCall{method: http.MethodGet, path: "Messages.json", account: otherAccount}, 401, 20003},
		{twilioCall{method: http.MethodDelete, path: "Messages/" + mine.SID + ".json", user: otherAccount, pass: otherToken}, 401, 20003},
	} {
		resp, body := f.twilio(t, c.call)
		checkTwilioError(t, resp, body, c.status, c.code)
	}
	if got := f.twilioOK(t, twilioCall{method: http.MethodGet, path: "Messages/" + theirs.SID + ".json", account: otherAccount,
		user: otherAccount, pass: otherToken}, http.StatusOK); got.Status != "queued" || got.Body != "theirs" {
		t.Errorf("their message after our attempts: %+v", got)
	}
}

// TestTwilioListHostileParameters: filter values are values on both
// engines (SQL in To, From or a date is refused or matches nothing), any
// page size or page number lists within the caps or is refused, and no
// listing, filtered or paged however, holds another account's message,
// even one to the same recipient.
func TestTwilioListHostileParameters(t *testing.T) {
	t.Parallel()
	forEngine(t, func(t *testing.T, e *messagesEnv) {
		f := e.f
		const to = "+15557770001"
		mine := f.twilioOK(t, twilioCall{form: form("To", to, "MessagingServiceSid", serviceSID, "Body", "mine")}, http.StatusCreated)
		f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
			form: form("To", to, "From", theirSender, "Body", "theirs")}, http.StatusCreated)

		ok := []string{
			"To=" + url.QueryEscape(to), "To=" + url.QueryEscape(to+"' OR '1'='1"), "To=" + url.QueryEscape("' OR 1=1 --"),
			"To=%25", "To=_", "To=" + url.QueryEscape(to+"\x00"), "To=%2B1555777%0A0001", "To=" + url.QueryEscape(" "+to+" "),
			"From=" + url.QueryEscape(theirSender), "From=" + url.QueryEscape("\" OR \"\"=\""), "To=" + strings.Repeat("9", 10000),
			"To=" + url.QueryEscape(to) + "&To=" + url.QueryEscape("+15550000000"),
			"To=%FF", "From=%C3", "To=%ED%A0%80", "From=%00",
			"PageSize=1", "PageSize=%2B5", "PageSize=100000", "PageSize=" + strconv.Itoa(math.MaxInt),
			"DateSent%3E=1970-01-01", "DateSent%3C=9999-12-31", "DateSent%3E=0001-01-01T00:00:00Z",
		}
		for _, q := range ok {
			p := e.list(t, "?"+q)
			for _, m := range p.Messages {
				if m.AccountSID != outAccount || m.SID != mine.SID {
					t.Errorf("?%.60s listed %s of %s", q, m.SID, m.AccountSID)
				}
			}
		}
		for _, q := range []string{
			"DateSent=" + url.QueryEscape("2026-01-01' OR '1'='1"), "DateSent%3C=" + url.QueryEscape("1; DROP TABLE messages"),
			"DateSent%3E=" + url.QueryEscape("2026-01-01T00:00:00Z' --"), "DateSent=-1", "DateSent=99999-01-01",
			"PageSize=" + strings.Repeat("9", 30), "PageSize=1e3", "Page=1073741825", "Page=" + strings.Repeat("9", 30),
			"PageToken=" + strings.Repeat("A", 100000), "PageToken=PA" + strings.Repeat("%FF", 32), "PageToken=" + url.QueryEscape("PA' OR 1=1 --"),
		} {
			resp, body := f.twilio(t, twilioCall{method: http.MethodGet, path: "Messages.json?" + q})
			checkTwilioError(t, resp, body, http.StatusBadRequest, 20001)
		}

		// A SID that is not text is nobody's, on every engine.
		for _, sid := range []string{"SM%00", "SM%FF", mine.SID + "%00", "%C3"} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
				resp, body := f.twilio(t, twilioCall{method: method, path: "Messages/" + sid + ".json", form: form("Status", "canceled")})
				checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
			}
		}
		if got := f.twilioOK(t, twilioCall{method: http.MethodGet, path: "Messages/" + mine.SID + ".json"}, http.StatusOK); got.Status != "queued" {
			t.Errorf("after hostile SIDs: %+v", got)
		}
	})
}

// TestTwilioRedactAndDeleteStick: a redacted body is gone from fetch,
// list and a repeat of the create with its key (the same message, still
// without its body); a deleted message's key makes a new message, and the
// deleted SID stays gone, for its account and any other.
func TestTwilioRedactAndDeleteStick(t *testing.T) {
	t.Parallel()
	forEngine(t, func(t *testing.T, e *messagesEnv) {
		f := e.f
		create := func(key, body string) twilioMessage {
			return f.twilioOK(t, twilioCall{header: http.Header{"I-Twilio-Idempotency-Token": {key}},
				form: form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", body)}, http.StatusCreated)
		}
		secret := create("redact-me", "code 123456")
		e.markSent(t, secret.SID, "SM1111111111111111111111111111aaaa", time.Now())
		if got := f.twilioOK(t, twilioCall{path: "Messages/" + secret.SID + ".json", form: form("Body", "")}, http.StatusOK); got.Body != "" {
			t.Fatalf("redact answered body %q", got.Body)
		}
		if got := f.twilioOK(t, twilioCall{method: http.MethodGet, path: "Messages/" + secret.SID + ".json"}, http.StatusOK); got.Body != "" {
			t.Errorf("fetch after redaction: body %q", got.Body)
		}
		for _, m := range e.list(t, "").Messages {
			if strings.Contains(m.Body, "123456") {
				t.Errorf("list after redaction holds %q", m.Body)
			}
		}
		if again := create("redact-me", "code 123456"); again.SID != secret.SID || again.Body != "" {
			t.Errorf("repeat of a redacted message's create = %s %q, want %s without its body", again.SID, again.Body, secret.SID)
		}

		gone := create("delete-me", "bye")
		e.markSent(t, gone.SID, "SM1111111111111111111111111111bbbb", time.Now())
		resp, body := f.twilio(t, twilioCall{method: http.MethodDelete, path: "Messages/" + gone.SID + ".json"})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete = %d %s", resp.StatusCode, body)
		}
		if again := create("delete-me", "bye"); again.SID == gone.SID || again.Status != "queued" {
			t.Errorf("create with a deleted message's key = %s %s, want a new queued message", again.SID, again.Status)
		}
		for _, c := range []twilioCall{
			{method: http.MethodGet, path: "Messages/" + gone.SID + ".json"},
			{method: http.MethodDelete, path: "Messages/" + gone.SID + ".json"},
			{path: "Messages/" + gone.SID + ".json", form: form("Body", "")},
			{method: http.MethodGet, path: "Messages/SM1111111111111111111111111111bbbb.json"},
		} {
			resp, body := f.twilio(t, c)
			checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
		}
	})
}
