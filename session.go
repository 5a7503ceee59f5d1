package switchboard

import (
	"fmt"
	"time"
)

// ConsoleSession is a signed-in console session. The browser holds a
// random secret in a cookie; the store holds only its hash (ID), so a
// copy of the store cannot be used to sign in.
type ConsoleSession struct {
	ID        string // hex SHA-256 of the cookie's secret
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionIDLen is the length of a ConsoleSession's ID: a SHA-256 in
// lower-case hex.
const SessionIDLen = 64

// ValidSessionID reports whether id has the form of a session's ID
// (SessionIDLen lower-case hex digits): anything else names no session.
func ValidSessionID(id string) bool {
	if len(id) != SessionIDLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Validate checks what a store needs of a new session (ErrInvalid): an ID
// of the right form, and an expiry after its creation.
func (s *ConsoleSession) Validate() error {
	if !ValidSessionID(s.ID) {
		return fmt.Errorf("%w: a console session's id is %d lower-case hex digits", ErrInvalid, SessionIDLen)
	}
	if !s.ExpiresAt.After(s.CreatedAt) {
		return fmt.Errorf("%w: console session expires at %s, not after its creation at %s", ErrInvalid, s.ExpiresAt, s.CreatedAt)
	}
	return nil
}
