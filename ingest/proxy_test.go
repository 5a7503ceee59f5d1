package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Proxy mode end to end inside one process: Twilio is the simulator, which
// signs each webhook for the public URL and sends it through its tunnel to
// the intake under test; intake stores it in a real SQLite store and
// forwards it with a real Deliverer to a fault app that misbehaves in the
// way its target path names.

// twilioLimit is how long Twilio waits for a webhook's answer: past it the
// call or message fails whatever the answer, so every answer must beat it.
const twilioLimit = 15 * time.Second

// handset is the phone the simulated calls and messages come from.
const handset = "+14155550100"

// waitLimit bounds each wait for something the code under test does on its
// own (recording a proxied attempt, a handler being entered).
const waitLimit = 10 * time.Second

// The fault app's answers.
const (
	appVoiceTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello from the app</Say></Response>`
	appSMSTwiML   = `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks from the app</Message></Response>`
)

// fallbackTwiML is the TwiML of the route at path: what Twilio gets when
// the app fails, and every answer of a static route.
func fallbackTwiML(path string) string {
	return `<Response><Say>Fallback of ` + path + `</Say></Response>`
}

// notificationFallback is what a client notification gets when the app
// does not take it.
var notificationFallback = answer{http.StatusServiceUnavailable, "text/plain; charset=utf-8", "the app did not take the notification\n"}

// faultApp is the app behind proxy-mode routes. The first segment of a
// request's path chooses its behaviour (see behaviours); the rest tells the
// routes sharing a behaviour apart.
type faultApp struct {
	srv *httptest.Server

	// entered receives once a /hang request is in, and release, once
	// closed, lets /hang requests answer the app's TwiML.
	entered chan struct{}
	release chan struct{}

	mu   sync.Mutex
	hits map[string]int // requests by path
}

func newFaultApp(t *testing.T) *faultApp {
	t.Helper()
	a := &faultApp{entered: make(chan struct{}), release: make(chan struct{}), hits: map[string]int{}}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

// target is the app's URL for a behaviour and a route path.
func (a *faultApp) target(behaviour, routePath string) string {
	return a.srv.URL + "/" + behaviour + routePath
}

// hitsOn returns how many requests reached the target of a behaviour and a
// route path.
func (a *faultApp) hitsOn(behaviour, routePath string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits["/"+behaviour+routePath]
}

func (a *faultApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.hits[r.URL.Path]++
	a.mu.Unlock()
	behaviour, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	// No sniffed Content-Type: an answer without one must arrive without.
	w.Header()["Content-Type"] = nil
	switch behaviour {
	case "good-voice", "good-sms":
		// The app checks Twilio's signature, as a real one would: the
		// forwarded request must be signed for the app's own URL.
		if err := twilio.ValidateRequest([]string{token}, "http://"+r.Host+r.RequestURI,
			r.Header.Get("Content-Type"), body, r.Header.Get("X-Twilio-Signature")); err != nil {
			http.Error(w, "bad signature: "+err.Error(), http.StatusForbidden)
			return
		}
		twiml := appVoiceTwiML
		if behaviour == "good-sms" {
			twiml = appSMSTwiML
		}
		reply(w, http.StatusOK, "application/xml", twiml)
	case "slow":
		<-r.Context().Done() // answers nothing until the caller gives up
	case "hang":
		select {
		case a.entered <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		select {
		case <-a.release:
			reply(w, http.StatusOK, "application/xml", appVoiceTwiML)
		case <-r.Context().Done():
		}
	case "500":
		reply(w, http.StatusInternalServerError, "text/plain; charset=utf-8", "boom")
	case "302":
		w.Header().Set("Location", "ftp://files.example.com/twiml.xml")
		w.WriteHeader(http.StatusFound)
	case "401":
		w.Header().Set("WWW-Authenticate", `Basic realm="app"`)
		reply(w, http.StatusUnauthorized, "text/plain; charset=utf-8", "who are you?")
	case "no-type":
		reply(w, http.StatusOK, "", appVoiceTwiML)
	case "text-plain":
		reply(w, http.StatusOK, "text/plain; charset=utf-8", appSMSTwiML)
	case "malformed":
		reply(w, http.StatusOK, "application/xml", "<Response><Say>unclosed</Response>")
	case "large":
		reply(w, http.StatusOK, "application/xml", "<Response><Say>"+strings.Repeat("a", 70<<10)+"</Say></Response>")
	case "mp3":
		mp3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0xFF, 0xFB, 0x90, 0x64}, 512)...)
		reply(w, http.StatusOK, "audio/x-wav", string(mp3))
	case "abort":
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<Response><Say>cut")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // drops the connection, 982 bytes short
	case "html":
		reply(w, http.StatusOK, "text/html; charset=utf-8", appVoiceTwiML)
	case "empty":
		reply(w, http.StatusOK, "application/xml", "")
	case "ok":
		reply(w, http.StatusOK, "", "")
	case "404":
		reply(w, http.StatusNotFound, "", "")
	default:
		http.Error(w, "no such behaviour", http.StatusTeapot)
	}
}

func reply(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// recordings is a store that signals each event whose attempt has been
// recorded. Intake records a proxied attempt just after answering Twilio,
// so a test waits for it before it looks at the event.
type recordings struct {
	switchboard.Store

	mu   sync.Mutex
	done map[string]chan struct{} // by event id; closed once recorded
}

func (s *recordings) signal(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.done[id]
	if !ok {
		ch = make(chan struct{})
		s.done[id] = ch
	}
	return ch
}

func (s *recordings) RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error {
	if err := s.Store.RecordAttempts(ctx, results); err != nil {
		return err
	}
	for _, r := range results {
		ch := s.signal(r.Attempt.EventID)
		s.mu.Lock()
		select {
		case <-ch:
		default:
			close(ch)
		}
		s.mu.Unlock()
	}
	return nil
}

// tap carries the simulator's webhooks and keeps each as it went out, by
// its I-Twilio-Idempotency-Token, so that a test can send it again.
type tap struct {
	rt *http.Transport

	mu      sync.Mutex
	byToken map[string]*http.Request // body in GetBody
}

func (tp *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	kept := req.Clone(context.Background())
	kept.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	tp.mu.Lock()
	tp.byToken[req.Header.Get("I-Twilio-Idempotency-Token")] = kept
	tp.mu.Unlock()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	return tp.rt.RoundTrip(out)
}

// resend sends the request that went out with an idempotency token again,
// byte for byte and with the same headers, as Twilio does when it retries.
func (tp *tap) resend(t *testing.T, idempotencyToken string) answer {
	t.Helper()
	tp.mu.Lock()
	kept := tp.byToken[idempotencyToken]
	tp.mu.Unlock()
	if kept == nil {
		t.Fatalf("no request went out with I-Twilio-Idempotency-Token %q", idempotencyToken)
	}
	body, _ := kept.GetBody()
	req, err := http.NewRequestWithContext(t.Context(), kept.Method, kept.URL.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = kept.Header.Clone()
	resp, err := tp.rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("resend: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("resend: %v", err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// answer is an HTTP answer as Twilio got it.
type answer struct {
	status      int
	contentType string
	body        string
}

func answerOf(r *sim.WebhookResult) answer { return answer{r.Status, r.ContentType, string(r.Body)} }

func (a answer) String() string {
	return fmt.Sprintf("%d %q %q", a.status, a.contentType, a.body[:min(len(a.body), 120)])
}

// proxyRoute is one route of a proxy fixture.
type proxyRoute struct {
	path        string
	mode        ingest.Mode      // default ingest.ModeProxy
	kind        switchboard.Kind // forced kind; "" classifies
	target      string           // the app's URL; "" for none
	budget      time.Duration
	maxInFlight int // default 64, as in the configuration
}

// proxyFixture is intake with proxy-mode routes on a real store and
// Deliverer, and the simulator playing Twilio in front of it. Every route
// has a number of its own whose voice and SMS URLs are the route.
type proxyFixture struct {
	store   *recordings
	d       *deliver.Deliverer
	metrics *metrics.Metrics
	tw      *sim.Sim
	tap     *tap
	numbers map[string]string // route path → its number
}

// newProxyFixture serves routes and gives the simulated account a number
// per route, plus extra numbers.
func newProxyFixture(t *testing.T, routes []proxyRoute, extra ...sim.Number) *proxyFixture {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	f := &proxyFixture{store: &recordings{Store: st, done: map[string]chan struct{}{}}, metrics: metrics.New(), numbers: map[string]string{}}

	var inRoutes []ingest.Route
	var outRoutes []deliver.Route
	var numbers []sim.Number
	for i, r := range routes {
		if r.mode == "" {
			r.mode = ingest.ModeProxy
		}
		if r.maxInFlight == 0 {
			r.maxInFlight = 64
		}
		inRoutes = append(inRoutes, ingest.Route{Path: r.path, AccountSID: account, Tokens: []string{token}, Kind: r.kind,
			Mode: r.mode, TwiML: []byte(fallbackTwiML(r.path)), Budget: r.budget})
		outRoutes = append(outRoutes, deliver.Route{Path: r.path, Target: r.target, SignToken: token, MaxAttempts: 25,
			MaxAge: 72 * time.Hour, RedeliverOn: config.DefaultRedeliverOn, MaxInFlight: r.maxInFlight})
		n := fmt.Sprintf("+1415555%04d", 1000+i)
		f.numbers[r.path] = n
		numbers = append(numbers, sim.Number{Number: n, VoiceURL: public + r.path, SMSURL: public + r.path})
	}
	f.d = deliver.New(f.store, deliver.Options{
		Routes: outRoutes, ConnectTimeout: 5 * time.Second, Timeout: 30 * time.Second,
		Policy: switchboard.RetryPolicy{Base: time.Second, Max: 10 * time.Second, MaxRetryAfter: time.Hour},
		// Breakers are per origin, and the fault app is one origin whose
		// routes fail on purpose: its circuit must stay closed here.
		BreakerFailures: 1000, BreakerOpenFor: time.Hour,
		Workers: 16, Metrics: f.metrics, Logger: logger,
	})
	h := ingest.New(ingest.Options{
		Store: f.store, Routes: inRoutes, PublicURL: public, MaxBodyBytes: 1 << 20, AckTimeout: 5 * time.Second,
		Metrics: f.metrics, Logger: logger, Proxy: f.d,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // before the store closes: answers record their outcome

	f.tap = &tap{rt: &http.Transport{Proxy: nil, DisableCompression: true}, byToken: map[string]*http.Request{}}
	t.Cleanup(f.tap.rt.CloseIdleConnections)
	tw, err := sim.New(sim.Config{
		Seed:      1,
		Accounts:  []sim.Account{{SID: account, AuthTokens: []string{token}, Numbers: append(numbers, extra...)}},
		Tunnels:   map[string]string{public: srv.URL},
		Transport: f.tap,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	f.tw = tw
	return f
}

// drive makes Twilio send a route's webhook of one kind, and returns what
// became of it.
type drive func(t *testing.T, f *proxyFixture, path string) *sim.InboundResult

// call makes a call to the route's number: Twilio asks the route for
// voice TwiML.
func call(t *testing.T, f *proxyFixture, path string) *sim.InboundResult {
	t.Helper()
	res, err := f.tw.ReceiveCall(t.Context(), sim.InboundCall{From: handset, To: f.numbers[path]})
	if err != nil || res.Webhook == nil {
		t.Fatalf("call to %s: %+v, %v", path, res, err)
	}
	return res
}

// message sends an SMS to the route's number.
func message(t *testing.T, f *proxyFixture, path string) *sim.InboundResult {
	t.Helper()
	res, err := f.tw.ReceiveMessage(t.Context(), sim.InboundMessage{From: handset, To: f.numbers[path], Body: "hello ✓"})
	if err != nil || res.Webhook == nil {
		t.Fatalf("message to %s: %+v, %v", path, res, err)
	}
	return res
}

// notify sends a Voice SDK client notification to the route.
func notify(t *testing.T, f *proxyFixture, path string) *sim.InboundResult {
	t.Helper()
	res, err := f.tw.NotifyClient(t.Context(), sim.ClientNotification{AccountSID: account, URL: public + path,
		From: handset, To: "client:alice", Params: map[string]string{"ticket": "42"}})
	if err != nil {
		t.Fatalf("client notification to %s: %v", path, err)
	}
	return res
}

// callStatus sends a call's final status callback to the route.
func callStatus(t *testing.T, f *proxyFixture, path string) *sim.InboundResult {
	t.Helper()
	sid := "CA" + strings.Repeat("5", 32)
	r, err := f.tw.Send(t.Context(), sim.Webhook{AccountSID: account, URL: public + path, Expect: twilio.ExpectStatus, ResourceSID: sid,
		Params: url.Values{"CallSid": {sid}, "AccountSid": {account}, "CallStatus": {"completed"}, "CallDuration": {"12"}}})
	if err != nil {
		t.Fatalf("status callback to %s: %v", path, err)
	}
	return &sim.InboundResult{SID: sid, Webhook: r}
}

// only returns the one event stored for a route (with a SID, when sid is
// not empty).
func (f *proxyFixture) only(t *testing.T, path, sid string) *switchboard.Event {
	t.Helper()
	page, err := f.store.ListEvents(context.Background(), switchboard.EventFilter{Route: path, SID: sid})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Fatalf("route %s sid %q: %d events stored, want 1", path, sid, len(page.Items))
	}
	return page.Items[0]
}

// recorded waits until the outcome of an event's proxied attempt is on
// record, and returns the event as it then is with its attempts.
func (f *proxyFixture) recorded(t *testing.T, ev *switchboard.Event) (*switchboard.Event, []*switchboard.Attempt) {
	t.Helper()
	select {
	case <-f.store.signal(ev.ID):
	case <-time.After(waitLimit):
		t.Fatalf("event %s: no attempt recorded within %v", ev.ID, waitLimit)
	}
	return f.reload(t, ev)
}

func (f *proxyFixture) reload(t *testing.T, ev *switchboard.Event) (*switchboard.Event, []*switchboard.Attempt) {
	t.Helper()
	ev, err := f.store.Event(context.Background(), ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	attempts, err := f.store.Attempts(context.Background(), ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ev, attempts
}

// checkTimely logs how long Twilio waited for an answer and fails past
// Twilio's own limit, past which no answer counts.
func checkTimely(t *testing.T, what string, r *sim.WebhookResult) {
	t.Helper()
	t.Logf("%s: answered %d in %v", what, r.Status, r.Latency)
	if r.Latency >= twilioLimit {
		t.Errorf("%s: answered after %v, past Twilio's %v limit", what, r.Latency, twilioLimit)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// badTLSServer serves good TwiML over TLS with a certificate nobody
// trusts.
func badTLSServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, "application/xml", appVoiceTwiML)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestProxyAnswersWhatTwilioAccepts drives every way an app can answer a
// proxied webhook through Twilio, and checks what Twilio got, the attempt
// on record with the code Twilio would have logged, and what becomes of
// the event.
func TestProxyAnswersWhatTwilioAccepts(t *testing.T) {
	t.Parallel()
	app := newFaultApp(t)
	tlsTarget := badTLSServer(t).URL + "/voice"
	refused := "http://" + deadAddr(t)

	type outcome int
	const (
		passed     outcome = iota // the app's answer reached Twilio; delivered
		fellBack                  // the fallback reached Twilio; delivered with the error, not again
		redelivers                // the fallback reached Twilio; retrying: the app never got it
	)
	tests := []struct {
		name      string
		path      string
		behaviour string // the fault app's; "" when target is set
		target    string
		budget    time.Duration
		drive     drive
		outcome   outcome
		code      twilio.Code // of the attempt on record; 0 for a good answer
		want      answer      // what Twilio gets; zero: the fallback for the webhook's kind
		replies   int         // messages Twilio sends back from the answer
	}{
		{name: "good voice TwiML", path: "/voice/good", behaviour: "good-voice", drive: call, outcome: passed,
			want: answer{200, "application/xml", appVoiceTwiML}},
		{name: "good messaging TwiML", path: "/sms/good", behaviour: "good-sms", drive: message, outcome: passed,
			want: answer{200, "application/xml", appSMSTwiML}, replies: 1},
		{name: "text/html TwiML is relabelled", path: "/voice/html", behaviour: "html", drive: call, outcome: passed,
			want: answer{200, "application/xml; charset=utf-8", appVoiceTwiML}},
		{name: "slow past the budget", path: "/voice/slow", behaviour: "slow", budget: 300 * time.Millisecond, drive: call,
			outcome: fellBack, code: twilio.CodeHTTPConnectionFailure},
		{name: "500", path: "/voice/500", behaviour: "500", drive: call, outcome: fellBack, code: twilio.CodeHTTPRetrievalFailure},
		{name: "302 to an invalid URL", path: "/voice/302", behaviour: "302", drive: call, outcome: fellBack, code: twilio.CodeHTTPRetrievalFailure},
		{name: "401 with WWW-Authenticate", path: "/sms/401", behaviour: "401", drive: message, outcome: fellBack, code: twilio.CodeHTTPRetrievalFailure},
		{name: "no Content-Type", path: "/voice/no-type", behaviour: "no-type", drive: call, outcome: fellBack, code: twilio.CodeInvalidContentType},
		{name: "text/plain", path: "/sms/text-plain", behaviour: "text-plain", drive: message, outcome: fellBack, code: twilio.CodeInvalidContentType},
		{name: "malformed XML", path: "/voice/malformed", behaviour: "malformed", drive: call, outcome: fellBack, code: twilio.CodeDocumentParseFailure},
		{name: "70 kB document", path: "/voice/large", behaviour: "large", drive: call, outcome: fellBack, code: twilio.CodeResponseTooLarge},
		{name: "MP3 labelled audio/x-wav", path: "/voice/mp3", behaviour: "mp3", drive: call, outcome: fellBack, code: twilio.CodeInvalidContentType},
		{name: "connection closed mid-answer", path: "/voice/abort", behaviour: "abort", drive: call, outcome: fellBack, code: twilio.CodeHTTPProtocolViolation},
		{name: "status callback answered 500", path: "/status/500", behaviour: "500", drive: callStatus, outcome: fellBack, code: twilio.CodeHTTPRetrievalFailure},
		{name: "TLS with a bad certificate", path: "/voice/tls", target: tlsTarget, drive: call, outcome: redelivers, code: twilio.CodeCertificateInvalid},
		{name: "connection refused", path: "/voice/refused", target: refused + "/voice", drive: call, outcome: redelivers, code: twilio.CodeHTTPConnectionFailure},
		{name: "client notification answered 200", path: "/notify/ok", behaviour: "ok", drive: notify, outcome: passed,
			want: answer{200, "", ""}},
		{name: "client notification answered 404", path: "/notify/404", behaviour: "404", drive: notify, outcome: passed,
			want: answer{404, "", ""}},
		{name: "client notification answered 500", path: "/notify/500", behaviour: "500", drive: notify, outcome: fellBack,
			code: twilio.CodeClientNotificationFailed, want: notificationFallback},
		{name: "client notification refused", path: "/notify/refused", target: refused + "/notify", drive: notify, outcome: redelivers,
			code: twilio.CodeClientNotificationFailed, want: notificationFallback},
	}
	var routes []proxyRoute
	for _, tt := range tests {
		target := tt.target
		if target == "" {
			target = app.target(tt.behaviour, tt.path)
		}
		routes = append(routes, proxyRoute{path: tt.path, target: target, budget: tt.budget})
	}
	f := newProxyFixture(t, routes)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := tt.drive(t, f, tt.path)
			r := res.Webhook
			checkTimely(t, tt.name, r)

			// What Twilio got.
			want := tt.want
			if want == (answer{}) {
				want = answer{200, "application/xml", fallbackTwiML(tt.path)}
				if strings.HasPrefix(tt.path, "/status/") {
					want = answer{200, "", ""}
				}
			}
			if got := answerOf(r); got != want {
				t.Errorf("Twilio got %v, want %v", got, want)
			}
			if notification := want == notificationFallback; notification {
				// Twilio must not believe a notification nobody took was
				// dispatched: it logs 13807.
				if r.Accepted() || r.Error == nil || r.Error.Code != twilio.CodeClientNotificationFailed {
					t.Errorf("Twilio's verdict: %v, want 13807", r.Error)
				}
			} else if !r.Accepted() || r.Fallback != nil || r.Tries != 1 {
				t.Errorf("Twilio's verdict: error %v after %d tries (fallback %v), want the first answer accepted", r.Error, r.Tries, r.Fallback)
			}
			if len(res.Replies) != tt.replies {
				t.Errorf("Twilio sent %d replies, want %d", len(res.Replies), tt.replies)
			}

			// What is on record.
			ev, attempts := f.recorded(t, f.only(t, tt.path, ""))
			if len(attempts) != 1 {
				t.Fatalf("%d attempts on record, want the proxied one", len(attempts))
			}
			a := attempts[0]
			if a.Number != 1 || a.TwilioCode != int(tt.code) {
				t.Errorf("attempt %d with Twilio code %d (%s: %s), want attempt 1 with %d", a.Number, a.TwilioCode, a.ErrorClass, a.Error, tt.code)
			}
			if got := (answer{ev.Response.Status, ev.Response.ContentType, string(ev.Response.Body)}); got != want {
				t.Errorf("stored response %v, want what Twilio got, %v (a duplicate gets it)", got, want)
			}
			switch tt.outcome {
			case passed:
				if ev.State != switchboard.StateDelivered || ev.LastError != "" || a.Error != "" {
					t.Errorf("event %s, last error %q, attempt error %q; want delivered without error", ev.State, ev.LastError, a.Error)
				}
			case fellBack:
				if ev.State != switchboard.StateDelivered || !ev.NextAttemptAt.IsZero() || !strings.Contains(ev.LastError, "not delivered again") {
					t.Errorf("event %s, next attempt %v, last error %q; want delivered with the error on record and no redelivery",
						ev.State, ev.NextAttemptAt, ev.LastError)
				}
			case redelivers:
				if ev.State != switchboard.StateRetrying || ev.NextAttemptAt.IsZero() || ev.LastError == "" ||
					strings.Contains(ev.LastError, "not delivered again") {
					t.Errorf("event %s, next attempt %v, last error %q; want retrying: the app never got it", ev.State, ev.NextAttemptAt, ev.LastError)
				}
			}
			if ev.Attempts != 1 {
				t.Errorf("event counts %d attempts, want 1", ev.Attempts)
			}
			if tt.behaviour != "" {
				if n := app.hitsOn(tt.behaviour, tt.path); n != 1 {
					t.Errorf("the app got %d requests, want 1", n)
				}
			}
			served := "app"
			if tt.outcome != passed {
				served = "fallback"
			}
			if n := metricstest.Sample(t, f.metrics, "switchboard_proxy_answers_total", "route", tt.path, "answer", served, "code", fmt.Sprint(int(tt.code))).GetCounter().GetValue(); n != 1 {
				t.Errorf("switchboard_proxy_answers_total{answer=%q,code=%d} = %v, want 1", served, tt.code, n)
			}
		})
	}
}

// TestProxyDuplicateGetsTheFirstAnswer replays a proxied webhook as Twilio
// retries it, same idempotency token and all: the retry gets the answer
// the first request got, and the app is not asked again.
func TestProxyDuplicateGetsTheFirstAnswer(t *testing.T) {
	t.Parallel()
	app := newFaultApp(t)
	tests := []struct {
		name      string
		path      string
		behaviour string
		want      answer
		code      twilio.Code
	}{
		{"app answered", "/voice/dup-good", "good-voice", answer{200, "application/xml", appVoiceTwiML}, 0},
		{"app failed", "/voice/dup-500", "500", answer{200, "application/xml", fallbackTwiML("/voice/dup-500")}, twilio.CodeHTTPRetrievalFailure},
	}
	var routes []proxyRoute
	for _, tt := range tests {
		routes = append(routes, proxyRoute{path: tt.path, target: app.target(tt.behaviour, tt.path)})
	}
	f := newProxyFixture(t, routes)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := call(t, f, tt.path)
			checkTimely(t, "first request", res.Webhook)
			if got := answerOf(res.Webhook); got != tt.want {
				t.Fatalf("first request: Twilio got %v, want %v", got, tt.want)
			}
			// Twilio retries only once it has given up on an answer, by
			// which time the outcome is on record.
			ev, _ := f.recorded(t, f.only(t, tt.path, res.SID))

			start := time.Now()
			got := f.tap.resend(t, res.Webhook.IdempotencyToken)
			t.Logf("duplicate: answered %d in %v", got.status, time.Since(start))
			if got != tt.want {
				t.Errorf("duplicate: Twilio got %v, want the first answer %v", got, tt.want)
			}
			if n := app.hitsOn(tt.behaviour, tt.path); n != 1 {
				t.Errorf("the app got %d requests, want 1: a duplicate is not forwarded", n)
			}
			ev, attempts := f.reload(t, ev)
			if len(attempts) != 1 || attempts[0].TwilioCode != int(tt.code) || ev.Attempts != 1 {
				t.Errorf("%d attempts on record (event counts %d), want the first request's, with code %d", len(attempts), ev.Attempts, tt.code)
			}
			page, err := f.store.ListRequests(context.Background(), switchboard.RequestFilter{EventID: ev.ID, Outcome: switchboard.OutcomeDuplicate})
			if err != nil || len(page.Items) != 1 {
				t.Errorf("duplicates of event %s on record: %d (%v), want 1", ev.ID, len(page.Items), err)
			}
			if n := metricstest.Sample(t, f.metrics, "switchboard_proxy_answers_total", "route", tt.path).GetCounter().GetValue(); n != 1 {
				t.Errorf("switchboard_proxy_answers_total{route=%q} = %v, want 1: only the first request is proxied", tt.path, n)
			}
		})
	}
}

// TestStaticModeAnswersWithoutAnApp: a static route answers its TwiML to
// every kind of webhook, without an app, and its events are delivered
// without an attempt.
func TestStaticModeAnswersWithoutAnApp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		path  string
		drive drive
	}{
		{"call", "/static/voice", call},
		{"message", "/static/sms", message},
		{"client notification", "/static/notify", notify},
		{"status callback", "/static/status", callStatus},
	}
	var routes []proxyRoute
	for _, tt := range tests {
		routes = append(routes, proxyRoute{path: tt.path, mode: ingest.ModeStatic})
	}
	f := newProxyFixture(t, routes)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.drive(t, f, tt.path).Webhook
			checkTimely(t, tt.name, r)
			if got, want := answerOf(r), (answer{200, "application/xml", fallbackTwiML(tt.path)}); got != want || !r.Accepted() {
				t.Errorf("Twilio got %v (error %v), want %v accepted", got, r.Error, want)
			}
			ev := f.only(t, tt.path, "")
			if ev.State != switchboard.StatePending || ev.Attempts != 0 || ev.NextAttemptAt.After(ev.CreatedAt) {
				t.Errorf("stored event %s with %d attempts, next at %v; want pending and due at once", ev.State, ev.Attempts, ev.NextAttemptAt)
			}
			if err := f.d.Deliver(context.Background(), ev.ID, 0); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			ev, attempts := f.reload(t, ev)
			if ev.State != switchboard.StateDelivered || ev.DeliveredAt.IsZero() || len(attempts) != 0 || ev.Attempts != 0 {
				t.Errorf("after delivery: event %s, delivered at %v, %d attempts; want delivered with none", ev.State, ev.DeliveredAt, len(attempts))
			}
			if n := metricstest.Sample(t, f.metrics, "switchboard_proxy_answers_total", "route", tt.path).GetCounter().GetValue(); n != 0 {
				t.Errorf("switchboard_proxy_answers_total{route=%q} = %v, want 0: a static route asks no app", tt.path, n)
			}
		})
	}
}

// TestFallbackRequestsAreCounted: when a number's URL fails, Twilio asks
// its fallback URL, adding ErrorCode and ErrorUrl; Switchboard counts those
// requests by route and code, whatever the route's mode or forced kind,
// and a proxied fallback for a call gets a call's TwiML.
func TestFallbackRequestsAreCounted(t *testing.T) {
	t.Parallel()
	app := newFaultApp(t)
	refused := "http://" + deadAddr(t) + "/voice"
	tests := []struct {
		name     string
		route    proxyRoute
		number   sim.Number
		receive  func(ctx context.Context, tw *sim.Sim, number string) (*sim.InboundResult, error)
		code     twilio.Code // Twilio's error on the number's URL
		fallback answer      // what Twilio got from the fallback URL
		attempt  twilio.Code // code of the proxied attempt on record; -1 for none
	}{
		{
			name:   "message: SMS URL unknown to Switchboard, fallback on an ack route",
			route:  proxyRoute{path: "/fallback/ack", mode: ingest.ModeAck, target: app.target("ok", "/fallback/ack")},
			number: sim.Number{Number: "+14155552001", SMSURL: public + "/nowhere", SMSFallbackURL: public + "/fallback/ack"},
			receive: func(ctx context.Context, tw *sim.Sim, n string) (*sim.InboundResult, error) {
				return tw.ReceiveMessage(ctx, sim.InboundMessage{From: handset, To: n, Body: "hi"})
			},
			code: twilio.CodeHTTPRetrievalFailure, fallback: answer{200, "application/xml", fallbackTwiML("/fallback/ack")}, attempt: -1,
		},
		{
			name: "call: voice URL refused, fallback on a route forcing the voice kind",
			route: proxyRoute{path: "/fallback/forced", mode: ingest.ModeAck, kind: switchboard.KindVoice,
				target: app.target("ok", "/fallback/forced")},
			number: sim.Number{Number: "+14155552002", VoiceURL: refused, VoiceFallbackURL: public + "/fallback/forced"},
			receive: func(ctx context.Context, tw *sim.Sim, n string) (*sim.InboundResult, error) {
				return tw.ReceiveCall(ctx, sim.InboundCall{From: handset, To: n})
			},
			code: twilio.CodeHTTPConnectionFailure, fallback: answer{200, "application/xml", fallbackTwiML("/fallback/forced")}, attempt: -1,
		},
		{
			name:   "call: voice URL unknown, fallback proxied to an app answering an empty 200",
			route:  proxyRoute{path: "/fallback/proxy", target: app.target("empty", "/fallback/proxy")},
			number: sim.Number{Number: "+14155552003", VoiceURL: public + "/nowhere", VoiceFallbackURL: public + "/fallback/proxy"},
			receive: func(ctx context.Context, tw *sim.Sim, n string) (*sim.InboundResult, error) {
				return tw.ReceiveCall(ctx, sim.InboundCall{From: handset, To: n})
			},
			// An empty answer is no TwiML for a call: Twilio gets the
			// route's instead.
			code: twilio.CodeHTTPRetrievalFailure, fallback: answer{200, "application/xml", fallbackTwiML("/fallback/proxy")},
			attempt: twilio.CodeDocumentParseFailure,
		},
	}
	var routes []proxyRoute
	var numbers []sim.Number
	for _, tt := range tests {
		routes = append(routes, tt.route)
		numbers = append(numbers, tt.number)
	}
	f := newProxyFixture(t, routes, numbers...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := tt.receive(t.Context(), f.tw, tt.number.Number)
			if err != nil || res.Webhook == nil {
				t.Fatalf("%+v, %v", res, err)
			}
			r := res.Webhook
			checkTimely(t, "number's URL", r)
			if r.Error == nil || r.Error.Code != tt.code || r.Fallback == nil {
				t.Fatalf("number's URL: error %v, fallback %v; want %d and the fallback URL asked", r.Error, r.Fallback, tt.code)
			}
			checkTimely(t, "fallback URL", r.Fallback)
			if got := answerOf(r.Fallback); got != tt.fallback || !r.Accepted() {
				t.Errorf("fallback URL: Twilio got %v (error %v), want %v accepted", got, r.Fallback.Error, tt.fallback)
			}
			code := fmt.Sprint(int(tt.code))
			if n := metricstest.Sample(t, f.metrics, "switchboard_fallback_requests_total", "route", tt.route.path, "error_code", code).GetCounter().GetValue(); n != 1 {
				t.Errorf("switchboard_fallback_requests_total{route=%q,error_code=%s} = %v, want 1", tt.route.path, code, n)
			}
			ev := f.only(t, tt.route.path, res.SID)
			if tt.attempt < 0 {
				return
			}
			ev, attempts := f.recorded(t, ev)
			if len(attempts) != 1 || attempts[0].TwilioCode != int(tt.attempt) {
				t.Errorf("attempts %+v, want one with code %d", attempts, tt.attempt)
			}
			if ev.Kind != switchboard.KindFallback {
				t.Errorf("event kind %s, want fallback", ev.Kind)
			}
		})
	}
}

// TestProxySlowTargetIsIsolated: with the one proxy slot of a hanging
// target taken, the next request to it gets the fallback without waiting,
// and other routes still get their app's answer.
func TestProxySlowTargetIsIsolated(t *testing.T) {
	t.Parallel()
	app := newFaultApp(t)
	const budget = 10 * time.Second // long enough that only the release ends the first request
	f := newProxyFixture(t, []proxyRoute{
		{path: "/voice/hang", target: app.target("hang", "/voice/hang"), budget: budget, maxInFlight: 1},
		{path: "/voice/other", target: app.target("good-voice", "/voice/other")},
	})

	first := make(chan *sim.InboundResult, 1)
	go func() {
		res, err := f.tw.ReceiveCall(context.Background(), sim.InboundCall{From: handset, To: f.numbers["/voice/hang"]})
		if err != nil {
			t.Errorf("first call: %v", err)
		}
		first <- res
	}()
	select {
	case <-app.entered: // the slot is taken
	case <-time.After(waitLimit):
		t.Fatalf("the first call did not reach the app within %v", waitLimit)
	}
	stillWaiting := func(what string) {
		t.Helper()
		select {
		case <-first:
			t.Fatalf("%s: the first call was answered before the app was released", what)
		default:
		}
	}

	second := call(t, f, "/voice/hang").Webhook
	checkTimely(t, "second call to the busy target", second)
	stillWaiting("second call")
	if got, want := answerOf(second), (answer{200, "application/xml", fallbackTwiML("/voice/hang")}); got != want || !second.Accepted() {
		t.Errorf("second call: Twilio got %v, want the fallback %v", got, want)
	}
	other := call(t, f, "/voice/other").Webhook
	checkTimely(t, "call to another route", other)
	stillWaiting("other route")
	if got, want := answerOf(other), (answer{200, "application/xml", appVoiceTwiML}); got != want {
		t.Errorf("other route: Twilio got %v, want the app's %v", got, want)
	}

	close(app.release)
	var res *sim.InboundResult
	select {
	case res = <-first:
	case <-time.After(waitLimit):
		t.Fatalf("the first call was not answered within %v of the release", waitLimit)
	}
	if res == nil {
		return
	}
	checkTimely(t, "first call", res.Webhook)
	if got, want := answerOf(res.Webhook), (answer{200, "application/xml", appVoiceTwiML}); got != want {
		t.Errorf("first call: Twilio got %v, want the app's %v", got, want)
	}
	if n := app.hitsOn("hang", "/voice/hang"); n != 1 {
		t.Errorf("the hanging target got %d requests, want 1: the second is never forwarded", n)
	}

	// The second call's event made no attempt: its delayed first delivery
	// will take it to the app asynchronously.
	page, err := f.store.ListEvents(context.Background(), switchboard.EventFilter{Route: "/voice/hang"})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("events on /voice/hang: %d (%v), want 2", len(page.Items), err)
	}
	var busy *switchboard.Event
	for _, ev := range page.Items {
		if ev.CallSID != res.SID {
			busy = ev
		}
	}
	if busy == nil {
		t.Fatal("no event for the second call")
	}
	busy, attempts := f.reload(t, busy)
	if busy.State != switchboard.StatePending || len(attempts) != 0 || busy.NextAttemptAt.Before(busy.CreatedAt.Add(budget)) {
		t.Errorf("second call's event: %s, %d attempts, next at %v (created %v); want pending with its first delivery after the budget",
			busy.State, len(attempts), busy.NextAttemptAt, busy.CreatedAt)
	}
	if n := metricstest.Sample(t, f.metrics, "switchboard_attempts_total", "route", "/voice/hang", "result", "proxy_busy").GetCounter().GetValue(); n != 1 {
		t.Errorf("switchboard_attempts_total{result=proxy_busy} = %v, want 1", n)
	}
	if n := metricstest.Sample(t, f.metrics, "switchboard_proxy_answers_total", "route", "/voice/hang", "answer", "fallback", "code", "11205").GetCounter().GetValue(); n != 1 {
		t.Errorf("switchboard_proxy_answers_total{answer=fallback,code=11205} = %v, want 1", n)
	}
}
