package console

import (
	"net/http"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/twilio"
)

// redactor applies admin.redact to what a page shows. Every stored value
// reaches a template through it, so a page cannot forget.
type redactor struct{ on bool }

// number hides a phone number whole.
func (r redactor) number(s string) string {
	if r.on && s != "" {
		return switchboard.Redacted
	}
	return s
}

// text hides the numbers in free text, such as an error, and the query
// strings of the URLs it quotes.
func (r redactor) text(s string) string {
	if r.on {
		return switchboard.RedactText(s)
	}
	return s
}

// url hides a URL's query string, and any number in its path.
func (r redactor) url(s string) string {
	if r.on {
		return switchboard.RedactNumbers(switchboard.RedactQuery(s))
	}
	return s
}

// whole hides a value entirely, such as a message's body.
func (r redactor) whole(s string) string {
	if r.on && s != "" {
		return switchboard.Redacted
	}
	return s
}

// headerView is one header line.
type headerView struct{ Name, Value string }

// urlHeaders hold URLs, whose query strings redaction hides.
var urlHeaders = map[string]bool{"Location": true, "Content-Location": true, "Referer": true}

func (r redactor) headers(h http.Header) []headerView {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []headerView
	for _, k := range names {
		for _, v := range h[k] {
			if urlHeaders[http.CanonicalHeaderKey(k)] {
				v = r.url(v)
			} else {
				v = r.text(v)
			}
			out = append(out, headerView{Name: k, Value: v})
		}
	}
	return out
}

// eventRow is an event as a row of the inspector.
type eventRow struct {
	ID, Route, Kind, State, SID, From, To, LastError string
	Created                                          time.Time
	Attempts, Code                                   int
}

func (r redactor) eventRow(e *switchboard.Event) eventRow {
	sid := e.MessageSID
	if sid == "" {
		sid = e.CallSID
	}
	return eventRow{
		ID: e.ID, Route: e.Route, Kind: string(e.Kind), State: string(e.State), SID: sid,
		From: r.number(e.From), To: r.number(e.To), LastError: r.text(e.LastError),
		Created: e.CreatedAt, Attempts: e.Attempts, Code: e.LastCode,
	}
}

// eventDetail is an event on its own page.
type eventDetail struct {
	eventRow
	RequestID, AccountSID, MessageSID, CallSID, IdempotencyKey, Target string
	Updated, NextAttempt, Delivered                                    time.Time
}

func (r redactor) eventDetail(e *switchboard.Event) eventDetail {
	return eventDetail{
		eventRow: r.eventRow(e), RequestID: e.RequestID, AccountSID: e.AccountSID, MessageSID: e.MessageSID, CallSID: e.CallSID,
		IdempotencyKey: r.text(e.IdempotencyKey), Target: r.url(e.Target),
		Updated: e.UpdatedAt, NextAttempt: e.NextAttemptAt, Delivered: e.DeliveredAt,
	}
}

// requestRow is a received request as a row of the requests tab.
type requestRow struct {
	ID, Route, Method, Outcome, Reason, RemoteAddr, EventID string
	Received                                                time.Time
}

func (r redactor) requestRow(q *switchboard.Request) requestRow {
	return requestRow{
		ID: q.ID, Route: q.Route, Method: q.Method, Outcome: string(q.Outcome), Reason: r.text(q.Reason),
		RemoteAddr: q.RemoteAddr, EventID: q.EventID, Received: q.ReceivedAt,
	}
}

// requestDetail is a received request exactly as it came, with the
// verdict on its signature.
type requestDetail struct {
	requestRow
	URL     string
	Headers []headerView
	Body    bodyView
	// Verified is whether its signature checked out: every accepted
	// request's (a duplicate is accepted too); a rejected one's Reason
	// says why it was refused.
	Verified bool
}

func (r redactor) requestDetail(q *switchboard.Request) *requestDetail {
	return &requestDetail{
		requestRow: r.requestRow(q), URL: r.url(q.URL), Headers: r.headers(q.Header),
		Body:     viewBody(q.Header.Get("Content-Type"), q.Body, r.on),
		Verified: q.Outcome == switchboard.OutcomeAccepted || q.Outcome == switchboard.OutcomeDuplicate,
	}
}

// answerView is the answer Twilio got.
type answerView struct {
	Status      int
	ContentType string
	Body        bodyView
	// Proxy is whether the route answered live; then Fallback says the
	// app's answer was not used, Why why, and Code what Twilio would have
	// logged for it.
	Proxy    bool
	Fallback bool
	Why      string
	Code     int
}

// attemptView is a delivery attempt.
type attemptView struct {
	Number       int
	Started      time.Time
	Target       string
	Status       int
	Latency      time.Duration
	Class, Error string
	Code         int
	Fix          string
	Headers      []headerView
	Excerpt      bodyView
	Failed       bool
}

func (r redactor) attempt(a *switchboard.Attempt) attemptView {
	return attemptView{
		Number: a.Number, Started: a.StartedAt, Target: r.url(a.TargetURL), Status: a.StatusCode, Latency: a.Latency,
		Class: a.ErrorClass, Error: r.text(a.Error), Code: a.TwilioCode, Fix: doctor.Fix(a.ErrorClass, twilio.Code(a.TwilioCode)),
		Headers: r.headers(a.ResponseHeader), Excerpt: viewBody(a.ResponseHeader.Get("Content-Type"), a.ResponseExcerpt, r.on),
		Failed: a.ErrorClass != "" || a.TwilioCode != 0 || a.StatusCode < 200 || a.StatusCode > 299,
	}
}

// reportView is a doctor's report.
type reportView struct {
	URL      string
	Kind     string
	Findings []findingView
	Hops     []doctor.Hop
	Elapsed  time.Duration
	Failed   bool
}

// findingView is one finding of a probe.
type findingView struct {
	Check, Status string
	Code          int
	Message, Fix  string
}

func (r redactor) report(rep *doctor.Report) *reportView {
	out := &reportView{URL: r.url(rep.URL), Kind: string(rep.Kind), Elapsed: rep.Elapsed, Failed: rep.Failed()}
	for _, f := range rep.Findings {
		out.Findings = append(out.Findings, findingView{Check: f.Check, Status: string(f.Status), Code: int(f.Code), Message: r.text(f.Message), Fix: f.Fix})
	}
	for _, h := range rep.Hops {
		h.URL = r.url(h.URL)
		out.Hops = append(out.Hops, h)
	}
	return out
}

// messageRow is an outbound message as a row of the messages page. Under
// redaction both numbers are hidden, the sender too: the page cannot tell
// a short code from a person's number, and the pool says where it went.
type messageRow struct {
	ID, SID, Pool, Purpose, Template, From, To, State, TwilioStatus, LastError string
	Code, Attempts                                                             int
	Created                                                                    time.Time
}

func (r redactor) messageRow(m *switchboard.OutboundMessage) messageRow {
	return messageRow{
		ID: m.ID, SID: m.SID(), Pool: m.Pool, Purpose: string(m.Purpose), Template: m.Template, From: r.number(m.From), To: r.number(m.To),
		State: string(m.State), TwilioStatus: m.TwilioStatus, LastError: r.text(m.LastError), Code: m.ErrorCode,
		Attempts: m.Attempts, Created: m.CreatedAt,
	}
}

// messageDetail is a message on its own page.
type messageDetail struct {
	messageRow
	IdempotencyKey, AccountSID, TwilioSID, Body, StatusWebhook string
	MediaURLs                                                  []string
	Updated, Sent, Delivered, Replayed, NextAttempt            time.Time
}

func (r redactor) messageDetail(m *switchboard.OutboundMessage) messageDetail {
	d := messageDetail{
		messageRow: r.messageRow(m), IdempotencyKey: r.text(m.IdempotencyKey), AccountSID: m.AccountSID, TwilioSID: m.TwilioSID,
		Body: r.whole(m.Body), StatusWebhook: r.url(m.StatusWebhook),
		Updated: m.UpdatedAt, Sent: m.SentAt, Delivered: m.DeliveredAt, Replayed: m.ReplayedAt, NextAttempt: m.NextAttemptAt,
	}
	d.MediaURLs = m.MediaURLs
	if r.on && len(m.MediaURLs) > 0 {
		d.MediaURLs = []string{switchboard.Redacted} // a picture can be as personal as a text
	}
	return d
}
