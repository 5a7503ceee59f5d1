package console

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/switchboard-dev/switchboard"
)

func (c *Console) redactor() redactor { return redactor{on: c.o.Redact} }

// routePaths are the configured routes' paths, for the filters' choices.
func (c *Console) routePaths() []string { return slices.Sorted(maps.Keys(c.routes)) }

// eventsPage is the inspector: events newest first, filtered.
type eventsPage struct {
	Query  *eventQuery
	Rows   []eventRow
	Kinds  []switchboard.Kind
	States []switchboard.State
	Routes []string
	// FirstURL is the newest page with the same filters, NextURL the page
	// after this one ("" on the last), ReplayURL the replay of the
	// filters. LiveURL is the stream of new rows; "" when new rows do not
	// belong here (a later page, or a range that has ended).
	FirstURL, NextURL, ReplayURL, LiveURL string
}

// events is the inspector. A search naming an event id goes to its page.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) error {
	q, err := parseEventQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if q.search.EventID != "" {
		http.Redirect(w, r, Prefix+"events/"+q.search.EventID, http.StatusSeeOther)
		return nil
	}
	page, err := c.store.ListEvents(r.Context(), q.filter)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	rd := c.redactor()
	p := eventsPage{Query: q, Kinds: switchboard.Kinds, States: switchboard.States, Routes: c.routePaths()}
	for _, e := range page.Items {
		p.Rows = append(p.Rows, rd.eventRow(e))
	}
	v := q.values()
	p.FirstURL = listURL("events", v)
	p.NextURL = nextURL("events", v, page.Next)
	rv := maps.Clone(v)
	rv.Del("limit")
	p.ReplayURL = listURL("replay", rv)
	if q.Cursor == "" && (q.filter.Until.IsZero() || q.filter.Until.After(c.now())) {
		lv := maps.Clone(rv)
		if len(p.Rows) > 0 {
			lv.Set("after", p.Rows[0].ID)
		}
		p.LiveURL = Prefix + "events/stream"
		if len(lv) > 0 {
			p.LiveURL += "?" + lv.Encode()
		}
	}
	return c.render(w, s, http.StatusOK, "events", "Events", p)
}

func nextURL(page string, v url.Values, next string) string {
	if next == "" {
		return ""
	}
	nv := maps.Clone(v)
	nv.Set("cursor", next)
	return listURL(page, nv)
}

// requestsPage is the requests tab: every request received, newest first.
type requestsPage struct {
	Query             *requestQuery
	Rows              []requestRow
	Routes            []string
	FirstURL, NextURL string
}

func (c *Console) requests(w http.ResponseWriter, r *http.Request, s *session) error {
	q, err := parseRequestQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := c.store.ListRequests(r.Context(), q.filter)
	if err != nil {
		return fmt.Errorf("list requests: %w", err)
	}
	rd := c.redactor()
	p := requestsPage{Query: q, Routes: c.routePaths()}
	for _, req := range page.Items {
		p.Rows = append(p.Rows, rd.requestRow(req))
	}
	v := q.values()
	p.FirstURL, p.NextURL = listURL("requests", v), nextURL("requests", v, page.Next)
	return c.render(w, s, http.StatusOK, "requests", "Requests", p)
}

// requestPage is one received request, as the event page shows it; for
// a rejected request, the only page it has.
type requestPage struct {
	Request *requestDetail
}

func (c *Console) request(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	req, err := c.store.Request(r.Context(), id)
	if err != nil {
		return fmt.Errorf("read request %s: %w", id, err)
	}
	return c.render(w, s, http.StatusOK, "request", "Request", requestPage{Request: c.redactor().requestDetail(req)})
}

// pathID is the {id} of a page's path, refused when it cannot be one.
func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !cursorPattern.MatchString(id) {
		return "", errNoPage
	}
	return id, nil
}

// notFound reports whether err is the store's ErrNotFound.
func notFound(err error) bool { return errors.Is(err, switchboard.ErrNotFound) }
