package store

import (
	"context"
	"errors"

	"github.com/switchboard-dev/switchboard"
)

var errTODOAlerts = errors.New("alert states: not implemented yet")

// AlertStates implements switchboard.Store.
func (s *Store) AlertStates(ctx context.Context) ([]switchboard.AlertState, error) {
	return nil, errTODOAlerts
}

// PutAlertState implements switchboard.Store.
func (s *Store) PutAlertState(ctx context.Context, st *switchboard.AlertState, ev *switchboard.AlertEvent) error {
	return errTODOAlerts
}

// AlertHistory implements switchboard.Store.
func (s *Store) AlertHistory(ctx context.Context, rule, key string, limit int) ([]switchboard.AlertEvent, error) {
	return nil, errTODOAlerts
}
