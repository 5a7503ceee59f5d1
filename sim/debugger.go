package sim

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/twilio"
)

// maxAlerts bounds the debugger log; the oldest alerts go first.
const maxAlerts = 10_000

// Alert is one entry of the debugger log, as Twilio's Monitor API shows
// it: a webhook that failed, with the code Twilio would give.
type Alert struct {
	SID         string    `json:"sid"` // NO followed by 32 hex digits
	AccountSID  string    `json:"account_sid"`
	ErrorCode   string    `json:"error_code"`
	LogLevel    string    `json:"log_level"` // "error", or "warning" for 12200
	AlertText   string    `json:"alert_text"`
	MoreInfo    string    `json:"more_info"`
	Method      string    `json:"request_method"`
	RequestURL  string    `json:"request_url"`
	ResourceSID string    `json:"resource_sid"`
	ServiceSID  string    `json:"service_sid,omitempty"`
	Response    string    `json:"response_body,omitempty"` // the start of the answer, if any
	Status      int       `json:"response_status,omitempty"`
	Created     time.Time `json:"-"`
}

// Code returns the alert's Twilio error code.
func (a *Alert) Code() twilio.Code {
	n, _ := strconv.Atoi(a.ErrorCode)
	return twilio.Code(n)
}

// alertOn records an alert for a webhook result Twilio did not accept.
func (s *Sim) alertOn(wh Webhook, r *WebhookResult) {
	if r.Error == nil {
		return
	}
	text := url.Values{
		"Msg":             {r.Error.Code.String() + ": " + r.Error.Reason},
		"url":             {r.URL},
		"httpMethod":      {r.Method},
		"sourceComponent": {"14100"},
	}
	if r.Status != 0 {
		text.Set("httpResponse", strconv.Itoa(r.Status))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordAlert(&Alert{
		SID:         s.newSID("NO"),
		AccountSID:  wh.AccountSID,
		ErrorCode:   strconv.Itoa(int(r.Error.Code)),
		LogLevel:    "error",
		AlertText:   text.Encode(),
		MoreInfo:    r.Error.Code.MoreInfo(),
		Method:      r.Method,
		RequestURL:  r.URL,
		ResourceSID: wh.ResourceSID,
		Response:    excerpt(r.Body, 1024),
		Status:      r.Status,
		Created:     time.Now(),
	})
	s.log.Warn("webhook failed", "account", wh.AccountSID, "code", int(r.Error.Code), "url", redactURL(r.URL), "reason", r.Error.Reason, "resource", wh.ResourceSID)
}

// alertOnStatus records an alert for a message the carrier failed or did
// not deliver, with its code, as Twilio's debugger logs 30007 and the
// like. s.mu must be held.
func (s *Sim) alertOnStatus(m *Message, status string, code twilio.Code, now time.Time) {
	if code == 0 || (status != StatusFailed && status != StatusUndelivered) {
		return
	}
	s.recordAlert(&Alert{
		SID:         s.newSID("NO"),
		AccountSID:  m.AccountSID,
		ErrorCode:   strconv.Itoa(int(code)),
		LogLevel:    "error",
		AlertText:   url.Values{"Msg": {code.String()}, "status": {status}}.Encode(),
		MoreInfo:    code.MoreInfo(),
		ResourceSID: m.SID,
		ServiceSID:  m.ServiceSID,
		Created:     now,
	})
}

// recordAlert appends a to the debugger log, the oldest going past
// maxAlerts, and queues it for its account's Debugger webhook. s.mu must
// be held.
func (s *Sim) recordAlert(a *Alert) {
	if len(s.alerts) == maxAlerts {
		s.alerts = append(s.alerts[:0], s.alerts[1:]...)
	}
	s.alerts = append(s.alerts, a)
	s.queueDebugger(a)
}

// Alerts returns the debugger log of an account, oldest first ("" for
// every account's).
func (s *Sim) Alerts(accountSID string) []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alert
	for _, a := range s.alerts {
		if accountSID == "" || a.AccountSID == accountSID {
			out = append(out, *a)
		}
	}
	return out
}

// excerpt returns at most n bytes of b as valid UTF-8.
func excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(b)
}

// alertJSON is an alert in the Monitor API's shape.
func alertJSON(a *Alert) map[string]any {
	return map[string]any{
		"sid":            a.SID,
		"account_sid":    a.AccountSID,
		"error_code":     a.ErrorCode,
		"log_level":      a.LogLevel,
		"alert_text":     a.AlertText,
		"more_info":      a.MoreInfo,
		"request_method": a.Method,
		"request_url":    a.RequestURL,
		"resource_sid":   a.ResourceSID,
		"response_body":  a.Response,
		"api_version":    "2010-04-01",
		"date_created":   a.Created.UTC().Format(time.RFC3339),
		"date_generated": a.Created.UTC().Format(time.RFC3339),
		"date_updated":   a.Created.UTC().Format(time.RFC3339),
		"url":            fmt.Sprintf("https://monitor.twilio.com/v1/Alerts/%s", a.SID),
	}
}
