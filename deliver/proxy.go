package deliver

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// MaxRedirects is how many redirects a proxied request follows.
const MaxRedirects = 3

// Live is the outcome of proxying a webhook to the app for its answer.
type Live struct {
	// Answer is the app's answer, ready for Twilio (text/html TwiML is
	// relabelled application/xml). Only meaningful when Error is nil.
	Answer switchboard.Response
	// Error says why Twilio would refuse what happened: the code it would
	// log and the reason. nil when the app's answer is acceptable.
	Error *twilio.AnswerError
	// Result is the attempt and the event's next state, to be recorded;
	// nil when no request was made (the target's circuit is open, or its
	// proxy slots are full): the event's delayed first delivery stands.
	// With no listener connected it is a park (no attempt: Number 0).
	Result *switchboard.AttemptResult
}

// Proxy forwards an event's request to its route's target at once, as
// Deliver would (re-signed, with Twilio's headers), following up to
// MaxRedirects redirects (none through a listener), and waits at most budget for the whole answer. It
// judges the answer as Twilio would for expectation x and decides what
// becomes of the event:
//
//   - an acceptable answer: delivered;
//   - a failure the route's RedeliverOn names (by default those in which
//     the app never received the request: connect, DNS, TLS): retried
//     asynchronously, as in ack mode;
//   - any other failure: delivered, with the error on record, since the
//     app may have processed the request and a second delivery could act
//     on it twice.
//
// It fails fast without a request when the target's circuit is open or
// its MaxInFlight requests are already in flight, so a dead or slow app
// costs other requests neither its budget nor a connection. Proxy does not
// record anything: the caller answers Twilio first, then records
// Live.Result with Answer as the event's response.
func (d *Deliverer) Proxy(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, budget time.Duration, x twilio.Expectation) *Live {
	rt, ok := d.routes[ev.Route]
	follow := MaxRedirects
	if ok && rt.Listener != "" {
		route, connected := d.listenerRoute(rt, ev)
		if !connected {
			// Fails toward the fallback, and parks the event for the
			// listener at once: a listener's session leaves alone an
			// event still within its delayed first delivery (it may be
			// being proxied), so one that connects now gets it now.
			d.metrics.Attempts.WithLabelValues(ev.Route, "listener_wait", "0").Inc()
			now := d.now()
			next := parkedUntil(now, ev.CreatedAt.Add(rt.MaxAge))
			return &Live{
				Error: &twilio.AnswerError{Code: twilio.CodeHTTPConnectionFailure,
					Reason: fmt.Sprintf("not forwarded: no listener %q is connected", rt.Listener)},
				Result: &switchboard.AttemptResult{Attempt: switchboard.Attempt{EventID: ev.ID, StartedAt: now},
					State: ev.State, Attempts: ev.Attempts, NextAttemptAt: next},
			}
		}
		rt.Route = route
		ctx = WithTunnelRequest(ctx, TunnelRequest{Event: ev, Live: true})
		// No redirect through a listener: each hop is signed with the
		// account's token for the URL the app named, and a listener's
		// holder would get Twilio signatures for URLs of their choice.
		follow = 0
	}
	if !ok || rt.Target == "" || rt.Notify != nil {
		return &Live{Error: &twilio.AnswerError{Code: twilio.CodeHTTPRetrievalFailure, Reason: "route has no target to proxy to"}}
	}
	if rt.slots != nil {
		select {
		case rt.slots <- struct{}{}:
			defer func() { <-rt.slots }()
		default:
			d.metrics.Attempts.WithLabelValues(ev.Route, "proxy_busy", "0").Inc()
			return &Live{Error: &twilio.AnswerError{Code: twilio.CodeHTTPConnectionFailure,
				Reason: fmt.Sprintf("not forwarded: %d proxied requests already in flight to the target", cap(rt.slots))}}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	number := ev.Attempts + 1
	var judged *twilio.AnswerError
	out, err := rt.breaker.Execute(func() (*outcome, error) {
		o := d.forward(ctx, rt.Route, ev, req, number, follow, twilio.MaxTwiMLBytes+1)
		judged = judge(o, x)
		if errors.Is(o.err, switchboard.ErrListenerGone) {
			return o, errInterrupted // the listener's doing: nothing about the app
		}
		var paused time.Duration
		if d.stalledThrough(o, budget, &paused) {
			// Our stall: nothing about the app, whose request may well
			// have been answered, so the outcome is judged as any other.
			return o, errStalled
		}
		if o.unhealthy() || (judged != nil && o.err == nil && o.status >= 500) {
			return o, errUnhealthy
		}
		return o, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		d.metrics.Attempts.WithLabelValues(ev.Route, "circuit_open", "0").Inc()
		return &Live{Error: &twilio.AnswerError{Code: twilio.CodeHTTPConnectionFailure, Reason: "not forwarded: the target's circuit is open"}}
	}
	live := &Live{Error: judged}
	if errors.Is(err, errInterrupted) {
		// The listener went away with the request: the app may never have
		// got it, so it is due again at once (parked for the next
		// listener), as DeliverThrough does; never marked delivered.
		live.Result = d.interrupted(out, 0)
		live.Result.Attempt.Error = "listener went away before the app's answer reached it: " + out.err.Error()
		d.metrics.Attempts.WithLabelValues(ev.Route, "proxy_"+resultLabel(live.Result.State), "0").Inc()
		return live
	}
	a := out.attempt
	r := &switchboard.AttemptResult{Attempt: a, Attempts: a.Number, State: switchboard.StateDelivered}
	switch {
	case out.unsigned:
		r.Attempt.Error += "; never delivered"
		r.State = switchboard.StateDead
	case judged == nil:
		// A client notification's 404 is an answer Twilio accepts.
		r.Attempt.ErrorClass, r.Attempt.TwilioCode, r.Attempt.Error = "", 0, ""
		live.Answer = switchboard.Response{Status: out.status, ContentType: answerType(out.header.Get("Content-Type"), x), Body: out.body}
	case slices.Contains(rt.RedeliverOn, failureName(out, judged)) && a.Number >= rt.MaxAttempts:
		r.Attempt.ErrorClass, r.Attempt.TwilioCode = className(out, judged), int(judged.Code)
		r.Attempt.Error = judged.Reason + fmt.Sprintf("; max attempts (%d) reached", rt.MaxAttempts)
		r.State = switchboard.StateDead
	case slices.Contains(rt.RedeliverOn, failureName(out, judged)):
		r.Attempt.ErrorClass, r.Attempt.TwilioCode, r.Attempt.Error = className(out, judged), int(judged.Code), judged.Reason
		r.State, r.NextAttemptAt = switchboard.StateRetrying, d.now().Add(d.policy.Backoff(a.Number))
	default:
		r.Attempt.ErrorClass, r.Attempt.TwilioCode = className(out, judged), int(judged.Code)
		r.Attempt.Error = judged.Reason + "; not delivered again: the app may have processed it"
	}
	live.Result = r
	d.metrics.Attempts.WithLabelValues(ev.Route, "proxy_"+resultLabel(r.State), strconv.Itoa(int(codeOf(judged)))).Inc()
	d.metrics.DeliverySeconds.WithLabelValues(ev.Route).Observe(out.latency.Seconds())
	return live
}

// judge returns what Twilio would make of an attempt's outcome for
// expectation x: nil when it accepts the answer.
func judge(o *outcome, x twilio.Expectation) *twilio.AnswerError {
	if o.err != nil {
		code := twilio.ErrorClass(o.attempt.ErrorClass).Code()
		if x == twilio.ExpectClientNotification {
			code = twilio.CodeClientNotificationFailed
		}
		return &twilio.AnswerError{Code: code, Reason: o.err.Error()}
	}
	return twilio.CheckAnswer(x, o.status, o.header.Get("Content-Type"), o.body)
}

// failureName names a failure the way redeliver_on does.
func failureName(o *outcome, judged *twilio.AnswerError) string {
	if o.err == nil && (o.status < 200 || o.status > 299) {
		return strconv.Itoa(o.status/100) + "xx"
	}
	return className(o, judged)
}

// className is the error class of a failure: the network's, or the one
// matching the code Twilio would log for a bad answer.
func className(o *outcome, judged *twilio.AnswerError) string {
	if o.err != nil {
		return o.attempt.ErrorClass
	}
	switch judged.Code {
	case twilio.CodeResponseTooLarge:
		return string(twilio.ClassTooLarge)
	case twilio.CodeInvalidContentType:
		return string(twilio.ClassContentType)
	case twilio.CodeDocumentParseFailure:
		return string(twilio.ClassParse)
	}
	return string(twilio.ClassHTTPStatus)
}

func codeOf(e *twilio.AnswerError) twilio.Code {
	if e == nil {
		return 0
	}
	return e.Code
}

// answerType is the Content-Type Twilio gets with an accepted answer: TwiML
// served as text/html is relabelled application/xml; anything else is
// passed on as the app sent it.
func answerType(header string, x twilio.Expectation) string {
	if x != twilio.ExpectMessagingTwiML && x != twilio.ExpectVoiceTwiML {
		return header
	}
	if mt, params, err := mime.ParseMediaType(header); err == nil && mt == "text/html" {
		return mime.FormatMediaType("application/xml", params)
	}
	return header
}
