package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/twilio"
)

// What intake does for outbound messages (Options.Outbound) with a webhook
// it has stored: a message status callback updates the outbound message
// Twilio knows by its MessageSid, and an inbound message whose body is an
// opt-out or opt-in keyword suppresses or unsuppresses its sender for the
// account. Both happen after Twilio has its answer, off the answer's path,
// and never change it: the webhook is stored, answered and delivered to the
// app exactly as without them. A duplicate of a stored webhook was acted on
// when it was first stored, and a rejected request is never acted on, so an
// unsigned request can neither move a message nor opt anyone out.
//
// A status callback of a message that has a status webhook is also
// delivered there, as a fan-out event of the callback (Event.Target: see
// switchboard.Ingest.Fanout): looked up before the callback is stored and
// committed with it, or, when the message is found only after the answer
// (its SID was not recorded yet), stored then (addLateStatusWebhook).
//
// Logs name events, message SIDs and accounts, never phone numbers or
// bodies.

// statusSource is the StatusUpdate.Source of a status callback.
const statusSource = "callback"

// outboundFollowUp returns what to do for outbound messages about a stored,
// new webhook once Twilio has its answer, or nil when there is nothing to
// do. It reads the parameters here, on the answer's path, and touches the
// store only in the function it returns.
func (h *Handler) outboundFollowUp(ctx context.Context, item *switchboard.Ingest, form url.Values) func() {
	ev := item.Event
	if form == nil || ev == nil {
		return nil
	}
	// Twilio hanging up must not cut the follow-up short; ackWait bounds it.
	ctx = context.WithoutCancel(ctx)
	at := item.Request.ReceivedAt
	switch {
	case ev.Kind == switchboard.KindMessageStatus:
		status := statusOf(form)
		// Twilio's SID, from the body: the event's may be Switchboard's.
		twilioSID := twilio.MessageSIDOf(form)
		if twilioSID == "" || status == "" || ev.AccountSID == "" {
			return nil
		}
		code, _ := strconv.Atoi(form.Get("ErrorCode")) // absent or malformed: no code
		// The event's account is the route's, whose token verified the
		// callback: only that account's message is updated.
		u := switchboard.StatusUpdate{AccountSID: ev.AccountSID, TwilioSID: twilioSID, Status: status, ErrorCode: code,
			At: at, Source: statusSource}
		late := !hasStatusWebhook(item)
		return func() { h.applyStatus(ctx, ev, u, late) }
	case ev.Kind == switchboard.KindMessage,
		// A message Twilio sent to its fallback URL is still the handset's
		// message, and a keyword in it still counts; acting twice on one
		// keyword changes nothing.
		ev.Kind == switchboard.KindFallback && ev.MessageSID != "" && ev.CallSID == "":
		action := twilio.InboundOptAction(form.Get("OptOutType"), form.Get("Body"))
		from := strings.TrimSpace(form.Get("From"))
		if action == twilio.OptNone || from == "" || ev.AccountSID == "" {
			return nil
		}
		return func() { h.applyOpt(ctx, ev, from, action, at) }
	}
	return nil
}

// DefaultStatusWebhookLookup bounds the look-up of a status callback's
// message, before the callback is stored, when
// Options.StatusWebhookLookup is zero. The look-up reads one row by an
// index; past this the store is struggling, and the answer does not wait.
const DefaultStatusWebhookLookup = 250 * time.Millisecond

// statusWebhookKey is appended to a status callback's idempotency key to
// key its fan-out event for the message's status webhook. Derived from the
// callback's key, it makes that event exist at most once per callback,
// whichever path stores it and however often: a Twilio retry of the
// callback is a duplicate, which fans out nothing, and a second store of
// the fan-out event is skipped.
const statusWebhookKey = "#status_webhook"

// addStatusWebhook looks up the outbound message a status callback is
// about and, when the message has a status webhook, adds to item the
// fan-out event that delivers the callback there too, to be committed in
// the same transaction as the callback's own event, before Twilio is
// answered. A duplicate of a stored callback fans out nothing: Store.Ingest
// skips its fan-out.
//
// The look-up is bounded by Options.StatusWebhookLookup and fails open: a
// store error or timeout leaves the item as it was, so the callback is
// stored, answered and delivered to its route as without a status webhook,
// and the failure is logged. The follow-up after the answer
// (applyStatus) then adds the fan-out event if it finds the message, as it
// does for an SID not recorded yet.
func (h *Handler) addStatusWebhook(ctx context.Context, item *switchboard.Ingest) {
	ev := item.Event
	if ev == nil || ev.Kind != switchboard.KindMessageStatus || ev.MessageSID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.lookup)
	defer cancel()
	m, err := h.store.MessageBySID(ctx, ev.AccountSID, ev.MessageSID)
	switch {
	case errors.Is(err, switchboard.ErrNotFound):
		// Not sent through Switchboard, its SID not recorded yet (see
		// applyStatus), or another account's: the callback's account is
		// the route's, and another account's status webhook never gets it.
		return
	case err != nil:
		h.logger.Warn("outbound: look-up of a status callback's message failed; stored without its status webhook for now",
			"event", ev.ID, "message_sid", ev.MessageSID, "err", err)
		return
	case m.StatusWebhook == "":
		return
	}
	item.Fanout = append(item.Fanout, statusWebhookEvent(ev, m.StatusWebhook, ev.CreatedAt))
}

// hasStatusWebhook reports whether item carries its callback's fan-out
// event for the message's status webhook (addStatusWebhook).
func hasStatusWebhook(item *switchboard.Ingest) bool {
	key := item.Event.IdempotencyKey + statusWebhookKey
	for _, f := range item.Fanout {
		if f.IdempotencyKey == key {
			return true
		}
	}
	return false
}

// statusWebhookEvent is the fan-out event of the status callback ev for
// the status webhook target, created at: the same request, delivered to
// target.
func statusWebhookEvent(ev *switchboard.Event, target string, at time.Time) *switchboard.Event {
	resp := ev.Response
	resp.Body = bytes.Clone(resp.Body)
	return &switchboard.Event{
		ID:             newID(),
		RequestID:      ev.RequestID,
		Route:          ev.Route,
		AccountSID:     ev.AccountSID,
		Kind:           ev.Kind,
		MessageSID:     ev.MessageSID,
		CallSID:        ev.CallSID,
		From:           ev.From,
		To:             ev.To,
		IdempotencyKey: ev.IdempotencyKey + statusWebhookKey,
		Target:         target,
		Response:       resp,
		State:          switchboard.StatePending,
		CreatedAt:      at,
	}
}

// addLateStatusWebhook stores the fan-out event that delivers the status
// callback ev to the status webhook of m, the message it is about, for a
// callback stored without it: its message was found only after the answer,
// by applyStatus (its SID was not recorded yet, or the look-up before
// storing failed).
//
// This is after Twilio has its answer. A crash before the status update
// is made good at the next start (recover.go), this notification with it;
// a crash after the update but before this commit, or a store error,
// loses this one notification to the status webhook (the callback itself
// is stored, and goes to its route's target, regardless). That fails
// toward a missing notification, never a repeated one: the event's key is derived from the callback's (statusWebhookKey),
// so it is created at most once however often this runs, and then
// delivered at least once like any event.
func (h *Handler) addLateStatusWebhook(ctx context.Context, ev *switchboard.Event, m *switchboard.OutboundMessage) {
	ctx, cancel := context.WithTimeout(ctx, h.ackWait)
	defer cancel()
	f := statusWebhookEvent(ev, m.StatusWebhook, h.now().UTC())
	if err := h.store.IngestFanout(ctx, []*switchboard.Event{f}); err != nil {
		h.logger.Error("outbound: status callback not stored for the message's status webhook; this notification is lost",
			"event", ev.ID, "message", m.ID, "message_sid", ev.MessageSID, "err", err)
		return
	}
	h.logger.Debug("outbound: status callback stored for the message's status webhook after the answer",
		"event", ev.ID, "fanout_event", f.ID, "message", m.ID, "message_sid", ev.MessageSID)
}

// DefaultStatusRetry is how long, in summed backoff, a status callback
// whose MessageSid is not stored yet is retried when Options.StatusRetry
// is zero.
const DefaultStatusRetry = 3 * time.Second

// The backoff between those retries doubles from statusRetryBase, each
// wait at most statusRetryMax. It is not switchboard.RetryPolicy: this is
// a short, in-process poll for the send path to record an SID, not a
// retry against a failing service, so no jitter is needed to spread a
// herd, and fixed waits that sum to exactly the budget are what it wants.
const (
	statusRetryBase = 25 * time.Millisecond
	statusRetryMax  = 500 * time.Millisecond
)

// applyStatus applies a status callback to the outbound message it is
// about (Messages.ApplyStatus, which counts it when it moved the message
// on).
//
// An SID the store does not know may be one the send path has not recorded
// yet: Twilio can call back (a fast failed, say) before the send path has
// stored the SID from Twilio's answer. So an unknown SID is retried, with
// a capped, doubling backoff whose waits sum to at most
// Options.StatusRetry, each try bounded by Options.AckTimeout; Wait waits
// for the retries, and WaitContext's context ends them early. An SID still
// unknown after them, or when WaitContext gives up, is taken for a message
// not sent through Switchboard: nothing is done. That fails toward a stale
// status, never a wrong one: if the send path records the SID only later,
// the message keeps the status of Twilio's answer until a later callback
// (or the send path's look-up) moves it on, and this update is missing from
// its history and metrics; the webhook is stored and goes to the app
// regardless.
//
// A store error fails likewise, toward a stale status, never a wrong one:
// the message keeps the status it had, and any later callback still moves
// it on, since updates are monotonic.
//
// With late set, the callback was stored without its fan-out event for
// the message's status webhook: if the message has one, the event is
// stored now (addLateStatusWebhook), whether or not the update applied,
// as the callback goes to its route's target either way.
func (h *Handler) applyStatus(ctx context.Context, ev *switchboard.Event, u switchboard.StatusUpdate, late bool) {
	m, tries, err := h.updateStatus(ctx, u)
	switch {
	case errors.Is(err, switchboard.ErrNotFound) && tries < 0:
		h.logger.Info("outbound: status callback for an unknown message; retries ended by shutdown, not applied", "event", ev.ID,
			"message_sid", u.TwilioSID, "status", u.Status, "tries", -tries)
		return
	case errors.Is(err, switchboard.ErrNotFound):
		h.logger.Debug("status callback for a message not sent through Switchboard", "event", ev.ID,
			"message_sid", u.TwilioSID, "tries", tries)
		return
	case err != nil:
		h.logger.Error("outbound: apply status callback; the message keeps its previous status", "event", ev.ID,
			"message_sid", u.TwilioSID, "status", u.Status, "err", err)
		return
	}
	if late && m.StatusWebhook != "" {
		h.addLateStatusWebhook(ctx, ev, m)
	}
	if tries > 1 {
		h.logger.Debug("outbound: status callback arrived before its SID was recorded; applied on retry", "event", ev.ID,
			"message", m.ID, "message_sid", u.TwilioSID, "tries", tries)
	}
	if !outbound.Applied(m, u) {
		h.logger.Debug("outbound: status callback recorded, not applied (repeated or out of order)", "event", ev.ID,
			"message", m.ID, "message_sid", u.TwilioSID, "status", u.Status, "state", m.State)
		return
	}
	h.logger.Debug("outbound: status applied", "event", ev.ID, "message", m.ID, "message_sid", u.TwilioSID,
		"status", u.Status, "state", m.State, "error_code", u.ErrorCode)
}

// updateStatus applies u, retrying while its SID is unknown (see
// applyStatus). tries is how many times the store was asked; it is
// negated when the retries were ended by WaitContext rather than run out.
func (h *Handler) updateStatus(ctx context.Context, u switchboard.StatusUpdate) (m *switchboard.OutboundMessage, tries int, err error) {
	wait, left := statusRetryBase, h.retryFor
	for tries = 1; ; tries++ {
		m, err = h.updateOnce(ctx, u)
		if !errors.Is(err, switchboard.ErrNotFound) || left <= 0 {
			return m, tries, err
		}
		d := min(wait, left)
		left, wait = left-d, min(2*wait, statusRetryMax)
		select {
		case <-h.after(d):
		case <-h.giveUp:
			return nil, -tries, err
		}
	}
}

func (h *Handler) updateOnce(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, h.ackWait)
	defer cancel()
	return h.messages.ApplyStatus(ctx, u)
}

// redact is err's text without number: the stores name the number in
// their errors, and logs never carry one.
func redact(err error, number string) string {
	return strings.ReplaceAll(err.Error(), number, "[number]")
}

// applyOpt suppresses (OptOut) or unsuppresses (OptIn) from for the event's
// account (Messages.ApplyKeyword, which keeps a sender's keywords in the
// order they were received).
//
// A store error fails open toward sending: the webhook is stored and goes
// to the app, but the sender's subscription is unchanged, so after a lost
// opt-out Switchboard may still send to the handset. Twilio's own opt-out
// handling still refuses those sends (21610) on numbers where it is on,
// and the error is logged with the event, which can be found and acted on.
func (h *Handler) applyOpt(ctx context.Context, ev *switchboard.Event, from string, action twilio.OptAction, at time.Time) {
	ctx, cancel := context.WithTimeout(ctx, h.ackWait)
	defer cancel()
	err := h.messages.ApplyKeyword(ctx, ev.AccountSID, from, action, at)
	switch {
	case errors.Is(err, outbound.ErrStaleKeyword):
		h.logger.Info("outbound: keyword older than the sender's last one; skipped", "event", ev.ID,
			"message_sid", ev.MessageSID, "account", ev.AccountSID, "action", action.String())
	case err != nil:
		h.logger.Error("outbound: apply inbound keyword; the sender's subscription is unchanged", "event", ev.ID,
			"message_sid", ev.MessageSID, "account", ev.AccountSID, "action", action.String(), "err", redact(err, from))
	default:
		h.logger.Info("outbound: inbound keyword applied", "event", ev.ID, "message_sid", ev.MessageSID,
			"account", ev.AccountSID, "action", action.String())
	}
}
