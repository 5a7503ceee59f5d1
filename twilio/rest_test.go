package twilio_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	acct    = "AC0123456789abcdef0123456789abcdef"
	token   = "secrettoken0123456789abcdef01234"
	sender  = "+15550001001"
	handset = "+15557770001"
)

// serveSim starts a simulator on loopback and returns a client of it.
func serveSim(t *testing.T, cfg sim.Config) (*sim.Sim, *twilio.MessagesClient) {
	t.Helper()
	cfg.Seed = 1
	cfg.Accounts = []sim.Account{{SID: acct, AuthTokens: []string{token},
		Numbers: []sim.Number{{Number: sender, Throughput: 1000}}}}
	s, err := sim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv, err := s.Serve(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return s, twilio.NewMessagesClient(srv.URL, acct, token)
}

func TestCreateFetchAndList(t *testing.T) {
	t.Parallel()
	s, c := serveSim(t, sim.Config{})
	ctx := t.Context()
	m, err := c.Create(ctx, twilio.CreateParams{To: handset, From: sender, Body: "hello",
		StatusCallback: "http://127.0.0.1:1/status"})
	if err != nil {
		t.Fatal(err)
	}
	if m.SID == "" || m.Status != "queued" || m.To != handset || m.From != sender || m.Body != "hello" || m.DateCreated.IsZero() {
		t.Errorf("created %+v", m)
	}
	at, ok := s.Message(m.SID)
	if !ok || at.StatusCallback != "http://127.0.0.1:1/status" {
		t.Errorf("at the simulator: %+v", at)
	}
	got, err := c.Fetch(ctx, m.SID)
	if err != nil || got.SID != m.SID || got.Body != "hello" {
		t.Fatalf("fetch: %+v, %v", got, err)
	}
	if _, err := c.Fetch(ctx, "SM00000000000000000000000000000000"); !isRestError(err, 404, 20404) {
		t.Errorf("fetch of an unknown SID: %v", err)
	}

	for range 6 {
		if _, err := c.Create(ctx, twilio.CreateParams{To: "+15557770002", From: sender, Body: "page"}); err != nil {
			t.Fatal(err)
		}
	}
	// Pages of 2 followed to the end, and bounded.
	all, err := c.List(ctx, twilio.ListParams{To: "+15557770002", From: sender, PageSize: 2})
	if err != nil || len(all) != 6 {
		t.Fatalf("list: %d messages, %v", len(all), err)
	}
	seen := map[string]bool{}
	for i, m := range all {
		if m.To != "+15557770002" || seen[m.SID] {
			t.Errorf("message %d: %+v (repeated: %v)", i, m, seen[m.SID])
		}
		seen[m.SID] = true
		if i > 0 && m.DateCreated.After(all[i-1].DateCreated.Time) {
			t.Errorf("not newest first at %d", i)
		}
	}
	if some, err := c.List(ctx, twilio.ListParams{To: "+15557770002", PageSize: 2, MaxPages: 2}); err != nil || len(some) != 4 {
		t.Errorf("two pages: %d messages, %v", len(some), err)
	}
	// DateSent matches sent messages only; a high throughput sends them at once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		sent, err := c.List(ctx, twilio.ListParams{To: handset, DateSent: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) == 1 && sent[0].SID == m.SID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DateSent today: %d messages", len(sent))
		}
		time.Sleep(20 * time.Millisecond) // polling the simulator's queue
	}
}

func isRestError(err error, status int, code twilio.Code) bool {
	var re *twilio.RestError
	return errors.As(err, &re) && re.Status == status && re.Code == code
}

func TestRestErrors(t *testing.T) {
	t.Parallel()
	_, c := serveSim(t, sim.Config{})
	ctx := t.Context()
	for _, tc := range []struct {
		p    twilio.CreateParams
		code twilio.Code
	}{
		{twilio.CreateParams{To: "+15005550001", From: sender, Body: "x"}, twilio.CodeInvalidTo},
		{twilio.CreateParams{To: handset, From: "+15005550007", Body: "x"}, twilio.CodeFromNotCapable},
		{twilio.CreateParams{To: "+15005550004", From: sender, Body: "x"}, twilio.CodeUnsubscribedRecipient},
		{twilio.CreateParams{To: handset, From: sender}, twilio.CodeBodyRequired},
	} {
		_, err := c.Create(ctx, tc.p)
		var re *twilio.RestError
		if !errors.As(err, &re) || re.Code != tc.code || re.Status != 400 || !re.Permanent() || re.Retryable() ||
			re.MoreInfo == "" || twilio.IsAmbiguous(err) {
			t.Errorf("%+v: %#v", tc.p, err)
		}
	}
	bad := *c
	bad.AuthToken = "wrong"
	if _, err := bad.Create(ctx, twilio.CreateParams{To: handset, From: sender, Body: "x"}); !isRestError(err, 401, twilio.CodeAuthenticationFailed) {
		t.Errorf("wrong token: %v", err)
	}
}

func TestTooManyRequestsIsRetryable(t *testing.T) {
	t.Parallel()
	_, c := serveSim(t, sim.Config{ConcurrencyLimit: 1, APILatency: 300 * time.Millisecond})
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.Create(ctx, twilio.CreateParams{To: handset, From: sender, Body: "x"})
		})
	}
	wg.Wait()
	ok, limited := 0, 0
	for _, err := range errs {
		var re *twilio.RestError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &re) && re.Status == 429 && re.Code == twilio.CodeTooManyRequests && re.Retryable() && !re.Permanent():
			limited++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	if ok < 1 || limited < 1 {
		t.Errorf("%d created, %d limited", ok, limited)
	}
}

// A 503's Retry-After reaches the caller with the error (the header's
// forms are switchboard.ParseRetryAfter's, tested there).
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("upstream busy"))
	}))
	t.Cleanup(srv.Close)
	c := twilio.NewMessagesClient(srv.URL, acct, token)
	_, err := c.Create(t.Context(), twilio.CreateParams{To: handset, From: sender, Body: "x"})
	var re *twilio.RestError
	if !errors.As(err, &re) || re.Status != 503 || re.RetryAfter != 3*time.Second || !re.Retryable() || re.Message != "upstream busy" {
		t.Errorf("%#v", err)
	}
}

func TestAmbiguousNetworkErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	params := twilio.CreateParams{To: handset, From: sender, Body: "x"}

	// Nothing listens: a dial failure, definitely not sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()
	_, err = twilio.NewMessagesClient(closed, acct, token).Create(ctx, params)
	var ne *twilio.NetError
	if !errors.As(err, &ne) || twilio.IsAmbiguous(err) {
		t.Errorf("dial failure: %#v, ambiguous %v", err, twilio.IsAmbiguous(err))
	}

	// The request is read, then the connection is dropped: maybe sent.
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(drop.Close)
	if _, err := twilio.NewMessagesClient(drop.URL, acct, token).Create(ctx, params); !twilio.IsAmbiguous(err) {
		t.Errorf("connection dropped after the request: %v, not ambiguous", err)
	}

	// No answer in time after the request was written: maybe sent.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	c := twilio.NewMessagesClient(slow.URL, acct, token)
	c.HTTPClient.Timeout = 200 * time.Millisecond
	if _, err := c.Create(ctx, params); !twilio.IsAmbiguous(err) {
		t.Errorf("timeout after the request: %v, not ambiguous", err)
	}

	// A context ended before anything was written: not sent.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := twilio.NewMessagesClient(slow.URL, acct, token).Create(done, params); err == nil || twilio.IsAmbiguous(err) {
		t.Errorf("cancelled before the request: %v, ambiguous %v", err, twilio.IsAmbiguous(err))
	}
	// Twilio's refusals are never ambiguous.
	if twilio.IsAmbiguous(&twilio.RestError{Status: 500}) {
		t.Error("a 500 answer is ambiguous")
	}
}
