package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Recovering status updates after a crash.
//
// A status callback is stored before Twilio is answered, but applied to its
// outbound message after (outbound.go). A process that dies in between
// leaves the callback stored and on its way to the app, and the message
// without that update: if it was the last callback (delivered, say), the
// message would keep its previous status for good. RecoverStatuses closes
// that window at start: it takes the status callbacks stored in the last
// moments before the newest one, and applies each one that is missing from
// its message's history, with its status webhook's copy when that is
// missing too. The window is measured back from the newest callback, not
// from now, so a process restarted long after a crash still finds the
// callbacks it had in hand.

// DefaultRecoverWindow is how far before the newest status callback
// RecoverStatuses looks: far longer than a callback waits between its
// answer and its update (the retries of an SID not yet recorded included).
const DefaultRecoverWindow = 30 * time.Second

// RecoverStatuses applies the status callbacks stored within window before
// the newest one whose update is missing from their message's history (see
// above), and returns how many it applied. Callbacks for messages not sent
// through Switchboard are skipped. It does nothing without
// Options.Outbound. Applying is idempotent, so a callback another replica
// is applying at the same moment is at worst recorded twice in the
// message's history, the second time as not applied.
func (h *Handler) RecoverStatuses(ctx context.Context, window time.Duration) (int, error) {
	if !h.outbound {
		return 0, nil
	}
	newest, err := h.store.ListEvents(ctx, switchboard.EventFilter{Kind: switchboard.KindMessageStatus, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("newest status callback: %w", err)
	}
	if len(newest.Items) == 0 {
		return 0, nil
	}
	f := switchboard.EventFilter{Kind: switchboard.KindMessageStatus, Since: newest.Items[0].CreatedAt.Add(-window), Limit: 500}
	// Listed newest first, applied oldest first, as they came.
	var events []*switchboard.Event
	for {
		page, err := h.store.ListEvents(ctx, f)
		if err != nil {
			return 0, fmt.Errorf("list status callbacks: %w", err)
		}
		events = append(events, page.Items...)
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	applied := 0
	for _, ev := range slices.Backward(events) {
		ok, err := h.recoverStatus(ctx, ev)
		if err != nil {
			return applied, fmt.Errorf("recover status callback %s: %w", ev.ID, err)
		}
		if ok {
			applied++
		}
	}
	return applied, nil
}

// StartRecovery runs RecoverStatuses with DefaultRecoverWindow in the
// background, logging its outcome; Wait and WaitContext wait for it too.
func (h *Handler) StartRecovery(ctx context.Context) {
	if !h.outbound {
		return
	}
	h.recording.Go(func() {
		n, err := h.RecoverStatuses(ctx, DefaultRecoverWindow)
		switch {
		case err != nil:
			h.logger.Error("outbound: recovering status callbacks after a restart", "recovered", n, "err", err)
		case n > 0:
			h.logger.Info("outbound: status callbacks recovered after a restart", "recovered", n)
		}
	})
}

// recoverStatus applies the status callback ev when its message's history
// lacks it, and reports whether it did.
//
// It stays within the account of ev's route, as the callback did when it
// came: only a callback whose account is its route's is recovered, and
// only for a message of that account. A stored callback of another
// account (stored before intake took the account from the route alone,
// or on a route whose account has since changed) or of a route no longer
// configured is skipped: that fails toward a stale status, never toward
// one account moving another's message.
func (h *Handler) recoverStatus(ctx context.Context, ev *switchboard.Event) (bool, error) {
	if ev.Target != "" || ev.MessageSID == "" {
		return false, nil // a status webhook's copy, or no message
	}
	route, ok := h.routes[ev.Route]
	if !ok || route.AccountSID == "" || ev.AccountSID != route.AccountSID {
		h.logger.Info("outbound: stored status callback not of its route's account; not recovered", "event", ev.ID,
			"route", ev.Route, "account", ev.AccountSID, "message_sid", ev.MessageSID)
		return false, nil
	}
	m, err := h.store.MessageBySID(ctx, ev.AccountSID, ev.MessageSID)
	if errors.Is(err, switchboard.ErrNotFound) {
		return false, nil // not sent through Switchboard, or another account's
	}
	if err != nil {
		return false, err
	}
	req, err := h.store.Request(ctx, ev.RequestID)
	if err != nil {
		return false, err
	}
	form, err := storedForm(req)
	if err != nil {
		h.logger.Warn("outbound: stored status callback unreadable; not recovered", "event", ev.ID, "err", err)
		return false, nil
	}
	item := &switchboard.Ingest{Request: *req, Event: ev}
	follow := h.outboundFollowUp(ctx, item, form)
	if follow == nil {
		return false, nil
	}
	hist, err := h.store.MessageHistory(ctx, m.ID)
	if err != nil {
		return false, err
	}
	status := statusOf(form)
	if outbound.InHistory(hist, switchboard.StatusUpdate{Source: statusSource, Status: status, At: req.ReceivedAt}) {
		return false, nil // applied (or recorded) when it came
	}
	follow()
	h.logger.Info("outbound: status callback applied after a restart", "event", ev.ID, "message", m.ID,
		"message_sid", ev.MessageSID, "status", status)
	return true, nil
}

// storedForm parses a stored webhook's parameters: its query for a GET,
// its body otherwise.
func storedForm(req *switchboard.Request) (url.Values, error) {
	if req.Method == http.MethodGet {
		u, err := url.Parse(req.URL)
		if err != nil {
			return nil, err
		}
		return twilio.ParseForm([]byte(u.RawQuery))
	}
	return twilio.ParseForm(req.Body)
}

// statusOf is a status callback's message status.
func statusOf(form url.Values) string {
	if s := form.Get("MessageStatus"); s != "" {
		return s
	}
	return form.Get("SmsStatus")
}
