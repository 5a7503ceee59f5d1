package store

import (
	"context"
	"errors"

	"github.com/switchboard-dev/switchboard"
)

// Dashboard reads the dashboard's series.
func (s *Store) Dashboard(ctx context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error) {
	return nil, errors.New("dashboard: not implemented yet")
}
