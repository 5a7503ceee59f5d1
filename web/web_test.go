package web_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/web"
)

const token = "secret-token"

// bearer is a valid Authorization header.
const bearer = "Bearer " + token

var base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixture is an admin API served over a fresh SQLite store.
type fixture struct {
	store   *sqlite.Store
	handler *web.Server
	srv     *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, token, nil)
}

// newFixtureWith serves the API with the given admin token and logger (nil
// for the default one) and options.
func newFixtureWith(t testing.TB, adminToken string, logger *slog.Logger, opts ...web.Option) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m := metrics.New()
	m.WatchStore(store, slog.Default())
	h := web.New(store, adminToken, m.Handler(), logger, opts...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // runs before the store is closed
	return &fixture{store: store, handler: h, srv: srv}
}

// call is one request to the API. An empty auth sends no Authorization
// header.
type call struct {
	method string
	path   string
	body   string
	auth   string
}

func (f *fixture) do(t *testing.T, c call) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, f.srv.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// get calls a GET endpoint with a valid token.
func (f *fixture) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	return f.do(t, call{method: http.MethodGet, path: path, auth: bearer})
}

// post calls a POST endpoint with a valid token.
func (f *fixture) post(t *testing.T, path, body string) (*http.Response, []byte) {
	t.Helper()
	return f.do(t, call{method: http.MethodPost, path: path, body: body, auth: bearer})
}

func (f *fixture) ingest(t *testing.T, items ...*switchboard.Ingest) {
	t.Helper()
	if err := f.store.Ingest(t.Context(), items); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
}

func (f *fixture) record(t *testing.T, results ...*switchboard.AttemptResult) {
	t.Helper()
	if err := f.store.RecordAttempts(t.Context(), results); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
}

func (f *fixture) state(t *testing.T, eventID string) switchboard.State {
	t.Helper()
	ev, err := f.store.Event(t.Context(), eventID)
	if err != nil {
		t.Fatal(err)
	}
	return ev.State
}

// result is delivery attempt n of an event, answered with status, leaving
// the event in state.
func result(eventID string, n, status int, state switchboard.State) *switchboard.AttemptResult {
	a := switchboard.Attempt{
		EventID: eventID, Number: n, StartedAt: base.Add(time.Duration(n) * time.Minute),
		TargetURL: "http://app.internal/sms", StatusCode: status, Latency: 1500 * time.Microsecond,
		ResponseHeader: http.Header{"Content-Type": {"text/plain"}}, ResponseExcerpt: []byte("app said no"),
	}
	if status/100 != 2 {
		a.ErrorClass, a.TwilioCode, a.Error = "http-status", 11200, "HTTP "+strconv.Itoa(status)
	}
	r := &switchboard.AttemptResult{Attempt: a, State: state}
	if state == switchboard.StateRetrying {
		r.NextAttemptAt = base.Add(time.Hour)
	}
	return r
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// checkError checks that an answer is a JSON error with the given status
// whose message contains want.
func checkError(t *testing.T, resp *http.Response, body []byte, status int, want string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("error body %s is not a JSON object of strings: %v", body, err)
	}
	if len(got) != 1 || got["error"] == "" {
		t.Fatalf("error body = %s, want exactly a non-empty \"error\"", body)
	}
	if !strings.Contains(got["error"], want) {
		t.Errorf("error = %q, want it to mention %q", got["error"], want)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dead := storetest.NewItem("/sms", "auth-dead", base)
	f.ingest(t, dead)
	f.record(t, result(dead.Event.ID, 1, 410, switchboard.StateDead))

	endpoints := []struct {
		name string
		call call
		ok   int // status with a valid token
	}{
		{"list events", call{method: http.MethodGet, path: "/api/v1/events"}, http.StatusOK},
		{"get event", call{method: http.MethodGet, path: "/api/v1/events/" + dead.Event.ID}, http.StatusOK},
		{"replay event", call{method: http.MethodPost, path: "/api/v1/events/" + dead.Event.ID + "/replay"}, http.StatusAccepted},
		{"bulk replay", call{method: http.MethodPost, path: "/api/v1/replay", body: `{"state":"dead"}`}, http.StatusAccepted},
		{"list requests", call{method: http.MethodGet, path: "/api/v1/requests"}, http.StatusOK},
		{"get request", call{method: http.MethodGet, path: "/api/v1/requests/" + dead.Request.ID}, http.StatusOK},
		{"unknown endpoint", call{method: http.MethodGet, path: "/api/v1/nope"}, http.StatusNotFound},
	}
	credentials := []struct {
		name string
		auth string
	}{
		{"no token", ""},
		{"wrong token", "Bearer wrong-token"},
		{"basic auth with the token as password", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+token))},
		{"basic auth with the token", "Basic " + token},
		{"token without scheme", token},
		{"prefix of the token", "Bearer " + token[:len(token)-1]},
		{"short prefix of the token", "Bearer s"},
		{"token with a suffix", bearer + "x"},
		{"scheme only", "Bearer"},
	}

	// The valid-token requests run after every rejected one, so a rejected
	// replay that got through would show as the event no longer being dead.
	t.Run("rejected", func(t *testing.T) {
		for _, cred := range credentials {
			for _, ep := range endpoints {
				t.Run(cred.name+"/"+ep.name, func(t *testing.T) {
					t.Parallel()
					c := ep.call
					c.auth = cred.auth
					resp, body := f.do(t, c)
					checkError(t, resp, body, http.StatusUnauthorized, "token")
					if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
						t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
					}
				})
			}
		}
	})
	if got := f.state(t, dead.Event.ID); got != switchboard.StateDead {
		t.Fatalf("after unauthenticated replays the event is %s, want still dead", got)
	}

	t.Run("accepted", func(t *testing.T) {
		for _, ep := range endpoints {
			c := ep.call
			c.auth = bearer
			resp, body := f.do(t, c)
			if resp.StatusCode != ep.ok {
				t.Errorf("%s with a valid token: status = %d, want %d; body %s", ep.name, resp.StatusCode, ep.ok, body)
			}
			if resp.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("%s with a valid token: got a WWW-Authenticate challenge", ep.name)
			}
		}
	})
}

func TestEmptyTokenRefusesEverything(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, "", nil)
	it := storetest.NewItem("/sms", "empty-token", base)
	f.ingest(t, it)

	paths := []call{
		{method: http.MethodGet, path: "/api/v1/events"},
		{method: http.MethodGet, path: "/api/v1/events/" + it.Event.ID},
		{method: http.MethodPost, path: "/api/v1/events/" + it.Event.ID + "/replay"},
		{method: http.MethodPost, path: "/api/v1/replay", body: `{"route":"/sms"}`},
		{method: http.MethodGet, path: "/api/v1/requests"},
		{method: http.MethodGet, path: "/api/v1/requests/" + it.Request.ID},
	}
	for _, auth := range []string{"", "Bearer ", "Bearer", "Bearer  ", "Bearer secret-token"} {
		for _, c := range paths {
			t.Run(strconv.Quote(auth)+"/"+c.method+" "+c.path, func(t *testing.T) {
				t.Parallel()
				// Over the wire, where header values lose trailing spaces...
				c.auth = auth
				resp, body := f.do(t, c)
				checkError(t, resp, body, http.StatusUnauthorized, "token")
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate challenge")
				}

				// ...and straight to the handler with the header exactly as given.
				var reqBody io.Reader
				if c.body != "" {
					reqBody = strings.NewReader(c.body)
				}
				req := httptest.NewRequest(c.method, c.path, reqBody)
				if auth != "" {
					req.Header["Authorization"] = []string{auth}
				}
				rec := httptest.NewRecorder()
				f.handler.ServeHTTP(rec, req)
				checkError(t, rec.Result(), rec.Body.Bytes(), http.StatusUnauthorized, "token")
			})
		}
	}
}

func TestUnknownEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	it := storetest.NewItem("/sms", "unknown", base)
	f.ingest(t, it)

	// A known endpoint's refusal, to compare the unknown ones' with.
	resp, known := f.do(t, call{method: http.MethodGet, path: "/api/v1/events"})
	checkError(t, resp, known, http.StatusUnauthorized, "token")

	tests := []struct {
		name string
		call call
	}{
		{"unknown resource", call{method: http.MethodGet, path: "/api/v1/nope"}},
		{"unknown version", call{method: http.MethodGet, path: "/api/v2/events"}},
		{"api root", call{method: http.MethodGet, path: "/api/"}},
		{"too deep", call{method: http.MethodGet, path: "/api/v1/events/" + it.Event.ID + "/attempts"}},
		{"replay with GET", call{method: http.MethodGet, path: "/api/v1/events/" + it.Event.ID + "/replay"}},
		{"bulk replay with GET", call{method: http.MethodGet, path: "/api/v1/replay"}},
		{"events with DELETE", call{method: http.MethodDelete, path: "/api/v1/events/" + it.Event.ID}},
		{"events with POST", call{method: http.MethodPost, path: "/api/v1/events", body: `{}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			resp, body := f.do(t, tt.call)
			checkError(t, resp, body, http.StatusUnauthorized, "token")
			if !bytes.Equal(body, known) {
				t.Errorf("refusal of an unknown endpoint differs from a known one's:\n%s\nvs\n%s", body, known)
			}

			c := tt.call
			c.auth = bearer
			resp, body = f.do(t, c)
			checkError(t, resp, body, http.StatusNotFound, "no such endpoint")
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	var draining atomic.Bool
	f := newFixtureWith(t, token, nil, web.WithDraining(draining.Load))

	check := func(path string, status int, want string) {
		t.Helper()
		resp, body := f.do(t, call{method: http.MethodGet, path: path})
		if resp.StatusCode != status || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", path, resp.StatusCode, body, status, want)
		}
	}
	check("/healthz", http.StatusOK, "ok")
	check("/readyz", http.StatusOK, "ready")

	// Shutting down: a load balancer should send it nothing new.
	draining.Store(true)
	check("/readyz", http.StatusServiceUnavailable, "shutting down")
	check("/healthz", http.StatusOK, "ok")
	draining.Store(false)

	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	check("/readyz", http.StatusServiceUnavailable, "store unreachable")
	check("/healthz", http.StatusOK, "ok") // alive, just not ready
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Now()
	oldest := storetest.NewItem("/sms", "m-oldest", now.Add(-2*time.Minute))
	f.ingest(t,
		oldest,
		storetest.NewItem("/sms", "m-b", now.Add(-time.Minute)),
		storetest.NewItem("/sms", "m-c", now.Add(-30*time.Second)),
	)
	dead := storetest.NewItem("/sms", "m-dead", now.Add(-3*time.Minute))
	f.ingest(t, dead)
	f.record(t, result(dead.Event.ID, 1, 410, switchboard.StateDead))

	scrape := func() string {
		t.Helper()
		resp, body := f.do(t, call{method: http.MethodGet, path: "/metrics"}) // no token: scrapers have none
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %d %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type = %q, want Prometheus text", ct)
		}
		return string(body)
	}

	text := scrape()
	for name, want := range map[string]float64{
		`switchboard_events{state="pending"}`:   3,
		`switchboard_events{state="retrying"}`:  0,
		`switchboard_events{state="delivered"}`: 0,
		`switchboard_events{state="dead"}`:      1,
		`switchboard_queue_depth`:               3,
	} {
		if got := metricValue(t, text, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// The oldest pending event has been due for two minutes; the dead one is
	// not waiting for anything.
	if lag := metricValue(t, text, "switchboard_queue_lag_seconds"); lag < 120 || lag > 3*60 {
		t.Errorf("switchboard_queue_lag_seconds = %v, want about 120", lag)
	}

	// Gauges are read at each scrape: a replay shows up in the next one.
	resp, body := f.post(t, "/api/v1/events/"+dead.Event.ID+"/replay", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("replay = %d %s", resp.StatusCode, body)
	}
	text = scrape()
	if got := metricValue(t, text, `switchboard_events{state="pending"}`); got != 4 {
		t.Errorf(`after a replay switchboard_events{state="pending"} = %v, want 4`, got)
	}
	if got := metricValue(t, text, `switchboard_events{state="dead"}`); got != 0 {
		t.Errorf(`after a replay switchboard_events{state="dead"} = %v, want 0`, got)
	}
}

// metricValue finds a sample in Prometheus' text format by its name and
// labels, as written.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for line := range strings.Lines(text) {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return v
	}
	t.Fatalf("no %s in the metrics:\n%s", series, text)
	return 0
}

// syncBuffer is a log destination safe to read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	f := newFixtureWith(t, token, slog.New(slog.NewTextHandler(&logs, nil)))
	it := storetest.NewItem("/sms", "leak", base)
	f.ingest(t, it)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call call
	}{
		{"list events", call{method: http.MethodGet, path: "/api/v1/events?state=pending"}},
		{"get event", call{method: http.MethodGet, path: "/api/v1/events/" + it.Event.ID}},
		{"replay event", call{method: http.MethodPost, path: "/api/v1/events/" + it.Event.ID + "/replay"}},
		{"bulk replay", call{method: http.MethodPost, path: "/api/v1/replay", body: `{"route":"/sms"}`}},
		{"list requests", call{method: http.MethodGet, path: "/api/v1/requests"}},
		{"get request", call{method: http.MethodGet, path: "/api/v1/requests/" + it.Request.ID}},
	}
	t.Run("endpoints", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				c := tt.call
				c.auth = bearer
				resp, body := f.do(t, c)
				checkError(t, resp, body, http.StatusInternalServerError, "")
				if got := decodeJSON[map[string]string](t, body); got["error"] != "internal error" {
					t.Errorf("error = %q, want \"internal error\"", got["error"])
				}
				for _, secret := range []string{"sql", "database", "closed", "events", it.Event.ID} {
					if bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(secret))) {
						t.Errorf("body %s reveals %q", body, secret)
					}
				}
			})
		}
	})
	// The detail goes to the operator's log instead.
	if got := logs.String(); !strings.Contains(got, "database is closed") {
		t.Errorf("log does not carry the cause:\n%s", got)
	}
}
