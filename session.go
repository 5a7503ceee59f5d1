package switchboard

import "time"

// ConsoleSession is a signed-in console session. The browser holds a
// random secret in a cookie; the store holds only its hash (ID), so a
// copy of the store cannot be used to sign in.
type ConsoleSession struct {
	ID        string // hex SHA-256 of the cookie's secret
	CreatedAt time.Time
	ExpiresAt time.Time
}
