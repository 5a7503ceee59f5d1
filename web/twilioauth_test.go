package web_test

import (
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
