// Package store is Switchboard's store, written once: every use case of
// switchboard.Store (ingest batches, fan-out, attempt records, replay,
// messages and their sends, replays and statuses, suppression, sticky
// senders, retention, account scoping) is orchestrated here over a Driver
// of SQL primitives, and each engine (sqlite, postgres) supplies only its
// driver: SQL text, scanning and its own locking. The model is River's
// client over riverdriver.
//
// Writes that webhooks wait on are group-committed (writer); status
// updates have a committer of their own; API writes (messages,
// suppressions) run in plain transactions of their own.
package store

import (
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
)

// Store implements every use case of switchboard.Store over a Driver. An
// engine embeds it and adds what is its own: Ping, delivery workers and
// Close.
type Store struct {
	driver Driver
	// writer provides Ingest and RecordAttempts: group-committed writes,
	// each batch written by flush in one transaction.
	*writer
	// statuses group-commits UpdateMessageStatus, each batch written by
	// flushStatuses in one transaction.
	statuses *groupcommit.Committer[*statusOp]
	// sends group-commits RecordSend, each batch written by flushSends in
	// one transaction, with the status updates' options.
	sends    *groupcommit.Committer[*sendOp]
	now      func() time.Time
	terminal terminalCounts // see Stats
	// countries finds the recipients' countries for the rollups.
	countries countries
}

// Options tunes a Store's committers.
type Options struct {
	Commit groupcommit.Options // ingests and attempt records
	Status groupcommit.Options // status updates, and send results
	// AttemptsApart gives attempt records commits of their own, beside
	// webhooks', for an engine with concurrent writers; without it they
	// ride along with webhooks' commits (see writer).
	AttemptsApart bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// New returns a Store over d and starts its committers; Close stops them.
func New(d Driver, o Options) *Store {
	s := &Store{driver: d, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.writer = newWriter(s.flush, o.Commit, o.AttemptsApart)
	s.statuses = groupcommit.New(s.flushStatuses, o.Status)
	s.sends = groupcommit.New(s.flushSends, o.Status)
	return s
}

// Close flushes the queued writes, status updates and send results
// included, and stops the committers. The engine closes its connections
// after it.
func (s *Store) Close() {
	s.sends.Close()
	s.statuses.Close()
	s.writer.Close()
}

// first returns the only item of a selection of at most one, or
// ErrNotFound, wrapped with what, for none.
func first[T any](items []T, err error, what string) (T, error) {
	var zero T
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	if len(items) == 0 {
		return zero, fmt.Errorf("%s: %w", what, switchboard.ErrNotFound)
	}
	return items[0], nil
}

// since adds the conditions of a time range on column to where.
func since(where []Cond, column string, from, until time.Time) []Cond {
	if !from.IsZero() {
		where = append(where, Ge(column, from))
	}
	if !until.IsZero() {
		where = append(where, Lt(column, until))
	}
	return where
}

// eq adds column = v to where when v is not empty.
func eq[T ~string](where []Cond, column string, v T) []Cond {
	if v == "" {
		return where
	}
	return append(where, Eq(column, string(v)))
}

// code adds column = c to where when c is a code (above 0), with the
// predicate of the column's partial index, which c implies, so that the
// engines use it.
func code(where []Cond, column string, c int) []Cond {
	if c <= 0 {
		return where
	}
	return append(where, Eq(column, c), NotZero(column))
}

// micro cuts t to the engines' precision (microseconds, UTC), so that what
// a use case returns is what it stored.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
