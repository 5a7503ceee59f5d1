package store

import (
	"context"
	"errors"

	"github.com/switchboard-dev/switchboard"
)

// DebuggerAlerts implements switchboard.Store.
func (s *Store) DebuggerAlerts(ctx context.Context, f switchboard.DebuggerFilter) (*switchboard.Page[*switchboard.DebuggerAlert], error) {
	return nil, errors.New("debugger alerts: not implemented yet")
}
