package postgres

import (
	"context"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// The primitives of the alerts (migration 0011).

func (c *conn) AlertStates(ctx context.Context) ([]store.AlertStateRow, error) {
	return collect(ctx, c.q, `SELECT rule, key, version, state, updated_at FROM alert_states`, nil,
		func(row rowScanner) (store.AlertStateRow, error) {
			var (
				r     store.AlertStateRow
				state string
			)
			err := row.Scan(&r.Rule, &r.Key, &r.Version, &state, &r.UpdatedAt)
			r.State, r.UpdatedAt = []byte(state), r.UpdatedAt.UTC()
			return r, err
		})
}

// AlertHistory walks alert_events_alert backwards from the alert's (or
// the rule's) newest entry.
func (c *conn) AlertHistory(ctx context.Context, rule, key string, all bool, limit int) ([]switchboard.AlertEvent, error) {
	query, args := `SELECT id, rule, key, seq, what, value, at, notified, note FROM alert_events
        WHERE rule = $1 AND key = $2 ORDER BY id DESC LIMIT $3`, []any{rule, key, limit}
	if all {
		query, args = `SELECT id, rule, key, seq, what, value, at, notified, note FROM alert_events
            WHERE rule = $1 ORDER BY id DESC LIMIT $2`, []any{rule, limit}
	}
	return collect(ctx, c.q, query, args, func(row rowScanner) (switchboard.AlertEvent, error) {
		var ev switchboard.AlertEvent
		err := row.Scan(&ev.ID, &ev.Rule, &ev.Key, &ev.Seq, &ev.What, &ev.Value, &ev.At, &ev.Notified, &ev.Note)
		ev.At = ev.At.UTC()
		return ev, err
	})
}

// PutAlertState's update of a row another transaction is changing waits
// for it, then finds the version moved on and updates nothing; its insert
// of a row another is inserting waits likewise and does nothing.
func (c *conn) PutAlertState(ctx context.Context, row store.AlertStateRow, expect int64) (bool, error) {
	query := `UPDATE alert_states SET version = $3, state = $4, updated_at = $5
        WHERE rule = $1 AND key = $2 AND version = $6`
	args := []any{row.Rule, row.Key, row.Version, string(row.State), row.UpdatedAt, expect}
	if expect == 0 {
		query = `INSERT INTO alert_states (rule, key, version, state, updated_at) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (rule, key) DO NOTHING`
		args = args[:5]
	}
	tag, err := c.q.Exec(ctx, query, args...)
	return tag.RowsAffected() == 1, err
}

func (c *conn) DeleteAlertState(ctx context.Context, rule, key string, version int64) (bool, error) {
	tag, err := c.q.Exec(ctx, `DELETE FROM alert_states WHERE rule = $1 AND key = $2 AND version = $3`, rule, key, version)
	return tag.RowsAffected() == 1, err
}

func (c *conn) InsertAlertEvent(ctx context.Context, ev *switchboard.AlertEvent) (int64, error) {
	var id int64
	err := c.q.QueryRow(ctx, `INSERT INTO alert_events (rule, key, seq, what, value, at, notified, note)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		ev.Rule, ev.Key, ev.Seq, ev.What, ev.Value, ev.At, ev.Notified, ev.Note).Scan(&id)
	return id, err
}

func (c *conn) TrimAlertHistory(ctx context.Context, rule, key string, keep int, before time.Time) error {
	if _, err := c.q.Exec(ctx, `DELETE FROM alert_events WHERE rule = $1 AND key = $2 AND id <=
        (SELECT id FROM alert_events WHERE rule = $1 AND key = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)`,
		rule, key, keep); err != nil {
		return err
	}
	_, err := c.q.Exec(ctx, `DELETE FROM alert_events WHERE at < $1`, before)
	return err
}
