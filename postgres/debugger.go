package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// The primitives of Twilio's Debugger alerts (migration 0012).
const (
	selectDebugger = `SELECT id, account_sid, sid, level, occurred_at, payload_type, resource_sid, error_code,
    method, url, status, more_info, payload, received_at FROM debugger_alerts`
	insertDebugger = `INSERT INTO debugger_alerts
    (id, account_sid, sid, level, occurred_at, payload_type, resource_sid, error_code, method, url, status,
     more_info, payload, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (account_sid, sid) DO NOTHING`
)

func scanDebugger(row rowScanner) (*switchboard.DebuggerAlert, error) {
	var a switchboard.DebuggerAlert
	err := row.Scan(&a.EventID, &a.AccountSID, &a.Sid, &a.Level, &a.Timestamp, &a.PayloadType, &a.ResourceSID, &a.ErrorCode,
		&a.Method, &a.URL, &a.Status, &a.MoreInfo, &a.Payload, &a.ReceivedAt)
	if err != nil {
		return nil, err
	}
	a.Timestamp, a.ReceivedAt = a.Timestamp.UTC(), a.ReceivedAt.UTC()
	return &a, nil
}

func (c *conn) DebuggerAlerts(ctx context.Context, q store.Query) ([]*switchboard.DebuggerAlert, error) {
	query, args := dialect.Select(selectDebugger, q)
	return collect(ctx, c.q, query, args, scanDebugger)
}

func (c *conn) DebuggerByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, `SELECT `+minuteOf("received_at")+`, error_code::text, count(*) FROM debugger_alerts
        WHERE received_at >= $1 AND received_at < $2 GROUP BY 1, 2`, from, until)
}

// InsertDebuggerAlerts inserts the alerts in one round trip.
func (c *conn) InsertDebuggerAlerts(ctx context.Context, alerts []*switchboard.DebuggerAlert) error {
	b := &pgx.Batch{}
	for _, a := range alerts {
		b.Queue(insertDebugger, a.EventID, a.AccountSID, a.Sid, a.Level, a.Timestamp, a.PayloadType, a.ResourceSID,
			a.ErrorCode, a.Method, a.URL, a.Status, a.MoreInfo, nonNil(a.Payload), a.ReceivedAt)
	}
	if err := c.q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("store debugger alerts: %w", err)
	}
	return nil
}

func (c *conn) DeleteDebuggerAlertsOf(ctx context.Context, events []string) error {
	if len(events) == 0 {
		return nil
	}
	_, err := c.q.Exec(ctx, `DELETE FROM debugger_alerts WHERE id = ANY($1)`, events)
	return err
}
