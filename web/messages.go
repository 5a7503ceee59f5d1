package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/twilio"
)

// OutboundPool is a sender pool as the send APIs route to it.
type OutboundPool = outbound.PoolRoute

// WithOutbound lets POST /api/v1/messages accept messages for pools, in
// the configured order: a message that names no pool goes to the first
// pool serving its purpose. Without it every message is refused (no pool).
// WithMessages replaces it.
func WithOutbound(pools []OutboundPool) Option {
	return func(s *Server) { s.pools = slices.Clone(pools) }
}

// WithEgress lets status webhooks (the native API's status_webhook, the
// Twilio-compatible StatusCallback) name the internal addresses p allows.
// Without it, a webhook whose host is an internal IP literal or a
// localhost name is refused at create; delivery checks every address it
// connects to (deliver.Options.Egress).
func WithEgress(p egress.Policy) Option {
	return func(s *Server) { s.egress = p }
}

// Limits of a message create.
const (
	maxMessageBytes   = 64 << 10 // the JSON body
	maxBodyChars      = 1600     // Twilio's limit on a message body
	maxMediaURLs      = 10       // Twilio's limit on media per message
	maxIdempotencyKey = 255
)

// MessageRequestJSON is the body of POST /api/v1/messages.
type MessageRequestJSON struct {
	To        string   `json:"to"`
	Body      string   `json:"body,omitempty"`
	MediaURLs []string `json:"media_urls,omitempty"`
	// Pool or From (one of the pool's senders) picks the pool; with
	// neither, the first pool serving Purpose.
	Pool          string `json:"pool,omitempty"`
	From          string `json:"from,omitempty"`
	Purpose       string `json:"purpose,omitempty"` // default transactional
	StatusWebhook string `json:"status_webhook,omitempty"`
	// Template names the message's content for the breakdowns of delivery
	// latency and error codes (see switchboard.ValidTemplate).
	Template string `json:"template,omitempty"`
}

// MessageJSON is an outbound message in the API.
type MessageJSON struct {
	ID string `json:"id"`
	// SID is the message's SID in the Twilio-compatible API and in the
	// status callbacks delivered about it (OutboundMessage.SID).
	SID            string    `json:"sid"`
	IdempotencyKey string    `json:"idempotency_key"`
	AccountSID     string    `json:"account_sid"`
	Pool           string    `json:"pool"`
	Purpose        string    `json:"purpose"`
	From           string    `json:"from,omitempty"`
	To             string    `json:"to"`
	Body           string    `json:"body,omitempty"`
	MediaURLs      []string  `json:"media_urls,omitempty"`
	StatusWebhook  string    `json:"status_webhook,omitempty"`
	Template       string    `json:"template,omitempty"`
	State          string    `json:"state"`
	TwilioSID      string    `json:"twilio_sid,omitempty"`
	TwilioStatus   string    `json:"twilio_status,omitempty"`
	ErrorCode      int       `json:"error_code,omitempty"`
	Attempts       int       `json:"attempts"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	SentAt         time.Time `json:"sent_at,omitzero"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
	ReplayedAt     time.Time `json:"replayed_at,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// StatusChangeJSON is one recorded status update of a message.
type StatusChangeJSON struct {
	Status    string    `json:"status"`
	ErrorCode int       `json:"error_code,omitempty"`
	At        time.Time `json:"at"`
	Source    string    `json:"source"`
	Applied   bool      `json:"applied"`
}

// MessageDetailJSON is GET /api/v1/messages/{id}: the message and its
// status history, oldest first.
type MessageDetailJSON struct {
	Message MessageJSON        `json:"message"`
	History []StatusChangeJSON `json:"history"`
}

func (s *Server) messageJSON(m *switchboard.OutboundMessage) MessageJSON {
	return s.renderer().Message(m)
}

// Messages renders a page of messages as GET /api/v1/messages answers it.
func (rd Renderer) Messages(p *switchboard.Page[*switchboard.OutboundMessage]) Page[MessageJSON] {
	out := Page[MessageJSON]{Items: make([]MessageJSON, len(p.Items)), Next: p.Next}
	for i, m := range p.Items {
		out.Items[i] = rd.Message(m)
	}
	return out
}

// MessageDetail renders a message and its status history as GET
// /api/v1/messages/{id} answers them.
func (rd Renderer) MessageDetail(m *switchboard.OutboundMessage, hist []switchboard.StatusChange) MessageDetailJSON {
	out := MessageDetailJSON{Message: rd.Message(m), History: make([]StatusChangeJSON, len(hist))}
	for i, h := range hist {
		out.History[i] = StatusChangeJSON{Status: h.Status, ErrorCode: h.ErrorCode, At: h.At, Source: h.Source, Applied: h.Applied}
	}
	return out
}

// Message renders an outbound message; Redact hides its recipient, body,
// media and the status webhook's query.
func (rd Renderer) Message(m *switchboard.OutboundMessage) MessageJSON {
	out := MessageJSON{
		ID: m.ID, SID: m.SID(), IdempotencyKey: shownKey(m.IdempotencyKey), AccountSID: m.AccountSID, Pool: m.Pool, Purpose: string(m.Purpose),
		From: m.From, To: m.To, Body: m.Body, MediaURLs: m.MediaURLs, StatusWebhook: m.StatusWebhook,
		State: string(m.State), TwilioSID: m.TwilioSID, TwilioStatus: m.TwilioStatus, ErrorCode: m.ErrorCode,
		Attempts: m.Attempts, NextAttemptAt: m.NextAttemptAt, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
		SentAt: m.SentAt, DeliveredAt: m.DeliveredAt, ReplayedAt: m.ReplayedAt, LastError: m.LastError,
		Template: m.Template,
	}
	if rd.Redact {
		out.To, out.Body = redacted, redacted
		if len(out.MediaURLs) > 0 {
			out.MediaURLs = []string{redacted}
		}
		out.StatusWebhook = redactQuery(out.StatusWebhook)
	}
	return out
}

// shownKey is a stored idempotency key as the admin API shows it: a
// native API key as its caller gave it; any other (the Twilio-compatible
// API's) in its stored form, "twilio:{AccountSid}:{key}", which says where
// it came from.
func shownKey(stored string) string {
	if k, ok := switchboard.ParseMessageKey(stored); ok && k.API == switchboard.KeyAPINative {
		return k.Key
	}
	return stored
}

func absoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// invalid wraps switchboard.ErrInvalid with a message for the caller.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", switchboard.ErrInvalid, fmt.Sprintf(format, a...))
}

// checkMessage refuses a message request whose form is wrong; which pool
// takes it is the messages service's to say.
func (s *Server) checkMessage(req *MessageRequestJSON) error {
	switch {
	case req.To == "":
		return invalid("to: required")
	case !twilio.IsRecipient(req.To):
		return invalid("to %q: want an E.164 number such as +15551234567", req.To)
	case req.Body == "" && len(req.MediaURLs) == 0:
		return invalid("body or media_urls: one is required")
	case len([]rune(req.Body)) > maxBodyChars:
		return invalid("body: longer than %d characters", maxBodyChars)
	case len(req.MediaURLs) > maxMediaURLs:
		return invalid("media_urls: at most %d", maxMediaURLs)
	case req.StatusWebhook != "" && !absoluteHTTP(req.StatusWebhook):
		return invalid("status_webhook %q: want an absolute http(s) URL", req.StatusWebhook)
	case req.StatusWebhook != "" && s.egress.CheckURL(req.StatusWebhook) != nil:
		// Refused now rather than stored and dead-lettered at delivery;
		// the message names the host, not the URL's query.
		return invalid("status_webhook: %v", s.egress.CheckURL(req.StatusWebhook))
	case !switchboard.ValidTemplate(req.Template):
		return invalid("template %q: at most %d letters, digits, '_', '-', '.' or ':'", req.Template, switchboard.MaxTemplateLen)
	}
	for _, m := range req.MediaURLs {
		if !absoluteHTTP(m) {
			return invalid("media_urls: %q is not an absolute http(s) URL", m)
		}
	}
	if req.Purpose != "" && !switchboard.Purpose(req.Purpose).Valid() {
		return invalid("purpose %q: want one of %v", req.Purpose, switchboard.Purposes)
	}
	if req.From != "" && !twilio.IsSender(req.From) {
		return invalid("from %q: want an E.164 number or a short code", req.From)
	}
	return nil
}

// createMessage is POST /api/v1/messages. It stores the message before
// anything is sent, under the Idempotency-Key header: 202 with the message
// when it is new, 200 with the stored message when the key was used with
// the same payload, 409 when it was used with another. A recipient on the
// pool's account's suppression list is refused with 422, whose error names
// Twilio's code for it (21610 for an opt-out, 21614, 21211), and nothing is
// stored, unless the key already names a stored message.
func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get("Idempotency-Key")
	switch {
	case key == "":
		return invalid("the Idempotency-Key header is required")
	case len(key) > maxIdempotencyKey:
		return invalid("Idempotency-Key: longer than %d bytes", maxIdempotencyKey)
	}
	var req MessageRequestJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMessageBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return invalid("message body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("message body: unexpected data after the JSON object")
	}
	if err := s.checkMessage(&req); err != nil {
		return err
	}
	m, created, err := s.messages.Create(r.Context(), outbound.Draft{
		API: switchboard.KeyAPINative, Key: key, StatusWebhook: req.StatusWebhook,
		Payload: switchboard.Payload{To: req.To, Body: req.Body, MediaURLs: req.MediaURLs, Pool: req.Pool, From: req.From,
			Purpose: switchboard.Purpose(req.Purpose), Template: req.Template},
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	w.Header().Set("Location", "/api/v1/messages/"+url.PathEscape(m.ID))
	writeJSON(w, status, s.messageJSON(m))
	return nil
}

// getMessage is GET /api/v1/messages/{id}: the message and its history.
func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := s.store.OutboundMessage(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	hist, err := s.store.MessageHistory(r.Context(), m.ID)
	if err != nil {
		return fmt.Errorf("message history: %w", err)
	}
	writeJSON(w, http.StatusOK, s.renderer().MessageDetail(m, hist))
	return nil
}

// notReplayable refuses the replay of a message that is not failed, or
// that Twilio accepted (see switchboard.OutboundMessage.Replayable).
type notReplayable struct{ err error }

func (e *notReplayable) Error() string { return e.err.Error() }
func (e *notReplayable) Unwrap() error { return e.err }

// replayMessage is POST /api/v1/messages/{id}/replay: a failed message
// Twilio never accepted is queued again for a fresh run of send attempts
// (202 with the message); any other is refused with 409, an unknown id
// with 404.
func (s *Server) replayMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := s.messages.Replay(r.Context(), r.PathValue("id"))
	if errors.Is(err, switchboard.ErrConflict) {
		return &notReplayable{err}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, s.messageJSON(m))
	return nil
}

// listMessages is GET /api/v1/messages: newest first, filtered by pool,
// purpose, state, to, template, since and until, paginated by cursor and
// limit.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := switchboard.OutboundFilter{
		Pool:     q.Get("pool"),
		Purpose:  switchboard.Purpose(q.Get("purpose")),
		State:    switchboard.MessageState(q.Get("state")),
		To:       q.Get("to"),
		Template: q.Get("template"),
		Cursor:   q.Get("cursor"),
	}
	if f.Purpose != "" && !f.Purpose.Valid() {
		return invalid("purpose %q", f.Purpose)
	}
	if f.State != "" && !f.State.Valid() {
		return invalid("state %q", f.State)
	}
	var err error
	if f.Since, f.Until, f.Limit, err = rangeAndLimit(q); err != nil {
		return err
	}
	page, err := s.store.ListOutboundMessages(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.renderer().Messages(page))
	return nil
}
