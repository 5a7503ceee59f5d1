package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Twilio's Console can POST each alert of an account's debugger to a URL
// of the account's (the "Debugger webhook"): a form signed like any
// webhook, with the alert's Sid, AccountSid, Timestamp, Level, PayloadType
// and a JSON Payload saying what the alert is about. The simulator does
// the same for Account.DebuggerURL, off the path that recorded the alert,
// through a bounded queue: when it is full, alerts are only logged.

const (
	// debuggerQueue bounds the alerts waiting to be POSTed.
	debuggerQueue = 1024
	// debuggerTries is how many times an alert is POSTed before it is
	// given up on; debuggerBackoff the wait before the second try,
	// doubled for each one after.
	debuggerTries   = 3
	debuggerBackoff = 500 * time.Millisecond
)

// debuggerPost is an alert on its way to its account's Debugger webhook.
type debuggerPost struct {
	token string
	wh    Webhook
}

// queueDebugger queues a for its account's Debugger webhook, twice at
// Callbacks.DuplicateRate, as Twilio may send a webhook twice. s.mu must
// be held.
func (s *Sim) queueDebugger(a *Alert) {
	acct, ok := s.accounts[a.AccountSID]
	if !ok || acct.DebuggerURL == "" || s.debugger == nil || s.closed {
		return
	}
	p := debuggerPost{token: acct.AuthTokens[0], wh: Webhook{
		AccountSID: a.AccountSID, URL: acct.DebuggerURL, Method: http.MethodPost,
		Params: DebuggerForm(a), Expect: twilio.ExpectStatus,
	}}
	enqueue := func() {
		select {
		case s.debugger <- p:
		default:
			s.log.Warn("debugger webhook queue full; alert not sent", "account", a.AccountSID, "alert", a.SID, "code", a.ErrorCode)
		}
	}
	enqueue()
	if knobs := s.cfg.Callbacks; knobs.DuplicateRate > 0 && s.rng.Float64() < knobs.DuplicateRate {
		s.after(knobs.DuplicateAfter, enqueue)
	}
}

// postDebugger POSTs the queued alerts, one at a time, until the Sim is
// closed.
func (s *Sim) postDebugger() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.debugger:
			s.postAlert(p)
		}
	}
}

// wait waits d, or less when the Sim closes first; false then.
func (s *Sim) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// postAlert makes up to debuggerTries tries of one alert. A failure is
// logged, never recorded as an alert: the Debugger webhook's own failures
// would otherwise feed themselves.
func (s *Sim) postAlert(p debuggerPost) {
	backoff := debuggerBackoff
	for try := 1; ; try++ {
		r, err := s.client.send(s.ctx, p.token, p.wh)
		if err == nil && r.Error == nil {
			return
		}
		if try == debuggerTries || s.ctx.Err() != nil {
			reason := ""
			switch {
			case err != nil:
				reason = err.Error()
			case r.Error != nil:
				reason = r.Error.Reason
			}
			s.log.Warn("debugger webhook failed", "account", p.wh.AccountSID, "url", redactURL(p.wh.URL),
				"alert", p.wh.Params.Get("Sid"), "tries", try, "reason", reason)
			return
		}
		if !s.wait(backoff) {
			return
		}
		backoff *= 2
	}
}

// DebuggerForm is the form Twilio's Debugger webhook carries for a.
func DebuggerForm(a *Alert) url.Values {
	level := "Error"
	if a.LogLevel == "warning" {
		level = "Warning"
	}
	payload, _ := json.Marshal(DebuggerPayload(a)) // strings and maps always encode
	return url.Values{
		"Sid":         {a.SID},
		"AccountSid":  {a.AccountSID},
		"Timestamp":   {a.Created.UTC().Format(time.RFC3339)},
		"Level":       {level},
		"PayloadType": {"application/json"},
		"Payload":     {string(payload)},
	}
}

// DebuggerPayload is the Payload of a's Debugger webhook: the resource,
// the code, more_info (the alert's text, parsed) and, for a webhook's
// failure, the request Twilio made and the answer it got.
func DebuggerPayload(a *Alert) map[string]any {
	more := map[string]string{}
	if v, err := url.ParseQuery(a.AlertText); err == nil {
		for k := range v {
			more[k] = v.Get(k)
		}
	}
	p := map[string]any{
		"resource_sid": a.ResourceSID,
		"service_sid":  a.ServiceSID,
		"error_code":   a.ErrorCode,
		"more_info":    more,
	}
	if a.RequestURL != "" {
		response := map[string]any{"headers": map[string]string{}, "body": a.Response}
		if a.Status != 0 {
			response["status_code"] = strconv.Itoa(a.Status)
		}
		p["webhook"] = map[string]any{
			"type": "application/json",
			"request": map[string]any{
				"url": a.RequestURL, "method": a.Method,
				"headers": map[string]string{}, "parameters": map[string]string{},
			},
			"response": response,
		}
	}
	return p
}
