package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// liveWindow tells a proxy route's live attempt from a later delivery: the
// live one starts as the request is stored, while ingest delays the
// first asynchronous delivery by the route's budget plus a 30-second
// safety net.
const liveWindow = 30 * time.Second

// maxDuplicates is how many duplicates of an event its page lists.
const maxDuplicates = 20

// eventPage is an event with the request it came from, the answer Twilio
// got, every attempt, and its duplicates.
type eventPage struct {
	Event    eventDetail
	Request  *requestDetail // nil when no longer stored
	Answer   answerView
	Attempts []attemptView
	// Duplicates are Twilio's retries of the request, answered like it
	// and not delivered again; MoreDuplicates says there are more.
	Duplicates     []requestRow
	MoreDuplicates bool
	// CanReplay is whether the event may be replayed now; ReplayWhy says
	// why not. CanProbe is whether its route's target can be probed.
	CanReplay bool
	ReplayWhy string
	CanProbe  bool
	// Notice is the outcome of an action; Report a probe's.
	Notice string
	Report *reportView
	// Debugger is what Twilio's Debugger said of the event (debugger.go);
	// nil for nothing.
	Debugger *debuggerPanel
}

func (c *Console) event(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p, err := c.loadEvent(r.Context(), id)
	if notFound(err) {
		// An id the search box took may be a request's.
		if _, rerr := c.store.Request(r.Context(), id); rerr == nil {
			http.Redirect(w, r, Prefix+"requests/"+id, http.StatusSeeOther)
			return nil
		}
	}
	if err != nil {
		return err
	}
	return c.render(w, s, http.StatusOK, "event", "Event", p)
}

func (c *Console) loadEvent(ctx context.Context, id string) (*eventPage, error) {
	ev, err := c.store.Event(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read event %s: %w", id, err)
	}
	req, err := c.store.Request(ctx, ev.RequestID)
	if err != nil && !notFound(err) { // retention may have pruned it
		return nil, fmt.Errorf("read request %s: %w", ev.RequestID, err)
	}
	atts, err := c.store.Attempts(ctx, ev.ID)
	if err != nil {
		return nil, fmt.Errorf("read attempts of %s: %w", ev.ID, err)
	}
	dups, err := c.store.ListRequests(ctx, switchboard.RequestFilter{EventID: ev.ID, Outcome: switchboard.OutcomeDuplicate, Limit: maxDuplicates})
	if err != nil {
		return nil, fmt.Errorf("list duplicates of %s: %w", ev.ID, err)
	}
	rd := c.redactor()
	p := &eventPage{
		Event:          rd.eventDetail(ev),
		MoreDuplicates: dups.Next != "",
		CanReplay:      ev.State.Terminal(),
		CanProbe:       c.o.Prober != nil && ev.Target == "",
	}
	if !p.CanReplay {
		p.ReplayWhy = "The event is " + string(ev.State) + ": its next delivery is already scheduled. It can be replayed once delivered or dead."
	}
	if req != nil {
		p.Request = rd.requestDetail(req)
	}
	for _, a := range atts {
		p.Attempts = append(p.Attempts, rd.attempt(a))
	}
	for _, d := range dups.Items {
		p.Duplicates = append(p.Duplicates, rd.requestRow(d))
	}
	p.Answer = c.answer(ev, req, atts)
	if p.Debugger, err = c.debuggerPanel(ctx, ev, req); err != nil {
		return nil, err
	}
	return p, nil
}

// answer is what Twilio got for the event's request. On a proxy route it
// was the app's answer when the live attempt succeeded, and the route's
// fallback when it failed or was never made.
func (c *Console) answer(ev *switchboard.Event, req *switchboard.Request, atts []*switchboard.Attempt) answerView {
	a := answerView{
		Status: ev.Response.Status, ContentType: ev.Response.ContentType,
		Body:  viewBody(ev.Response.ContentType, ev.Response.Body, c.o.Redact),
		Proxy: c.routes[ev.Route].Proxy && ev.Target == "", // a fan-out copy never answered Twilio
	}
	if !a.Proxy {
		return a
	}
	var live *switchboard.Attempt
	if len(atts) > 0 && atts[0].Number == 1 && (req == nil || atts[0].StartedAt.Sub(req.ReceivedAt) < liveWindow) {
		live = atts[0]
	}
	switch {
	case live == nil:
		a.Fallback = true
		a.Why = "No live attempt is recorded: the target's circuit was open or its proxy slots were full, so Twilio got the route's fallback."
	case live.ErrorClass != "" || live.TwilioCode != 0:
		a.Fallback = true
		a.Why = c.redactor().text(live.Error)
		if a.Why == "" {
			a.Why = live.ErrorClass
		}
		a.Code = live.TwilioCode
	}
	return a
}

// replayEvent schedules a new delivery of a delivered or dead event.
func (c *Console) replayEvent(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ev, err := c.store.Event(r.Context(), id)
	if err != nil {
		return fmt.Errorf("read event %s: %w", id, err)
	}
	notice := "The event is " + string(ev.State) + ": its next delivery is already scheduled, so it was not replayed."
	status := http.StatusConflict
	if ev.State.Terminal() {
		n, err := c.store.Replay(r.Context(), switchboard.ReplayFilter{EventID: id})
		if err != nil {
			return fmt.Errorf("replay event %s: %w", id, err)
		}
		notice, status = "Replay scheduled: the event will be delivered again shortly.", http.StatusOK
		if n == 0 {
			notice, status = "Not replayed: the event changed meanwhile and already has a delivery scheduled.", http.StatusConflict
		}
		c.logger.Info("console: event replayed", "event", id, "scheduled", n)
	}
	p, err := c.loadEvent(r.Context(), id)
	if err != nil {
		return err
	}
	p.Notice = notice
	return c.render(w, s, status, "event", "Event", p)
}

// probeEvent probes the event's route target with the doctor.
func (c *Console) probeEvent(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if c.o.Prober == nil {
		return &httpError{http.StatusNotFound, "Probing is not available on this server."}
	}
	p, err := c.loadEvent(r.Context(), id)
	if err != nil {
		return err
	}
	route := p.Event.Route
	report, err := c.o.Prober.ProbeRoute(r.Context(), route)
	switch {
	case notFound(err):
		p.Notice = "The route " + route + " has no target to probe."
	case err != nil:
		c.logger.Warn("console: probe failed", "route", route, "err", err)
		p.Notice = "The probe could not run: " + c.redactor().text(err.Error())
	default:
		p.Report = c.redactor().report(report)
	}
	return c.render(w, s, http.StatusOK, "event", "Event", p)
}
