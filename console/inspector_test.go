package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

func TestInspectorListsEventsNewestFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for n := 1; n <= 3; n++ {
		seedEvent(f.store, n, switchboard.StateDelivered)
	}
	s := f.signIn()
	for _, path := range []string{"/console/", "/console/events"} {
		page := f.get(s, path, http.StatusOK)
		if got, want := eventRows(t, page), []string{id(3), id(2), id(1)}; !slices.Equal(got, want) {
			t.Errorf("%s: rows %v, want %v", path, got, want)
		}
	}
}

func TestInspectorFiltersRoundTripInTheURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for n := 1; n <= 5; n++ {
		ev := seedEvent(f.store, n, switchboard.StateDead)
		ev.LastCode = 11200
	}
	s := f.signIn()
	q := url.Values{"route": {"/sms"}, "kind": {"message"}, "state": {"dead"}, "code": {"11200"},
		"since": {"2026-03-01T11:00:00"}, "until": {"2026-03-01T13:00:00Z"}, "limit": {"2"}}
	page := f.get(s, "/console/events?"+q.Encode(), http.StatusOK)

	f.store.mu.Lock()
	got := f.store.eventFilters[len(f.store.eventFilters)-1]
	f.store.mu.Unlock()
	want := switchboard.EventFilter{Route: "/sms", Kind: "message", State: "dead", TwilioCode: 11200,
		Since: base.Add(-time.Hour), Until: base.Add(time.Hour), Limit: 2}
	if got != want {
		t.Errorf("store asked for %+v, want %+v", got, want)
	}
	if rows := eventRows(t, page); !slices.Equal(rows, []string{id(5), id(4)}) {
		t.Errorf("rows %v, want the newest two", rows)
	}
	// The form shows every filter, so a reload or a shared link keeps them.
	doc := parseHTML(t, page)
	form := byID(doc, "events-filters")
	if attr(form, "method") != "get" || attr(form, "action") != "/console/events" {
		t.Errorf("filter form: %v", form.Attr)
	}
	for name, want := range map[string]string{"route": "/sms", "code": "11200", "since": "2026-03-01T11:00:00", "until": "2026-03-01T13:00:00"} {
		in := first(form, func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == name })
		if in == nil || attr(in, "value") != want {
			t.Errorf("input %s: %v, want value %q", name, in, want)
		}
	}
	for name, want := range map[string]string{"kind": "message", "state": "dead"} {
		sel := first(form, func(n *html.Node) bool { return n.Data == "select" && attr(n, "name") == name })
		opt := first(sel, func(n *html.Node) bool { return n.Data == "option" && hasAttr(n, "selected") })
		if opt == nil || text(opt) != want {
			t.Errorf("select %s: selected %v, want %q", name, opt, want)
		}
	}
	// The next page keeps the filters and adds the cursor.
	next := byID(doc, "next-page")
	if next == nil {
		t.Fatal("no link to the next page")
	}
	u, err := url.Parse(attr(next, "href"))
	if err != nil {
		t.Fatal(err)
	}
	nq := u.Query()
	if u.Path != "/console/events" || nq.Get("cursor") != id(4) || nq.Get("route") != "/sms" || nq.Get("code") != "11200" ||
		nq.Get("limit") != "2" || nq.Get("since") != "2026-03-01T11:00:00" {
		t.Errorf("next page %s", u)
	}
	page2 := f.get(s, u.String(), http.StatusOK)
	if rows := eventRows(t, page2); !slices.Equal(rows, []string{id(3), id(2)}) {
		t.Errorf("page 2 rows %v", rows)
	}
	// The replay link carries the same filters.
	rl, _ := url.Parse(attr(byID(doc, "replay-filter-link"), "href"))
	if rl.Path != "/console/replay" || rl.Query().Get("state") != "dead" || rl.Query().Get("code") != "11200" {
		t.Errorf("replay link %s", rl)
	}
}

func TestInspectorSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, switchboard.StateDelivered)
	seedEvent(f.store, 2, switchboard.StateDelivered).From = "+15557770000"
	s := f.signIn()
	for _, tc := range []struct {
		q      string
		filter switchboard.EventFilter
		rows   []string
	}{
		{sid("SM", 2), switchboard.EventFilter{SID: sid("SM", 2)}, []string{id(2)}},
		{"+15557770000", switchboard.EventFilter{Number: "+15557770000"}, []string{id(2)}},
		{"+1 (555) 777-0000", switchboard.EventFilter{Number: "+15557770000"}, []string{id(2)}},
		{"15550001111", switchboard.EventFilter{Number: caller}, []string{id(1)}},
		{"whatsapp:+15550001111", switchboard.EventFilter{Number: "whatsapp:+15550001111"}, nil},
	} {
		page := f.get(s, "/console/events?q="+url.QueryEscape(tc.q), http.StatusOK)
		f.store.mu.Lock()
		got := f.store.eventFilters[len(f.store.eventFilters)-1]
		f.store.mu.Unlock()
		if got.SID != tc.filter.SID || got.Number != tc.filter.Number {
			t.Errorf("q %q: SID %q Number %q, want %q %q", tc.q, got.SID, got.Number, tc.filter.SID, tc.filter.Number)
		}
		if rows := eventRows(t, page); !slices.Equal(rows, tc.rows) {
			t.Errorf("q %q: rows %v, want %v", tc.q, rows, tc.rows)
		}
		if v := attr(mustID(t, page, "search"), "value"); v != tc.q {
			t.Errorf("q %q: the search box shows %q", tc.q, v)
		}
	}
	// An event id goes to its page.
	w := f.do("GET", "/console/events?q="+id(2), nil, s.cookie)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/events/"+id(2) {
		t.Errorf("event id: status %d to %q", w.Code, w.Header().Get("Location"))
	}
	// A request's id, typed in, finds its page through the event page.
	w = f.do("GET", "/console/events/"+id(1001), nil, s.cookie)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/requests/"+id(1001) {
		t.Errorf("request id: status %d to %q", w.Code, w.Header().Get("Location"))
	}
	// Anything else is explained.
	page := f.get(s, "/console/events?q=hello", http.StatusBadRequest)
	if !strings.Contains(text(mustID(t, page, "error-message")), "SID") {
		t.Errorf("bad search: %s", page)
	}
}

func TestHostileParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, switchboard.StateDelivered)
	s := f.signIn()
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/console/events?kind=bogus", http.StatusBadRequest},
		{"/console/events?state=bogus", http.StatusBadRequest},
		{"/console/events?state=%00", http.StatusBadRequest},
		{"/console/events?route=%2Fsms%00", http.StatusBadRequest},
		{"/console/events?q=%2B1555%00", http.StatusBadRequest},
		{"/console/events?route=%ff%fe", http.StatusBadRequest},
		{"/console/events?route=" + strings.Repeat("a", 600), http.StatusBadRequest},
		{"/console/events?code=abc", http.StatusBadRequest},
		{"/console/events?code=99999999999999999999", http.StatusBadRequest},
		{"/console/events?code=-1", http.StatusBadRequest},
		{"/console/events?since=yesterday", http.StatusBadRequest},
		{"/console/events?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", http.StatusBadRequest},
		{"/console/events?limit=0", http.StatusBadRequest},
		{"/console/events?limit=-5", http.StatusBadRequest},
		{"/console/events?limit=ten", http.StatusBadRequest},
		{"/console/events?cursor=%27%20OR%201%3D1", http.StatusBadRequest},
		{"/console/events?" + strings.Repeat("x=1&", 40), http.StatusBadRequest},
		{"/console/events/%27%3B%20DROP", http.StatusNotFound},
		{"/console/events/" + id(999), http.StatusNotFound},
		{"/console/requests?outcome=maybe", http.StatusBadRequest},
		{"/console/messages?purpose=spam", http.StatusBadRequest},
		{"/console/messages?status=lost", http.StatusBadRequest},
		{"/console/messages?number=call-me", http.StatusBadRequest},
		{"/console/messages?template=a%20b", http.StatusBadRequest},
		{"/console/dashboard?range=1y", http.StatusBadRequest},
		{"/console/dashboard?since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z", http.StatusBadRequest},
		{"/console/dashboard?range=1h&since=2026-01-01T00:00:00Z", http.StatusBadRequest},
		{"/console/nowhere", http.StatusNotFound},
	} {
		w := f.do("GET", tc.path, nil, s.cookie)
		if w.Code != tc.want {
			t.Errorf("GET %s: status %d, want %d", tc.path, w.Code, tc.want)
			continue
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			mustID(t, w.Body.String(), "error-message")
		}
	}
	// Huge limits are cut, not refused.
	for _, limit := range []string{"201", "1000000", "99999999999999999999999"} {
		f.get(s, "/console/events?limit="+limit, http.StatusOK)
		f.store.mu.Lock()
		got := f.store.eventFilters[len(f.store.eventFilters)-1].Limit
		f.store.mu.Unlock()
		if got != 200 {
			t.Errorf("limit=%s: store asked for %d, want 200", limit, got)
		}
	}
}

func TestRequestsTab(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, switchboard.StateDelivered)
	f.store.addRequest(&switchboard.Request{ID: id(2001), ReceivedAt: base.Add(time.Minute), Route: "/sms", Method: "POST",
		URL: "https://sb.example.com/sms", Outcome: switchboard.OutcomeRejected, Reason: "signature invalid", RemoteAddr: "198.51.100.1:1"})
	f.store.addRequest(&switchboard.Request{ID: id(2002), ReceivedAt: base.Add(2 * time.Minute), Route: "/sms", Method: "POST",
		URL: "https://sb.example.com/sms", Outcome: switchboard.OutcomeDuplicate, Reason: "duplicate of event " + id(1), EventID: id(1)})
	s := f.signIn()

	page := f.get(s, "/console/requests", http.StatusOK)
	table := mustID(t, page, "requests-table")
	rows := all(table, func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-request-id") })
	if len(rows) != 3 || attr(rows[0], "data-request-id") != id(2002) {
		t.Fatalf("rows: %d", len(rows))
	}
	if link := first(rows[0], func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == "/console/events/"+id(1) }); link == nil {
		t.Error("the duplicate's row does not link to its event")
	}
	if !strings.Contains(text(rows[1]), "signature invalid") {
		t.Errorf("the rejected row does not say why: %s", text(rows[1]))
	}

	page = f.get(s, "/console/requests?outcome=rejected&route=%2Fsms", http.StatusOK)
	f.store.mu.Lock()
	got := f.store.requestFilters[len(f.store.requestFilters)-1]
	f.store.mu.Unlock()
	if got.Outcome != switchboard.OutcomeRejected || got.Route != "/sms" {
		t.Errorf("store asked for %+v", got)
	}
	if n := len(all(mustID(t, page, "requests-table"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-request-id") })); n != 1 {
		t.Errorf("rejected only: %d rows", n)
	}

	// A rejected request's page says why it was refused.
	page = f.get(s, "/console/requests/"+id(2001), http.StatusOK)
	if sig := text(mustID(t, page, "signature")); !strings.Contains(sig, "Rejected") || !strings.Contains(sig, "signature invalid") {
		t.Errorf("signature verdict: %q", sig)
	}
}

func TestRoutesAreOffered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *console.Options) {
		o.Routes = []console.Route{{Path: "/voice"}, {Path: "/sms"}}
	})
	s := f.signIn()
	dl := mustID(t, f.get(s, "/console/events", http.StatusOK), "routes")
	var got []string
	for _, o := range all(dl, func(n *html.Node) bool { return n.Data == "option" }) {
		got = append(got, attr(o, "value"))
	}
	if !slices.Equal(got, []string{"/sms", "/voice"}) {
		t.Errorf("routes offered %v", got)
	}
}
