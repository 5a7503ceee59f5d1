package sqlite

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
				r       store.AlertStateRow
				updated int64
				state   string
			)
			err := row.Scan(&r.Rule, &r.Key, &r.Version, &state, &updated)
			r.State, r.UpdatedAt = []byte(state), fromMicros(updated)
			return r, err
		})
}

// AlertHistory walks alert_events_alert backwards from the alert's (or
// the rule's) newest entry.
func (c *conn) AlertHistory(ctx context.Context, rule, key string, all bool, limit int) ([]switchboard.AlertEvent, error) {
	query, args := `SELECT id, rule, key, seq, what, value, at, notified, note FROM alert_events
        WHERE rule = ?1 AND key = ?2 ORDER BY id DESC LIMIT ?3`, []any{rule, key, limit}
	if all {
		query, args = `SELECT id, rule, key, seq, what, value, at, notified, note FROM alert_events
            WHERE rule = ?1 ORDER BY id DESC LIMIT ?2`, []any{rule, limit}
	}
	return collect(ctx, c.q, query, args,
		func(row rowScanner) (switchboard.AlertEvent, error) {
			var (
				ev switchboard.AlertEvent
				at int64
			)
			err := row.Scan(&ev.ID, &ev.Rule, &ev.Key, &ev.Seq, &ev.What, &ev.Value, &at, &ev.Notified, &ev.Note)
			ev.At = fromMicros(at)
			return ev, err
		})
}

func (c *conn) PutAlertState(ctx context.Context, row store.AlertStateRow, expect int64) (bool, error) {
	query := `UPDATE alert_states SET version = ?3, state = ?4, updated_at = ?5
        WHERE rule = ?1 AND key = ?2 AND version = ?6`
	if expect == 0 {
		query = `INSERT INTO alert_states (rule, key, version, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT (rule, key) DO NOTHING`
	}
	args := []any{row.Rule, row.Key, row.Version, string(row.State), micros(row.UpdatedAt)}
	if expect != 0 {
		args = append(args, expect)
	}
	res, err := c.q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (c *conn) DeleteAlertState(ctx context.Context, rule, key string, version int64) (bool, error) {
	res, err := c.q.ExecContext(ctx, `DELETE FROM alert_states WHERE rule = ? AND key = ? AND version = ?`, rule, key, version)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (c *conn) InsertAlertEvent(ctx context.Context, ev *switchboard.AlertEvent) (int64, error) {
	var id int64
	err := c.q.QueryRowContext(ctx, `INSERT INTO alert_events (rule, key, seq, what, value, at, notified, note)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		ev.Rule, ev.Key, ev.Seq, ev.What, ev.Value, micros(ev.At), ev.Notified, ev.Note).Scan(&id)
	return id, err
}

func (c *conn) TrimAlertHistory(ctx context.Context, rule, key string, keep int, before time.Time) error {
	if _, err := c.q.ExecContext(ctx, `DELETE FROM alert_events WHERE rule = ?1 AND key = ?2 AND id <=
        (SELECT id FROM alert_events WHERE rule = ?1 AND key = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)`,
		rule, key, keep); err != nil {
		return err
	}
	_, err := c.q.ExecContext(ctx, `DELETE FROM alert_events WHERE at < ?`, micros(before))
	return err
}
