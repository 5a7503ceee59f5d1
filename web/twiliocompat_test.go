package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/web"
)

const (
	outToken       = "out-primary"
	outToken2      = "out-secondary"
	otherAccount   = "AC00000000000000000000000000000002"
	otherToken     = "other-token"
	twilioSIDInSim = "SM0123456789abcdef0123456789abcdef"
	serviceSID     = "MG00000000000000000000000000000001"
)

var smSID = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

func newTwilioFixture(t *testing.T) *fixture {
	t.Helper()
	return newOutboundFixture(t, web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken, outToken2}},
		{SID: otherAccount, Tokens: []string{otherToken}},
	}))
}

// twilioCall is one request to the Twilio-compatible API.
type twilioCall struct {
	method     string // "" for POST
	path       string // after /2010-04-01/Accounts/{account}/; "" for Messages.json
	account    string // the path's account; "" for outAccount
	user, pass string // Basic auth; "" user for outAccount and outToken, "-" for none
	form       url.Values
	header     http.Header
}

func (f *fixture) twilio(t *testing.T, c twilioCall) (*http.Response, []byte) {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.path == "" {
		c.path = "Messages.json"
	}
	if c.account == "" {
		c.account = outAccount
	}
	if c.user == "" {
		c.user, c.pass = outAccount, outToken
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, f.srv.URL+"/2010-04-01/Accounts/"+c.account+"/"+c.path,
		strings.NewReader(c.form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.user != "-" {
		req.SetBasicAuth(c.user, c.pass)
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

// twilioMessage is the part of Twilio's Message resource the tests check.
type twilioMessage struct {
	SID          string  `json:"sid"`
	AccountSID   string  `json:"account_sid"`
	From         *string `json:"from"`
	To           string  `json:"to"`
	Body         string  `json:"body"`
	Status       string  `json:"status"`
	Direction    string  `json:"direction"`
	NumMedia     string  `json:"num_media"`
	ErrorCode    *int    `json:"error_code"`
	ErrorMessage *string `json:"error_message"`
	DateCreated  string  `json:"date_created"`
	DateSent     *string `json:"date_sent"`
	APIVersion   string  `json:"api_version"`
	URI          string  `json:"uri"`
}

func decodeTwilioMessage(t *testing.T, resp *http.Response, body []byte, status int) twilioMessage {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	return decodeJSON[twilioMessage](t, body)
}

// twilioOK makes a call that must answer status with a message.
func (f *fixture) twilioOK(t *testing.T, c twilioCall, status int) twilioMessage {
	t.Helper()
	resp, body := f.twilio(t, c)
	return decodeTwilioMessage(t, resp, body, status)
}

// checkTwilioError checks an answer in Twilio's error shape.
func checkTwilioError(t *testing.T, resp *http.Response, body []byte, status, code int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var got struct {
		Code     *int   `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
		Status   *int   `json:"status"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if got.Code == nil || *got.Code != code || got.Status == nil || *got.Status != status || got.Message == "" ||
		got.MoreInfo != "https://www.twilio.com/docs/errors/"+strconv.Itoa(code) {
		t.Errorf("error body = %s, want code %d and status %d", body, code, status)
	}
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func (f *fixture) messageCount(t *testing.T) int {
	t.Helper()
	page, err := f.store.ListOutboundMessages(t.Context(), switchboard.OutboundFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Items)
}

func TestTwilioCreateIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newTwilioFixture(t)
	msg := form("To", "+15557770001", "From", "+15550001001", "Body", "Your code is 123456",
		"StatusCallback", "https://app.example.com/status", "MediaUrl", "https://app.example.com/a.png", "MediaUrl", "https://app.example.com/b.png")
	token := http.Header{"I-Twilio-Idempotency-Token": {"tok-1"}}

	first := f.twilioOK(t, twilioCall{form: msg, header: token}, http.StatusCreated)
	if !smSID.MatchString(first.SID) || first.AccountSID != outAccount || first.From == nil || *first.From != "+15550001001" ||
		first.To != "+15557770001" || first.Body != "Your code is 123456" || first.Status != "queued" ||
		first.Direction != "outbound-api" || first.NumMedia != "2" || first.ErrorCode != nil || first.DateSent != nil ||
		first.APIVersion != "2010-04-01" || first.URI != "/2010-04-01/Accounts/"+outAccount+"/Messages/"+first.SID+".json" {
		t.Errorf("created = %+v", first)
	}
	stored, err := f.store.OutboundMessageByKey(t.Context(), "twilio:"+outAccount+":tok-1")
	if err != nil {
		t.Fatal(err)
	}
	if web.MessageSID(stored) != first.SID || stored.StatusWebhook != "https://app.example.com/status" ||
		stored.Pool != "otp" || stored.Purpose != switchboard.PurposeTransactional || len(stored.MediaURLs) != 2 {
		t.Errorf("stored = %+v", stored)
	}

	// The same token and payload: the same message, 201 again.
	again := f.twilioOK(t, twilioCall{form: msg, header: token}, http.StatusCreated)
	if again.SID != first.SID {
		t.Errorf("repeat sid = %s, want %s", again.SID, first.SID)
	}
	// Idempotency-Key is the key when the Twilio header is absent.
	viaKey := f.twilioOK(t, twilioCall{form: msg, header: http.Header{"Idempotency-Key": {"tok-1"}}}, http.StatusCreated)
	if viaKey.SID != first.SID {
		t.Errorf("Idempotency-Key tok-1 answered %s, want %s", viaKey.SID, first.SID)
	}
	// The same token, another payload.
	other := form("To", "+15557770001", "From", "+15550001001", "Body", "Your code is 654321")
	resp, body := f.twilio(t, twilioCall{form: other, header: token})
	checkTwilioError(t, resp, body, http.StatusConflict, 20409)

	// Without a header, every request is a message of its own, identical
	// or not, as at Twilio (no dedup window is configured).
	plain := form("To", "+15557770002", "MessagingServiceSid", serviceSID, "Body", "hello")
	a := f.twilioOK(t, twilioCall{form: plain}, http.StatusCreated)
	b := f.twilioOK(t, twilioCall{form: plain}, http.StatusCreated)
	c := f.twilioOK(t, twilioCall{form: form("To", "+15557770002", "MessagingServiceSid", serviceSID, "Body", "hello again")}, http.StatusCreated)
	if a.SID == b.SID || a.SID == c.SID || b.SID == c.SID || a.SID == first.SID {
		t.Errorf("creates without a header: %s %s %s, want three messages", a.SID, b.SID, c.SID)
	}
	if a.From != nil {
		t.Errorf("from = %q, want null until a sender is chosen", *a.From)
	}
	if n := f.messageCount(t); n != 4 {
		t.Errorf("%d messages stored, want 4", n)
	}
}

func TestTwilioAuthentication(t *testing.T) {
	t.Parallel()
	f := newTwilioFixture(t)
	msg := form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", "hi")
	tests := []struct {
		name string
		call twilioCall
		want int
	}{
		{"secondary token", twilioCall{user: outAccount, pass: outToken2}, http.StatusCreated},
		{"no credentials", twilioCall{user: "-"}, http.StatusUnauthorized},
		{"wrong token", twilioCall{user: outAccount, pass: "nope"}, http.StatusUnauthorized},
		{"empty token", twilioCall{user: outAccount, pass: ""}, http.StatusUnauthorized},
		{"another account's token", twilioCall{user: outAccount, pass: otherToken}, http.StatusUnauthorized},
		{"another account's path", twilioCall{user: otherAccount, pass: otherToken, account: outAccount}, http.StatusUnauthorized},
		{"unknown account", twilioCall{user: "AC00000000000000000000000000000009", pass: outToken,
			account: "AC00000000000000000000000000000009"}, http.StatusUnauthorized},
		{"GET with a wrong token", twilioCall{method: http.MethodGet, path: "Messages/SM0123456789abcdef0123456789abcdef.json",
			user: outAccount, pass: "nope"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.call.form = msg
			resp, body := f.twilio(t, tt.call)
			if tt.want != http.StatusUnauthorized {
				if resp.StatusCode != tt.want {
					t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tt.want)
				}
				return
			}
			checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want Basic", got)
			}
		})
	}

	// Without configured accounts nothing authenticates.
	closed := newOutboundFixture(t)
	resp, body := closed.twilio(t, twilioCall{form: msg})
	checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
}

func TestTwilioCreateErrors(t *testing.T) {
	t.Parallel()
	f := newTwilioFixture(t)
	if err := f.store.Suppress(t.Context(), outAccount, "+15557779999", "STOP"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		form url.Values
		code int
	}{
		{"missing To", form("Body", "hi"), 21604},
		{"missing From and MessagingServiceSid", nil, 21603},
		{"missing Body and MediaUrl", form("To", "+15557770001", "From", "+15550001001"), 21602},
		{"Body too long", form("To", "+15557770001", "Body", strings.Repeat("x", 1601)), 21617},
		{"invalid To", form("To", "5557770001", "Body", "hi"), 21211},
		{"invalid To channel", form("To", "whatsapp:555", "Body", "hi"), 21211},
		{"invalid From", form("To", "+15557770001", "From", "sender", "Body", "hi"), 21212},
		{"From in no pool", form("To", "+15557770001", "From", "+15559990000", "Body", "hi"), 21606},
		{"invalid MessagingServiceSid", form("To", "+15557770001", "MessagingServiceSid", "XX1", "Body", "hi"), 21701},
		{"invalid StatusCallback", form("To", "+15557770001", "Body", "hi", "StatusCallback", "/status"), 21609},
		{"invalid MediaUrl", form("To", "+15557770001", "MediaUrl", "file:///etc/passwd"), 21620},
		{"suppressed recipient", form("To", "+15557779999", "Body", "hi"), 21610},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.form == nil {
				tt.form = form("To", "+15557770001", "Body", "hi")
			} else if !tt.form.Has("From") && !tt.form.Has("MessagingServiceSid") && tt.code != 21604 {
				tt.form.Set("MessagingServiceSid", serviceSID)
			}
			resp, body := f.twilio(t, twilioCall{form: tt.form})
			checkTwilioError(t, resp, body, http.StatusBadRequest, tt.code)
		})
	}
	if n := f.messageCount(t); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}

	// A message from another account's pools: this account has none.
	resp, body := f.twilio(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
		form: form("To", "+15557770001", "From", "+15550001001", "Body", "hi")})
	checkTwilioError(t, resp, body, http.StatusBadRequest, 21606)

	resp, body = f.twilio(t, twilioCall{method: http.MethodGet, path: "Calls.json"})
	checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
}

// A recipient Twilio refused for good is refused at create with Twilio's
// code and message, by both APIs, in their dialects; another account's
// creates to it go on, and its refusal leaves this account's list alone.
func TestCreatesToRefusedRecipients(t *testing.T) {
	t.Parallel()
	f := newTwoAccountFixture(t)
	tests := []struct {
		to, reason string
		code       int
		message    string
	}{
		{"+15557770031", "STOP", 21610, "Attempt to send to unsubscribed recipient"},
		{"+15557770032", "21610", 21610, "Attempt to send to unsubscribed recipient"},
		{"+15557770033", switchboard.RefusalReason(21614), 21614, "'To' number is not a valid mobile number"},
		{"+15557770034", switchboard.RefusalReason(21211), 21211, "The 'To' number +15557770034 is not a valid phone number."},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.code)+tc.to, func(t *testing.T) {
			if err := f.store.Suppress(t.Context(), outAccount, tc.to, tc.reason); err != nil {
				t.Fatal(err)
			}
			for _, h := range []http.Header{nil, {"I-Twilio-Idempotency-Token": {"refused-" + tc.to}}} {
				resp, body := f.twilio(t, twilioCall{form: form("To", tc.to, "From", "+15550001001", "Body", "hi"), header: h})
				checkTwilioError(t, resp, body, http.StatusBadRequest, tc.code)
				var got struct{ Message string }
				if err := json.Unmarshal(body, &got); err != nil || got.Message != tc.message {
					t.Errorf("message %q, want Twilio's %q", got.Message, tc.message)
				}
			}
			resp, body := f.send(t, "native-"+tc.to, `{"to": "`+tc.to+`", "body": "hi"}`)
			checkError(t, resp, body, http.StatusUnprocessableEntity, "("+strconv.Itoa(tc.code)+", ")
			if strings.Contains(string(body), tc.to) {
				t.Errorf("the native refusal names the recipient: %s", body)
			}

			// The other account sends to the number.
			theirs := f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
				form: form("To", tc.to, "From", theirSender, "Body", "hi")}, http.StatusCreated)
			if theirs.AccountSID != otherAccount {
				t.Errorf("their create: %+v", theirs)
			}
			resp, body = f.send(t, "theirs-"+tc.to, `{"to": "`+tc.to+`", "body": "hi", "from": "`+theirSender+`"}`)
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("their native create = %d %s, want 202", resp.StatusCode, body)
			}
		})
	}
	if n := f.messageCount(t); n != 2*len(tests) {
		t.Errorf("%d messages stored, want %d: only the other account's", n, 2*len(tests))
	}
}

func TestTwilioFetch(t *testing.T) {
	t.Parallel()
	f := newTwilioFixture(t)
	created := f.twilioOK(t, twilioCall{form: form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", "hi")}, http.StatusCreated)
	fetch := func(sid string) twilioMessage {
		return f.twilioOK(t, twilioCall{method: http.MethodGet, path: "Messages/" + sid + ".json"}, http.StatusOK)
	}
	got := fetch(created.SID)
	if got.SID != created.SID || got.Status != "queued" || got.Body != "hi" {
		t.Errorf("fetched %+v, want %+v", got, created)
	}
	page, err := f.store.ListOutboundMessages(t.Context(), switchboard.OutboundFilter{Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatal(page, err)
	}
	id := page.Items[0].ID

	// The state as Twilio's status, and the SID create answered all along:
	// Twilio's finds the message too, once it is known.
	steps := []struct {
		apply      func() error
		wantStatus string
		wantCode   int
	}{
		{func() error {
			return f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSending})
		}, "queued", 0},
		{func() error {
			return f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSent,
				From: "+15550001001", TwilioSID: twilioSIDInSim, TwilioStatus: "queued"})
		}, "sent", 0},
		{func() error {
			_, err := f.store.UpdateMessageStatus(t.Context(), switchboard.StatusUpdate{AccountSID: outAccount, TwilioSID: twilioSIDInSim, Status: "undelivered", ErrorCode: 30003})
			return err
		}, "undelivered", 30003},
	}
	for _, s := range steps {
		if err := s.apply(); err != nil {
			t.Fatal(err)
		}
		for _, sid := range []string{created.SID, twilioSIDInSim} {
			if s.wantStatus == "queued" && sid == twilioSIDInSim {
				continue // not known by Twilio's SID yet
			}
			got := fetch(sid)
			wantSID := created.SID
			if got.SID != wantSID || got.Status != s.wantStatus {
				t.Errorf("GET %s = sid %s status %s, want %s %s", sid, got.SID, got.Status, wantSID, s.wantStatus)
			}
			if s.wantCode != 0 && (got.ErrorCode == nil || *got.ErrorCode != s.wantCode || got.ErrorMessage == nil) {
				t.Errorf("GET %s error_code = %v, want %d", sid, got.ErrorCode, s.wantCode)
			}
			if s.wantStatus != "queued" && (got.From == nil || *got.From != "+15550001001" || got.DateSent == nil) {
				t.Errorf("GET %s = %+v, want the sender and date_sent", sid, got)
			}
		}
	}

	// Unknown SIDs, another account's message and a path without .json.
	for _, c := range []twilioCall{
		{method: http.MethodGet, path: "Messages/SMffffffffffffffffffffffffffffffff.json"},
		{method: http.MethodGet, path: "Messages/nope.json"},
		{method: http.MethodGet, path: "Messages/" + created.SID},
		{method: http.MethodGet, path: "Messages/" + created.SID + ".json", account: otherAccount, user: otherAccount, pass: otherToken},
	} {
		resp, body := f.twilio(t, c)
		checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
	}
}

// A create naming a Messaging Service that is a pool's sender goes to that
// pool and is sent through the service.
func TestTwilioCreateThroughAPoolService(t *testing.T) {
	t.Parallel()
	const poolService = "MG0123456789abcdef0123456789abcdef"
	pools := append(slices.Clone(testPools), web.OutboundPool{Name: "svc", AccountSID: outAccount,
		Senders: []string{poolService}, Purposes: []switchboard.Purpose{switchboard.PurposeTransactional}})
	f := newFixtureWith(t, token, nil, web.WithOutbound(pools), web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken}}}))
	resp, body := f.twilio(t, twilioCall{form: form("To", "+15557770001", "MessagingServiceSid", poolService, "Body", "hi")})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got["messaging_service_sid"] != poolService || got["from"] != nil || got["num_segments"] != "1" {
		t.Errorf("answer: service %v, from %v, segments %v; want the service, no from yet, 1 segment",
			got["messaging_service_sid"], got["from"], got["num_segments"])
	}
	page := decodeJSON[web.Page[web.MessageJSON]](t, must200(t, f, "/api/v1/messages?pool=svc"))
	if len(page.Items) != 1 || page.Items[0].From != poolService {
		t.Errorf("stored: %+v, want one message of pool svc from the service", page.Items)
	}
}

// theirSender is a sender of otherAccount's pool in newTwoAccountFixture.
const theirSender = "+15550003001"

// newTwoAccountFixture serves both APIs with a pool of each account.
func newTwoAccountFixture(t *testing.T) *fixture {
	t.Helper()
	pools := append(slices.Clone(testPools), web.OutboundPool{Name: "theirs", AccountSID: otherAccount,
		Senders: []string{theirSender}, Purposes: []switchboard.Purpose{switchboard.PurposeTransactional}})
	return newFixtureWith(t, token, nil, web.WithOutbound(pools), web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken}},
		{SID: otherAccount, Tokens: []string{otherToken}},
	}))
}

// Idempotency keys of different APIs and accounts never meet: a native
// key that spells a Twilio-compatible key's stored form, of another
// account or of its own, is a key of the native API's own space, and the
// same native key sent through two accounts' pools is two messages.
func TestKeysOfAPIsAndAccountsNeverMeet(t *testing.T) {
	t.Parallel()
	f := newTwoAccountFixture(t)
	const to, text = "+15557770001", "Your code is 123456"
	theirs := f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
		form: form("To", to, "From", theirSender, "Body", text), header: http.Header{"I-Twilio-Idempotency-Token": {"tok-b"}}},
		http.StatusCreated)
	ours := f.twilioOK(t, twilioCall{form: form("To", to, "From", "+15550001001", "Body", text),
		header: http.Header{"I-Twilio-Idempotency-Token": {"tok-a"}}}, http.StatusCreated)

	// The same payload as the Twilio-compatible creates, so that a key
	// that met theirs would be answered with their message.
	native := func(key, from string) web.MessageJSON {
		t.Helper()
		resp, body := f.send(t, key, `{"to": "`+to+`", "body": "`+text+`", "from": "`+from+`"}`)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("native create with key %q = %d %s, want 202: a message of its own", key, resp.StatusCode, body)
		}
		m := decodeJSON[web.MessageJSON](t, body)
		if m.IdempotencyKey != key {
			t.Errorf("native create shows key %q, want %q as the caller gave it", m.IdempotencyKey, key)
		}
		return m
	}
	seen := map[string]string{theirs.SID: "their Twilio-compatible create", ours.SID: "our Twilio-compatible create"}
	for _, c := range []struct{ name, key, from string }{
		{"their Twilio key, through their pool", "twilio:" + otherAccount + ":tok-b", theirSender},
		{"their Twilio key, through ours", "twilio:" + otherAccount + ":tok-b", "+15550001001"},
		{"our own Twilio key", "twilio:" + outAccount + ":tok-a", "+15550001001"},
		{"one key, our pool", "order-17", "+15550001001"},
		{"one key, their pool", "order-17", theirSender},
	} {
		m := native(c.key, c.from)
		sid := web.MessageSID(&switchboard.OutboundMessage{ID: m.ID})
		if prev, ok := seen[sid]; ok {
			t.Errorf("%s: answered the message of %s", c.name, prev)
		}
		seen[sid] = c.name
	}
	// Each key still finds its own message again.
	for _, c := range []struct{ key, from, want string }{
		{"twilio:" + otherAccount + ":tok-b", theirSender, "their Twilio key, through their pool"},
		{"order-17", theirSender, "one key, their pool"},
	} {
		resp, body := f.send(t, c.key, `{"to": "`+to+`", "body": "`+text+`", "from": "`+c.from+`"}`)
		m := decodeJSON[web.MessageJSON](t, body)
		if resp.StatusCode != http.StatusOK || seen[web.MessageSID(&switchboard.OutboundMessage{ID: m.ID})] != c.want {
			t.Errorf("repeat of %q = %d %s, want 200 with the message of %s", c.key, resp.StatusCode, body, c.want)
		}
	}
	if again := f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
		form: form("To", to, "From", theirSender, "Body", text), header: http.Header{"I-Twilio-Idempotency-Token": {"tok-b"}}},
		http.StatusCreated); again.SID != theirs.SID {
		t.Errorf("their Twilio-compatible repeat answered %s, want %s", again.SID, theirs.SID)
	}
	if n := f.messageCount(t); n != 7 {
		t.Errorf("%d messages stored, want 7", n)
	}
}

// A message is fetched only by its own account, by either of its SIDs.
func TestTwilioFetchOfAnotherAccountsMessage(t *testing.T) {
	t.Parallel()
	f := newTwoAccountFixture(t)
	theirs := f.twilioOK(t, twilioCall{account: otherAccount, user: otherAccount, pass: otherToken,
		form: form("To", "+15557770001", "From", theirSender, "Body", "hi")}, http.StatusCreated)
	page, err := f.store.ListOutboundMessages(t.Context(), switchboard.OutboundFilter{Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatal(page, err)
	}
	if err := f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: page.Items[0].ID, Attempts: 1,
		State: switchboard.MessageSent, From: theirSender, TwilioSID: twilioSIDInSim, TwilioStatus: "queued"}); err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{theirs.SID, twilioSIDInSim} {
		resp, body := f.twilio(t, twilioCall{method: http.MethodGet, path: "Messages/" + sid + ".json"})
		checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
		got := f.twilioOK(t, twilioCall{method: http.MethodGet, path: "Messages/" + sid + ".json", account: otherAccount,
			user: otherAccount, pass: otherToken}, http.StatusOK)
		if got.SID != theirs.SID || got.AccountSID != otherAccount {
			t.Errorf("their fetch of %s = %+v", sid, got)
		}
	}
}
