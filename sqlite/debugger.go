package sqlite

import (
	"context"
	"fmt"
	"time"

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
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (account_sid, sid) DO NOTHING`
	deleteDebuggerOf = `DELETE FROM debugger_alerts WHERE id IN (SELECT value FROM json_each(?))`
	debuggerByMinute = `SELECT received_at - received_at % 60000000 AS minute, CAST(error_code AS TEXT), count(*)
        FROM debugger_alerts INDEXED BY debugger_alerts_received
        WHERE received_at >= ?1 AND received_at < ?2 GROUP BY minute, error_code`
)

func scanDebugger(row rowScanner) (*switchboard.DebuggerAlert, error) {
	var (
		a                  switchboard.DebuggerAlert
		occurred, received int64
	)
	err := row.Scan(&a.EventID, &a.AccountSID, &a.Sid, &a.Level, &occurred, &a.PayloadType, &a.ResourceSID, &a.ErrorCode,
		&a.Method, &a.URL, &a.Status, &a.MoreInfo, &a.Payload, &received)
	if err != nil {
		return nil, err
	}
	a.Timestamp, a.ReceivedAt = fromMicros(occurred), fromMicros(received)
	return &a, nil
}

func (c *conn) DebuggerAlerts(ctx context.Context, q store.Query) ([]*switchboard.DebuggerAlert, error) {
	query, args := dialect.Select(selectDebugger, q)
	return collect(ctx, c.q, query, args, scanDebugger)
}

func (c *conn) DebuggerByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, debuggerByMinute, from, until)
}

func (c *conn) InsertDebuggerAlerts(ctx context.Context, alerts []*switchboard.DebuggerAlert) error {
	for _, a := range alerts {
		if _, err := c.q.ExecContext(ctx, insertDebugger, a.EventID, a.AccountSID, a.Sid, a.Level, micros(a.Timestamp),
			a.PayloadType, a.ResourceSID, a.ErrorCode, a.Method, a.URL, a.Status, a.MoreInfo, nonNil(a.Payload),
			micros(a.ReceivedAt)); err != nil {
			return fmt.Errorf("store debugger alert %s: %w", a.Sid, err)
		}
	}
	return nil
}

func (c *conn) DeleteDebuggerAlertsOf(ctx context.Context, events []string) error {
	if len(events) == 0 {
		return nil
	}
	_, err := c.q.ExecContext(ctx, deleteDebuggerOf, jsonList(events))
	return err
}
