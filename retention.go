package switchboard

import (
	"errors"
	"fmt"
	"time"
)

// PruneKind is a kind of stored data that retention deletes when it is
// old enough (see Store.Prune and Retention).
type PruneKind string

// What retention prunes. Opt-outs (suppressions) are never pruned: an
// opt-out must hold until the recipient opts back in.
const (
	// PruneRejected: rejected requests (OutcomeRejected), by the time
	// they were received. Nothing refers to them.
	PruneRejected PruneKind = "rejected"
	// PruneDelivered: delivered events, by the time they last changed
	// (their delivery, or the delivery of their last replay), with their
	// attempts, the requests that were duplicates of them, and their own
	// request once none of its events is left (fan-out events share it).
	PruneDelivered PruneKind = "delivered"
	// PruneDead: dead events, with the same rows as PruneDelivered.
	PruneDead PruneKind = "dead"
	// PruneMessages: outbound messages no longer being sent (any state but
	// queued and sending: their send jobs are done), by the time they last
	// changed, with their status history. A message left sent, whose
	// final status never came (many carriers send no receipt), is pruned
	// like a delivered one.
	PruneMessages PruneKind = "messages"
	// PruneStickySenders: a recipient's sticky sender in a pool, once no
	// message to the recipient was created in that pool since the cutoff.
	PruneStickySenders PruneKind = "sticky_senders"
)

// PruneKinds lists every PruneKind, in the order the pruner works them.
var PruneKinds = []PruneKind{PruneRejected, PruneDelivered, PruneDead, PruneMessages, PruneStickySenders}

// Valid reports whether k is one of PruneKinds.
func (k PruneKind) Valid() bool {
	for _, v := range PruneKinds {
		if k == v {
			return true
		}
	}
	return false
}

// CheckPrune checks what both engines' Store.Prune need of a batch: a
// valid kind and a positive limit (ErrInvalid otherwise).
func (k PruneKind) CheckPrune(limit int) error {
	if !k.Valid() {
		return fmt.Errorf("%w: nothing to prune called %q", ErrInvalid, k)
	}
	if limit < 1 {
		return fmt.Errorf("%w: prune limit %d", ErrInvalid, limit)
	}
	return nil
}

// MinRetention is the shortest retention of events and outbound messages.
// An event is what recognises a webhook retried by Twilio as a duplicate,
// and an outbound message is what keeps its idempotency key from being
// sent twice: once either is pruned, the same webhook becomes a new event
// and the same key a new message. So their retention is the deduplication
// window, and a day keeps it well beyond any retry Twilio or a reasonable
// app makes.
const MinRetention = 24 * time.Hour

// Retention is how long each PruneKind is kept. Zero keeps it forever.
type Retention struct {
	Rejected      time.Duration
	Delivered     time.Duration
	Dead          time.Duration
	Messages      time.Duration
	StickySenders time.Duration
}

// Of returns the retention of kind; zero (forever) for an unknown kind.
func (r Retention) Of(kind PruneKind) time.Duration {
	switch kind {
	case PruneRejected:
		return r.Rejected
	case PruneDelivered:
		return r.Delivered
	case PruneDead:
		return r.Dead
	case PruneMessages:
		return r.Messages
	case PruneStickySenders:
		return r.StickySenders
	}
	return 0
}

// Validate refuses a negative retention, and an event or message
// retention below MinRetention (other than zero, forever), which would
// narrow the deduplication window.
func (r Retention) Validate() error {
	var errs []error
	for _, k := range PruneKinds {
		if err := k.CheckRetention(r.Of(k)); err != nil {
			errs = append(errs, fmt.Errorf("retention of %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// CheckRetention reports whether d may be kind's retention: zero (kept
// forever) or positive, and for events and messages, whose retention is
// their deduplication window, at least MinRetention. Its errors wrap
// ErrInvalid.
func (k PruneKind) CheckRetention(d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%w: %v is negative (0 keeps it forever)", ErrInvalid, d)
	case d > 0 && d < MinRetention && k != PruneRejected && k != PruneStickySenders:
		return fmt.Errorf("%w: %v is below the minimum of %v: it is the deduplication window (a webhook retried, or an idempotency key used again, after its original is pruned is taken as new)",
			ErrInvalid, d, MinRetention)
	}
	return nil
}
