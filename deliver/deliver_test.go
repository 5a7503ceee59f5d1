package deliver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	signToken = "app-auth-token"
	formType  = "application/x-www-form-urlencoded"
	jsonType  = "application/json"
	publicURL = "https://hooks.example.com"
)

// epoch is where every test's fake clock starts. It is a whole second so
// that HTTP dates (second precision) can be built relative to it.
var epoch = time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

// testPolicy gives exact delays: attempt 1 waits 750ms, attempt 2 1.5s,
// and so on, doubling up to the cap of 10s (7.5s after jitter).
func testPolicy() switchboard.RetryPolicy {
	return switchboard.RetryPolicy{
		Base:          time.Second,
		Max:           10 * time.Second,
		MaxRetryAfter: time.Hour,
		Rand:          func() float64 { return 0.5 },
	}
}

// fakeClock only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// received is one request as the app saw it.
type received struct {
	method string
	url    string // the URL the app was called at: "http://" + Host + RequestURI
	header http.Header
	body   []byte
}

// app is the application behind Switchboard. It records every request and
// answers with respond, or 204 when respond is nil.
type app struct {
	*httptest.Server
	hits atomic.Int64

	mu  sync.Mutex
	got []received
}

func newApp(t *testing.T, respond http.HandlerFunc) *app {
	t.Helper()
	a := &app{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.got = append(a.got, received{method: r.Method, url: "http://" + r.Host + r.RequestURI, header: r.Header.Clone(), body: body})
		a.mu.Unlock()
		a.hits.Add(1)
		if respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		respond(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// status returns a handler answering code with body.
func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func (a *app) requests() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

func (a *app) last(t *testing.T) received {
	t.Helper()
	got := a.requests()
	if len(got) == 0 {
		t.Fatal("the app received no request")
	}
	return got[len(got)-1]
}

type harness struct {
	store switchboard.Store
	clock *fakeClock
	d     *deliver.Deliverer
	keys  atomic.Int64
}

func route(path, target string) deliver.Route {
	return deliver.Route{Path: path, Target: target, SignToken: signToken, MaxAttempts: 25, MaxAge: 72 * time.Hour}
}

// newHarness opens a fresh SQLite store and a Deliverer on it. clock may be
// nil; edit, if not nil, adjusts the options before the Deliverer is built.
// The breaker is set far out of reach unless edit lowers it.
func newHarness(t *testing.T, clock *fakeClock, routes []deliver.Route, edit func(*deliver.Options)) *harness {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	if clock == nil {
		clock = newClock()
	}
	opts := deliver.Options{
		Routes:          routes,
		ConnectTimeout:  5 * time.Second,
		Timeout:         30 * time.Second,
		Policy:          testPolicy(),
		BreakerFailures: 1000,
		BreakerOpenFor:  time.Hour,
		Logger:          logger,
		Now:             clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	d := deliver.New(store, opts)
	return &harness{store: store, clock: clock, d: d}
}

// ingest stores an accepted request and its event on the route at path,
// created now by the fake clock, and returns the event's id. edit, if not
// nil, adjusts the item first.
func (h *harness) ingest(t *testing.T, path string, edit func(*switchboard.Ingest)) string {
	t.Helper()
	key := fmt.Sprintf("key%d", h.keys.Add(1))
	it := storetest.NewItem(path, key, h.clock.Now())
	if edit != nil {
		edit(it)
	}
	if err := h.store.Ingest(context.Background(), []*switchboard.Ingest{it}); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if it.Duplicate {
		t.Fatalf("event %s ingested as a duplicate", key)
	}
	return it.Event.ID
}

func (h *harness) event(t *testing.T, id string) *switchboard.Event {
	t.Helper()
	ev, err := h.store.Event(context.Background(), id)
	if err != nil {
		t.Fatalf("Event(%s): %v", id, err)
	}
	return ev
}

func (h *harness) attempts(t *testing.T, id string) []*switchboard.Attempt {
	t.Helper()
	atts, err := h.store.Attempts(context.Background(), id)
	if err != nil {
		t.Fatalf("Attempts(%s): %v", id, err)
	}
	return atts
}

// onlyAttempt returns the event's single attempt.
func (h *harness) onlyAttempt(t *testing.T, id string) *switchboard.Attempt {
	t.Helper()
	atts := h.attempts(t, id)
	if len(atts) != 1 {
		t.Fatalf("%d attempts recorded, want 1", len(atts))
	}
	return atts[0]
}

// wantNoError checks that Deliver reported no internal failure; the
// outcome is read from the store.
func wantNoError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Deliver = %v", err)
	}
}

// deliver runs the job the store would have scheduled for the event: one
// carrying the event's current attempt count.
func (h *harness) deliver(ctx context.Context, id string) error {
	attempts := 0
	if ev, err := h.store.Event(context.Background(), id); err == nil {
		attempts = ev.Attempts
	}
	return h.d.Deliver(ctx, id, attempts)
}

// wantRetry delivers the event and checks that its next attempt is
// scheduled exactly want after now.
func (h *harness) wantRetry(t *testing.T, id string, want time.Duration) {
	t.Helper()
	if err := h.deliver(t.Context(), id); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	ev := h.event(t, id)
	if ev.State.Terminal() || ev.NextAttemptAt.IsZero() {
		t.Fatalf("event %s with no next attempt, want a retry", ev.State)
	}
	if after := ev.NextAttemptAt.Sub(h.clock.Now()); after != want {
		t.Errorf("retry after %s, want %s", after, want)
	}
}

// wantState checks the event's state, attempt count and next attempt.
func wantState(t *testing.T, ev *switchboard.Event, state switchboard.State, attempts int, next time.Time) {
	t.Helper()
	if ev.State != state {
		t.Errorf("event state = %s, want %s", ev.State, state)
	}
	if ev.Attempts != attempts {
		t.Errorf("event attempts = %d, want %d", ev.Attempts, attempts)
	}
	if !ev.NextAttemptAt.Equal(next) {
		t.Errorf("event next attempt at %v, want %v", ev.NextAttemptAt, next)
	}
}

func wantSigned(t *testing.T, got received) {
	t.Helper()
	sigs := got.header.Values("X-Twilio-Signature")
	if len(sigs) != 1 {
		t.Fatalf("app received %d X-Twilio-Signature headers %q, want 1", len(sigs), sigs)
	}
	if err := twilio.ValidateRequest([]string{signToken}, got.url, got.header.Get("Content-Type"), got.body, sigs[0]); err != nil {
		t.Errorf("signature %q for %s does not validate: %v", sigs[0], got.url, err)
	}
}

func TestDeliverForwardsRequestExactly(t *testing.T) {
	t.Parallel()

	const body = "AccountSid=AC1&Body=caf%C3%A9+%26+cr%C3%A8me+br%C3%BBl%C3%A9e+1%2B1&From=%2B14155550100&MessageSid=SMfwd&To=%2B14155550199"
	clock := newClock()
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(250 * time.Millisecond) // the app takes its time, on the fake clock
		w.WriteHeader(http.StatusNoContent)
	})
	h := newHarness(t, clock, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)

	form, err := twilio.ParseForm([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	inbound := twilio.Signature(signToken, publicURL+"/sms", form) // what Twilio sent to Switchboard
	stored := http.Header{
		"Content-Type":               {formType},
		"I-Twilio-Idempotency-Token": {"9c1f4e0a-52d6-4a8e-9d3c-0b7a4d2f6e11"},
		"X-Home-Region":              {"us1"},
		"User-Agent":                 {"TwilioProxy/1.1"},
		"X-Twilio-Signature":         {inbound},
		"X-Forwarded-For":            {"54.172.60.1"},
	}
	id := h.ingest(t, "/sms", func(it *switchboard.Ingest) {
		it.Request.URL = publicURL + "/sms"
		it.Request.Header = stored
		it.Request.Body = []byte(body)
	})

	if err := h.deliver(t.Context(), id); err != nil {
		t.Fatalf("Deliver: %v", err)
	}

	if n := a.hits.Load(); n != 1 {
		t.Fatalf("app called %d times, want 1", n)
	}
	got := a.last(t)
	if got.method != http.MethodPost {
		t.Errorf("method = %s, want POST", got.method)
	}
	if got.url != a.URL+"/sms" {
		t.Errorf("app called at %s, want %s", got.url, a.URL+"/sms")
	}
	if !bytes.Equal(got.body, []byte(body)) {
		t.Errorf("body =\n%q\nwant\n%q", got.body, body)
	}
	for _, k := range []string{"Content-Type", "I-Twilio-Idempotency-Token", "X-Home-Region", "User-Agent"} {
		if !slices.Equal(got.header.Values(k), stored.Values(k)) {
			t.Errorf("%s = %q, want %q", k, got.header.Values(k), stored.Values(k))
		}
	}
	if v := got.header.Get("X-Switchboard-Event-Id"); v != id {
		t.Errorf("X-Switchboard-Event-Id = %q, want %q", v, id)
	}
	if v := got.header.Get("X-Switchboard-Attempt"); v != "1" {
		t.Errorf("X-Switchboard-Attempt = %q, want 1", v)
	}
	if v := got.header.Values("X-Forwarded-For"); len(v) != 0 {
		t.Errorf("X-Forwarded-For forwarded: %q", v)
	}
	wantSigned(t, got)
	if got.header.Get("X-Twilio-Signature") == inbound {
		t.Error("the inbound signature was forwarded as is")
	}

	ev := h.event(t, id)
	wantState(t, ev, switchboard.StateDelivered, 1, time.Time{})
	if want := epoch.Add(250 * time.Millisecond); !ev.DeliveredAt.Equal(want) {
		t.Errorf("delivered at %v, want %v", ev.DeliveredAt, want)
	}
	if ev.LastError != "" {
		t.Errorf("last error = %q, want none", ev.LastError)
	}
	att := h.onlyAttempt(t, id)
	if att.Number != 1 || att.StatusCode != http.StatusNoContent || att.ErrorClass != "" || att.TwilioCode != 0 || att.Error != "" {
		t.Errorf("attempt: number %d, status %d, class %q, code %d, error %q; want 1, 204 and no error",
			att.Number, att.StatusCode, att.ErrorClass, att.TwilioCode, att.Error)
	}
	if att.TargetURL != a.URL+"/sms" {
		t.Errorf("attempt target = %s, want %s", att.TargetURL, a.URL+"/sms")
	}
	if !att.StartedAt.Equal(epoch) || att.Latency != 250*time.Millisecond {
		t.Errorf("attempt started at %v and took %s, want %v and 250ms", att.StartedAt, att.Latency, epoch)
	}
}

func TestDeliverTargetURL(t *testing.T) {
	t.Parallel()

	const (
		jsonBody = `{"twi_message_type":"twilio.voice.call","twi_to":"client:alice","twi_params":"a=1&b=%20"}`
		formBody = "Body=caf%C3%A9+%26+more&MessageSid=SMq"
	)
	sum := sha256.Sum256([]byte(jsonBody))
	bodyHash := hex.EncodeToString(sum[:])

	tests := []struct {
		name        string
		target      string // path (and query, fragment) of the route's target on the app
		method      string
		storedURL   string // the public URL Twilio called
		contentType string
		body        string
		wantURL     string // path and query the app must be called at
	}{
		{
			name:      "GETKeepsItsQuery",
			target:    "/sms",
			method:    http.MethodGet,
			storedURL: publicURL + "/sms?MessageSid=SM1&Body=hi",
			wantURL:   "/sms?MessageSid=SM1&Body=hi",
		},
		{
			name:      "GETQueryStaysByteForByte",
			target:    "/sms",
			method:    http.MethodGet,
			storedURL: publicURL + "/sms?Body=It%27s+caf%C3%A9&From=%2B14155550100",
			wantURL:   "/sms?Body=It%27s+caf%C3%A9&From=%2B14155550100",
		},
		{
			name:        "JSONKeepsBodySHA256",
			target:      "/notify",
			method:      http.MethodPost,
			storedURL:   publicURL + "/notify?bodySHA256=" + bodyHash,
			contentType: jsonType,
			body:        jsonBody,
			wantURL:     "/notify?bodySHA256=" + bodyHash,
		},
		{
			name:        "FormWithQuery",
			target:      "/sms",
			method:      http.MethodPost,
			storedURL:   publicURL + "/sms?x=1",
			contentType: formType,
			body:        formBody,
			wantURL:     "/sms?x=1",
		},
		{
			name:        "TargetWithItsOwnQuery",
			target:      "/sms?tenant=a",
			method:      http.MethodPost,
			storedURL:   publicURL + "/sms?x=1",
			contentType: formType,
			body:        formBody,
			wantURL:     "/sms?tenant=a&x=1",
		},
		{
			name:        "TargetFragmentIsNeitherSentNorSigned",
			target:      "/sms#rt=2000",
			method:      http.MethodPost,
			storedURL:   publicURL + "/sms?x=1",
			contentType: formType,
			body:        formBody,
			wantURL:     "/sms?x=1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			a := newApp(t, nil)
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+tt.target)}, nil)
			id := h.ingest(t, "/sms", func(it *switchboard.Ingest) {
				it.Request.Method = tt.method
				it.Request.URL = tt.storedURL
				it.Request.Body = []byte(tt.body)
				it.Request.Header = http.Header{"I-Twilio-Idempotency-Token": {tt.name}}
				if tt.contentType != "" {
					it.Request.Header.Set("Content-Type", tt.contentType)
				}
			})

			if err := h.deliver(t.Context(), id); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			got := a.last(t)
			if got.method != tt.method {
				t.Errorf("method = %s, want %s", got.method, tt.method)
			}
			if want := a.URL + tt.wantURL; got.url != want {
				t.Errorf("app called at\n%s\nwant\n%s", got.url, want)
			}
			if !bytes.Equal(got.body, []byte(tt.body)) {
				t.Errorf("body = %q, want %q", got.body, tt.body)
			}
			wantSigned(t, got)
			if att := h.onlyAttempt(t, id); att.TargetURL != got.url {
				t.Errorf("attempt target = %s, want the URL called, %s", att.TargetURL, got.url)
			}
			wantState(t, h.event(t, id), switchboard.StateDelivered, 1, time.Time{})
		})
	}
}

func TestDeliverAppFailureIsRetried(t *testing.T) {
	t.Parallel()

	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<10/16) // 10 KiB

	tests := []struct {
		name        string
		status      int
		body        []byte
		wantExcerpt []byte
	}{
		{name: "500", status: http.StatusInternalServerError, body: []byte("database down"), wantExcerpt: []byte("database down")},
		{name: "500LongBodyTruncated", status: http.StatusInternalServerError, body: big, wantExcerpt: big[:4<<10]},
		{name: "404", status: http.StatusNotFound, body: []byte("no such route"), wantExcerpt: []byte("no such route")},
		{name: "400EmptyBody", status: http.StatusBadRequest, wantExcerpt: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-App-Trace", "t-1")
				w.WriteHeader(tt.status)
				w.Write(tt.body)
			})
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
			id := h.ingest(t, "/sms", nil)

			err := h.deliver(t.Context(), id)
			wantNoError(t, err)

			ev := h.event(t, id)
			wantState(t, ev, switchboard.StateRetrying, 1, epoch.Add(750*time.Millisecond))
			if want := "HTTP " + strconv.Itoa(tt.status); ev.LastError != want {
				t.Errorf("last error = %q, want %q", ev.LastError, want)
			}
			att := h.onlyAttempt(t, id)
			if att.StatusCode != tt.status || att.ErrorClass != "http-status" || att.TwilioCode != 11200 {
				t.Errorf("attempt: status %d, class %q, code %d; want %d, http-status, 11200",
					att.StatusCode, att.ErrorClass, att.TwilioCode, tt.status)
			}
			if !bytes.Equal(att.ResponseExcerpt, tt.wantExcerpt) {
				t.Errorf("response excerpt: %d bytes %.40q, want %d bytes %.40q",
					len(att.ResponseExcerpt), att.ResponseExcerpt, len(tt.wantExcerpt), tt.wantExcerpt)
			}
			if v := att.ResponseHeader.Get("X-App-Trace"); v != "t-1" {
				t.Errorf("response header X-App-Trace = %q, want t-1", v)
			}
		})
	}
}

func TestDeliverBackoffGrowsAndCaps(t *testing.T) {
	t.Parallel()

	a := newApp(t, status(http.StatusInternalServerError, "down"))
	h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
	id := h.ingest(t, "/sms", nil)

	// Base 1s, Max 10s, Rand 0.5: 3/4 of 1s, 2s, 4s, 8s, then of the 10s cap.
	wantDelays := []time.Duration{
		750 * time.Millisecond,
		1500 * time.Millisecond,
		3 * time.Second,
		6 * time.Second,
		7500 * time.Millisecond,
		7500 * time.Millisecond,
	}
	for i, want := range wantDelays {
		number := i + 1
		now := h.clock.Now()
		err := h.deliver(t.Context(), id)
		wantNoError(t, err)
		if v := a.last(t).header.Get("X-Switchboard-Attempt"); v != strconv.Itoa(number) {
			t.Errorf("attempt %d: X-Switchboard-Attempt = %q", number, v)
		}
		wantState(t, h.event(t, id), switchboard.StateRetrying, number, now.Add(want))
		h.clock.Set(now.Add(want)) // the job runs when it is due
	}
	atts := h.attempts(t, id)
	if len(atts) != len(wantDelays) {
		t.Fatalf("%d attempts recorded, want %d", len(atts), len(wantDelays))
	}
	for i, att := range atts {
		if att.Number != i+1 {
			t.Errorf("attempt %d recorded as number %d", i+1, att.Number)
		}
	}
}

func TestDeliverGoneIsDead(t *testing.T) {
	t.Parallel()

	a := newApp(t, status(http.StatusGone, "unsubscribed"))
	h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
	id := h.ingest(t, "/sms", nil)

	if err := h.deliver(t.Context(), id); err != nil {
		t.Fatalf("Deliver = %v, want nil for a dead-lettered event", err)
	}
	ev := h.event(t, id)
	wantState(t, ev, switchboard.StateDead, 1, time.Time{})
	if !strings.Contains(ev.LastError, "410") {
		t.Errorf("last error = %q, want it to mention the 410", ev.LastError)
	}
	if !ev.DeliveredAt.IsZero() {
		t.Errorf("dead event has DeliveredAt %v", ev.DeliveredAt)
	}
	att := h.onlyAttempt(t, id)
	if att.StatusCode != http.StatusGone || att.ErrorClass != "http-status" || att.TwilioCode != 11200 {
		t.Errorf("attempt: status %d, class %q, code %d", att.StatusCode, att.ErrorClass, att.TwilioCode)
	}
	if a.hits.Load() != 1 {
		t.Errorf("app called %d times, want 1", a.hits.Load())
	}
}

func TestDeliverMaxAttempts(t *testing.T) {
	t.Parallel()

	a := newApp(t, status(http.StatusBadGateway, ""))
	r := route("/sms", a.URL+"/sms")
	r.MaxAttempts = 2
	h := newHarness(t, nil, []deliver.Route{r}, nil)
	id := h.ingest(t, "/sms", nil)

	h.wantRetry(t, id, 750*time.Millisecond)
	h.clock.Advance(750 * time.Millisecond)
	if err := h.deliver(t.Context(), id); err != nil {
		t.Fatalf("second Deliver = %v, want nil: max attempts reached", err)
	}

	ev := h.event(t, id)
	wantState(t, ev, switchboard.StateDead, 2, time.Time{})
	if !strings.Contains(ev.LastError, "max attempts") {
		t.Errorf("last error = %q, want it to mention max attempts", ev.LastError)
	}
	atts := h.attempts(t, id)
	if len(atts) != 2 {
		t.Fatalf("%d attempts, want 2", len(atts))
	}
	if strings.Contains(atts[0].Error, "max attempts") {
		t.Errorf("first attempt error = %q, before max attempts", atts[0].Error)
	}
	if !strings.Contains(atts[1].Error, "max attempts") || atts[1].StatusCode != http.StatusBadGateway {
		t.Errorf("last attempt: status %d, error %q; want 502 and max attempts", atts[1].StatusCode, atts[1].Error)
	}
	if a.hits.Load() != 2 {
		t.Errorf("app called %d times, want 2", a.hits.Load())
	}
}

func TestDeliverMaxAge(t *testing.T) {
	t.Parallel()

	const maxAge = time.Hour
	// The first retry would be 750ms after the attempt: the event dies when
	// that retry would fall past its max age.
	tests := []struct {
		name      string
		age       time.Duration // of the event when it is attempted
		wantState switchboard.State
	}{
		{name: "FarPast", age: 30 * 24 * time.Hour, wantState: switchboard.StateDead},
		{name: "RetryWouldBeTooLate", age: maxAge - 500*time.Millisecond, wantState: switchboard.StateDead},
		{name: "RetryStillInTime", age: maxAge - time.Second, wantState: switchboard.StateRetrying},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			a := newApp(t, status(http.StatusServiceUnavailable, ""))
			r := route("/sms", a.URL+"/sms")
			r.MaxAge = maxAge
			h := newHarness(t, nil, []deliver.Route{r}, nil)
			id := h.ingest(t, "/sms", func(it *switchboard.Ingest) {
				it.Request.ReceivedAt = epoch.Add(-tt.age)
				it.Event.CreatedAt = epoch.Add(-tt.age)
			})

			err := h.deliver(t.Context(), id)
			ev := h.event(t, id)
			if tt.wantState == switchboard.StateRetrying {
				wantNoError(t, err)
				wantState(t, ev, switchboard.StateRetrying, 1, epoch.Add(750*time.Millisecond))
				return
			}
			if err != nil {
				t.Fatalf("Deliver = %v, want nil for a dead-lettered event", err)
			}
			wantState(t, ev, switchboard.StateDead, 1, time.Time{})
			if !strings.Contains(ev.LastError, "max age") {
				t.Errorf("last error = %q, want it to mention max age", ev.LastError)
			}
			if att := h.onlyAttempt(t, id); !strings.Contains(att.Error, "max age") {
				t.Errorf("attempt error = %q, want it to mention max age", att.Error)
			}
		})
	}
}

func TestDeliverRetryAfter(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
	}{
		{name: "429Seconds", status: http.StatusTooManyRequests, retryAfter: "7", want: 7 * time.Second},
		{name: "503Seconds", status: http.StatusServiceUnavailable, retryAfter: "7", want: 7 * time.Second},
		{name: "503HTTPDate", status: http.StatusServiceUnavailable, retryAfter: epoch.Add(42 * time.Second).Format(http.TimeFormat), want: 42 * time.Second},
		// A Retry-After is a floor under the backoff, never a way to retry sooner.
		{name: "429HTTPDateInPast", status: http.StatusTooManyRequests, retryAfter: epoch.Add(-time.Minute).Format(http.TimeFormat), want: 750 * time.Millisecond},
		{name: "429SecondsBelowBackoff", status: http.StatusTooManyRequests, retryAfter: "0", want: 750 * time.Millisecond},
		{name: "503CappedAtMaxRetryAfter", status: http.StatusServiceUnavailable, retryAfter: "7200", want: time.Hour},
		{name: "429HTTPDateCapped", status: http.StatusTooManyRequests, retryAfter: epoch.Add(5 * time.Hour).Format(http.TimeFormat), want: time.Hour},
		{name: "503Garbage", status: http.StatusServiceUnavailable, retryAfter: "soon", want: 750 * time.Millisecond},
		{name: "500IgnoresRetryAfter", status: http.StatusInternalServerError, retryAfter: "7", want: 750 * time.Millisecond},
		{
			name: "503HugeSecondsCapped", status: http.StatusServiceUnavailable, retryAfter: "9223372037", want: time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tt.retryAfter)
				w.WriteHeader(tt.status)
			})
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
			id := h.ingest(t, "/sms", nil)

			h.wantRetry(t, id, tt.want)
			wantState(t, h.event(t, id), switchboard.StateRetrying, 1, epoch.Add(tt.want))
			if att := h.onlyAttempt(t, id); att.ResponseHeader.Get("Retry-After") != tt.retryAfter {
				t.Errorf("attempt response Retry-After = %q, want %q", att.ResponseHeader.Get("Retry-After"), tt.retryAfter)
			}
		})
	}
}

func TestDeliverRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()

	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()

			elsewhere := newApp(t, nil)
			a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/landing", code)
			})
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
			id := h.ingest(t, "/sms", nil)

			h.wantRetry(t, id, 750*time.Millisecond)
			if n := elsewhere.hits.Load(); n != 0 {
				t.Errorf("redirect target called %d times, want 0", n)
			}
			if n := a.hits.Load(); n != 1 {
				t.Errorf("app called %d times, want 1", n)
			}
			wantState(t, h.event(t, id), switchboard.StateRetrying, 1, epoch.Add(750*time.Millisecond))
			att := h.onlyAttempt(t, id)
			if att.StatusCode != code || att.ErrorClass != "http-status" || att.TwilioCode != 11200 {
				t.Errorf("attempt: status %d, class %q, code %d; want %d, http-status, 11200", att.StatusCode, att.ErrorClass, att.TwilioCode, code)
			}
		})
	}
}

// deadAddr returns an address nothing listens on.
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

func TestDeliverNetworkFailure(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		target    func(t *testing.T) string
		wantClass string
	}{
		{
			name:      "ConnectionRefused",
			target:    func(t *testing.T) string { return "http://" + deadAddr(t) + "/sms" },
			wantClass: "connect",
		},
		{
			name: "Timeout",
			target: func(t *testing.T) string {
				release := make(chan struct{})
				a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				})
				t.Cleanup(func() { close(release) }) // runs before the app's Close
				return a.URL + "/sms"
			},
			wantClass: "timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			target := tt.target(t)
			h := newHarness(t, nil, []deliver.Route{route("/sms", target)}, func(o *deliver.Options) {
				o.Timeout = 200 * time.Millisecond
			})
			id := h.ingest(t, "/sms", nil)

			err := h.deliver(t.Context(), id)
			wantNoError(t, err)
			ev := h.event(t, id)
			wantState(t, ev, switchboard.StateRetrying, 1, epoch.Add(750*time.Millisecond))
			att := h.onlyAttempt(t, id)
			if att.ErrorClass != tt.wantClass || att.TwilioCode != 11205 || att.StatusCode != 0 {
				t.Errorf("attempt: class %q, code %d, status %d; want %s, 11205, 0 (error %q)",
					att.ErrorClass, att.TwilioCode, att.StatusCode, tt.wantClass, att.Error)
			}
			if att.Error == "" || ev.LastError != att.Error {
				t.Errorf("attempt error %q, event last error %q: want the same, non-empty", att.Error, ev.LastError)
			}
			if want := target + "?x=1"; att.TargetURL != want { // the stored URL's query is kept
				t.Errorf("attempt target = %s, want %s", att.TargetURL, want)
			}
		})
	}
}

func TestDeliverCircuitBreaker(t *testing.T) {
	t.Parallel()

	const openFor = time.Hour

	t.Run("OpensAfterConsecutiveFailures", func(t *testing.T) {
		t.Parallel()

		down := newApp(t, status(http.StatusInternalServerError, "down"))
		up := newApp(t, nil)
		h := newHarness(t, nil, []deliver.Route{route("/sms", down.URL+"/sms"), route("/other", up.URL+"/other")},
			func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 3, openFor })

		for i := range 3 {
			id := h.ingest(t, "/sms", nil)
			h.wantRetry(t, id, 750*time.Millisecond)
			if n := down.hits.Load(); n != int64(i+1) {
				t.Fatalf("app called %d times after %d deliveries", n, i+1)
			}
		}

		id := h.ingest(t, "/sms", nil)
		if err := h.deliver(t.Context(), id); err != nil {
			t.Fatalf("Deliver with the circuit open = %v", err)
		}
		ev := h.event(t, id)
		if after := ev.NextAttemptAt.Sub(h.clock.Now()); after < openFor/2 || after > openFor {
			t.Errorf("next attempt in %s with the circuit open, want within [%s, %s]", after, openFor/2, openFor)
		}
		if ev.State != switchboard.StatePending || ev.Attempts != 0 {
			t.Errorf("event with the circuit open: %s after %d attempts, want pending after 0", ev.State, ev.Attempts)
		}
		if n := down.hits.Load(); n != 3 {
			t.Errorf("app called %d times, want 3: the circuit should be open", n)
		}
		if atts := h.attempts(t, id); len(atts) != 0 {
			t.Errorf("%d attempts recorded with the circuit open, want none", len(atts))
		}

		other := h.ingest(t, "/other", nil)
		if err := h.deliver(t.Context(), other); err != nil {
			t.Fatalf("Deliver to another target: %v", err)
		}
		if n := up.hits.Load(); n != 1 {
			t.Errorf("other target called %d times, want 1", n)
		}
		// What the console shows: the down target open, the other closed,
		// keyed by origin (no path, which may carry a secret).
		states := map[string]string{}
		for _, b := range h.d.Breakers() {
			states[b.Target] = b.State
		}
		downURL, upURL := strings.TrimSuffix(down.URL, "/"), strings.TrimSuffix(up.URL, "/")
		if states[downURL] != "open" || states[upURL] != "closed" || len(states) != 2 {
			t.Errorf("Breakers() = %v, want %s open and %s closed", states, downURL, upURL)
		}
		// What alerts read: the open one, since the clock's time it opened.
		if open := h.d.BreakersOpen(); len(open) != 1 || open[0].Target != downURL || !open[0].OpenSince.Equal(h.clock.Now()) {
			t.Errorf("BreakersOpen() = %v, want %s open since %s", open, downURL, h.clock.Now())
		}
		wantState(t, h.event(t, other), switchboard.StateDelivered, 1, time.Time{})
	})

	t.Run("MaxAgeWhileOpenIsDead", func(t *testing.T) {
		t.Parallel()

		down := newApp(t, status(http.StatusServiceUnavailable, ""))
		h := newHarness(t, nil, []deliver.Route{route("/sms", down.URL+"/sms")},
			func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 1, openFor })
		h.wantRetry(t, h.ingest(t, "/sms", nil), 750*time.Millisecond)

		old := h.ingest(t, "/sms", func(it *switchboard.Ingest) {
			it.Event.CreatedAt = epoch.Add(-73 * time.Hour)
		})
		if err := h.deliver(t.Context(), old); err != nil {
			t.Fatalf("Deliver = %v, want nil for a dead-lettered event", err)
		}
		if n := down.hits.Load(); n != 1 {
			t.Errorf("app called %d times, want 1: the circuit should be open", n)
		}
		ev := h.event(t, old)
		if ev.State != switchboard.StateDead || !strings.Contains(ev.LastError, "max age") {
			t.Errorf("event %s with error %q, want dead for max age", ev.State, ev.LastError)
		}
	})

	t.Run("OlderEventsWaitLongerWhileOpen", func(t *testing.T) {
		t.Parallel()

		const shortOpen = 2 * time.Second
		down := newApp(t, status(http.StatusServiceUnavailable, ""))
		h := newHarness(t, nil, []deliver.Route{route("/sms", down.URL+"/sms")},
			func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 1, shortOpen })
		h.wantRetry(t, h.ingest(t, "/sms", nil), 750*time.Millisecond) // opens the circuit

		cases := []struct {
			age  time.Duration
			want time.Duration // with the test policy's Rand 0.5 and Max 10s
		}{
			{0, 1500 * time.Millisecond},        // within the open period
			{30 * time.Second, 3 * time.Second}, // a tenth of its age
			{time.Hour, testPolicy().Max},       // capped
		}
		for _, c := range cases {
			id := h.ingest(t, "/sms", func(it *switchboard.Ingest) { it.Event.CreatedAt = epoch.Add(-c.age) })
			if err := h.deliver(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			if got := h.event(t, id).NextAttemptAt.Sub(h.clock.Now()); got != c.want {
				t.Errorf("event aged %s: next look in %s, want %s", c.age, got, c.want)
			}
		}
		if n := down.hits.Load(); n != 1 {
			t.Errorf("app called %d times, want 1: the circuit should be open", n)
		}
	})

	// Only answers that show the target unhealthy (5xx, 429, no answer) count
	// towards opening the circuit.
	tests := []struct {
		status   int
		wantOpen bool
	}{
		{http.StatusInternalServerError, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusTooManyRequests, true},
		{http.StatusNotFound, false},
		{http.StatusFound, false},
		{http.StatusGone, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("Answer%d", tt.status), func(t *testing.T) {
			t.Parallel()

			a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
			})
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")},
				func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 2, openFor })
			for range 3 {
				h.deliver(t.Context(), h.ingest(t, "/sms", nil))
			}
			want := int64(3)
			if tt.wantOpen {
				want = 2
			}
			if n := a.hits.Load(); n != want {
				t.Errorf("app called %d times in 3 deliveries, want %d", n, want)
			}
		})
	}

	t.Run("HealthyAnswerResetsCount", func(t *testing.T) {
		t.Parallel()

		statuses := []int{500, 500, 404, 500, 500, 204, 500, 500, 500}
		var calls atomic.Int64
		a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
			if i := calls.Add(1) - 1; i < int64(len(statuses)) {
				w.WriteHeader(statuses[i])
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
		})
		h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")},
			func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 3, openFor })
		for range len(statuses) + 2 {
			h.deliver(t.Context(), h.ingest(t, "/sms", nil))
		}
		// The third consecutive failure is the ninth answer; nothing after it
		// reaches the app.
		if n := a.hits.Load(); n != int64(len(statuses)) {
			t.Errorf("app called %d times, want %d", n, len(statuses))
		}
	})
}

func TestDeliverTerminalEventIsLeftAlone(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		status int
		want   switchboard.State
	}{
		{name: "Delivered", status: http.StatusOK, want: switchboard.StateDelivered},
		{name: "Dead", status: http.StatusGone, want: switchboard.StateDead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			a := newApp(t, status(tt.status, ""))
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
			id := h.ingest(t, "/sms", nil)
			if err := h.deliver(t.Context(), id); err != nil {
				t.Fatalf("first Deliver: %v", err)
			}
			before := h.event(t, id)
			if before.State != tt.want {
				t.Fatalf("after the first delivery the event is %s, want %s", before.State, tt.want)
			}

			h.clock.Advance(time.Minute)
			if err := h.deliver(t.Context(), id); err != nil {
				t.Errorf("Deliver of a %s event = %v, want nil", tt.want, err)
			}
			if n := a.hits.Load(); n != 1 {
				t.Errorf("app called %d times, want 1", n)
			}
			if atts := h.attempts(t, id); len(atts) != 1 {
				t.Errorf("%d attempts, want 1", len(atts))
			}
			after := h.event(t, id)
			if after.State != before.State || after.Attempts != before.Attempts || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("event changed: %s/%d/%v → %s/%d/%v",
					before.State, before.Attempts, before.UpdatedAt, after.State, after.Attempts, after.UpdatedAt)
			}
		})
	}
}

func TestDeliverUnknownEvent(t *testing.T) {
	t.Parallel()

	a := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
	if err := h.deliver(t.Context(), "0195f0c2-0000-7000-8000-000000000000"); err != nil {
		t.Errorf("Deliver of an unknown event = %v, want nil", err)
	}
	if n := a.hits.Load(); n != 0 {
		t.Errorf("app called %d times, want 0", n)
	}
}

func TestDeliverRouteNoLongerConfigured(t *testing.T) {
	t.Parallel()

	a := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
	id := h.ingest(t, "/retired", nil)

	if err := h.deliver(t.Context(), id); err != nil {
		t.Fatalf("Deliver = %v, want nil for a dead-lettered event", err)
	}
	if n := a.hits.Load(); n != 0 {
		t.Errorf("app called %d times, want 0", n)
	}
	ev := h.event(t, id)
	wantState(t, ev, switchboard.StateDead, 0, time.Time{})
	if !strings.Contains(ev.LastError, "route") {
		t.Errorf("last error = %q, want it to name the missing route", ev.LastError)
	}
	for _, att := range h.attempts(t, id) {
		if att.StatusCode != 0 || att.TargetURL != "" {
			t.Errorf("recorded a request that cannot have been sent: status %d to %q", att.StatusCode, att.TargetURL)
		}
	}
}

// TestDeliverShutdownIsNotTheAppsFailure cancels Deliver's context (a
// shutdown) while the app is working on the request. The app did not fail,
// so the event must not be dead-lettered, even on its last attempt, nor the
// attempt blamed on the app as a protocol violation.
func TestDeliverShutdownIsNotTheAppsFailure(t *testing.T) {
	t.Parallel()

	arrived, release := make(chan struct{}), make(chan struct{})
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	r := route("/sms", a.URL+"/sms")
	r.MaxAttempts = 1
	h := newHarness(t, nil, []deliver.Route{r}, nil)
	id := h.ingest(t, "/sms", nil)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.deliver(ctx, id) }()
	<-arrived
	cancel() // shutdown while the app is working on the request
	err := <-done

	if err != nil {
		t.Errorf("Deliver = %v after a shutdown cut its attempt short, want nil: the retry is scheduled", err)
	}
	ev := h.event(t, id)
	if ev.State != switchboard.StateRetrying || ev.NextAttemptAt.After(h.clock.Now()) {
		t.Errorf("event %s, next attempt %v after a shutdown cut its attempt short (last error %q), want retrying and due now",
			ev.State, ev.NextAttemptAt, ev.LastError)
	}
	for _, att := range h.attempts(t, id) {
		if att.ErrorClass != deliver.ClassInterrupted || att.TwilioCode != 0 {
			t.Errorf("attempt %d classed %q (%d): %s; want %q: the failure is ours, not the app's",
				att.Number, att.ErrorClass, att.TwilioCode, att.Error, deliver.ClassInterrupted)
		}
	}
}

// A job made before the event moved on (rescued after a crash, or a replay
// racing an old job) must not deliver it again.
func TestStaleJobDoesNothing(t *testing.T) {
	t.Parallel()
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, nil)
	id := h.ingest(t, "/sms", nil)
	if err := h.d.Deliver(t.Context(), id, 0); err != nil { // attempt 1 fails; a job for attempt 2 is scheduled
		t.Fatal(err)
	}
	if err := h.d.Deliver(t.Context(), id, 0); err != nil { // the first job again, as if rescued
		t.Fatal(err)
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("app called %d times, want 1: the stale job must not deliver", n)
	}
	if ev := h.event(t, id); ev.Attempts != 1 {
		t.Errorf("event attempts = %d, want 1", ev.Attempts)
	}
}

// fanout adds to the item a fan-out event for target and returns its id.
func fanout(it *switchboard.Ingest, target string) string {
	f := *it.Event
	f.ID = it.Event.ID + "-fanout"
	f.IdempotencyKey = it.Event.IdempotencyKey + "#status_webhook"
	f.Target = target
	it.Fanout = append(it.Fanout, &f)
	return f.ID
}

// TestDeliverStatusWebhookFanoutToItsTarget delivers an event and its fan-out
// event (a status webhook): the fan-out event goes to its own target, not
// the route's, byte for byte and re-signed for its own URL, with the
// route's retry policy; the main event still goes to the route's target.
func TestDeliverStatusWebhookFanoutToItsTarget(t *testing.T) {
	t.Parallel()

	const body = "AccountSid=AC1&MessageSid=SMfan&MessageStatus=delivered&Body=caf%C3%A9+%26+more"
	a := newApp(t, nil)
	hookFails := atomic.Bool{}
	hookFails.Store(true)
	hook := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		if hookFails.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	h := newHarness(t, nil, []deliver.Route{route("/status", a.URL+"/status")}, allowLoopback)
	hookURL := hook.URL + "/hooks/status?tenant=a%20b"
	var hookID string
	id := h.ingest(t, "/status", func(it *switchboard.Ingest) {
		it.Request.URL = publicURL + "/status?x=1"
		it.Request.Body = []byte(body)
		it.Event.Kind = switchboard.KindMessageStatus
		hookID = fanout(it, hookURL)
	})

	// The hook fails first: retried under the route's policy, and the
	// route's target is not called.
	h.wantRetry(t, hookID, 750*time.Millisecond)
	if n := a.hits.Load(); n != 0 {
		t.Fatalf("route target called %d times for the fan-out event, want 0", n)
	}
	hookFails.Store(false)
	if err := h.deliver(t.Context(), hookID); err != nil {
		t.Fatalf("Deliver fan-out event: %v", err)
	}
	if n := hook.hits.Load(); n != 2 {
		t.Fatalf("status webhook called %d times, want 2", n)
	}
	got := hook.last(t)
	if want := hookURL + "&x=1"; got.url != want {
		t.Errorf("status webhook called at %s, want %s", got.url, want)
	}
	if !bytes.Equal(got.body, []byte(body)) {
		t.Errorf("body = %q, want %q", got.body, body)
	}
	wantSigned(t, got)
	if v := got.header.Get("X-Switchboard-Event-Id"); v != hookID {
		t.Errorf("X-Switchboard-Event-Id = %q, want the fan-out event's %q", v, hookID)
	}
	if v := got.header.Get("X-Switchboard-Attempt"); v != "2" {
		t.Errorf("X-Switchboard-Attempt = %q, want 2", v)
	}
	wantState(t, h.event(t, hookID), switchboard.StateDelivered, 2, time.Time{})
	atts := h.attempts(t, hookID)
	if len(atts) != 2 || atts[0].TargetURL != got.url || atts[1].TargetURL != got.url || atts[0].StatusCode != 500 {
		t.Errorf("fan-out attempts %+v, want a 500 then a success, both at %s", atts, got.url)
	}

	if err := h.deliver(t.Context(), id); err != nil {
		t.Fatalf("Deliver main event: %v", err)
	}
	if n := a.hits.Load(); n != 1 {
		t.Fatalf("route target called %d times, want 1", n)
	}
	main := a.last(t)
	if want := a.URL + "/status?x=1"; main.url != want || !bytes.Equal(main.body, []byte(body)) {
		t.Errorf("route target called at %s with %q, want %s with the same body", main.url, main.body, want)
	}
	wantSigned(t, main)
	if n := hook.hits.Load(); n != 2 {
		t.Errorf("status webhook called %d times after the main event's delivery, want still 2", n)
	}
	wantState(t, h.event(t, id), switchboard.StateDelivered, 1, time.Time{})
}

// TestDeliverStatusWebhookFanoutHasItsOwnBreaker keeps the route's target delivered
// while the fan-out target's circuit is open, and delivers fan-out events
// of a route that has no target of its own (static).
func TestDeliverStatusWebhookFanoutHasItsOwnBreaker(t *testing.T) {
	t.Parallel()

	a := newApp(t, nil)
	down := newApp(t, status(http.StatusServiceUnavailable, ""))
	up := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/status", a.URL+"/status"), route("/static", "")},
		func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 1, time.Hour; allowLoopback(o) })

	var first, second string
	h.ingest(t, "/status", func(it *switchboard.Ingest) { first = fanout(it, down.URL+"/hook") })
	main := h.ingest(t, "/status", func(it *switchboard.Ingest) { second = fanout(it, down.URL+"/hook") })
	h.wantRetry(t, first, 750*time.Millisecond)
	if err := h.deliver(t.Context(), second); err != nil {
		t.Fatalf("Deliver with the fan-out target's circuit open = %v", err)
	}
	if n := down.hits.Load(); n != 1 {
		t.Errorf("fan-out target called %d times, want 1: its circuit should be open", n)
	}
	if ev := h.event(t, second); ev.State != switchboard.StatePending || ev.Attempts != 0 || ev.NextAttemptAt.IsZero() {
		t.Errorf("fan-out event with its circuit open: %s after %d attempts, next at %v; want pending, 0, a next attempt",
			ev.State, ev.Attempts, ev.NextAttemptAt)
	}
	if err := h.deliver(t.Context(), main); err != nil {
		t.Fatalf("Deliver to the route's target: %v", err)
	}
	if n := a.hits.Load(); n != 1 {
		t.Errorf("route target called %d times, want 1: its circuit is its own", n)
	}
	wantState(t, h.event(t, main), switchboard.StateDelivered, 1, time.Time{})

	var static string
	h.ingest(t, "/static", func(it *switchboard.Ingest) { static = fanout(it, up.URL+"/hook") })
	if err := h.deliver(t.Context(), static); err != nil {
		t.Fatalf("Deliver fan-out event of a static route: %v", err)
	}
	if n := up.hits.Load(); n != 1 {
		t.Fatalf("fan-out target of a static route called %d times, want 1", n)
	}
	wantSigned(t, up.last(t))
	wantState(t, h.event(t, static), switchboard.StateDelivered, 1, time.Time{})
}

// A stored request whose content its signature did not cover (intake
// refuses these now; one stored before it did, or by other means, must
// still not be signed again): never sent, dead at once, and the breaker
// does not blame the target.
func TestDeliverNeverSignsUncoveredContent(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, method, url, contentType, body string
	}{
		{"GETWithFormBody", http.MethodGet, publicURL + "/sms?MessageSid=SM1", formType, "Body=forged"},
		{"JSONWithoutHash", http.MethodPost, publicURL + "/sms", jsonType, `{"Body":"forged"}`},
		{"JSONWithWrongHash", http.MethodPost, publicURL + "/sms?bodySHA256=" + strings.Repeat("0", 64), jsonType, `{"Body":"forged"}`},
		{"TextBody", http.MethodPost, publicURL + "/sms", "text/plain", "Body=forged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, nil)
			h := newHarness(t, nil, []deliver.Route{route("/sms", a.URL+"/sms")}, func(o *deliver.Options) { o.BreakerFailures = 1 })
			id := h.ingest(t, "/sms", func(it *switchboard.Ingest) {
				it.Request.Method, it.Request.URL, it.Request.Body = tt.method, tt.url, []byte(tt.body)
				it.Request.Header = http.Header{"Content-Type": {tt.contentType}}
			})
			wantNoError(t, h.deliver(t.Context(), id))
			ev := h.event(t, id)
			wantState(t, ev, switchboard.StateDead, 1, time.Time{})
			if !strings.Contains(ev.LastError, "not signed again") {
				t.Errorf("last error = %q, want it to say the content was not covered", ev.LastError)
			}
			if n := a.hits.Load(); n != 0 {
				t.Fatalf("app received %d requests carrying unsigned content", n)
			}
			// A healthy event to the same target still goes through: the
			// refusal did not open its circuit.
			ok := h.ingest(t, "/sms", nil)
			wantNoError(t, h.deliver(t.Context(), ok))
			if ev := h.event(t, ok); ev.State != switchboard.StateDelivered {
				t.Errorf("next event %s after the refusal, want delivered", ev.State)
			}
		})
	}
}
