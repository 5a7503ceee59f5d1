package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
)

func (c *conn) Session(ctx context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error) {
	s := switchboard.ConsoleSession{ID: id}
	err := c.q.QueryRow(ctx, `SELECT created_at, expires_at FROM console_sessions WHERE id = $1 AND expires_at > $2`,
		id, now).Scan(&s.CreatedAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

func (c *conn) InsertSession(ctx context.Context, s *switchboard.ConsoleSession) (bool, error) {
	tag, err := c.q.Exec(ctx, `INSERT INTO console_sessions (id, created_at, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO NOTHING`, s.ID, s.CreatedAt, s.ExpiresAt)
	return tag.RowsAffected() == 1, err
}

// The expired sessions are found through console_sessions_expires; those
// a concurrent sweep holds are left to it rather than waited for.
func (c *conn) DeleteSessions(ctx context.Context, id string, expired time.Time, limit int) error {
	_, err := c.q.Exec(ctx, `DELETE FROM console_sessions WHERE id = $1 OR id IN
        (SELECT id FROM console_sessions WHERE expires_at <= $2 ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)`,
		id, expired, limit)
	return err
}
