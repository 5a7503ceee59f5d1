package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Twilio's Debugger feed in the console: a page listing the alerts of
// routes of kind debugger, the parsed alert on its event's page with
// what it is about, and on the page of an event or message the alerts
// Twilio's Debugger reported about it.

// debuggerStore is what the Debugger's pages read besides Store; a
// store without it shows none of them.
type debuggerStore interface {
	DebuggerAlerts(ctx context.Context, f switchboard.DebuggerFilter) (*switchboard.Page[*switchboard.DebuggerAlert], error)
	MessageBySID(ctx context.Context, accountSID, sid string) (*switchboard.OutboundMessage, error)
}

// maxLinked is how many alerts, or events, a page links to.
const maxLinked = 10

func (c *Console) debuggerStore() debuggerStore {
	ds, _ := c.store.(debuggerStore)
	return ds
}

// debuggerAlertView is one Debugger alert as a page shows it.
type debuggerAlertView struct {
	Sid, AccountSID, Level, ResourceSID, Method, URL, MoreInfo, EventID string
	Code, Status                                                        int
	Fix                                                                 string
	Timestamp, Received                                                 time.Time
	// Payload is the Payload Twilio sent, indented; redacted like the
	// rest under admin.redact.
	Payload string
}

func (r redactor) alert(a *switchboard.DebuggerAlert) debuggerAlertView {
	if r.on {
		a = a.Redact()
	}
	v := debuggerAlertView{
		Sid: a.Sid, AccountSID: a.AccountSID, Level: a.Level, ResourceSID: a.ResourceSID, Method: a.Method,
		URL: a.URL, MoreInfo: a.MoreInfo, EventID: a.EventID, Code: a.ErrorCode, Status: a.Status,
		Fix: doctor.Fix("", twilio.Code(a.ErrorCode)), Timestamp: a.Timestamp, Received: a.ReceivedAt,
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, a.Payload, "", "  ") == nil {
		v.Payload = pretty.String()
	} else {
		v.Payload = string(a.Payload)
	}
	return v
}

// reportedView is what Twilio's Debugger reported about a message or
// call: its alerts, newest first, and whether there are more.
type reportedView struct {
	ResourceSID string
	Alerts      []debuggerAlertView
	More        bool
}

// reported returns the alerts of account about resource; nil when there
// are none, or no store of them, or no account to scope them to.
func (c *Console) reported(ctx context.Context, account, resource string) (*reportedView, error) {
	ds := c.debuggerStore()
	if ds == nil || resource == "" || account == "" {
		return nil, nil
	}
	// An SID names one account's resource: another account's alert is
	// not about it. The store selects by account, so that another
	// account's alerts naming this SID can neither show here nor crowd
	// this account's out of the page.
	page, err := ds.DebuggerAlerts(ctx, switchboard.DebuggerFilter{AccountSID: account, ResourceSID: resource, Limit: maxLinked})
	if err != nil {
		return nil, fmt.Errorf("list the Debugger's alerts about %s: %w", resource, err)
	}
	v := &reportedView{ResourceSID: resource, More: page.Next != ""}
	rd := c.redactor()
	for _, a := range page.Items {
		if a.AccountSID == account { // the store's selection, checked again
			v.Alerts = append(v.Alerts, rd.alert(a))
		}
	}
	if len(v.Alerts) == 0 {
		return nil, nil
	}
	return v, nil
}

// debuggerPanel is what an event page shows of the Debugger: for a
// Debugger webhook, its alert and what the alert is about; for any other
// event, what the Debugger reported about its message or call.
type debuggerPanel struct {
	Alert *debuggerAlertView
	// Events are the other events of the alert's resource; Message the
	// outbound message it is, when sent through Switchboard.
	Events   []eventRow
	Message  *messageRow
	Reported *reportedView
}

func (c *Console) debuggerPanel(ctx context.Context, ev *switchboard.Event, req *switchboard.Request) (*debuggerPanel, error) {
	if ev.Kind != switchboard.KindDebugger {
		sid := ev.MessageSID
		if sid == "" {
			sid = ev.CallSID
		}
		rep, err := c.reported(ctx, ev.AccountSID, sid)
		if rep == nil || err != nil {
			return nil, err
		}
		return &debuggerPanel{Reported: rep}, nil
	}
	if req == nil {
		return nil, nil // pruned: the alert went with it
	}
	form, err := twilio.ParseForm(req.Body)
	if err != nil {
		return nil, nil
	}
	a, err := twilio.ParseDebugger(form, ev.AccountSID)
	if err != nil {
		return nil, nil // stored before it was read so, or not one
	}
	a.EventID, a.ReceivedAt = ev.ID, req.ReceivedAt
	rd := c.redactor()
	view := rd.alert(a)
	p := &debuggerPanel{Alert: &view}
	if a.ResourceSID == "" {
		return p, nil
	}
	// The account's events only, selected by the store: another account's
	// events naming the SID are not about it, and must not crowd these out.
	events, err := c.store.ListEvents(ctx, switchboard.EventFilter{AccountSID: ev.AccountSID, SID: a.ResourceSID, Limit: maxLinked + 1})
	if err != nil {
		return nil, fmt.Errorf("list the events of %s: %w", a.ResourceSID, err)
	}
	for _, e := range events.Items {
		if e.Kind != switchboard.KindDebugger && e.AccountSID == ev.AccountSID && len(p.Events) < maxLinked {
			p.Events = append(p.Events, rd.eventRow(e))
		}
	}
	if ds := c.debuggerStore(); ds != nil {
		m, err := ds.MessageBySID(ctx, ev.AccountSID, a.ResourceSID)
		switch {
		case err == nil:
			row := rd.messageRow(m)
			p.Message = &row
		case !notFound(err):
			return nil, fmt.Errorf("look up message %s: %w", a.ResourceSID, err)
		}
	}
	return p, nil
}

// debuggerPage lists the Debugger's alerts, newest first, filtered.
type debuggerPage struct {
	Query             *debuggerQuery
	Rows              []debuggerAlertView
	Available         bool
	FirstURL, NextURL string
}

func (c *Console) debugger(w http.ResponseWriter, r *http.Request, s *session) error {
	q, err := parseDebuggerQuery(r.URL.Query())
	if err != nil {
		return err
	}
	p := debuggerPage{Query: q}
	if ds := c.debuggerStore(); ds != nil {
		p.Available = true
		page, err := ds.DebuggerAlerts(r.Context(), q.filter)
		if err != nil {
			return fmt.Errorf("list the Debugger's alerts: %w", err)
		}
		rd := c.redactor()
		for _, a := range page.Items {
			p.Rows = append(p.Rows, rd.alert(a))
		}
		v := q.values()
		p.FirstURL, p.NextURL = listURL("debugger", v), nextURL("debugger", v, page.Next)
	}
	return c.render(w, s, http.StatusOK, "debugger", "Twilio's Debugger", p)
}

// debuggerQuery is the Debugger page's filters.
type debuggerQuery struct {
	Code, Resource string
	window
	filter switchboard.DebuggerFilter
}

func parseDebuggerQuery(v url.Values) (*debuggerQuery, error) {
	q := &debuggerQuery{Code: strings.TrimSpace(v.Get("code")), Resource: strings.TrimSpace(v.Get("resource"))}
	f := &q.filter
	if q.Resource != "" && !sidPattern.MatchString(q.Resource) {
		return nil, badRequest("resource: want a message or call SID (SM…, MM…, CA…).")
	}
	f.ResourceSID = q.Resource
	var err error
	if f.ErrorCode, err = errorCode("code", q.Code); err != nil {
		return nil, err
	}
	if q.window, f.Since, f.Until, err = parseWindow(v); err != nil {
		return nil, err
	}
	f.Limit, f.Cursor = q.Limit, q.Cursor
	return q, nil
}

func (q *debuggerQuery) values() url.Values {
	v := url.Values{}
	set(v, "code", q.Code)
	set(v, "resource", q.Resource)
	q.window.put(v)
	return v
}
