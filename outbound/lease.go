package outbound

import (
	"errors"
	"time"
)

// Lease is this process's right to send among replicas that share a
// store (server's liveness holds it): while it holds it, the others leave
// its send jobs alone; once it has lapsed, they may have taken them over.
type Lease interface {
	// HeldSince reports whether the lease is held now and has been,
	// without a lapse, since start.
	HeldSince(start time.Time) bool
}

// ErrLeaseLost is a send not made because this process's lease lapsed
// since the send began, or is not held: another replica may have taken its
// job. The message stays sending; whichever process runs its job next
// looks it up at Twilio before anything is resent.
var ErrLeaseLost = errors.New("lease lost: another replica may be sending this message")
