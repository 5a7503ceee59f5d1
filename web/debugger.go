package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// debuggerStore is what GET /api/v1/debugger reads.
type debuggerStore interface {
	DebuggerAlerts(ctx context.Context, f switchboard.DebuggerFilter) (*switchboard.Page[*switchboard.DebuggerAlert], error)
}

// DebuggerAlertJSON is one of Twilio's Debugger alerts as the admin API
// shows it. Payload is the Payload Twilio sent (JSON), redacted under
// admin.redact.
type DebuggerAlertJSON struct {
	Sid         string          `json:"sid"`
	AccountSID  string          `json:"account_sid"`
	Level       string          `json:"level"`
	Timestamp   time.Time       `json:"timestamp"`
	ResourceSID string          `json:"resource_sid,omitempty"`
	ErrorCode   int             `json:"error_code"`
	Method      string          `json:"method,omitempty"`
	URL         string          `json:"url,omitempty"`
	Status      int             `json:"status,omitempty"`
	MoreInfo    string          `json:"more_info,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	EventID     string          `json:"event_id"`
	ReceivedAt  time.Time       `json:"received_at"`
}

// DebuggerAlert renders an alert as GET /api/v1/debugger lists it.
func (rd Renderer) DebuggerAlert(a *switchboard.DebuggerAlert) DebuggerAlertJSON {
	if rd.Redact {
		a = a.Redact()
	}
	payload := json.RawMessage(a.Payload)
	if !json.Valid(payload) {
		payload = json.RawMessage(`null`)
	}
	return DebuggerAlertJSON{Sid: a.Sid, AccountSID: a.AccountSID, Level: a.Level, Timestamp: a.Timestamp,
		ResourceSID: a.ResourceSID, ErrorCode: a.ErrorCode, Method: a.Method, URL: a.URL, Status: a.Status,
		MoreInfo: a.MoreInfo, Payload: payload, EventID: a.EventID, ReceivedAt: a.ReceivedAt}
}

// listDebugger is GET /api/v1/debugger: Twilio's Debugger alerts, newest
// first, by resource_sid, code, since, until, limit and cursor.
func (s *Server) listDebugger(w http.ResponseWriter, r *http.Request) error {
	st, ok := s.store.(debuggerStore)
	if !ok {
		return fmt.Errorf("%w: this store keeps no Debugger alerts", switchboard.ErrNotFound)
	}
	q := r.URL.Query()
	f := switchboard.DebuggerFilter{ResourceSID: q.Get("resource_sid"), Cursor: q.Get("cursor")}
	if v := q.Get("code"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil || code < 1 {
			return fmt.Errorf("%w: code: want a positive number", switchboard.ErrInvalid)
		}
		f.ErrorCode = code
	}
	var err error
	if f.Since, f.Until, f.Limit, err = rangeAndLimit(q); err != nil {
		return err
	}
	page, err := st.DebuggerAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	rd := s.renderer()
	out := Page[DebuggerAlertJSON]{Items: make([]DebuggerAlertJSON, len(page.Items)), Next: page.Next}
	for i, a := range page.Items {
		out.Items[i] = rd.DebuggerAlert(a)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
