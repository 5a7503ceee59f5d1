package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/switchboard-dev/switchboard/jobs"
)

// ErrDeliveryLocked means another process is already delivering from the
// same SQLite database. SQLite is the single-node engine: replicas that share
// the load use PostgreSQL.
var ErrDeliveryLocked = errors.New("another process is delivering from this database")

// claimDelivery takes the database's delivery lock (a lock file beside it,
// held until release) and then hands the send jobs a killed predecessor
// left running back to the queue. Holding the lock proves no other process is
// working them, so they need not wait out River's rescue period; without
// this, a crash would delay the events in flight by that long.
func (s *Store) claimDelivery(ctx context.Context) (release func(), err error) {
	f, err := os.OpenFile(s.path+".delivery.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open delivery lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s): %v", ErrDeliveryLocked, s.path, err)
	}
	release = func() {
		_ = unlockFile(f)
		f.Close()
	}
	// Send jobs a killed predecessor left running go back to the queue.
	res, err := s.write.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`)
	if err != nil {
		release()
		return nil, fmt.Errorf("release jobs left running by a previous process: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.logger.Warn("released jobs left running by a previous process", "jobs", n)
	}
	// Delivery jobs of earlier versions: the events table is the queue
	// now, and holds every event they named, so they are only clutter
	// that no worker would ever take.
	if _, err := s.write.ExecContext(ctx, `DELETE FROM river_job WHERE kind = ?`, jobs.DeliverArgs{}.Kind()); err != nil {
		release()
		return nil, fmt.Errorf("drop delivery jobs of an earlier version: %w", err)
	}
	return release, nil
}
