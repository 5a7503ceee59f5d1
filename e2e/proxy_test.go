package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

// proxyFallback is the proxy route's TwiML: what Twilio gets when the app
// cannot answer.
const proxyFallback = `<Response><Say>Please hold on, we will call you back.</Say></Response>`

// Live TwiML through the real binary: Twilio (the simulator) calls a
// proxy-mode route and gets the app's own TwiML while the app is up, the
// route's fallback while it is down, and the event of the call Twilio got
// the fallback for reaches the app once it is back, exactly once. A retry
// of the first webhook gets the app's first answer without asking it
// again.
func TestProxyMode(t *testing.T) {
	forEachStore(t, testProxyMode)
}

func testProxyMode(t *testing.T, st store) {
	a := startTwiMLApp(t, reservePort(t))
	cfg := writeConfig(t, config{storage: st.url, routes: []route{
		{path: "/voice", target: a.url("/app/voice"), mode: "proxy", twiml: proxyFallback, budget: 3 * time.Second},
	}})
	p := startServe(t, cfg)
	tap := newWiretap(t)
	tw := newTwilio(t, p, tappedBy(tap), func(c *sim.Config) { c.Accounts[0].Numbers[0].VoiceURL = publicURL + "/voice" })

	// The app is up: Twilio gets its TwiML.
	first := mustCall(t, tw)
	if got, want := answerOf(first.Webhook), (answer{200, "application/xml", a.twiml(first.SID)}); got != want || first.Webhook.Error != nil {
		t.Fatalf("call with the app up: Twilio got %+v (%s), want the app's %+v", got, describe(first.Webhook), want)
	}
	ev1 := waitForEvent(t, p, first.SID, "delivered by the proxied request", func(e apiEvent) bool {
		return e.State == "delivered" && e.Attempts == 1
	})

	// Twilio retries the webhook, same idempotency token: the retry gets
	// the first answer, and the app is not asked again.
	start := time.Now()
	dup := resend(t, tap.request(t, first.Webhook.IdempotencyToken))
	t.Logf("duplicate: answered %d in %v", dup.status, time.Since(start))
	if want := answerOf(first.Webhook); dup != want {
		t.Errorf("duplicate: Twilio got %+v, want the first answer %+v", dup, want)
	}
	if n := a.calls(first.SID); n != 1 {
		t.Errorf("the app was asked %d times about the first call, want 1", n)
	}
	if n := len(apiRequests(t, p, "outcome=duplicate&event_id="+ev1.ID)); n != 1 {
		t.Errorf("%d duplicates of the first call's event on record, want 1", n)
	}

	// The app is down: Twilio gets the fallback, and the event waits for
	// the app, which never got it.
	a.stop()
	second := mustCall(t, tw)
	if got, want := answerOf(second.Webhook), (answer{200, "application/xml", proxyFallback}); got != want || second.Webhook.Error != nil {
		t.Fatalf("call with the app down: Twilio got %+v (%s), want the fallback %+v", got, describe(second.Webhook), want)
	}
	// The app stays down through an asynchronous retry as well.
	ev2 := waitForEvent(t, p, second.SID, "retrying after the refused proxy attempt and a refused retry", func(e apiEvent) bool {
		return e.State == "retrying" && e.Attempts >= 2
	})
	if d := apiEventDetail(t, p, ev2.ID); len(d.Attempts) == 0 || d.Attempts[0].TwilioCode != int(twilio.CodeHTTPConnectionFailure) ||
		d.Attempts[0].ErrorClass != string(twilio.ClassConnect) {
		t.Errorf("second call's attempts %+v, want the first refused with 11205", d.Attempts)
	}

	if n := a.calls(second.SID); n != 0 {
		t.Fatalf("the app, stopped, was asked about the second call %d times", n)
	}

	// The app is back: the event reaches it once, asynchronously.
	a.start(t)
	a.waitForCall(t, 30*time.Second, second.SID)
	ev2 = waitForEvent(t, p, second.SID, "delivered once the app is back", func(e apiEvent) bool { return e.State == "delivered" })
	d := apiEventDetail(t, p, ev2.ID)
	for i, at := range d.Attempts {
		last := i == len(d.Attempts)-1
		if at.Number != i+1 || (last && (at.StatusCode != 200 || at.TwilioCode != 0)) ||
			(!last && at.TwilioCode != int(twilio.CodeHTTPConnectionFailure)) {
			t.Errorf("second call's attempt %d: %+v; want refused (11205) until the last, which the app answered 200", i+1, at)
		}
	}
	t.Logf("second call: delivered at attempt %d", len(d.Attempts))
	if n := a.calls(second.SID); n != 1 {
		t.Errorf("the app got the second call %d times, want exactly once", n)
	}
	if n := a.calls(first.SID); n != 1 {
		t.Errorf("the app got the first call %d times, want once: its proxied answer was its delivery", n)
	}
	if alerts := tw.Alerts(accountSID); len(alerts) > 0 {
		t.Errorf("Twilio's debugger logged %d alerts, first %+v; want none: every answer was one Twilio accepts", len(alerts), alerts[0])
	}
}

// mustCall makes a call from handset to twilioNumber, whose voice URL is
// Switchboard's, and returns what became of it.
func mustCall(t *testing.T, tw *sim.Sim) *sim.InboundResult {
	t.Helper()
	res, err := tw.ReceiveCall(t.Context(), sim.InboundCall{From: handset, To: twilioNumber})
	if err != nil || res.Webhook == nil {
		t.Fatalf("call: %+v, %v", res, err)
	}
	r := res.Webhook
	t.Logf("call %s: answered %d in %v", res.SID, r.Status, r.Latency)
	if r.Latency >= 15*time.Second {
		t.Errorf("call %s: answered after %v, past Twilio's 15 s limit", res.SID, r.Latency)
	}
	return res
}

// waitForEvent waits until the event of a call satisfies cond, through the
// admin API, and returns it.
func waitForEvent(t *testing.T, p *proc, callSID, what string, cond func(apiEvent) bool) apiEvent {
	t.Helper()
	var ev apiEvent
	eventually(t, 30*time.Second, func() (bool, string) {
		events := apiEvents(t, p, "sid="+url.QueryEscape(callSID))
		if len(events) != 1 {
			return false, fmt.Sprintf("call %s: %d events, want 1 %s", callSID, len(events), what)
		}
		ev = events[0]
		return cond(ev), fmt.Sprintf("call %s: event %+v, want it %s", callSID, ev, what)
	})
	return ev
}

// apiAttempt is an attempt as the admin API shows it.
type apiAttempt struct {
	Number     int    `json:"number"`
	StatusCode int    `json:"status_code"`
	ErrorClass string `json:"error_class"`
	TwilioCode int    `json:"twilio_code"`
	Error      string `json:"error"`
}

// apiEventDetail calls the admin API's GET /api/v1/events/{id}.
func apiEventDetail(t *testing.T, p *proc, id string) (d struct {
	Attempts []apiAttempt `json:"attempts"`
}) {
	t.Helper()
	adminGet(t, p, "/api/v1/events/"+url.PathEscape(id), &d)
	return d
}

// apiRequests calls the admin API's GET /api/v1/requests with a query.
func apiRequests(t *testing.T, p *proc, query string) []json.RawMessage {
	t.Helper()
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	adminGet(t, p, "/api/v1/requests?"+query, &page)
	return page.Items
}

func adminGet(t testing.TB, p *proc, path string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v\n%s", path, resp.StatusCode, err, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// twimlApp is a voice app on a fixed loopback address that can be stopped
// (connections refused) and started again. It checks Twilio's signature,
// as re-signed by Switchboard for the app's URL, and answers each call
// with TwiML naming it.
type twimlApp struct {
	addr string

	mu      sync.Mutex
	srv     *httptest.Server // nil while stopped
	byCall  map[string]int   // requests answered, by CallSid
	changed chan struct{}    // closed and replaced on every request
}

func startTwiMLApp(t *testing.T, r *reservation) *twimlApp {
	t.Helper()
	a := &twimlApp{addr: r.addr, byCall: map[string]int{}, changed: make(chan struct{})}
	r.free()
	a.start(t)
	t.Cleanup(a.stop)
	return a
}

// start listens on the app's address again, retrying for a moment if the
// port is still held, as it may be for an instant by a connection's local
// end.
func (a *twimlApp) start(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	var ln net.Listener
	for {
		var err error
		if ln, err = net.Listen("tcp", a.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s: %v", a.addr, err)
		}
		<-retry.C
	}
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
}

// stop closes the app's listener and connections: Switchboard's next
// connection is refused.
func (a *twimlApp) stop() {
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	a.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (a *twimlApp) url(path string) string { return "http://" + a.addr + path }

// twiml is the app's answer to a call.
func (a *twimlApp) twiml(callSID string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello, call ` + callSID + `</Say></Response>`
}

func (a *twimlApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := twilio.ValidateRequest([]string{authToken}, "http://"+r.Host+r.RequestURI,
		r.Header.Get("Content-Type"), body, r.Header.Get("X-Twilio-Signature")); err != nil {
		http.Error(w, "bad signature: "+err.Error(), http.StatusForbidden)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("CallSid") == "" {
		http.Error(w, "not a call", http.StatusBadRequest)
		return
	}
	sid := form.Get("CallSid")
	a.mu.Lock()
	a.byCall[sid]++
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, a.twiml(sid))
}

// calls returns how many times the app was asked about a call.
func (a *twimlApp) calls(sid string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byCall[sid]
}

// waitForCall waits until the app has been asked about a call.
func (a *twimlApp) waitForCall(t *testing.T, timeout time.Duration, sid string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		n, changed := a.byCall[sid], a.changed
		a.mu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the app was not asked about call %s within %v", sid, timeout)
		}
	}
}
