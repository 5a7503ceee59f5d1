package sim

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The accounts and numbers of testConfig.
const (
	acctSID   = "AC0123456789abcdef0123456789abcdef"
	acctToken = "secrettoken0123456789abcdef01234" // alphanumeric: twilio-go refuses others
	oldToken  = "previoustoken0123456789abcdef012" // the second, still valid token
	otherSID  = "ACfedcba9876543210fedcba9876543210"
	otherTok  = "othertoken0123456789abcdef012345"

	longCode   = "+15550001001" // 1 segment/s
	tollFree   = "+18885550001" // 3 segments/s
	shortCode  = "55501"        // 100 segments/s
	customRate = "+15550001002" // 7.5 segments/s
	fastNumber = "+15550001003" // 1000 segments/s, for volume
	poolA      = "+15550002001" // in serviceSID's pool
	poolB      = "+15550002002" // in serviceSID's pool
	otherNum   = "+15550009001" // owned by otherSID

	serviceSID = "MG0123456789abcdef0123456789abcdef"

	handset  = "+15557770001"
	handset2 = "+15557770002"
	optedOut = "+15557770099" // in acctSID's OptOuts
)

// testConfig is a valid configuration with two accounts, numbers of every
// type and a Messaging Service.
func testConfig() Config {
	return Config{
		Seed: 1,
		Accounts: []Account{
			{
				SID:        acctSID,
				AuthTokens: []string{acctToken, oldToken},
				Numbers: []Number{
					{Number: longCode},
					{Number: tollFree, Type: TollFree},
					{Number: shortCode},
					{Number: customRate, Throughput: 7.5},
					{Number: fastNumber, Throughput: 1000},
					{Number: poolA},
					{Number: poolB},
				},
				Services: []Service{{SID: serviceSID, Numbers: []string{poolA, poolB}}},
				OptOuts:  []string{optedOut},
			},
			{
				SID:        otherSID,
				AuthTokens: []string{otherTok},
				Numbers:    []Number{{Number: otherNum}},
			},
		},
	}
}

// newSim returns a Sim for cfg, closed when the test ends.
func newSim(t testing.TB, cfg Config) *Sim {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// numberOf returns a pointer to the configured number n of account 0.
func numberOf(t testing.TB, cfg *Config, n string) *Number {
	t.Helper()
	for i := range cfg.Accounts[0].Numbers {
		if cfg.Accounts[0].Numbers[i].Number == n {
			return &cfg.Accounts[0].Numbers[i]
		}
	}
	t.Fatalf("no number %s in the configuration", n)
	return nil
}

// request is a request the app received.
type request struct {
	Method string
	URL    string // as the app saw it: http://host/path?query
	Header http.Header
	Body   []byte
	Form   url.Values // the form body of a POST, or the query of a GET
	At     time.Time
}

// Signature returns the request's X-Twilio-Signature.
func (r request) Signature() string { return r.Header.Get("X-Twilio-Signature") }

// Token returns the request's I-Twilio-Idempotency-Token.
func (r request) Token() string { return r.Header.Get("I-Twilio-Idempotency-Token") }

// app is the application the simulator sends webhooks to: it records every
// request and answers as answer says (200 with an empty body by default).
type app struct {
	answer func(w http.ResponseWriter, r *http.Request, n int) // n: earlier requests to the same path

	mu     sync.Mutex
	reqs   []request
	byPath map[string]int
	notify chan struct{} // closed and replaced on every request
}

func newApp(answer func(w http.ResponseWriter, r *http.Request, n int)) *app {
	if answer == nil {
		answer = func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusOK) }
	}
	return &app{answer: answer, byPath: map[string]int{}, notify: make(chan struct{})}
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body)) // for answer
	rec := request{
		Method: r.Method,
		URL:    "http://" + r.Host + r.URL.RequestURI(),
		Header: r.Header.Clone(),
		Body:   body,
		At:     time.Now(),
	}
	if r.Method == http.MethodGet {
		rec.Form = r.URL.Query()
	} else if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		rec.Form, _ = url.ParseQuery(string(body))
	}
	a.mu.Lock()
	n := a.byPath[r.URL.Path]
	a.byPath[r.URL.Path]++
	a.reqs = append(a.reqs, rec)
	close(a.notify)
	a.notify = make(chan struct{})
	a.mu.Unlock()
	a.answer(w, r, n)
}

// changed returns a channel closed when the app next gets a request.
func (a *app) changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.notify
}

// requests returns what the app has received so far.
func (a *app) requests() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]request(nil), a.reqs...)
}

// startApp serves a on a loopback port until the test ends.
func startApp(t testing.TB, a *app) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

// handlerTransport carries requests to an http.Handler in process, so that
// webhooks stay inside a synctest bubble. Like a real transport, it fails
// a request whose context ended while the handler had it.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	in := req.Clone(req.Context())
	in.Host = req.URL.Host
	in.RequestURI = req.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
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

// serve runs one request through h and returns the recorded answer.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// apiRequest builds a REST request with Basic auth; a POST sends form as
// its body, a GET as its query.
func apiRequest(method, path, user, pass string, form url.Values) *http.Request {
	var req *http.Request
	if method == http.MethodGet {
		if len(form) > 0 {
			path += "?" + form.Encode()
		}
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return req
}

// withTimeout returns a context for a test's real-network waits.
func withTimeout(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
