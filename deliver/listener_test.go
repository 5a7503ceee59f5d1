package deliver_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// fakeTunnel stands for a connected listener: it makes each request to the
// app itself, or fails as a vanished listener would.
type fakeTunnel struct {
	target string // the local URL the listener forwards to
	gone   bool   // fail every request with switchboard.ErrListenerGone

	mu  sync.Mutex
	got []deliver.TunnelRequest
}

func (f *fakeTunnel) Target(string) string { return f.target }

func (f *fakeTunnel) RoundTrip(r *http.Request) (*http.Response, error) {
	tr, ok := deliver.TunnelRequestOf(r.Context())
	if !ok {
		return nil, errors.New("request without what it is about")
	}
	f.mu.Lock()
	f.got = append(f.got, tr)
	f.mu.Unlock()
	if f.gone {
		return nil, fmt.Errorf("connection closed: %w", switchboard.ErrListenerGone)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// fakeListeners are the listeners connected to the process: at most one.
type fakeListeners struct {
	tunnel *fakeTunnel
	mu     sync.Mutex
	woken  []string
}

func (f *fakeListeners) Tunnel(string) (deliver.Tunnel, bool) {
	if f.tunnel == nil {
		return nil, false
	}
	return f.tunnel, true
}

func (f *fakeListeners) Waiting(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.woken = append(f.woken, name)
}

func listenerRoute(path, name string) deliver.Route {
	r := route(path, "")
	r.Listener = name
	return r
}

func TestListenerEventIsParkedNotDelivered(t *testing.T) {
	t.Parallel()
	ls := &fakeListeners{}
	h := newHarness(t, nil, []deliver.Route{listenerRoute("/sms", "laptop")}, func(o *deliver.Options) { o.Listeners = ls })
	id := h.ingest(t, "/sms", nil)
	wantNoError(t, h.deliver(t.Context(), id))
	wantState(t, h.event(t, id), switchboard.StatePending, 0, h.clock.Now().Add(switchboard.ListenerPark))
	if n := len(h.attempts(t, id)); n != 0 {
		t.Errorf("%d attempts recorded for a parked event, want none", n)
	}
	if len(ls.woken) != 1 || ls.woken[0] != "laptop" {
		t.Errorf("woken listeners %q, want [laptop]", ls.woken)
	}

	// At its max age the event is dead-lettered, still with no attempt.
	h.clock.Advance(72 * time.Hour)
	wantNoError(t, h.deliver(t.Context(), id))
	ev := h.event(t, id)
	if ev.State != switchboard.StateDead || ev.LastError == "" {
		t.Errorf("past max age: state %s, error %q; want dead with why", ev.State, ev.LastError)
	}
}

func TestListenerParkNeverPassesMaxAge(t *testing.T) {
	t.Parallel()
	r := listenerRoute("/sms", "laptop")
	r.MaxAge = 10 * time.Minute
	h := newHarness(t, nil, []deliver.Route{r}, nil)
	id := h.ingest(t, "/sms", nil)
	wantNoError(t, h.deliver(t.Context(), id))
	wantState(t, h.event(t, id), switchboard.StatePending, 0, h.clock.Now().Add(10*time.Minute))
}

func TestDeliverThroughSignsForTheLocalURL(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	tunnel := &fakeTunnel{target: a.URL + "/sms"}
	h := newHarness(t, nil, []deliver.Route{listenerRoute("/sms", "laptop")}, nil)
	id := h.ingest(t, "/sms", nil)
	result, err := h.d.DeliverThrough(t.Context(), h.event(t, id), tunnel)
	if err != nil {
		t.Fatal(err)
	}
	if result.State != switchboard.StateDelivered || result.Attempt.Number != 1 {
		t.Errorf("result %s attempt %d, want delivered at attempt 1", result.State, result.Attempt.Number)
	}
	got := a.last(t)
	wantSigned(t, got)
	if !strings.HasPrefix(got.url, tunnel.target) {
		t.Errorf("app called at %s, want %s", got.url, tunnel.target)
	}
	if got.header.Get("X-Switchboard-Event-Id") != id {
		t.Errorf("event id header %q, want %s", got.header.Get("X-Switchboard-Event-Id"), id)
	}
	if tr := tunnel.got[0]; tr.Event == nil || tr.Event.ID != id || tr.Live {
		t.Errorf("tunnel told %+v, want event %s, not live", tr, id)
	}
	att := h.onlyAttempt(t, id)
	if att.TargetURL != got.url || att.StatusCode != http.StatusNoContent {
		t.Errorf("attempt on record: %s → %d", att.TargetURL, att.StatusCode)
	}
	wantState(t, h.event(t, id), switchboard.StateDelivered, 1, time.Time{})
}

func TestDeliverThroughFollowsTheRetryPolicy(t *testing.T) {
	t.Parallel()
	a := newApp(t, status(http.StatusInternalServerError, "boom"))
	h := newHarness(t, nil, []deliver.Route{listenerRoute("/sms", "laptop")}, nil)
	id := h.ingest(t, "/sms", nil)
	result, err := h.d.DeliverThrough(t.Context(), h.event(t, id), &fakeTunnel{target: a.URL})
	if err != nil {
		t.Fatal(err)
	}
	want := h.clock.Now().Add(testPolicy().Backoff(1))
	if result.State != switchboard.StateRetrying || !result.NextAttemptAt.Equal(want) {
		t.Errorf("result %s next %v, want retrying at %v", result.State, result.NextAttemptAt, want)
	}
	wantState(t, h.event(t, id), switchboard.StateRetrying, 1, want)
}

// A listener that vanishes mid-request is not the app's failure: the
// attempt is on record as interrupted, the event is due again at once,
// and the listener's breaker does not move however often it happens.
func TestDeliverThroughAVanishedListener(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, []deliver.Route{listenerRoute("/sms", "laptop")}, func(o *deliver.Options) { o.BreakerFailures = 1 })
	gone := &fakeTunnel{target: "http://127.0.0.1:1/sms", gone: true}
	for range 3 {
		id := h.ingest(t, "/sms", nil)
		result, err := h.d.DeliverThrough(t.Context(), h.event(t, id), gone)
		if err != nil {
			t.Fatal(err)
		}
		if result.State != switchboard.StateRetrying || result.Attempt.ErrorClass != deliver.ClassInterrupted ||
			!result.NextAttemptAt.Equal(h.clock.Now()) {
			t.Errorf("result %s class %q next %v, want retrying now, interrupted", result.State, result.Attempt.ErrorClass, result.NextAttemptAt)
		}
	}
	a := newApp(t, nil)
	id := h.ingest(t, "/sms", nil)
	result, err := h.d.DeliverThrough(t.Context(), h.event(t, id), &fakeTunnel{target: a.URL})
	if err != nil || result.State != switchboard.StateDelivered {
		t.Errorf("after vanished listeners: %v, %+v; want delivered (breaker closed)", err, result)
	}
}

func TestDeliverThroughRefusesOtherRoutes(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/app", a.URL)}, nil)
	id := h.ingest(t, "/app", nil)
	if _, err := h.d.DeliverThrough(t.Context(), h.event(t, id), &fakeTunnel{target: a.URL}); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("DeliverThrough of a route without a listener = %v, want ErrInvalid", err)
	}
	if a.hits.Load() != 0 {
		t.Error("the app was called")
	}
}

func TestProxyThroughAListener(t *testing.T) {
	t.Parallel()
	const twiml = `<Response><Say>hello from the laptop</Say></Response>`
	a := newApp(t, answer(http.StatusOK, "text/xml", twiml))
	ls := &fakeListeners{}
	r := listenerRoute("/voice", "laptop")
	h := newHarness(t, nil, []deliver.Route{r}, func(o *deliver.Options) { o.Listeners = ls })

	live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Error == nil || live.Result == nil || live.Result.Attempt.Number != 0 || live.Result.State != switchboard.StatePending ||
		!live.Result.NextAttemptAt.Equal(h.clock.Now().Add(switchboard.ListenerPark)) {
		t.Fatalf("no listener connected: %+v, want a failure and a park to record (no attempt)", live)
	}

	ls.tunnel = &fakeTunnel{target: a.URL + "/voice"}
	live, ev, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Error != nil || string(live.Answer.Body) != twiml {
		t.Fatalf("through a listener: error %v, answer %q; want the app's TwiML", live.Error, live.Answer.Body)
	}
	wantSigned(t, a.last(t))
	if tr := ls.tunnel.got[0]; !tr.Live || tr.Event.ID != ev.ID {
		t.Errorf("tunnel told %+v, want live event %s", tr, ev.ID)
	}
	if live.Result == nil || live.Result.State != switchboard.StateDelivered {
		t.Errorf("result %+v, want delivered", live.Result)
	}
}

// A listener that goes away before answering a proxied request has lost
// the app's answer, and may never have passed the request on: Twilio gets
// the fallback, and the event is due again at once, for the next listener,
// rather than marked delivered; the listener's breaker does not move.
func TestProxyThroughAVanishedListener(t *testing.T) {
	t.Parallel()
	ls := &fakeListeners{tunnel: &fakeTunnel{target: "http://127.0.0.1:1/voice", gone: true}}
	h := newHarness(t, nil, []deliver.Route{listenerRoute("/voice", "laptop")}, func(o *deliver.Options) {
		o.Listeners, o.BreakerFailures = ls, 1
	})
	for range 3 {
		live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
		if live.Error == nil {
			t.Fatalf("no answer through a vanished listener, yet no error: %+v", live)
		}
		r := live.Result
		if r == nil || r.State != switchboard.StateRetrying || r.Attempt.ErrorClass != deliver.ClassInterrupted ||
			!r.NextAttemptAt.Equal(h.clock.Now()) {
			t.Fatalf("result %+v, want retrying now, interrupted", r)
		}
	}
	a := newApp(t, answer(http.StatusOK, "text/xml", `<Response/>`))
	ls.tunnel = &fakeTunnel{target: a.URL + "/voice"}
	if live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML); live.Error != nil {
		t.Errorf("after vanished listeners: %v; want the app's answer (breaker closed)", live.Error)
	}
}

// Attempts a vanished listener interrupted are not the app's failures:
// they do not count toward the route's max_attempts, so a developer
// restarting a listener while the app hangs does not dead-letter events.
func TestVanishedListenerSpendsNoAttempts(t *testing.T) {
	t.Parallel()
	r := listenerRoute("/sms", "laptop")
	r.MaxAttempts = 2
	h := newHarness(t, nil, []deliver.Route{r}, nil)
	id := h.ingest(t, "/sms", nil)
	gone := &fakeTunnel{target: "http://127.0.0.1:1/sms", gone: true}
	for range 3 {
		if _, err := h.d.DeliverThrough(t.Context(), h.event(t, id), gone); err != nil {
			t.Fatal(err)
		}
	}
	a := newApp(t, answer(http.StatusInternalServerError, "text/plain", "boom"))
	for i, want := range []switchboard.State{switchboard.StateRetrying, switchboard.StateDead} {
		res, err := h.d.DeliverThrough(t.Context(), h.event(t, id), &fakeTunnel{target: a.URL})
		if err != nil {
			t.Fatal(err)
		}
		if res.State != want {
			t.Fatalf("the app's failure %d of max_attempts 2, after 3 interrupted: %s (%s), want %s", i+1, res.State, res.Attempt.Error, want)
		}
	}
}

// A redirect is not followed through a listener: each hop would be signed
// with the account's token for a URL the listener's side chose.
func TestProxyThroughAListenerFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	elsewhere := newApp(t, answer(http.StatusOK, "text/xml", "<Response/>"))
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal?x=1", http.StatusTemporaryRedirect)
	})
	ls := &fakeListeners{tunnel: &fakeTunnel{target: a.URL + "/voice"}}
	h := newHarness(t, nil, []deliver.Route{listenerRoute("/voice", "laptop")}, func(o *deliver.Options) { o.Listeners = ls })
	live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Error == nil {
		t.Errorf("a redirect through a listener was accepted: %q", live.Answer.Body)
	}
	if n := elsewhere.hits.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
	if n := len(ls.tunnel.got); n != 1 {
		t.Errorf("%d requests through the tunnel, want 1: no signed hop to the redirect's URL", n)
	}
}
