package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/switchboard-dev/switchboard"
)

func (c *conn) Session(ctx context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error) {
	var created, expires int64
	err := c.q.QueryRowContext(ctx, `SELECT created_at, expires_at FROM console_sessions WHERE id = ? AND expires_at > ?`,
		id, micros(now)).Scan(&created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &switchboard.ConsoleSession{ID: id, CreatedAt: fromMicros(created), ExpiresAt: fromMicros(expires)}, nil
}

func (c *conn) InsertSession(ctx context.Context, s *switchboard.ConsoleSession) (bool, error) {
	res, err := c.q.ExecContext(ctx, `INSERT INTO console_sessions (id, created_at, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (id) DO NOTHING`, s.ID, micros(s.CreatedAt), micros(s.ExpiresAt))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// The expired sessions are found through console_sessions_expires.
func (c *conn) DeleteSessions(ctx context.Context, id string, expired time.Time, limit int) error {
	_, err := c.q.ExecContext(ctx, `DELETE FROM console_sessions WHERE id = ?1 OR id IN
        (SELECT id FROM console_sessions WHERE expires_at <= ?2 ORDER BY expires_at LIMIT ?3)`, id, micros(expired), limit)
	return err
}
