package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// checkpointInterval is how often the background checkpointer copies the
// write-ahead log back into the database file.
const checkpointInterval = 500 * time.Millisecond

// By default SQLite checkpoints inside whichever commit pushes the WAL past
// 1000 pages: that commit then copies pages and fsyncs the database file,
// and every webhook waiting on it waits too. Switchboard turns the automatic
// checkpoint off (wal_autocheckpoint(0) on the writer) and checkpoints from
// a connection of its own instead. A PASSIVE checkpoint never blocks the
// writer or readers. A checkpoint that meets an I/O error fails the store
// (see fault), and then no checkpoint runs again in this process: after a
// failed fsync a later one could report success for pages never written,
// and then reset the log that still holds them.
func (s *Store) runCheckpointer(db *sql.DB, every time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.fault.failed:
			return
		case <-stop:
			// Leave a small WAL behind; the next open does not replay a
			// large one.
			if err := checkpoint(db, "TRUNCATE"); err != nil {
				s.logger.Warn("final WAL checkpoint", "err", err)
			}
			return
		case <-t.C:
			// A fault is the store's failure, reported by whoever
			// watches Store.Failed.
			if err := checkpoint(db, "PASSIVE"); err != nil && !errors.Is(err, ErrStoreFailed) {
				s.logger.Warn("WAL checkpoint", "err", err)
			}
		}
	}
}

func checkpoint(db *sql.DB, mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, logFrames, checkpointed int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &checkpointed); err != nil {
		return fmt.Errorf("wal_checkpoint(%s): %w", mode, err)
	}
	return nil
}
