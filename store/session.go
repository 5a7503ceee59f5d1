package store

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-dev/switchboard"
)

var errNotYet = errors.New("not implemented yet")

// CreateSession stores a console session.
func (s *Store) CreateSession(ctx context.Context, cs *switchboard.ConsoleSession) error {
	return errNotYet
}

// Session returns a live console session.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error) {
	return nil, errNotYet
}

// DeleteSession deletes a console session.
func (s *Store) DeleteSession(ctx context.Context, id string, now time.Time) error {
	return errNotYet
}
