package web_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/web"
)

const (
	outKey        = "SK0000000000000000000000000000a001"
	outKeySecret  = "key-secret-1"
	outKey2       = "SK0000000000000000000000000000a002"
	outKey2Secret = "key-secret-2"
	otherKey      = "SK0000000000000000000000000000b001"
	otherSecret   = "other-key-secret"
	emptyKey      = "SK0000000000000000000000000000a003"
)

// newKeyFixture serves the Twilio-compatible API for two accounts, each
// with auth tokens and API keys; outAccount has two keys (a rotation) and
// one with an empty secret.
func newKeyFixture(t *testing.T, opts ...web.Option) *fixture {
	t.Helper()
	return newOutboundFixture(t, append([]web.Option{web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken, outToken2}, APIKeys: []web.TwilioAPIKey{
			{SID: outKey, Secret: outKeySecret}, {SID: outKey2, Secret: outKey2Secret}, {SID: emptyKey, Secret: ""},
		}},
		{SID: otherAccount, Tokens: []string{otherToken}, APIKeys: []web.TwilioAPIKey{{SID: otherKey, Secret: otherSecret}}},
	})}, opts...)...)
}

// TestTwilioAPIKeys: an API key's SID and secret authenticate as the
// key's account, every key of a rotation at once, and only for that
// account's path.
func TestTwilioAPIKeys(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	tests := []struct {
		name string
		call twilioCall
		ok   bool
	}{
		{"a key", twilioCall{user: outKey, pass: outKeySecret}, true},
		{"the other key of a rotation", twilioCall{user: outKey2, pass: outKey2Secret}, true},
		{"the account's token still", twilioCall{user: outAccount, pass: outToken}, true},
		{"another account's key on its own path", twilioCall{user: otherKey, pass: otherSecret, account: otherAccount}, false /* no pools: 21606, not 401 */},
		{"a wrong secret", twilioCall{user: outKey, pass: "nope"}, false},
		{"another key's secret", twilioCall{user: outKey, pass: outKey2Secret}, false},
		{"a key with the account's token", twilioCall{user: outKey, pass: outToken}, false},
		{"the account with a key's secret", twilioCall{user: outAccount, pass: outKeySecret}, false},
		{"a key with an empty secret", twilioCall{user: emptyKey, pass: ""}, false},
		{"a key of this account for another account's path", twilioCall{user: outKey, pass: outKeySecret, account: otherAccount}, false},
		{"another account's key for this account's path", twilioCall{user: otherKey, pass: otherSecret}, false},
		{"an unknown key", twilioCall{user: "SK0000000000000000000000000000ffff", pass: outKeySecret}, false},
		{"a key's secret as its SID", twilioCall{user: outKeySecret, pass: outKeySecret}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A body of its own: identical creates are one message.
			tt.call.form = form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", tt.name)
			resp, body := f.twilio(t, tt.call)
			switch {
			case tt.ok:
				m := decodeTwilioMessage(t, resp, body, http.StatusCreated)
				if m.AccountSID != outAccount {
					t.Errorf("account_sid = %s, want %s", m.AccountSID, outAccount)
				}
			case tt.call.account == otherAccount && tt.call.user == otherKey:
				// Authenticated: the answer is about the message, not
				// the credentials.
				checkTwilioError(t, resp, body, http.StatusBadRequest, 21606)
			default:
				checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
					t.Errorf("WWW-Authenticate = %q, want Basic", got)
				}
			}
		})
	}
	if n := f.messageCount(t); n != 3 {
		t.Errorf("%d messages stored, want 3 (one per accepted credential)", n)
	}
}

// TestTwilioCredentialsHostile: only one exact pair of user and password
// authenticates, as the one account it belongs to, and only for that
// account's paths however they are spelled. A key whose secret is
// another account's token is that key's account's, and a request
// presenting two credentials is refused: the pass-through forwards the
// Authorization header as received, and the provider must check the one
// Switchboard checked.
func TestTwilioCredentialsHostile(t *testing.T) {
	t.Parallel()
	const colons = "tok:with:colons"
	f := newOutboundFixture(t, web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken, colons}, APIKeys: []web.TwilioAPIKey{{SID: outKey, Secret: otherToken}}},
		{SID: otherAccount, Tokens: []string{otherToken}},
	}))
	list := func(account string) string { return "/2010-04-01/Accounts/" + account + "/Messages.json" }
	long := strings.Repeat("x", 32<<10)
	tests := []struct {
		name    string
		auth    []string // the Authorization header's values
		account string
		ok      bool
	}{
		{"a key whose secret is another account's token", []string{basic(outKey, otherToken)}, outAccount, true},
		{"that key on the other account's path", []string{basic(outKey, otherToken)}, otherAccount, false},
		{"the other account's token, as itself", []string{basic(otherAccount, otherToken)}, otherAccount, true},
		{"the other account's token on the key's account's path", []string{basic(otherAccount, otherToken)}, outAccount, false},
		{"the key's secret with the key's account", []string{basic(outAccount, otherToken)}, outAccount, false},
		{"a token with colons", []string{basic(outAccount, colons)}, outAccount, true},
		{"a token with colons, cut short", []string{basic(outAccount, "tok")}, outAccount, false},
		{"a token with colons and one more", []string{basic(outAccount, colons+":")}, outAccount, false},
		{"a token with a space after it", []string{basic(outAccount, outToken+" ")}, outAccount, false},
		{"the account in lower case", []string{basic(strings.ToLower(outAccount), outToken)}, outAccount, false},
		{"no colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(outAccount+outToken))}, outAccount, false},
		{"an empty user", []string{basic("", outToken)}, outAccount, false},
		{"an empty password", []string{basic(outAccount, "")}, outAccount, false},
		{"both empty", []string{basic("", "")}, outAccount, false},
		{"the token as a bearer", []string{"Bearer " + outToken}, outAccount, false},
		{"not base64", []string{"Basic " + outAccount + ":" + outToken}, outAccount, false},
		{"a very long password", []string{basic(outAccount, outToken+long)}, outAccount, false},
		{"a very long user", []string{basic(outAccount+long, outToken)}, outAccount, false},
		{"two credentials, both good", []string{basic(outAccount, outToken), basic(outAccount, outToken)}, outAccount, false},
		{"two credentials, the second another account's", []string{basic(outAccount, outToken), basic(otherAccount, otherToken)}, outAccount, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.raw(t, http.MethodGet, list(tt.account), "", "", http.Header{"Authorization": tt.auth}, nil)
			if tt.ok {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d %s, want 200", resp.StatusCode, body)
				}
				return
			}
			checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
		})
	}

	// The account's own credentials on the other account's paths, spelled
	// every way the mux or the pass-through might read them: nothing is
	// listed or created there.
	other := list(otherAccount)
	for _, target := range []string{
		other,
		"/2010-04-01/Accounts/%41" + otherAccount[1:] + "/Messages.json",
		"/2010-04-01/Accounts/" + otherAccount + "%2Ejson/Messages.json",
		"/2010-04-01/accounts/" + otherAccount + "/Messages.json",
		"/2010-04-01/ACCOUNTS/" + otherAccount + "/Messages.json",
		"/api.twilio.com" + other,
		"/API.Twilio.COM" + other,
		other + "/",
		"/2010-04-01/Accounts/" + otherAccount + "/Messages",
		"/2010-04-01/Accounts/" + outAccount + "/../" + otherAccount + "/Messages.json",
		"/2010-04-01/Accounts/" + outAccount + "/%2e%2e/" + otherAccount + "/Messages.json",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			body := strings.NewReader(form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", "hostile").Encode())
			resp, got := f.raw(t, method, target, outAccount, outToken,
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body)
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s = %d %s, want 401 or 404", method, target, resp.StatusCode, got)
			}
		}
	}
	if n := f.messageCount(t); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}
