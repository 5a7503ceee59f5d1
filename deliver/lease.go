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

// HeldSince reports whether deliveries decided on what this process read
// at start may still be made: its lease has been held, without a lapse,
// since then (always, without a lease: it delivers alone). A job that
// reads its events together, and then waits for workers to deliver them,
// asks before each (see package jobs).
func (d *Deliverer) HeldSince(start time.Time) bool {
	return d.lease == nil || d.lease.HeldSince(start)
}
