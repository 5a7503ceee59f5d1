package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// messagesPage lists outbound messages, newest first, filtered.
type messagesPage struct {
	Query             *messageQuery
	Rows              []messageRow
	Purposes          []switchboard.Purpose
	Statuses          []switchboard.MessageState
	FirstURL, NextURL string
}

func (c *Console) messages(w http.ResponseWriter, r *http.Request, s *session) error {
	q, err := parseMessageQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := c.store.ListOutboundMessages(r.Context(), q.filter)
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	rd := c.redactor()
	p := messagesPage{Query: q, Purposes: switchboard.Purposes, Statuses: switchboard.MessageStates}
	for _, m := range page.Items {
		p.Rows = append(p.Rows, rd.messageRow(m))
	}
	v := q.values()
	p.FirstURL, p.NextURL = listURL("messages", v), nextURL("messages", v, page.Next)
	return c.render(w, s, http.StatusOK, "messages", "Messages", p)
}

// step is one point of a message's status timeline.
type step struct {
	Status  string
	Code    int
	At      time.Time
	Source  string
	Applied bool
	// After is the time since the step before; zero for the first.
	After time.Duration
}

// messagePage is a message with its status timeline.
type messagePage struct {
	Message  messageDetail
	Timeline []step
	// Total is the time from creation to the last step.
	Total     time.Duration
	CanReplay bool
	ReplayWhy string
	Notice    string
	// Debugger is what Twilio's Debugger reported about the message
	// (debugger.go); nil for nothing.
	Debugger *reportedView
}

func (c *Console) message(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p, err := c.loadMessage(r.Context(), id)
	if err != nil {
		return err
	}
	return c.render(w, s, http.StatusOK, "message", "Message", p)
}

func (c *Console) loadMessage(ctx context.Context, id string) (*messagePage, error) {
	m, err := c.store.OutboundMessage(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	hist, err := c.store.MessageHistory(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read the history of message %s: %w", id, err)
	}
	p := &messagePage{Message: c.redactor().messageDetail(m), CanReplay: m.Replayable() && c.o.Messages != nil}
	switch {
	case c.o.Messages == nil:
		p.ReplayWhy = "Replaying messages is not available on this server."
	case !m.Replayable():
		p.ReplayWhy = "Only a failed message Twilio never accepted can be replayed: this one is " + string(m.State) + "."
		if m.TwilioSID != "" {
			p.ReplayWhy = "Twilio accepted this message (it has a Twilio SID): sending it again could deliver it twice."
		}
	}
	if p.Debugger, err = c.reported(ctx, m.AccountSID, m.TwilioSID); err != nil {
		return nil, err
	}
	p.Timeline = timeline(m, hist)
	if n := len(p.Timeline); n > 0 {
		p.Total = p.Timeline[n-1].At.Sub(m.CreatedAt)
	}
	return p, nil
}

// timeline is a message's creation followed by its recorded status
// changes, each with the time since the one before.
func timeline(m *switchboard.OutboundMessage, hist []switchboard.StatusChange) []step {
	out := []step{{Status: "created", At: m.CreatedAt, Source: "api", Applied: true}}
	for _, h := range hist {
		prev := out[len(out)-1].At
		out = append(out, step{Status: h.Status, Code: h.ErrorCode, At: h.At, Source: h.Source, Applied: h.Applied, After: h.At.Sub(prev)})
	}
	return out
}

// replayMessage queues a failed message Twilio never accepted for a
// fresh run of sends.
func (c *Console) replayMessage(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if c.o.Messages == nil {
		return &httpError{http.StatusNotFound, "Replaying messages is not available on this server."}
	}
	status, notice := http.StatusOK, "Replay scheduled: the message is queued for sending again."
	_, err = c.o.Messages.Replay(r.Context(), id)
	switch {
	case errors.Is(err, switchboard.ErrConflict):
		status, notice = http.StatusConflict, "Not replayed: only a failed message Twilio never accepted can be replayed."
	case err != nil:
		return fmt.Errorf("replay message %s: %w", id, err)
	default:
		c.logger.Info("console: message replayed", "message", id)
	}
	p, err := c.loadMessage(r.Context(), id)
	if err != nil {
		return err
	}
	p.Notice = notice
	return c.render(w, s, status, "message", "Message", p)
}
