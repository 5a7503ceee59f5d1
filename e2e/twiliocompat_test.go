package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	twiliogo "github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

var smSIDPattern = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

// toSwitchboard sends twilio-go's requests for api.twilio.com to a running
// switchboard serve over loopback HTTP, and refuses any other host.
type toSwitchboard struct {
	addr string
	next http.RoundTripper
}

func (rw toSwitchboard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || req.URL.Host != "api.twilio.com" {
		return nil, fmt.Errorf("request for %s: not Twilio's REST API", req.URL)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", rw.addr, ""
	return rw.next.RoundTrip(out)
}

// switchboardTwilioClient is the official twilio-go client with its base
// URL changed to Switchboard's, as an application would configure it.
func switchboardTwilioClient(t *testing.T, p *proc, user, pass string) *twiliogo.RestClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: toSwitchboard{addr: p.addr, next: tr}, Timeout: 10 * time.Second},
	}
	c.SetAccountSid(user)
	rc := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Username: user, Password: pass, Client: c})
	rc.Edge, rc.Region = "", "" // not from the environment: they would change the host
	return rc
}

// sdkToken is an auth token twilio-go accepts: it refuses, before any
// request, a password that is not alphanumeric.
const sdkToken = "e2eSdkAuthToken0"

// addAccountToken adds token to the test account's auth tokens in the
// configuration file at path.
func addAccountToken(t *testing.T, path, token string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("auth_tokens = [%q, %q]", authToken, secondaryToken)
	if !strings.Contains(string(b), old) {
		t.Fatalf("configuration has no %s", old)
	}
	b = []byte(strings.Replace(string(b), old, fmt.Sprintf("auth_tokens = [%q, %q, %q]", authToken, secondaryToken, token), 1))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// TestTwilioCompatSDKSendsThroughSwitchboard points the official twilio-go
// client at Switchboard's Twilio-compatible API, with the simulator as the
// provider: the message it creates reaches the simulator exactly once, it
// fetches the message back through Switchboard with the simulator's SID
// once sent, the same request again is a second message, and an invalid
// To is a *twclient.TwilioRestError with Twilio's code.
func TestTwilioCompatSDKSendsThroughSwitchboard(t *testing.T) {
	forEachStore(t, testTwilioCompat)
}

func testTwilioCompat(t *testing.T, st store) {
	tw, srv := startProvider(t)

	cfg := writeConfig(t, config{
		storage:  st.url,
		provider: srv.URL,
		pools:    []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
	})
	addAccountToken(t, cfg, sdkToken)
	p := startServe(t, cfg)
	// The app's credentials are the [[accounts]] entry's: any of its
	// tokens, here a third one, alphanumeric as twilio-go insists.
	rc := switchboardTwilioClient(t, p, accountSID, sdkToken)

	params := (&api.CreateMessageParams{}).SetTo("+15557770001").SetFrom(outboundSender).SetBody("Your code is 424242")
	created, err := rc.Api.CreateMessage(params)
	if err != nil {
		t.Fatalf("CreateMessage through Switchboard: %v", err)
	}
	if !smSIDPattern.MatchString(deref(created.Sid)) || deref(created.Status) != "queued" || deref(created.To) != "+15557770001" ||
		deref(created.AccountSid) != accountSID || deref(created.Body) != "Your code is 424242" {
		t.Fatalf("created = sid %s status %s to %s account %s", deref(created.Sid), deref(created.Status), deref(created.To), deref(created.AccountSid))
	}

	var fetched *api.ApiV2010Message
	eventually(t, 30*time.Second, func() (bool, string) {
		fetched, err = rc.Api.FetchMessage(*created.Sid, &api.FetchMessageParams{})
		if err != nil {
			t.Fatalf("FetchMessage %s through Switchboard: %v", *created.Sid, err)
		}
		return deref(fetched.Status) == "sent", "message " + *created.Sid + " is " + deref(fetched.Status) + ", want sent"
	})

	at := tw.Messages(accountSID)
	if len(at) != 1 {
		t.Fatalf("the simulator has %d messages, want 1", len(at))
	}
	if m := at[0]; m.SID == deref(created.Sid) || m.To != "+15557770001" || m.From != outboundSender || m.Body != "Your code is 424242" {
		t.Errorf("at the simulator: %+v; want the message, under Twilio's own SID", m)
	}
	if deref(fetched.Sid) != deref(created.Sid) {
		t.Errorf("fetched sid %s, want %s, the one create answered", deref(fetched.Sid), deref(created.Sid))
	}
	if deref(fetched.From) != outboundSender || fetched.DateSent == nil {
		t.Errorf("fetched from %s date_sent %v, want the sender and a date", deref(fetched.From), fetched.DateSent)
	}
	// Fetching by Twilio's SID works as well as by the one create
	// answered, and both answer that one: the message's only SID.
	if bySID, err := rc.Api.FetchMessage(at[0].SID, &api.FetchMessageParams{}); err != nil || deref(bySID.Sid) != deref(created.Sid) {
		t.Errorf("FetchMessage by Twilio's SID %s: sid %s, %v; want %s", at[0].SID, deref(bySID.Sid), err, deref(created.Sid))
	}

	// The same request again, without an idempotency header: a second
	// message, as at Twilio (see TestEveryTwilioCreateIsSent).
	again, err := rc.Api.CreateMessage(params)
	if err != nil {
		t.Fatalf("repeat CreateMessage: %v", err)
	}
	if deref(again.Sid) == deref(fetched.Sid) || deref(again.Sid) == deref(created.Sid) {
		t.Errorf("repeat answered %s, the first message; want a second one", deref(again.Sid))
	}

	_, err = rc.Api.CreateMessage((&api.CreateMessageParams{}).SetTo("555-not-a-number").SetFrom(outboundSender).SetBody("x"))
	var te *twclient.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("invalid To: %v (%T), want a *twclient.TwilioRestError", err, err)
	}
	if te.Code != 21211 || te.Status != http.StatusBadRequest || te.MoreInfo != "https://www.twilio.com/docs/errors/21211" || te.Message == "" {
		t.Errorf("invalid To: %+v, want 400 with code 21211", te)
	}

	wrong := switchboardTwilioClient(t, p, accountSID, "notTheToken0")
	_, err = wrong.Api.CreateMessage(params)
	if !errors.As(err, &te) || te.Code != 20003 || te.Status != http.StatusUnauthorized {
		t.Errorf("wrong token: %v, want 401 with code 20003", err)
	}
}
