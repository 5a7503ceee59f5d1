package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// fakeStore keeps events in ID order; delivered ones stop waiting.
type fakeStore struct {
	mu      sync.Mutex
	events  []*switchboard.Event
	done    map[string]bool
	filters []switchboard.WaitingFilter
	reads   atomic.Int64
}

func newFakeStore() *fakeStore { return &fakeStore{done: map[string]bool{}} }

func (s *fakeStore) add(route string, kind switchboard.Kind) *switchboard.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := &switchboard.Event{ID: fmt.Sprintf("ev-%06d", len(s.events)+1), Route: route, Kind: kind,
		MessageSID: "SM" + strconv.Itoa(len(s.events)), State: switchboard.StatePending}
	s.events = append(s.events, ev)
	return ev
}

func (s *fakeStore) markDelivered(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[id] = true
}

func (s *fakeStore) WaitingEvents(ctx context.Context, f switchboard.WaitingFilter) ([]*switchboard.Event, error) {
	defer s.reads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filters = append(s.filters, f)
	var page []*switchboard.Event
	for _, ev := range s.events {
		if s.done[ev.ID] || ev.ID <= f.After || !slices.Contains(f.Routes, ev.Route) ||
			(len(f.Kinds) > 0 && !slices.Contains(f.Kinds, ev.Kind)) {
			continue
		}
		page = append(page, ev)
		if len(page) == f.Limit {
			break
		}
	}
	return page, nil
}

// fakeDeliverer delivers like the deliver package would: a request for
// the tunnel's target, its answer recorded in the store.
type fakeDeliverer struct {
	store *fakeStore
	now   func() time.Time
	// retryIn is how long a failed event waits for its next attempt.
	retryIn time.Duration
	errs    chan error // every RoundTrip error, when not nil
	mu      sync.Mutex
	tries   map[string]int
}

func newFakeDeliverer(st *fakeStore) *fakeDeliverer {
	return &fakeDeliverer{store: st, now: time.Now, retryIn: time.Minute, tries: map[string]int{}, errs: make(chan error, 100)}
}

func (d *fakeDeliverer) DeliverThrough(ctx context.Context, ev *switchboard.Event, t deliver.Tunnel) (*switchboard.AttemptResult, error) {
	d.mu.Lock()
	d.tries[ev.ID]++
	n := d.tries[ev.ID]
	d.mu.Unlock()
	req, err := http.NewRequestWithContext(deliver.WithTunnelRequest(ctx, deliver.TunnelRequest{Event: ev}), http.MethodPost, t.Target(ev.Route), strings.NewReader("Body=hello"))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", "signed-for-"+t.Target(ev.Route))
	req.Header.Set("X-Switchboard-Event-Id", ev.ID)
	req.Header.Set("X-Switchboard-Attempt", strconv.Itoa(n))
	resp, err := t.RoundTrip(req)
	if err != nil {
		select {
		case d.errs <- err:
		default:
		}
		if errors.Is(err, switchboard.ErrListenerGone) {
			return &switchboard.AttemptResult{State: switchboard.StatePending, NextAttemptAt: d.now().Add(switchboard.ListenerPark),
				Attempt: switchboard.Attempt{Error: err.Error()}}, nil
		}
		return &switchboard.AttemptResult{State: switchboard.StateRetrying, NextAttemptAt: d.now().Add(d.retryIn),
			Attempt: switchboard.Attempt{Number: n, Error: err.Error()}}, nil
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &switchboard.AttemptResult{State: switchboard.StateRetrying, NextAttemptAt: d.now().Add(d.retryIn),
			Attempt: switchboard.Attempt{Number: n, StatusCode: resp.StatusCode}}, nil
	}
	d.store.markDelivered(ev.ID)
	return &switchboard.AttemptResult{State: switchboard.StateDelivered, Attempt: switchboard.Attempt{Number: n, StatusCode: resp.StatusCode}}, nil
}

// app is the local app: it records the event IDs it is sent, in order.
type app struct {
	*httptest.Server
	mu   sync.Mutex
	ids  []string
	reqs []*http.Request
	// handle, when set, answers instead of a 200.
	handle func(w http.ResponseWriter, r *http.Request)
}

func newApp(t *testing.T) *app {
	a := &app{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.ids = append(a.ids, r.Header.Get("X-Switchboard-Event-Id"))
		a.reqs = append(a.reqs, r)
		h := a.handle
		a.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, "<Response/>")
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *app) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ids)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline, not waiting blind
	}
}

// rig is a Hub behind the admin API's listen endpoint.
type rig struct {
	hub     *Hub
	srv     *httptest.Server
	store   *fakeStore
	del     *fakeDeliverer
	mu      sync.Mutex
	serveEr []error
	conns   map[string]int
}

const testToken = "secret-token"

func newRig(t *testing.T, tune func(*HubOptions)) *rig {
	rg := &rig{store: newFakeStore(), conns: map[string]int{}}
	rg.del = newFakeDeliverer(rg.store)
	o := HubOptions{Store: rg.store, Deliverer: rg.del, PollInterval: time.Hour,
		Routes: map[string][]string{"dev": {"/sms", "/voice"}},
		Connected: func(name string, n int) {
			rg.mu.Lock()
			rg.conns[name] = n
			rg.mu.Unlock()
		}}
	if tune != nil {
		tune(&o)
	}
	rg.hub = NewHub(o)
	rg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		err := rg.hub.Serve(w, r, r.URL.Query().Get(ParamListener))
		switch {
		case errors.Is(err, ErrUnknownListener):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, switchboard.ErrInvalid):
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		rg.mu.Lock()
		rg.serveEr = append(rg.serveEr, err)
		rg.mu.Unlock()
	}))
	t.Cleanup(func() {
		rg.hub.Close()
		rg.srv.Close()
	})
	return rg
}

func (rg *rig) connected(name string) int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.conns[name]
}

// runClient runs c until the test ends; the channel gets Run's error.
func runClient(t *testing.T, c *Client) (cancel func(), done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ch <- c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Error("client did not stop")
		}
	})
	return cancel, ch
}

func (rg *rig) client(forwardTo string) (*Client, chan []string) {
	connected := make(chan []string, 10)
	return &Client{Server: rg.srv.URL, Token: testToken, Listener: "dev", ForwardTo: forwardTo,
		OnConnect: func(routes []string) { connected <- routes }}, connected
}

func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestBacklogInOrderThenLive(t *testing.T) {
	rg := newRig(t, nil)
	a := newApp(t)
	var want []string
	for i := range 200 {
		route := []string{"/sms", "/voice"}[i%2]
		want = append(want, rg.store.add(route, switchboard.KindMessage).ID)
	}
	c, connected := rg.client(a.URL)
	runClient(t, c)
	if routes := receive(t, "connect", connected); !slices.Equal(routes, []string{"/sms", "/voice"}) {
		t.Fatalf("routes = %v", routes)
	}
	waitFor(t, "the backlog", func() bool { return len(a.received()) >= 200 })
	if got := a.received(); !slices.Equal(got, want) {
		t.Fatalf("backlog out of order or repeated: first %v", got[:5])
	}
	// Each event went to the route's own path on the forward-to origin,
	// with the event's headers as the deliverer set them.
	a.mu.Lock()
	r0, r1 := a.reqs[0], a.reqs[1]
	a.mu.Unlock()
	if r0.URL.Path != "/sms" || r1.URL.Path != "/voice" || r0.Header.Get("X-Twilio-Signature") != "signed-for-"+a.URL+"/sms" {
		t.Fatalf("first requests: %s %s, signature %q", r0.URL.Path, r1.URL.Path, r0.Header.Get("X-Twilio-Signature"))
	}

	// A live event: the poll interval is an hour, so only Waiting wakes the
	// session.
	live := rg.store.add("/sms", switchboard.KindMessage)
	rg.hub.Waiting("dev")
	rg.hub.Waiting("nobody")
	waitFor(t, "the live event", func() bool { return len(a.received()) == 201 })
	if got := a.received()[200]; got != live.ID {
		t.Fatalf("live event %s, want %s", got, live.ID)
	}
	if n := rg.connected("dev"); n != 1 {
		t.Fatalf("connected = %d", n)
	}
}

func TestReconnectDeliversTheLostEventAgain(t *testing.T) {
	rg := newRig(t, nil)
	a := newApp(t)
	entered := make(chan struct{}, 1)
	a.handle = func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		// The body read, net/http cancels the context when the caller leaves.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // never answers: the listener goes first
	}
	ev := rg.store.add("/sms", switchboard.KindMessage)

	c1, _ := rg.client(a.URL)
	stop1, done1 := runClient(t, c1)
	receive(t, "the first request at the app", entered)
	stop1()
	if err := receive(t, "the first client to stop", done1); err != nil {
		t.Fatalf("Run = %v", err)
	}
	err := receive(t, "the in-flight RoundTrip to fail", rg.del.errs)
	if !errors.Is(err, switchboard.ErrListenerGone) {
		t.Fatalf("RoundTrip error = %v, want ErrListenerGone", err)
	}
	waitFor(t, "the session to end", func() bool { return rg.connected("dev") == 0 })
	if _, ok := rg.hub.Tunnel("dev"); ok {
		t.Fatal("a tunnel is still there")
	}

	a.mu.Lock()
	a.handle = nil
	a.mu.Unlock()
	c2, _ := rg.client(a.URL)
	runClient(t, c2)
	waitFor(t, "the event again", func() bool { return len(a.received()) == 2 })
	if got := a.received(); got[0] != ev.ID || got[1] != ev.ID {
		t.Fatalf("received %v, want %s twice", got, ev.ID)
	}
	a.mu.Lock()
	attempt := a.reqs[1].Header.Get("X-Switchboard-Attempt")
	a.mu.Unlock()
	if attempt != "2" {
		t.Fatalf("second delivery's attempt = %q", attempt)
	}
}

func TestNewestConnectionReplacesTheOlder(t *testing.T) {
	rg := newRig(t, nil)
	a := newApp(t)
	c1, connected1 := rg.client(a.URL)
	_, done1 := runClient(t, c1)
	receive(t, "the first connection", connected1)

	c2, connected2 := rg.client(a.URL)
	runClient(t, c2)
	receive(t, "the second connection", connected2)
	// The older listener is told it was replaced and stops: reconnecting
	// would only replace the newer one in turn.
	if err := receive(t, "the older client to stop", done1); !errors.Is(err, ErrRefused) {
		t.Fatalf("older Run = %v, want ErrRefused", err)
	}
	ev := rg.store.add("/sms", switchboard.KindMessage)
	rg.hub.Waiting("dev")
	waitFor(t, "the event", func() bool { return len(a.received()) == 1 })
	if a.received()[0] != ev.ID {
		t.Fatalf("received %v", a.received())
	}
	if n := rg.connected("dev"); n != 1 {
		t.Fatalf("connected = %d", n)
	}
}

func TestAppFailures(t *testing.T) {
	// A port nothing listens on: the app is down.
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	rg := newRig(t, nil)
	rg.store.add("/sms", switchboard.KindMessage)
	c, connected := rg.client(downURL)
	runClient(t, c)
	receive(t, "connect", connected)
	err := receive(t, "the delivery to fail", rg.del.errs)
	var classed interface{ ErrorClass() twilio.ErrorClass }
	if !errors.As(err, &classed) || classed.ErrorClass() != twilio.ClassConnect {
		t.Fatalf("error = %v, want one of class connect", err)
	}
	if errors.Is(err, switchboard.ErrListenerGone) {
		t.Fatal("an app that is down is not a listener gone")
	}
}

func TestRetryScheduleHoldsAFailedEvent(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	rg := newRig(t, func(o *HubOptions) { o.Now = clock; o.PollInterval = 5 * time.Millisecond })
	rg.del.now = clock
	a := newApp(t)
	var fail atomic.Bool
	fail.Store(true)
	a.handle = func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}
	ev := rg.store.add("/sms", switchboard.KindMessage)
	c, _ := rg.client(a.URL)
	runClient(t, c)
	waitFor(t, "the first attempt", func() bool { return len(a.received()) == 1 })
	// Several passes later, the event is not tried again before it is due.
	reads := rg.store.reads.Load()
	waitFor(t, "more passes", func() bool { return rg.store.reads.Load() > reads+5 })
	if n := len(a.received()); n != 1 {
		t.Fatalf("%d attempts before the retry was due", n)
	}
	fail.Store(false)
	now.Add(int64(2 * time.Minute))
	waitFor(t, "the retry", func() bool { return len(a.received()) == 2 })
	if a.received()[1] != ev.ID {
		t.Fatalf("received %v", a.received())
	}
}

func TestKindFilterAndConcurrentLiveRequest(t *testing.T) {
	rg := newRig(t, nil)
	a := newApp(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	a.handle = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/live" {
			fmt.Fprint(w, "<Response><Message>hi</Message></Response>")
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	rg.store.add("/sms", switchboard.KindMessage)
	voice := rg.store.add("/voice", switchboard.KindVoice)
	c, connected := rg.client(a.URL)
	c.Kinds = []string{"voice"}
	events := make(chan Delivery, 10)
	c.OnEvent = func(d Delivery) { events <- d }
	runClient(t, c)
	receive(t, "connect", connected)
	receive(t, "the voice event at the app", entered)
	if got := a.received(); !slices.Equal(got, []string{voice.ID}) {
		t.Fatalf("received %v, want only the voice event", got)
	}
	rg.store.mu.Lock()
	kinds := rg.store.filters[0].Kinds
	rg.store.mu.Unlock()
	if !slices.Equal(kinds, []switchboard.Kind{switchboard.KindVoice}) {
		t.Fatalf("filter kinds = %v", kinds)
	}

	// While the session's delivery waits at the app, a live request goes
	// through the same tunnel and is answered.
	tun, ok := rg.hub.Tunnel("dev")
	if !ok {
		t.Fatal("no tunnel")
	}
	ctx, cancel := context.WithTimeout(deliver.WithTunnelRequest(context.Background(), deliver.TunnelRequest{Live: true}), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/live", strings.NewReader("x=1"))
	resp, err := tun.RoundTrip(req)
	if err != nil {
		t.Fatalf("live RoundTrip: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("live status %d", resp.StatusCode)
	}
	d := receive(t, "the live request's delivery", events)
	if !d.Live || d.Status != 200 {
		t.Fatalf("live delivery = %+v", d)
	}
	close(release)
	d = receive(t, "the voice delivery", events)
	if d.EventID != voice.ID || d.Kind != "voice" || d.Route != "/voice" || d.SID != voice.MessageSID || d.Live || d.Attempt != 1 {
		t.Fatalf("voice delivery = %+v", d)
	}
}

func TestServeErrorsBeforeUpgrade(t *testing.T) {
	h := NewHub(HubOptions{Store: newFakeStore(), Routes: map[string][]string{"dev": {"/sms"}}})
	defer h.Close()
	tests := []struct {
		name, listener, query string
		want                  error
	}{
		{"unknown listener", "other", "forward_to=http://localhost:3000", ErrUnknownListener},
		{"no forward_to", "dev", "", switchboard.ErrInvalid},
		{"not http", "dev", "forward_to=ftp://localhost/x", switchboard.ErrInvalid},
		{"user info", "dev", "forward_to=http://u:p@localhost:3000", switchboard.ErrInvalid},
		{"relative", "dev", "forward_to=/sms", switchboard.ErrInvalid},
		{"bad kind", "dev", "forward_to=http://localhost:3000&kind=voice&kind=nope", switchboard.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, Path+"?"+tt.query, nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			w := httptest.NewRecorder()
			if err := h.Serve(w, r, tt.listener); !errors.Is(err, tt.want) {
				t.Fatalf("Serve = %v, want %v", err, tt.want)
			}
			if w.Body.Len() != 0 || len(w.Header()) != 0 {
				t.Fatal("Serve wrote to w")
			}
		})
	}
}

func TestHubCloseEndsSessions(t *testing.T) {
	rg := newRig(t, nil)
	a := newApp(t)
	c, connected := rg.client(a.URL)
	disconnected := make(chan error, 10)
	c.OnDisconnect = func(err error) { disconnected <- err }
	runClient(t, c)
	receive(t, "connect", connected)
	rg.hub.Close()
	receive(t, "the client to see the disconnect", disconnected)
	waitFor(t, "Serve to return", func() bool {
		rg.mu.Lock()
		defer rg.mu.Unlock()
		return len(rg.serveEr) > 0
	})
}

// A proxy route's event is stored before it is proxied live through the
// listener, with its first delivery delayed past the proxy's budget. Until
// then the live request is the event's delivery: a session that delivered
// it too would make the app take the same webhook twice.
func TestSessionLeavesAnEventBeingProxiedToTheProxy(t *testing.T) {
	var now atomic.Int64
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	rg := newRig(t, func(o *HubOptions) { o.Now = clock; o.PollInterval = 5 * time.Millisecond })
	rg.del.now = clock
	a := newApp(t)
	proxied := rg.store.add("/voice", switchboard.KindVoice)
	proxied.CreatedAt, proxied.UpdatedAt, proxied.NextAttemptAt = start, start, start.Add(time.Minute)
	parked := rg.store.add("/sms", switchboard.KindMessage) // parked: touched since it was stored
	parked.CreatedAt, parked.UpdatedAt, parked.NextAttemptAt = start, start.Add(time.Second), start.Add(time.Hour)
	fresh := rg.store.add("/sms", switchboard.KindMessage)
	fresh.CreatedAt, fresh.UpdatedAt, fresh.NextAttemptAt = start, start, start

	c, _ := rg.client(a.URL)
	runClient(t, c)
	waitFor(t, "the parked and fresh events", func() bool { return len(a.received()) >= 2 })
	reads := rg.store.reads.Load()
	waitFor(t, "more passes", func() bool { return rg.store.reads.Load() > reads+5 })
	if got := a.received(); !slices.Equal(got, []string{parked.ID, fresh.ID}) {
		t.Fatalf("received %v while %s was being proxied, want only %s and %s", got, proxied.ID, parked.ID, fresh.ID)
	}
	// Past its delayed first delivery, the proxy did not record it: the
	// session delivers it.
	now.Add(int64(2 * time.Minute))
	waitFor(t, "the proxied event's own delivery", func() bool { return len(a.received()) == 3 })
	if got := a.received()[2]; got != proxied.ID {
		t.Fatalf("third delivery %s, want %s", got, proxied.ID)
	}
}

// A connection is offered for live requests only once its hello is sent:
// the listener takes a request before the hello as a protocol violation
// and drops the connection, with the request.
func TestTunnelOfferedOnlyAfterHello(t *testing.T) {
	h := NewHub(HubOptions{Store: newFakeStore(), Routes: map[string][]string{"dev": {"/sms"}}})
	defer h.Close()
	s := newSession(h, "dev", []string{"/sms"}, nil, newTunnel(nil, "http://localhost:3000"))
	if _, ok := h.register(s); !ok {
		t.Fatal("register refused")
	}
	defer func() { h.unregister(s); h.running.Done() }()
	if _, ok := h.Tunnel("dev"); ok {
		t.Fatal("tunnel offered before the hello was sent")
	}
	s.tun.markReady()
	if _, ok := h.Tunnel("dev"); !ok {
		t.Fatal("tunnel not offered after the hello")
	}
}

// An app's answer whose headers make a frame over MaxFrameBytes is
// answered as a failure of the app: sent as is, it would close the
// connection, and the event, due again at once, would close the next one.
func TestOversizedAnswerIsTheAppsFailure(t *testing.T) {
	rg := newRig(t, nil)
	a := newApp(t)
	a.handle = func(w http.ResponseWriter, r *http.Request) {
		for i := range 48 {
			w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("x", 60<<10))
		}
	}
	rg.store.add("/sms", switchboard.KindMessage)
	c, connected := rg.client(a.URL)
	runClient(t, c)
	receive(t, "connect", connected)
	err := receive(t, "the delivery to fail", rg.del.errs)
	var classed interface{ ErrorClass() twilio.ErrorClass }
	if errors.Is(err, switchboard.ErrListenerGone) || !errors.As(err, &classed) || classed.ErrorClass() != twilio.ClassProtocol {
		t.Fatalf("error = %v, want the app's protocol failure, the connection kept", err)
	}
}
