package web

import (
	"encoding/base64"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

// Page is a page of a listing. Pass Next as ?cursor= for the following one.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// EventJSON is an event in the API.
type EventJSON struct {
	ID             string `json:"id"`
	RequestID      string `json:"request_id"`
	Route          string `json:"route"`
	AccountSID     string `json:"account_sid"`
	Kind           string `json:"kind"`
	MessageSID     string `json:"message_sid,omitempty"`
	CallSID        string `json:"call_sid,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	// Target is where the event goes when not to its route's target: a
	// message's status_webhook, for the copy of a status callback.
	Target         string    `json:"target,omitempty"`
	State          string    `json:"state"`
	Attempts       int       `json:"attempts"`
	ResponseStatus int       `json:"response_status"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// RequestJSON is a received request in the API. The body is text when it is
// valid UTF-8, otherwise base64 in body_base64.
type RequestJSON struct {
	ID         string      `json:"id"`
	ReceivedAt time.Time   `json:"received_at"`
	Route      string      `json:"route"`
	Method     string      `json:"method"`
	URL        string      `json:"url"`
	Header     http.Header `json:"header"`
	Body       *string     `json:"body,omitempty"`
	BodyBase64 string      `json:"body_base64,omitempty"`
	RemoteAddr string      `json:"remote_addr"`
	Outcome    string      `json:"outcome"`
	Reason     string      `json:"reason,omitempty"`
	EventID    string      `json:"event_id,omitempty"`
}

// AttemptJSON is a delivery attempt in the API.
type AttemptJSON struct {
	Number          int         `json:"number"`
	StartedAt       time.Time   `json:"started_at"`
	TargetURL       string      `json:"target_url,omitempty"`
	StatusCode      int         `json:"status_code,omitempty"`
	LatencyMS       float64     `json:"latency_ms"`
	ErrorClass      string      `json:"error_class,omitempty"`
	TwilioCode      int         `json:"twilio_code,omitempty"`
	Error           string      `json:"error,omitempty"`
	ResponseHeader  http.Header `json:"response_header,omitempty"`
	ResponseExcerpt string      `json:"response_excerpt,omitempty"`
	// ResponseExcerptBase64 replaces ResponseExcerpt when it is not UTF-8.
	ResponseExcerptBase64 string `json:"response_excerpt_base64,omitempty"`
}

// EventDetailJSON is GET /api/v1/events/{id}: the event, the request it came
// from and every attempt.
type EventDetailJSON struct {
	Event    EventJSON     `json:"event"`
	Request  RequestJSON   `json:"request"`
	Attempts []AttemptJSON `json:"attempts"`
}

// ReplayJSON answers a replay.
type ReplayJSON struct {
	Scheduled int `json:"scheduled"`
}

// Renderer turns stored records into the admin API's JSON shapes: the
// API answers with them and the command line prints them, so both show the
// same thing. With Redact it hides what admin.redact hides.
type Renderer struct{ Redact bool }

func (s *Server) renderer() Renderer { return Renderer{Redact: s.redact} }

func (s *Server) requestJSON(r *switchboard.Request) RequestJSON { return s.renderer().Request(r) }

// Events renders a page of events as GET /api/v1/events answers it.
func (rd Renderer) Events(p *switchboard.Page[*switchboard.Event]) Page[EventJSON] {
	out := Page[EventJSON]{Items: make([]EventJSON, len(p.Items)), Next: p.Next}
	for i, e := range p.Items {
		out.Items[i] = rd.Event(e)
	}
	return out
}

// EventDetail renders an event, its request and its attempts as GET
// /api/v1/events/{id} answers them.
func (rd Renderer) EventDetail(ev *switchboard.Event, req *switchboard.Request, atts []*switchboard.Attempt) EventDetailJSON {
	out := EventDetailJSON{Event: rd.Event(ev), Request: rd.Request(req), Attempts: make([]AttemptJSON, len(atts))}
	for i, a := range atts {
		out.Attempts[i] = rd.Attempt(a)
	}
	return out
}

// Event renders an event.
func (rd Renderer) Event(e *switchboard.Event) EventJSON {
	out := EventJSON{
		ID: e.ID, RequestID: e.RequestID, Route: e.Route, AccountSID: e.AccountSID, Kind: string(e.Kind),
		MessageSID: e.MessageSID, CallSID: e.CallSID, IdempotencyKey: e.IdempotencyKey, Target: e.Target, State: string(e.State),
		Attempts: e.Attempts, ResponseStatus: e.Response.Status, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
		NextAttemptAt: e.NextAttemptAt, DeliveredAt: e.DeliveredAt, LastError: e.LastError,
	}
	if rd.Redact {
		out.Target = redactQuery(out.Target)
	}
	return out
}

// redacted replaces what the admin API hides under admin.redact.
const redacted = switchboard.Redacted

// redactQuery hides a URL's query string, where GET webhooks carry their
// parameters.
func redactQuery(u string) string { return switchboard.RedactQuery(u) }

// Request renders a received request.
func (rd Renderer) Request(r *switchboard.Request) RequestJSON {
	if rd.Redact {
		body := redacted
		return RequestJSON{
			ID: r.ID, ReceivedAt: r.ReceivedAt, Route: r.Route, Method: r.Method, URL: redactQuery(r.URL), Header: r.Header,
			Body: &body, RemoteAddr: r.RemoteAddr, Outcome: string(r.Outcome), Reason: r.Reason, EventID: r.EventID,
		}
	}
	out := RequestJSON{
		ID: r.ID, ReceivedAt: r.ReceivedAt, Route: r.Route, Method: r.Method, URL: r.URL, Header: r.Header,
		RemoteAddr: r.RemoteAddr, Outcome: string(r.Outcome), Reason: r.Reason, EventID: r.EventID,
	}
	if utf8.Valid(r.Body) {
		body := string(r.Body)
		out.Body = &body
	} else {
		out.BodyBase64 = base64.StdEncoding.EncodeToString(r.Body)
	}
	return out
}

// Attempt renders a delivery attempt.
func (rd Renderer) Attempt(a *switchboard.Attempt) AttemptJSON {
	out := AttemptJSON{
		Number: a.Number, StartedAt: a.StartedAt, TargetURL: a.TargetURL, StatusCode: a.StatusCode,
		LatencyMS: float64(a.Latency.Microseconds()) / 1000, ErrorClass: a.ErrorClass, TwilioCode: a.TwilioCode,
		Error: a.Error, ResponseHeader: a.ResponseHeader,
	}
	switch {
	case rd.Redact:
		out.TargetURL, out.ResponseExcerpt = redactQuery(a.TargetURL), redacted
	case utf8.Valid(a.ResponseExcerpt):
		out.ResponseExcerpt = string(a.ResponseExcerpt)
	default:
		out.ResponseExcerptBase64 = base64.StdEncoding.EncodeToString(a.ResponseExcerpt)
	}
	return out
}
