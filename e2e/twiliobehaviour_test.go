package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard-dev/switchboard/sim"
)

// What an app using a Twilio SDK sees of Twilio's own behaviour through
// Switchboard: every create is a message unless it carries an idempotency
// header; a recipient Twilio refused for good is refused again at once;
// a Messaging Service is sent through, never swapped for another sender.

// A second account of the tests, with a pool of its own at the simulator.
const (
	otherAccountSID = "ACe2e00000000000000000000000000001"
	otherAuthToken  = "e2eOtherAuthToken0"
	otherSender     = "+15550002001"
	// behaviourService is a Messaging Service of the tests' account at the
	// simulator, holding outboundSender, that no pool lists.
	behaviourService = "MGe2e00000000000000000000000000001"
	// Twilio's magic recipients, as the simulator plays them: refused at
	// create with 21614 (not a mobile number) and 21610 (unsubscribed).
	notMobile = "+15005550009"
	optedOut  = "+15005550004"
)

// webhooksToServe carries the simulator's webhooks for publicURL to the
// switchboard serve whose address it holds, and answers every other one
// (status callbacks, a webhook before serve runs) 204 in process.
type webhooksToServe struct {
	addr atomic.Pointer[string]
	next http.RoundTripper
}

func (w *webhooksToServe) RoundTrip(r *http.Request) (*http.Response, error) {
	addr := w.addr.Load()
	if addr == nil || !strings.HasPrefix(r.URL.String(), publicURL+"/") {
		return callbackSink{}.RoundTrip(r)
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", *addr, ""
	return w.next.RoundTrip(out)
}

// startBehaviourProvider starts the simulator with the tests' account
// (outboundSender, whose SMS URL is publicURL/sms, and behaviourService)
// and the other account (otherSender), its webhooks going through hooks.
func startBehaviourProvider(t *testing.T, hooks *webhooksToServe) (*sim.Sim, *sim.Server) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hooks.next = tr
	tw, err := sim.New(sim.Config{
		Seed: 1,
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers:  []sim.Number{{Number: outboundSender, Throughput: 100, SMSURL: publicURL + "/sms"}},
			Services: []sim.Service{{SID: behaviourService, Numbers: []string{outboundSender}}},
		}, {
			SID: otherAccountSID, AuthTokens: []string{otherAuthToken},
			Numbers: []sim.Number{{Number: otherSender, Throughput: 100}},
		}},
		Transport: hooks,
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
	return tw, srv
}

// writeBehaviourConfig writes the configuration of serve for these tests:
// the SMS route /sms (static), the tests' pool "main" of outboundSender,
// the other account with its pool "theirs" of otherSender, and
// [outbound] lines outbound, if any.
func writeBehaviourConfig(t *testing.T, st store, provider string, outbound ...string) string {
	t.Helper()
	path := writeConfig(t, config{
		storage:  st.url,
		routes:   []route{{path: "/sms", mode: "static"}},
		provider: provider,
		pools:    []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
	})
	addAccountToken(t, path, sdkToken)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(outbound) > 0 {
		// writeConfig has no [outbound] without a status route.
		b = append(b, "\n[outbound]\n"+strings.Join(outbound, "\n")+"\n"...)
	}
	b = append(b, `
[[accounts]]
sid = "`+otherAccountSID+`"
auth_tokens = ["`+otherAuthToken+`"]

[[providers]]
name = "sim-other"
base_url = "`+provider+`"
account = "`+otherAccountSID+`"

[[pools]]
name = "theirs"
provider = "sim-other"
rate = 10
senders = ["`+otherSender+`"]
`...)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// simMessagesTo returns the simulator's outbound messages of account to to.
func simMessagesTo(tw *sim.Sim, account, to string) []sim.Message {
	var out []sim.Message
	for _, m := range tw.Messages(account) {
		if m.To == to && m.Direction == "outbound-api" {
			out = append(out, m)
		}
	}
	return out
}

// rawTwilioCreate calls the Twilio-compatible create of p as the tests'
// account with header, and returns the status and the answer's sid.
func rawTwilioCreate(t *testing.T, p *proc, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		p.url("/2010-04-01/Accounts/"+accountSID+"/Messages.json"), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(accountSID, sdkToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		SID string `json:"sid"`
	}
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m.SID
}

// waitStatus waits until the message sid, fetched through Switchboard, has
// status, and returns it. A message's SID changes once Twilio accepts it
// (Switchboard's until then, Twilio's after), so two SIDs answered for one
// message compare equal only as fetched once sent.
func waitStatus(t *testing.T, rc *api.ApiService, sid, status string) *api.ApiV2010Message {
	t.Helper()
	var got *api.ApiV2010Message
	eventually(t, 30*time.Second, func() (bool, string) {
		var err error
		if got, err = rc.FetchMessage(sid, &api.FetchMessageParams{}); err != nil {
			t.Fatalf("FetchMessage %s: %v", sid, err)
		}
		return deref(got.Status) == status, "message " + sid + " is " + deref(got.Status) + ", want " + status
	})
	return got
}

// TestEveryTwilioCreateIsSent: two identical creates of a Twilio SDK are
// two texts at the simulator, as at Twilio (a user asking for the code
// again gets it); an idempotency header makes a repeat the same message;
// outbound.dedup_window makes identical creates within it one message.
func TestEveryTwilioCreateIsSent(t *testing.T) {
	forEachStore(t, testEveryTwilioCreateIsSent)
}

func testEveryTwilioCreateIsSent(t *testing.T, st store) {
	hooks := &webhooksToServe{}
	tw, srv := startBehaviourProvider(t, hooks)
	p := startServe(t, writeBehaviourConfig(t, st, srv.URL))
	rc := switchboardTwilioClient(t, p, accountSID, sdkToken)

	const to = "+15557770101"
	params := (&api.CreateMessageParams{}).SetTo(to).SetFrom(outboundSender).SetBody("Your code is 111111")
	var sids []string
	for range 2 {
		m, err := rc.Api.CreateMessage(params)
		if err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		sids = append(sids, deref(m.Sid))
	}
	if a, b := deref(waitStatus(t, rc.Api, sids[0], "sent").Sid), deref(waitStatus(t, rc.Api, sids[1], "sent").Sid); a == b {
		t.Fatalf("two identical creates answered one message %s, want two", a)
	}
	if n := len(simMessagesTo(tw, accountSID, to)); n != 2 {
		t.Errorf("the simulator has %d messages to %s, want 2", n, to)
	}

	// An idempotency header deduplicates, either of the two.
	form := url.Values{"To": {"+15557770102"}, "From": {outboundSender}, "Body": {"Your code is 222222"}}
	for _, h := range []string{"I-Twilio-Idempotency-Token", "Idempotency-Key"} {
		header := http.Header{h: {"resend-" + h}}
		status1, sid1 := rawTwilioCreate(t, p, form, header)
		status2, sid2 := rawTwilioCreate(t, p, form, header)
		if status1 != http.StatusCreated || status2 != http.StatusCreated || sid1 == "" || sid2 == "" {
			t.Fatalf("%s twice: %d %s, %d %s; want 201 twice", h, status1, sid1, status2, sid2)
		}
		if a, b := deref(waitStatus(t, rc.Api, sid1, "sent").Sid), deref(waitStatus(t, rc.Api, sid2, "sent").Sid); a != b {
			t.Errorf("%s twice: messages %s and %s, want one", h, a, b)
		}
	}
	if n := len(simMessagesTo(tw, accountSID, "+15557770102")); n != 2 {
		t.Errorf("the simulator has %d messages for the two headers' creates, want 2", n)
	}
	if _, err := p.stop(t); err != nil {
		t.Fatal(err)
	}

	// With a dedup window, identical creates within it are one message.
	st2 := st
	if st.name == "sqlite" {
		st2.url = strings.TrimSuffix(st.url, ".db") + "-window.db"
	}
	windowed := startServe(t, writeBehaviourConfig(t, st2, srv.URL, `dedup_window = "1h"`))
	rc = switchboardTwilioClient(t, windowed, accountSID, sdkToken)
	const once = "+15557770103"
	params = (&api.CreateMessageParams{}).SetTo(once).SetFrom(outboundSender).SetBody("Your code is 333333")
	first, err := rc.Api.CreateMessage(params)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rc.Api.CreateMessage(params)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := deref(waitStatus(t, rc.Api, deref(first.Sid), "sent").Sid), deref(waitStatus(t, rc.Api, deref(again.Sid), "sent").Sid); a != b {
		t.Errorf("under dedup_window: messages %s and %s, want one", a, b)
	}
	if n := len(simMessagesTo(tw, accountSID, once)); n != 1 {
		t.Errorf("under dedup_window the simulator has %d messages, want 1", n)
	}
}

// TestRefusedRecipientsThroughTheSimulator: a recipient the simulator (as
// Twilio) refuses for good when Switchboard sends to it is refused at the
// next create at once, with Twilio's code and message, by both APIs; an
// opt-in (START) reverses an opt-out (21610) and never 21614; another
// account's creates to the same numbers go on.
func TestRefusedRecipientsThroughTheSimulator(t *testing.T) {
	forEachStore(t, testRefusedRecipients)
}

func testRefusedRecipients(t *testing.T, st store) {
	hooks := &webhooksToServe{}
	tw, srv := startBehaviourProvider(t, hooks)
	cfg := writeBehaviourConfig(t, st, srv.URL)
	p := startServe(t, cfg)
	hooks.addr.Store(&p.addr)
	rc := switchboardTwilioClient(t, p, accountSID, sdkToken)

	// create returns the message created, or Twilio's refusal.
	create := func(to string) (string, *twclient.TwilioRestError) {
		t.Helper()
		m, err := rc.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetFrom(outboundSender).SetBody("hello"))
		var te *twclient.TwilioRestError
		if err != nil && !errors.As(err, &te) {
			t.Fatalf("create to %s: %v (%T)", to, err, err)
		}
		if err != nil {
			return "", te
		}
		return deref(m.Sid), nil
	}
	refused := func(to string) *twclient.TwilioRestError {
		t.Helper()
		_, te := create(to)
		return te
	}
	tests := []struct {
		to      string
		code    int
		message string
	}{
		{notMobile, 21614, "'To' number is not a valid mobile number"},
		{optedOut, 21610, "Attempt to send to unsubscribed recipient"},
	}
	for _, tc := range tests {
		// The first create is stored and sent; the simulator refuses it.
		sid, te := create(tc.to)
		if te != nil {
			t.Fatalf("first create to %s refused: %+v; want it stored and sent", tc.to, te)
		}
		failed := waitStatus(t, rc.Api, sid, "failed")
		if failed.ErrorCode == nil || *failed.ErrorCode != tc.code {
			t.Fatalf("message to %s failed with %v, want %d", tc.to, failed.ErrorCode, tc.code)
		}
		// The next one is refused at once, as Twilio refuses it.
		te = refused(tc.to)
		if te == nil || te.Code != tc.code || te.Status != http.StatusBadRequest || te.Message != tc.message ||
			te.MoreInfo != "https://www.twilio.com/docs/errors/"+strconv.Itoa(tc.code) {
			t.Errorf("create to %s after the refusal: %+v, want 400 %d %q", tc.to, te, tc.code, tc.message)
		}
		status, _ := postMessage(t, p, "native-"+tc.to, `{"to": "`+tc.to+`", "body": "native"}`)
		if status != http.StatusUnprocessableEntity {
			t.Errorf("native create to %s after the refusal = %d, want 422", tc.to, status)
		}
		if n := len(simMessagesTo(tw, accountSID, tc.to)); n != 0 {
			t.Errorf("the simulator accepted %d messages to %s, want none", n, tc.to)
		}
	}

	// Another account is not held to this account's refusals.
	theirs := switchboardTwilioClient(t, p, otherAccountSID, otherAuthToken)
	for _, to := range []string{notMobile, optedOut} {
		m, err := theirs.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetFrom(otherSender).SetBody("theirs"))
		if err != nil || deref(m.AccountSid) != otherAccountSID {
			t.Errorf("the other account's create to %s: %v; want it stored", to, err)
		}
	}

	// The handsets reply START. Serve, stopped, waits for what intake
	// does after answering, keywords included; so once it is started
	// again they have been applied.
	for _, from := range []string{notMobile, optedOut} {
		res, err := tw.ReceiveMessage(t.Context(), sim.InboundMessage{From: from, To: outboundSender, Body: "START"})
		if err != nil || res.Webhook == nil || res.Webhook.Final().Error != nil {
			t.Fatalf("START from %s: %+v, %v; want it delivered to serve", from, res, err)
		}
	}
	if _, err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	p = startServe(t, cfg)
	hooks.addr.Store(&p.addr)
	rc = switchboardTwilioClient(t, p, accountSID, sdkToken)
	if te := refused(optedOut); te != nil {
		t.Errorf("create to %s after its START: %+v, want it stored: START reverses 21610", optedOut, te)
	}
	if te := refused(notMobile); te == nil || te.Code != 21614 {
		t.Errorf("create to %s after its START: %+v, want 21614 still", notMobile, te)
	}
}

// TestUnlistedMessagingServiceIsSentThrough: a create naming a Messaging
// Service no pool lists reaches the simulator through that service, never
// from a number of another pool; one the account does not have at the
// simulator fails there with Twilio's 21701.
func TestUnlistedMessagingServiceIsSentThrough(t *testing.T) {
	forEachStore(t, testUnlistedService)
}

func testUnlistedService(t *testing.T, st store) {
	hooks := &webhooksToServe{}
	tw, srv := startBehaviourProvider(t, hooks)
	p := startServe(t, writeBehaviourConfig(t, st, srv.URL))
	rc := switchboardTwilioClient(t, p, accountSID, sdkToken)

	const to = "+15557770201"
	created, err := rc.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetMessagingServiceSid(behaviourService).SetBody("through the service"))
	if err != nil {
		t.Fatalf("CreateMessage through %s: %v", behaviourService, err)
	}
	if deref(created.MessagingServiceSid) != behaviourService || created.From != nil {
		t.Errorf("created: service %s, from %s; want the service and no number yet", deref(created.MessagingServiceSid), deref(created.From))
	}
	waitStatus(t, rc.Api, deref(created.Sid), "sent")
	at := simMessagesTo(tw, accountSID, to)
	if len(at) != 1 || at[0].ServiceSID != behaviourService {
		t.Fatalf("at the simulator: %+v, want one message with MessagingServiceSid %s", at, behaviourService)
	}

	const unknown = "MGe2e0000000000000000000000000dead"
	missing, err := rc.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetMessagingServiceSid(unknown).SetBody("through no service"))
	if err != nil {
		t.Fatalf("CreateMessage through %s: %v", unknown, err)
	}
	failed := waitStatus(t, rc.Api, deref(missing.Sid), "failed")
	if failed.ErrorCode == nil || *failed.ErrorCode != 21701 {
		t.Errorf("message through a service the account lacks: error %v, want 21701", failed.ErrorCode)
	}
	if n := len(simMessagesTo(tw, accountSID, to)); n != 1 {
		t.Errorf("the simulator has %d messages to %s, want still 1: nothing sent from a pool's number", n, to)
	}
}
