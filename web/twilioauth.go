package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/switchboard-dev/switchboard/twilio"
)

// TwilioAccount is an account that may call the Twilio-compatible API:
// HTTP Basic auth with its SID as the user and any of its tokens as the
// password, or with one of its API keys' SID as the user and that key's
// secret as the password.
type TwilioAccount struct {
	SID     string
	Tokens  []string
	APIKeys []TwilioAPIKey
}

// TwilioAPIKey is a Twilio API key (SK…) and its secret.
type TwilioAPIKey struct {
	SID, Secret string
}

// twilioCredential is one user and password pair that authenticates as an
// account, both kept as SHA-256 hashes so that every comparison is of
// equal-length values.
type twilioCredential struct {
	user, secret [32]byte
	account      string
}

// WithTwilioAccounts lets the accounts call the Twilio-compatible API under
// /2010-04-01/ (and the pass-through, see WithPassThrough). Without it
// every request there is refused (401, 20003). An empty token or secret
// authenticates nothing.
func WithTwilioAccounts(accounts []TwilioAccount) Option {
	return func(s *Server) {
		s.twilioCreds = nil
		add := func(user, secret, account string) {
			if secret != "" {
				s.twilioCreds = append(s.twilioCreds, twilioCredential{
					user: sha256.Sum256([]byte(user)), secret: sha256.Sum256([]byte(secret)), account: account,
				})
			}
		}
		for _, a := range accounts {
			for _, tok := range a.Tokens {
				add(a.SID, tok, a.SID)
			}
			for _, k := range a.APIKeys {
				add(k.SID, k.Secret, a.SID)
			}
		}
	}
}

var errTwilioAuth = twilioErr(http.StatusUnauthorized, twilio.CodeAuthenticationFailed, "Authenticate")

// twilioAuthenticate checks HTTP Basic auth (see twilioCredentials) and
// that the account it names is the path's. A key or token of one account
// never authenticates for another account's path. It fails closed:
// anything else is 20003.
func (s *Server) twilioAuthenticate(r *http.Request) (string, error) {
	account, err := s.twilioCredentials(r)
	if err != nil || r.PathValue("account") != account {
		return "", errTwilioAuth
	}
	return account, nil
}

// twilioCredentials returns the account whose credentials the request's
// HTTP Basic auth presents: an account's SID and any of its auth tokens,
// or an API key's SID and its secret. The presented user and password are
// hashed and compared with every configured pair, all of them and both
// halves each time, in constant time; the matching pair is selected
// without a branch. So neither a secret, its length, which pair matched
// nor whether the user was known leaks through timing. Anything else is
// errTwilioAuth, and so is a request with more than one Authorization
// header.
func (s *Server) twilioCredentials(r *http.Request) (string, error) {
	if len(r.Header.Values("Authorization")) != 1 {
		// BasicAuth reads the first header, and the pass-through forwards
		// them all: a provider reading another would check credentials
		// Switchboard never did. Refused, fail closed.
		return "", errTwilioAuth
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", errTwilioAuth
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	found, at := 0, 0
	for i := range s.twilioCreds {
		c := &s.twilioCreds[i]
		m := subtle.ConstantTimeCompare(u[:], c.user[:]) & subtle.ConstantTimeCompare(p[:], c.secret[:])
		at = subtle.ConstantTimeSelect(m, i, at)
		found |= m
	}
	if found != 1 {
		return "", errTwilioAuth
	}
	return s.twilioCreds[at].account, nil
}
