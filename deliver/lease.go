package deliver

import (
	"errors"
	"time"
)

// Lease is this process's right to deliver among replicas that share a
// store: while it holds it, the others leave its jobs alone; once it has
// lapsed, they may have taken them over.
type Lease interface {
	// HeldSince reports whether the lease is held now and has been,
	// without a lapse, since start.
	HeldSince(start time.Time) bool
}

// ErrLeaseLost is a delivery not made because this process's lease lapsed
// since it began, or is not held: another replica may be making it. The
// job fails internally and runs again later, when the attempt count tells
// whether it is still due.
var ErrLeaseLost = errors.New("lease lost: another replica may be delivering this event")
