package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
	"github.com/switchboard-dev/switchboard/doctor"
)

const token = "admin-token-for-tests"

// base is the fixtures' time: every clock starts here.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// id is a sortable uuid-shaped id: larger n, later.
func id(n int) string { return fmt.Sprintf("01900000-0000-7000-8000-%012d", n) }

// fakeStore keeps what the console reads in memory and filters it as the
// store's contract says.
type fakeStore struct {
	mu        sync.Mutex
	events    []*switchboard.Event
	requests  []*switchboard.Request
	attempts  map[string][]*switchboard.Attempt
	messages  []*switchboard.OutboundMessage
	history   map[string][]switchboard.StatusChange
	sessions  map[string]switchboard.ConsoleSession
	dashboard *switchboard.Dashboard
	*fakeAlerts

	// ignoreExpiry makes Session return expired sessions, as a store
	// that does not check would.
	ignoreExpiry bool
	// sessionErr fails Session.
	sessionErr error

	eventFilters   []switchboard.EventFilter
	requestFilters []switchboard.RequestFilter
	messageFilters []switchboard.OutboundFilter
	replays        []switchboard.ReplayFilter
	dashQueries    []switchboard.DashboardQuery
}

func newFakeStore() *fakeStore {
	return &fakeStore{attempts: map[string][]*switchboard.Attempt{}, history: map[string][]switchboard.StatusChange{},
		sessions: map[string]switchboard.ConsoleSession{}, fakeAlerts: &fakeAlerts{}}
}

func (s *fakeStore) addEvent(e *switchboard.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *fakeStore) addRequest(r *switchboard.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

func (s *fakeStore) addAttempt(a *switchboard.Attempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[a.EventID] = append(s.attempts[a.EventID], a)
}

func (s *fakeStore) addMessage(m *switchboard.OutboundMessage, hist ...switchboard.StatusChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	s.history[m.ID] = hist
}

func newest[T any](items []T, id func(T) string, keep func(T) bool, cursor string, limit int) *switchboard.Page[T] {
	var out []T
	for _, it := range items {
		if keep(it) && (cursor == "" || id(it) < cursor) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(id(b), id(a)) })
	limit = switchboard.LimitOrDefault(limit)
	p := &switchboard.Page[T]{Items: out}
	if len(out) > limit {
		p.Items, p.Next = out[:limit], id(out[limit-1])
	}
	return p
}

func inRange(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}

func (s *fakeStore) ListEvents(_ context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventFilters = append(s.eventFilters, f)
	return newest(s.events, func(e *switchboard.Event) string { return e.ID }, func(e *switchboard.Event) bool {
		return (f.Route == "" || e.Route == f.Route) && (f.Kind == "" || e.Kind == f.Kind) && (f.State == "" || e.State == f.State) &&
			(f.SID == "" || e.MessageSID == f.SID || e.CallSID == f.SID) && (f.Number == "" || e.From == f.Number || e.To == f.Number) &&
			(f.TwilioCode == 0 || e.LastCode == f.TwilioCode) && inRange(e.CreatedAt, f.Since, f.Until)
	}, f.Cursor, f.Limit), nil
}

func (s *fakeStore) Event(_ context.Context, id string) (*switchboard.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.ID == id {
			c := *e
			return &c, nil
		}
	}
	return nil, switchboard.ErrNotFound
}

func (s *fakeStore) Attempts(_ context.Context, eventID string) ([]*switchboard.Attempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attempts[eventID]), nil
}

func (s *fakeStore) ListRequests(_ context.Context, f switchboard.RequestFilter) (*switchboard.Page[*switchboard.Request], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requestFilters = append(s.requestFilters, f)
	return newest(s.requests, func(r *switchboard.Request) string { return r.ID }, func(r *switchboard.Request) bool {
		return (f.Route == "" || r.Route == f.Route) && (f.Outcome == "" || r.Outcome == f.Outcome) &&
			(f.EventID == "" || r.EventID == f.EventID) && inRange(r.ReceivedAt, f.Since, f.Until)
	}, f.Cursor, f.Limit), nil
}

func (s *fakeStore) Request(_ context.Context, id string) (*switchboard.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.requests {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, switchboard.ErrNotFound
}

func (s *fakeStore) replayMatch(f switchboard.ReplayFilter, e *switchboard.Event) bool {
	if f.EventID != "" {
		return e.ID == f.EventID && e.State.Terminal()
	}
	return e.State.Terminal() && (f.Route == "" || e.Route == f.Route) && (f.Kind == "" || e.Kind == f.Kind) &&
		(f.State == "" || e.State == f.State) && (f.TwilioCode == 0 || e.LastCode == f.TwilioCode) && inRange(e.CreatedAt, f.Since, f.Until)
}

func (s *fakeStore) Replay(_ context.Context, f switchboard.ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replays = append(s.replays, f)
	n := 0
	for _, e := range s.events {
		if s.replayMatch(f, e) {
			e.State = switchboard.StatePending
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) ReplayCount(_ context.Context, f switchboard.ReplayFilter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if s.replayMatch(f, e) {
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) CreateSession(_ context.Context, cs *switchboard.ConsoleSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[cs.ID] = *cs
	return nil
}

func (s *fakeStore) Session(_ context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessionErr != nil {
		return nil, s.sessionErr
	}
	cs, ok := s.sessions[id]
	if !ok || (!s.ignoreExpiry && !cs.ExpiresAt.After(now)) {
		return nil, switchboard.ErrNotFound
	}
	return &cs, nil
}

func (s *fakeStore) DeleteSession(_ context.Context, id string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

func (s *fakeStore) Dashboard(_ context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error) {
	if !q.Until.After(q.Since) || q.Until.Sub(q.Since) > switchboard.MaxDashboardRange {
		return nil, fmt.Errorf("%w: dashboard range", switchboard.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dashQueries = append(s.dashQueries, q)
	d := &switchboard.Dashboard{}
	if s.dashboard != nil {
		*d = *s.dashboard
	}
	d.Since, d.Until = q.Since, q.Until
	return d, nil
}

func (s *fakeStore) ListOutboundMessages(_ context.Context, f switchboard.OutboundFilter) (*switchboard.Page[*switchboard.OutboundMessage], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messageFilters = append(s.messageFilters, f)
	return newest(s.messages, func(m *switchboard.OutboundMessage) string { return m.ID }, func(m *switchboard.OutboundMessage) bool {
		return (f.Pool == "" || m.Pool == f.Pool) && (f.Purpose == "" || m.Purpose == f.Purpose) && (f.State == "" || m.State == f.State) &&
			(f.Template == "" || m.Template == f.Template) && (f.ErrorCode == 0 || m.ErrorCode == f.ErrorCode) &&
			(f.Number == "" || m.To == f.Number || m.From == f.Number) && inRange(m.CreatedAt, f.Since, f.Until)
	}, f.Cursor, f.Limit), nil
}

func (s *fakeStore) OutboundMessage(_ context.Context, id string) (*switchboard.OutboundMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.ID == id {
			c := *m
			return &c, nil
		}
	}
	return nil, switchboard.ErrNotFound
}

func (s *fakeStore) MessageHistory(_ context.Context, id string) ([]switchboard.StatusChange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history[id]), nil
}

// fakeMessages replays messages in the fake store as the store would.
type fakeMessages struct{ s *fakeStore }

func (m fakeMessages) Replay(_ context.Context, id string) (*switchboard.OutboundMessage, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	for _, msg := range m.s.messages {
		if msg.ID == id {
			if err := msg.Replay(base); err != nil {
				return nil, err
			}
			c := *msg
			return &c, nil
		}
	}
	return nil, switchboard.ErrNotFound
}

// fakeProber reports one finding for any route but "/none".
type fakeProber struct{}

func (fakeProber) ProbeRoute(_ context.Context, route string) (*doctor.Report, error) {
	if route == "/none" {
		return nil, switchboard.ErrNotFound
	}
	return &doctor.Report{URL: "https://app.example.com" + route, Kind: "sms", Elapsed: 42 * time.Millisecond,
		Findings: []doctor.Finding{{Check: "content-type", Status: doctor.StatusFail, Code: 12300,
			Message: "text/plain is not a TwiML Content-Type", Fix: "send Content-Type: application/xml"}}}, nil
}

// fakeLive reports one pool and one breaker.
type fakeLive struct{}

func (fakeLive) LiveState(context.Context) (*console.LiveState, error) {
	return &console.LiveState{
		Breakers: []console.BreakerState{{Target: "https://app.example.com", State: "open"}},
		Pools:    []console.PoolState{{Pool: "main", Rate: 10, Brownout: true}},
	}, nil
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a console over a fake store, driven in-process.
type fixture struct {
	t     *testing.T
	c     *console.Console
	store *fakeStore
	clock *clock
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newFixture(t *testing.T, adjust ...func(*console.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: newFakeStore(), clock: &clock{now: base}, logs: &syncBuffer{}}
	o := console.Options{
		Token: token, Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Routes: []console.Route{{Path: "/sms"}, {Path: "/voice", Proxy: true}},
	}
	o.Messages, o.Prober, o.Live = fakeMessages{f.store}, fakeProber{}, fakeLive{}
	for _, a := range adjust {
		a(&o)
	}
	f.c = console.New(f.store, o)
	return f
}

// do serves one request; a non-nil form makes it a form POST.
func (f *fixture) do(method, target string, form url.Values, cookie *http.Cookie, header ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	f.c.ServeHTTP(w, r)
	return w
}

// session is a signed-in browser.
type session struct {
	cookie *http.Cookie
	csrf   string
}

func (f *fixture) signIn() session {
	f.t.Helper()
	w := f.do("POST", "/console/login", url.Values{"token": {token}}, nil)
	if w.Code != http.StatusSeeOther {
		f.t.Fatalf("sign in: status %d\n%s", w.Code, w.Body)
	}
	var ck *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == console.CookieName {
			ck = c
		}
	}
	if ck == nil {
		f.t.Fatal("sign in: no session cookie")
	}
	page := f.do("GET", "/console/events", nil, ck)
	doc := parseHTML(f.t, page.Body.String())
	meta := first(doc, func(n *html.Node) bool { return n.Data == "meta" && hasAttr(n, "data-csrf") })
	if meta == nil {
		f.t.Fatal("signed-in page has no meta[data-csrf]")
	}
	return session{cookie: ck, csrf: attr(meta, "content")}
}

// get fetches a page signed in and wants status.
func (f *fixture) get(s session, target string, status int) string {
	f.t.Helper()
	w := f.do("GET", target, nil, s.cookie)
	if w.Code != status {
		f.t.Fatalf("GET %s: status %d, want %d\n%s", target, w.Code, status, w.Body)
	}
	return w.Body.String()
}

// post sends a form with the session's CSRF token and wants status.
func (f *fixture) post(s session, target string, form url.Values, status int) string {
	f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", s.csrf)
	w := f.do("POST", target, form, s.cookie)
	if w.Code != status {
		f.t.Fatalf("POST %s: status %d, want %d\n%s", target, w.Code, status, w.Body)
	}
	return w.Body.String()
}

func parseHTML(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

func all(n *html.Node, keep func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func first(n *html.Node, keep func(*html.Node) bool) *html.Node {
	if found := all(n, keep); len(found) > 0 {
		return found[0]
	}
	return nil
}

func byID(n *html.Node, id string) *html.Node {
	return first(n, func(d *html.Node) bool { return attr(d, "id") == id })
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == name })
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// mustID finds the element with id in page, or fails.
func mustID(t *testing.T, page, id string) *html.Node {
	t.Helper()
	n := byID(parseHTML(t, page), id)
	if n == nil {
		t.Fatalf("no #%s in the page:\n%s", id, page)
	}
	return n
}

// eventRows are the data-event-id of the inspector's rows, in order.
func eventRows(t *testing.T, page string) []string {
	t.Helper()
	var ids []string
	table := mustID(t, page, "events-table")
	for _, tr := range all(table, func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-event-id") }) {
		ids = append(ids, attr(tr, "data-event-id"))
	}
	return ids
}

// Numbers and text the fixtures hold, which redaction must hide.
const (
	caller   = "+15550001111"
	business = "+15559990000"
	secret   = "meet me at the old mill"
)

func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

// seedEvent stores event id(n) of route /sms, received n seconds after
// base, with its request (id(1000+n)), a form body from caller; adjust
// changes the event before it is stored.
func seedEvent(s *fakeStore, n int, state switchboard.State, adjust ...func(*switchboard.Event)) *switchboard.Event {
	at := base.Add(time.Duration(n) * time.Second)
	body := url.Values{"From": {caller}, "To": {business}, "Body": {secret}, "MessageSid": {sid("SM", n)}}.Encode()
	req := &switchboard.Request{
		ID: id(1000 + n), ReceivedAt: at, Route: "/sms", Method: "POST", URL: "https://sb.example.com/sms?From=" + url.QueryEscape(caller),
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {"c2lnbmF0dXJl"}},
		Body:   []byte(body), RemoteAddr: "203.0.113.5:443", Outcome: switchboard.OutcomeAccepted, EventID: id(n),
	}
	ev := &switchboard.Event{
		ID: id(n), RequestID: req.ID, Route: "/sms", AccountSID: sid("AC", 1), Kind: switchboard.KindMessage, MessageSID: sid("SM", n),
		IdempotencyKey: "key-" + sid("SM", n), State: state, CreatedAt: at, UpdatedAt: at, From: caller, To: business,
		Response: switchboard.Response{Status: 200, ContentType: "application/xml",
			Body: []byte("<?xml version=\"1.0\"?><Response><Message>Thanks: " + secret + "</Message></Response>")},
	}
	for _, a := range adjust {
		a(ev)
	}
	s.addRequest(req)
	s.addEvent(ev)
	return ev
}
