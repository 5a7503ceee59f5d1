package store

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// sessionSweep bounds how many expired sessions one CreateSession or
// DeleteSession deletes: each sign-in sweeps, so the table holds little
// more than the live sessions, and no one call deletes without end.
const sessionSweep = 100

// CreateSession stores a console session, in one transaction with a sweep
// of up to sessionSweep sessions expired by its creation. A zero
// CreatedAt is now. An invalid session is ErrInvalid (see
// ConsoleSession.Validate); an id already stored is ErrConflict, and the
// stored session is left alone.
func (s *Store) CreateSession(ctx context.Context, cs *switchboard.ConsoleSession) error {
	row := *cs
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now()
	}
	row.CreatedAt, row.ExpiresAt = micro(row.CreatedAt), micro(row.ExpiresAt)
	if err := row.Validate(); err != nil {
		return err
	}
	err := s.driver.InTx(ctx, func(tx Tx) error {
		if err := tx.DeleteSessions(ctx, "", row.CreatedAt, sessionSweep); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		created, err := tx.InsertSession(ctx, &row)
		if err != nil {
			return err
		}
		if !created {
			return switchboard.ErrConflict
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	*cs = row
	return nil
}

// Session returns the console session with id that is live at now (it
// expires after now), or an error wrapping ErrNotFound, also for an id
// that cannot be a session's.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error) {
	if !switchboard.ValidSessionID(id) {
		return nil, fmt.Errorf("console session: %w", switchboard.ErrNotFound)
	}
	cs, err := s.driver.Read().Session(ctx, id, now)
	if err == nil && cs == nil {
		err = switchboard.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("console session: %w", err)
	}
	return cs, nil
}

// DeleteSession deletes the console session with id, if there is one,
// and up to sessionSweep sessions expired at now, oldest first, in one
// transaction.
func (s *Store) DeleteSession(ctx context.Context, id string, now time.Time) error {
	if !switchboard.ValidSessionID(id) {
		id = "" // names no session: only the sweep is left
	}
	err := s.driver.InTx(ctx, func(tx Tx) error { return tx.DeleteSessions(ctx, id, now, sessionSweep) })
	if err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}
