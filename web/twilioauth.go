package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/switchboard-dev/switchboard/twilio"
)

// TwilioAccount is an account that may call the Twilio-compatible API:
// HTTP Basic auth with its SID as the user and any of its tokens as the
// password.
type TwilioAccount struct {
	SID    string
	Tokens []string
}

// WithTwilioAccounts lets the accounts call the Twilio-compatible API under
// /2010-04-01/. Without it every request there is refused (401, 20003).
func WithTwilioAccounts(accounts []TwilioAccount) Option {
	return func(s *Server) {
		s.twilioAccounts = map[string][][32]byte{}
		for _, a := range accounts {
			for _, tok := range a.Tokens {
				if tok != "" {
					s.twilioAccounts[a.SID] = append(s.twilioAccounts[a.SID], sha256.Sum256([]byte(tok)))
				}
			}
		}
	}
}

var errTwilioAuth = twilioErr(http.StatusUnauthorized, twilio.CodeAuthenticationFailed, "Authenticate")

// twilioAuthenticate checks HTTP Basic auth: the user is a configured
// account's SID, equal to the path's, and the password one of its tokens.
// Tokens are compared as SHA-256 hashes in constant time, all of them, so
// neither a token nor its length nor which one matched leaks through
// timing. It fails closed: anything else is 20003.
func (s *Server) twilioAuthenticate(r *http.Request) (string, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", errTwilioAuth
	}
	hashes := s.twilioAccounts[user]
	presented := sha256.Sum256([]byte(pass))
	match := 0
	for _, h := range hashes {
		match |= subtle.ConstantTimeCompare(presented[:], h[:])
	}
	if match != 1 || r.PathValue("account") != user {
		return "", errTwilioAuth
	}
	return user, nil
}
