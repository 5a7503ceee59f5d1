package ingest

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// fallbackResponse is what Twilio gets when a proxied app fails: the
// route's TwiML, an empty 200 for a status callback, and a 503 for a client
// notification, since Twilio must not believe that a notification nobody
// dispatched was delivered (it logs 13807 instead).
func fallbackResponse(k switchboard.Kind, twiml []byte) switchboard.Response {
	if k == switchboard.KindClientNotification {
		return switchboard.Response{Status: http.StatusServiceUnavailable, ContentType: "text/plain; charset=utf-8",
			Body: []byte("the app did not take the notification\n")}
	}
	return ackResponse(k, twiml)
}

// budget is how long a proxy-mode route waits for the app's answer to a
// webhook of kind k.
func budget(route Route, k switchboard.Kind) time.Duration {
	switch {
	case route.Budget > 0:
		return route.Budget
	case k == switchboard.KindVoice || k == switchboard.KindCallStatus:
		return DefaultVoiceBudget
	default:
		return DefaultBudget
	}
}

// expectation is what Twilio requires of the answer to an event's webhook.
// A call's fallback request needs a call's TwiML like the call's own.
func expectation(ev *switchboard.Event) twilio.Expectation {
	switch k := ev.Kind; {
	case k == switchboard.KindVoice || (k == switchboard.KindFallback && ev.CallSID != "" && ev.MessageSID == ""):
		return twilio.ExpectVoiceTwiML
	case k == switchboard.KindClientNotification:
		return twilio.ExpectClientNotification
	case k.IsStatus():
		return twilio.ExpectStatus
	default:
		return twilio.ExpectMessagingTwiML
	}
}

// proxyAnswer forwards a stored event to the app within the route's budget
// and sets the event's response to what Twilio is to get: the app's answer
// when Twilio would accept it, the fallback (fallbackResponse) otherwise.
// It returns the function
// that records the outcome, to be called once Twilio has its answer.
func (h *Handler) proxyAnswer(ctx context.Context, route Route, item *switchboard.Ingest) (record func()) {
	ev := item.Event
	if h.proxy == nil {
		// Misconfigured: fail toward the fallback, and the event's delayed
		// first delivery still brings it to the app.
		h.logger.Error("proxy route without a proxier; fallback served", "route", route.Path, "event", ev.ID)
		return nil
	}
	// Twilio hanging up must not cut the forward short: the budget bounds
	// it, and its outcome decides whether the app gets the event again.
	ctx = context.WithoutCancel(ctx)
	start := h.now()
	live := h.proxy.Proxy(ctx, ev, &item.Request, budget(route, ev.Kind), expectation(ev))
	h.metrics.ProxySeconds.WithLabelValues(route.Path).Observe(h.now().Sub(start).Seconds())

	answer, served := live.Answer, "app"
	if live.Error != nil {
		served = "fallback"
		answer = ev.Response // the fallback, stored with the event
		h.logger.Warn("proxy: the app's answer was not usable; fallback served", "event", ev.ID, "route", route.Path,
			"twilio_code", int(live.Error.Code), "reason", live.Error.Reason)
	}
	h.metrics.ProxyAnswers.WithLabelValues(route.Path, served, strconv.Itoa(int(codeOf(live.Error)))).Inc()
	ev.Response = answer
	if live.Result == nil {
		return nil // nothing was sent: the event's delayed first delivery stands
	}
	live.Result.Response = &answer
	return func() {
		// The attempt happened and Twilio has its answer: record both.
		ctx, cancel := context.WithTimeout(ctx, h.ackWait)
		defer cancel()
		if err := h.store.RecordAttempts(ctx, []*switchboard.AttemptResult{live.Result}); err != nil {
			// Fails open toward delivery: the event's delayed first
			// delivery is still scheduled, so the app gets it again later.
			h.logger.Error("proxy: record the outcome", "event", ev.ID, "err", err)
		}
	}
}

func codeOf(e *twilio.AnswerError) twilio.Code {
	if e == nil {
		return 0
	}
	return e.Code
}
