package store

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// DebuggerReader is the primitives that read Twilio's Debugger alerts
// (table debugger_alerts; an alert's id is its event's).
type DebuggerReader interface {
	// DebuggerAlerts returns the alerts q selects.
	DebuggerAlerts(ctx context.Context, q Query) ([]*switchboard.DebuggerAlert, error)
	// DebuggerByMinute counts the alerts received, by minute and error
	// code (Key, in decimal), through the index on their receipt time.
	DebuggerByMinute(ctx context.Context, from, until time.Time) ([]MinuteCount, error)
}

// DebuggerWriter is the primitives that write them.
type DebuggerWriter interface {
	// InsertDebuggerAlerts inserts alerts, each with its EventID as its
	// id, unless an alert with its account and Sid is stored: that one
	// stays as it is.
	InsertDebuggerAlerts(ctx context.Context, alerts []*switchboard.DebuggerAlert) error
	// DeleteDebuggerAlertsOf deletes the alerts of the given (deleted)
	// events.
	DeleteDebuggerAlertsOf(ctx context.Context, events []string) error
}

var debuggerByTime = timeIndex{TableDebugger, "received_at", "debugger_alerts_received", NewestReceivedFirst}

// DebuggerAlerts implements switchboard.Store: newest first by receipt,
// through the time index when there is a range (see listing), by
// resource or code otherwise.
func (s *Store) DebuggerAlerts(ctx context.Context, f switchboard.DebuggerFilter) (*switchboard.Page[*switchboard.DebuggerAlert], error) {
	if f.ErrorCode < 0 {
		return nil, fmt.Errorf("%w: debugger alerts by code %d: codes are positive", switchboard.ErrInvalid, f.ErrorCode)
	}
	var where []Cond
	if f.AccountSID != "" {
		where = append(where, Eq("account_sid", f.AccountSID))
	}
	if f.ResourceSID != "" {
		where = append(where, Eq("resource_sid", f.ResourceSID), NotEmpty("resource_sid"))
	}
	if f.ErrorCode > 0 {
		where = append(where, Eq("error_code", f.ErrorCode))
	}
	if !f.Since.IsZero() {
		where = append(where, Ge("received_at", f.Since.UTC()))
	}
	if !f.Until.IsZero() {
		where = append(where, Lt("received_at", f.Until.UTC()))
	}
	r := s.driver.Read()
	k := listed[*switchboard.DebuggerAlert]{
		what:  "list debugger alerts",
		index: debuggerByTime,
		list:  func(q Query) ([]*switchboard.DebuggerAlert, error) { return r.DebuggerAlerts(ctx, q) },
		at:    func(a *switchboard.DebuggerAlert) time.Time { return a.ReceivedAt },
		id:    func(a *switchboard.DebuggerAlert) string { return a.EventID },
	}
	return k.page(ctx, r, where, "", f.Since, f.Until, f.Cursor, f.Limit)
}

// debuggerAlertsTx stores the alerts of the accepted items whose events
// were created (not duplicates), each naming its event and its request's
// receipt time.
func debuggerAlertsTx(ctx context.Context, tx Tx, items []*switchboard.Ingest, originals map[int]*switchboard.Event) error {
	var alerts []*switchboard.DebuggerAlert
	for i, it := range items {
		if it.Debugger == nil || it.Event == nil || it.Request.Outcome != switchboard.OutcomeAccepted || originals[i] != nil {
			continue
		}
		a := *it.Debugger
		a.EventID, a.ReceivedAt = it.Event.ID, it.Request.ReceivedAt.UTC()
		alerts = append(alerts, &a)
	}
	if len(alerts) == 0 {
		return nil
	}
	if err := tx.InsertDebuggerAlerts(ctx, alerts); err != nil {
		return fmt.Errorf("store %d debugger alerts: %w", len(alerts), err)
	}
	return nil
}
