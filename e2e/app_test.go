package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// delivery is one request Switchboard made to the app.
type delivery struct {
	method     string
	host       string
	requestURI string
	header     http.Header
	body       []byte

	eventID    string // X-Switchboard-Event-Id
	attempt    string // X-Switchboard-Attempt
	messageSID string // from the form body or the query
	status     int    // what the app answered
}

// app is the application Switchboard delivers to. It records every
// request, answers with respond's status (204 by default), and tracks which
// events and messages it has taken (answered 2xx) and whether one event was
// ever delivered twice at once.
type app struct {
	srv     *httptest.Server
	respond func(d *delivery, previous int) int // previous: earlier deliveries of the event
	delay   time.Duration                       // how long the app takes over each request
	hold    chan struct{}                       // if not nil, requests are answered once it is closed

	mu         sync.Mutex
	deliveries []*delivery
	byEvent    map[string]int // deliveries by event id, any answer
	okByEvent  map[string]int // 2xx answers by event id
	okBySID    map[string]int // 2xx answers by MessageSid
	inFlight   map[string]int // deliveries being answered, by event id
	active     int            // deliveries being answered
	overlaps   int            // deliveries of an event while another of it was in flight
	changed    chan struct{}  // closed and replaced when a delivery starts or ends
}

// startApp starts an app on an ephemeral loopback port.
func startApp(t *testing.T, configure ...func(*app)) *app {
	t.Helper()
	a := newApp(configure...)
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

// startAppAt starts an app on a reserved port, retrying for a moment if
// the port is taken, as it may be for an instant by a connection's local
// end.
func startAppAt(t *testing.T, r *reservation, configure ...func(*app)) *app {
	t.Helper()
	a := newApp(configure...)
	r.free()
	deadline := time.Now().Add(5 * time.Second)
	var ln net.Listener
	for {
		var err error
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.srv = httptest.NewUnstartedServer(a)
	a.srv.Listener.Close()
	a.srv.Listener = ln
	a.srv.Start()
	t.Cleanup(a.srv.Close)
	return a
}

func newApp(configure ...func(*app)) *app {
	a := &app{
		byEvent:   map[string]int{},
		okByEvent: map[string]int{},
		okBySID:   map[string]int{},
		inFlight:  map[string]int{},
		changed:   make(chan struct{}),
	}
	for _, f := range configure {
		f(a)
	}
	return a
}

// reservation is a loopback port kept for an app that starts later.
type reservation struct {
	addr    string
	release func()
	once    sync.Once
}

// free gives the port up; startAppAt does before listening on it.
func (r *reservation) free() { r.once.Do(r.release) }

// url returns the app's URL for path.
func (a *app) url(path string) string { return a.srv.URL + path }

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d := &delivery{
		method:     r.Method,
		host:       r.Host,
		requestURI: r.RequestURI,
		header:     r.Header.Clone(),
		body:       body,
		eventID:    r.Header.Get("X-Switchboard-Event-Id"),
		attempt:    r.Header.Get("X-Switchboard-Attempt"),
		messageSID: messageSID(r, body),
	}

	a.mu.Lock()
	previous := a.byEvent[d.eventID]
	a.byEvent[d.eventID]++
	if a.inFlight[d.eventID] > 0 {
		a.overlaps++
	}
	a.inFlight[d.eventID]++
	a.active++
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()

	if a.delay > 0 {
		time.Sleep(a.delay) // a slow app, so that deliveries overlap
	}
	if a.hold != nil {
		<-a.hold
	}
	d.status = http.StatusNoContent
	if a.respond != nil {
		d.status = a.respond(d, previous)
	}

	a.mu.Lock()
	a.inFlight[d.eventID]--
	a.active--
	a.deliveries = append(a.deliveries, d)
	if d.status >= 200 && d.status < 300 {
		a.okByEvent[d.eventID]++
		if d.messageSID != "" {
			a.okBySID[d.messageSID]++
		}
	}
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()

	w.WriteHeader(d.status)
}

// messageSID returns the MessageSid a delivery carries, if any.
func messageSID(r *http.Request, body []byte) string {
	if r.Method == http.MethodGet {
		return r.URL.Query().Get("MessageSid")
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	return form.Get("MessageSid")
}

// waitFor waits until cond, called with the app's state locked, holds.
// what describes the condition and progress reports how far along it is
// when the wait times out.
func (a *app) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, progress func() string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		ok, changed := cond(), a.changed
		a.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			a.mu.Lock()
			p := progress()
			a.mu.Unlock()
			t.Fatalf("app: %s: not after %v: %s", what, timeout, p)
		}
	}
}

// waitForSIDs waits until every one of sids has been taken at least once.
func (a *app) waitForSIDs(t *testing.T, timeout time.Duration, sids []string) {
	t.Helper()
	missing := func() []string {
		var m []string
		for _, sid := range sids {
			if a.okBySID[sid] == 0 {
				m = append(m, sid)
			}
		}
		return m
	}
	a.waitFor(t, timeout, "every acknowledged message delivered", func() bool {
		for _, sid := range sids {
			if a.okBySID[sid] == 0 {
				return false
			}
		}
		return true
	}, func() string {
		m := missing()
		return fmt.Sprintf("%d of %d missing, e.g. %v", len(m), len(sids), m[:min(len(m), 5)])
	})
}

// snapshot returns the deliveries so far.
func (a *app) snapshot() []*delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*delivery(nil), a.deliveries...)
}

// redelivered returns how many of sids were taken more than once, and how
// many deliveries those repeats were.
func (a *app) redelivered(sids []string) (messages, extra int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sid := range sids {
		if n := a.okBySID[sid]; n > 1 {
			messages++
			extra += n - 1
		}
	}
	return messages, extra
}

// checkSignature reports whether a delivery's X-Twilio-Signature is valid
// for the URL the app was called on, with the account's first token.
func checkSignature(d *delivery) error {
	return twilio.ValidateRequest([]string{authToken}, "http://"+d.host+d.requestURI,
		d.header.Get("Content-Type"), d.body, d.header.Get("X-Twilio-Signature"))
}
