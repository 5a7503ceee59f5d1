package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

const testToken = "12345"

// startReference starts the reference server for the duration of the test.
func startReference(t *testing.T) string {
	t.Helper()
	url, stop, err := StartReference(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// checkReport checks what every report guarantees: percentiles in order and
// each request counted once in each partition.
func checkReport(t *testing.T, r *Report) {
	t.Helper()
	if !(r.P50 <= r.P95 && r.P95 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: p50 %v p95 %v p99 %v max %v", r.P50, r.P95, r.P99, r.Max)
	}
	sum := func(m map[int]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	codes := make(map[int]int)
	for c, n := range r.Codes {
		codes[int(c)] = n
	}
	if got := r.Accepted + sum(codes) + r.Interrupted; got != r.Sent {
		t.Errorf("accepted %d + codes %v + interrupted %d = %d; want sent %d", r.Accepted, r.Codes, r.Interrupted, got, r.Sent)
	}
	if got := sum(r.Statuses) + r.NoAnswer + r.Interrupted; got != r.Sent {
		t.Errorf("statuses %v + no answer %d + interrupted %d = %d; want sent %d", r.Statuses, r.NoAnswer, r.Interrupted, got, r.Sent)
	}
}

func TestRunReference(t *testing.T) {
	t.Parallel()
	url := startReference(t)
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			const n = 500
			r, err := Run(t.Context(), Options{Target: url + "/" + kind, AuthToken: testToken, Kind: kind, Duration: time.Minute, MaxRequests: n})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r)
			checkReport(t, r)
			if r.Sent != n || r.Accepted != n || r.Acknowledged() != n {
				t.Errorf("sent %d, accepted %d, acknowledged %d; want %d each", r.Sent, r.Accepted, r.Acknowledged(), n)
			}
			if len(r.Codes) != 0 || r.NoAnswer != 0 || !maps.Equal(r.Statuses, map[int]int{200: n}) {
				t.Errorf("codes %v, no answer %d, statuses %v; want none, 0, 200×%d", r.Codes, r.NoAnswer, r.Statuses, n)
			}
			if r.Max <= 0 || r.Throughput <= 0 {
				t.Errorf("max %v, throughput %v; want both positive", r.Max, r.Throughput)
			}
		})
	}
}

func TestReferenceAnswer(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	resp, err := http.Post(url+"/anything", "application/x-www-form-urlencoded", strings.NewReader("a=1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/xml" || string(body) != emptyTwiML {
		t.Errorf("got %d %q %q; want 200 application/xml %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, emptyTwiML)
	}
}

// twilioChecker is a webhook endpoint behind a public URL that checks
// requests the way Switchboard does, answers 403 to any it would reject and
// empty TwiML to the others.
type twilioChecker struct {
	publicURL   string // scheme and host the requests were signed for
	contentType string
	kind        switchboard.Kind

	mu       sync.Mutex
	failures []string
	sids     map[string][]string // MessageSid or CallSid: statuses
	tokens   map[string]bool
	nonASCII int
}

func newTwilioChecker(kind string) *twilioChecker {
	c := &twilioChecker{
		publicURL: "https://hooks.example.com",
		sids:      make(map[string][]string),
		tokens:    make(map[string]bool),
	}
	c.contentType, c.kind = map[string]string{
		KindSMS:                formType,
		KindStatus:             formType,
		KindVoice:              voiceFormType,
		KindClientNotification: jsonType,
	}[kind], map[string]switchboard.Kind{
		KindSMS:                switchboard.KindMessage,
		KindStatus:             switchboard.KindMessageStatus,
		KindVoice:              switchboard.KindVoice,
		KindClientNotification: switchboard.KindClientNotification,
	}[kind]
	return c
}

func (c *twilioChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = c.check(r, body)
	}
	if err != nil {
		c.mu.Lock()
		c.failures = append(c.failures, err.Error())
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, emptyTwiML)
}

func (c *twilioChecker) check(r *http.Request, body []byte) error {
	if r.Method != http.MethodPost {
		return errors.New("method " + r.Method)
	}
	for name, want := range map[string]string{
		"Content-Type":  c.contentType,
		"User-Agent":    "TwilioProxy/1.1",
		"X-Home-Region": "us1",
	} {
		if got := r.Header.Get(name); got != want {
			return fmt.Errorf("%s: %q; want %q", name, got, want)
		}
	}
	// The URL Twilio requested, as Switchboard reconstructs it.
	fullURL := c.publicURL + r.RequestURI
	verified, err := twilio.Verify([]string{testToken}, twilio.Request{Method: r.Method, URL: fullURL, ContentType: c.contentType, Body: body},
		r.Header.Get("X-Twilio-Signature"))
	if err != nil {
		return fmt.Errorf("signature for %s: %w", fullURL, err)
	}
	form := verified.Form
	var jsonBody []byte
	if c.contentType == jsonType {
		if !strings.Contains(r.URL.RawQuery, "bodySHA256=") {
			return errors.New("JSON body without bodySHA256 in the URL: " + r.RequestURI)
		}
		jsonBody = body
	}
	kind, fields := twilio.Classify(c.contentType, form, jsonBody)
	if kind != c.kind {
		return fmt.Errorf("classified as %s; want %s", kind, c.kind)
	}
	sid := fields.MessageSID + fields.CallSID
	if len(sid) != 34 || !strings.HasPrefix(fields.AccountSID, "AC") {
		return fmt.Errorf("SID %q, AccountSid %q", sid, fields.AccountSID)
	}
	if form != nil && form.Get("ApiVersion") != "2010-04-01" {
		return errors.New("ApiVersion " + form.Get("ApiVersion"))
	}
	token := r.Header.Get("I-Twilio-Idempotency-Token")
	if _, err := uuid.Parse(token); err != nil {
		return fmt.Errorf("idempotency token: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens[token] {
		return errors.New("idempotency token reused: " + token)
	}
	c.tokens[token] = true
	c.sids[sid] = append(c.sids[sid], fields.Status)
	if b := form.Get("Body"); !isASCII(b) && utf8.ValidString(b) {
		c.nonASCII++
	}
	return nil
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// TestRunSigned checks that every kind's requests are what Twilio sends,
// signed for the public URL, through a path and query that must survive
// signing byte for byte.
func TestRunSigned(t *testing.T) {
	t.Parallel()
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := newTwilioChecker(kind)
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)

			const n = 300
			const path = "/hooks?tenant=a%27b"
			r, err := Run(t.Context(), Options{
				Target:      srv.URL + path,
				SignedURL:   c.publicURL + path,
				AuthToken:   testToken,
				Kind:        kind,
				Concurrency: 16,
				Duration:    time.Minute, // a safety bound; MaxRequests ends the run
				MaxRequests: n,
				Seed:        7,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, r)
			if len(c.failures) > 0 {
				t.Errorf("%d requests rejected, first: %s", len(c.failures), c.failures[0])
			}
			if r.Sent != n || r.Accepted != n {
				t.Fatalf("report %v; want %d sent, all accepted", r, n)
			}
			if len(c.tokens) != n {
				t.Errorf("%d distinct idempotency tokens; want %d", len(c.tokens), n)
			}
			if kind != KindStatus {
				if len(c.sids) != n {
					t.Errorf("%d distinct SIDs; want %d", len(c.sids), n)
				}
			}
			switch kind {
			case KindSMS:
				if c.nonASCII == 0 {
					t.Error("no message body with non-ASCII text")
				}
			case KindStatus:
				if len(c.sids) != n/2 {
					t.Errorf("%d distinct MessageSids; want %d", len(c.sids), n/2)
				}
				for sid, statuses := range c.sids {
					if len(statuses) != 2 || statuses[0] == statuses[1] {
						t.Errorf("%s: statuses %q; want sent and delivered", sid, statuses)
						continue
					}
					for _, s := range statuses {
						if s != "sent" && s != "delivered" {
							t.Errorf("%s: status %q", sid, s)
						}
					}
				}
			}
		})
	}
}

// answer returns a handler that answers every request with status,
// Content-Type (none if empty: not even a sniffed one) and body.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if contentType == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// TestRunAnswers checks the verdict Twilio would give on each kind of bad
// answer, counted exactly.
func TestRunAnswers(t *testing.T) {
	t.Parallel()
	const n = 30
	var every3rd atomic.Int64
	tests := []struct {
		name     string
		kind     string
		handler  http.HandlerFunc
		accepted int
		codes    map[twilio.Code]int
		statuses map[int]int
		noAnswer int
	}{
		{
			name: "server error", kind: KindSMS, handler: answer(500, "text/plain", "boom"),
			codes: map[twilio.Code]int{11200: n}, statuses: map[int]int{500: n},
		},
		{
			name: "TwiML without a Content-Type", kind: KindSMS, handler: answer(200, "", "<Response/>"),
			codes: map[twilio.Code]int{12300: n}, statuses: map[int]int{200: n},
		},
		{
			name: "malformed TwiML", kind: KindVoice, handler: answer(200, "text/xml", "<Response><Say>hi</Response>"),
			codes: map[twilio.Code]int{12100: n}, statuses: map[int]int{200: n},
		},
		{
			name: "empty answer to a call", kind: KindVoice, handler: answer(200, "application/xml", ""),
			codes: map[twilio.Code]int{12100: n}, statuses: map[int]int{200: n},
		},
		{
			name: "TwiML over 64 KiB", kind: KindSMS,
			handler: answer(200, "application/xml", "<Response><Message>"+strings.Repeat("x", twilio.MaxTwiMLBytes)+"</Message></Response>"),
			codes:   map[twilio.Code]int{11750: n}, statuses: map[int]int{200: n},
		},
		{
			name: "redirect", kind: KindSMS, handler: answer(302, "text/html", ""),
			codes: map[twilio.Code]int{11200: n}, statuses: map[int]int{302: n},
		},
		{
			name: "empty answer to a message", kind: KindSMS, handler: answer(204, "", ""),
			accepted: n, codes: map[twilio.Code]int{}, statuses: map[int]int{204: n},
		},
		{
			name: "status callback answered with text", kind: KindStatus, handler: answer(200, "text/plain", "ok"),
			accepted: n, codes: map[twilio.Code]int{}, statuses: map[int]int{200: n},
		},
		{
			name: "status callback refused", kind: KindStatus, handler: answer(404, "text/plain", "no"),
			codes: map[twilio.Code]int{11200: n}, statuses: map[int]int{404: n},
		},
		{
			name: "client notification without a binding", kind: KindClientNotification, handler: answer(404, "", ""),
			accepted: n, codes: map[twilio.Code]int{}, statuses: map[int]int{404: n},
		},
		{
			name: "client notification failed", kind: KindClientNotification, handler: answer(503, "", ""),
			codes: map[twilio.Code]int{13807: n}, statuses: map[int]int{503: n},
		},
		{
			name: "every third request fails", kind: KindSMS,
			handler: func(w http.ResponseWriter, r *http.Request) {
				if every3rd.Add(1)%3 == 0 {
					answer(500, "text/plain", "boom")(w, r)
					return
				}
				answer(200, "application/xml", emptyTwiML)(w, r)
			},
			accepted: 2 * n / 3, codes: map[twilio.Code]int{11200: n / 3}, statuses: map[int]int{200: 2 * n / 3, 500: n / 3},
		},
		{
			name: "connection closed without an answer", kind: KindSMS,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			codes: map[twilio.Code]int{11206: n}, statuses: map[int]int{}, noAnswer: n,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			r, err := Run(t.Context(), Options{
				Target: srv.URL + "/hook", AuthToken: testToken, Kind: tt.kind,
				Concurrency: 4, Duration: time.Minute, MaxRequests: n,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, r)
			if r.Sent != n || r.Accepted != tt.accepted || r.NoAnswer != tt.noAnswer || r.Interrupted != 0 {
				t.Errorf("sent %d, accepted %d, no answer %d, interrupted %d; want %d, %d, %d, 0",
					r.Sent, r.Accepted, r.NoAnswer, r.Interrupted, n, tt.accepted, tt.noAnswer)
			}
			if !maps.Equal(r.Codes, tt.codes) {
				t.Errorf("codes %v; want %v", r.Codes, tt.codes)
			}
			if !maps.Equal(r.Statuses, tt.statuses) {
				t.Errorf("statuses %v; want %v", r.Statuses, tt.statuses)
			}
		})
	}
}

// TestRunRefused checks that requests to a port nobody listens on are
// Twilio's connection failures.
func TestRunRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	target := srv.URL + "/sms"
	srv.Close()

	const n = 5
	r, err := Run(t.Context(), Options{Target: target, AuthToken: testToken, Concurrency: 1, Duration: time.Minute, MaxRequests: n})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r)
	if !maps.Equal(r.Codes, map[twilio.Code]int{11205: n}) || r.NoAnswer != n || r.Accepted != 0 {
		t.Errorf("report %v; want %d×11205 without an answer", r, n)
	}
}

// TestRunInterrupted checks that requests cut short by the end of the run's
// context are counted apart, not blamed on the target.
func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		select { // no answer before the run is over
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	r, err := Run(ctx, Options{Target: srv.URL, AuthToken: testToken, Concurrency: 2, Duration: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled", err)
	}
	checkReport(t, r)
	if r.Interrupted == 0 || len(r.Codes) != 0 || r.Accepted != 0 {
		t.Errorf("report %v; want only interrupted requests", r)
	}
}

func TestRunRate(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	r, err := Run(t.Context(), Options{Target: url + "/sms", AuthToken: testToken, Rate: 200, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	// The schedule offers 200 requests in the second, and never more
	// (TestFeedPaced checks it exactly); how many of them a busy machine
	// gets out within the second is its own affair.
	if r.Sent < 1 || r.Sent > 200 {
		t.Errorf("sent %d at 200/s for 1s; want some, and at most 200", r.Sent)
	}
	if r.Accepted != r.Sent {
		t.Errorf("report %v; want every request accepted", r)
	}
	checkReport(t, r)
}

func TestRunMaxRequests(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	for _, rate := range []float64{0, 1000} {
		r, err := Run(t.Context(), Options{Target: url, AuthToken: testToken, Rate: rate, Duration: time.Minute, MaxRequests: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 10 || r.Accepted != 10 {
			t.Errorf("rate %v: report %v; want 10 sent and accepted", rate, r)
		}
	}
}

func TestRunCanceled(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r, err := Run(ctx, Options{Target: url, AuthToken: testToken, Duration: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled", err)
	}
	if r == nil || r.Accepted != 0 || len(r.Codes) != 0 {
		t.Errorf("report %v; want one with nothing accepted or failed", r)
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, target := range []string{
		"http://10.0.0.1/sms",
		"http://example.com/sms",
		"https://localhost.example.com/sms",
		"http://127.0.0.1.nip.io/sms",
		"http://[::ffff:10.0.0.1]/sms",
		"http://[fe80::1%25eth0]/sms",
		"http://0.0.0.0:8080/sms",
		"http:///sms",
	} {
		r, err := Run(t.Context(), Options{Target: target, AuthToken: testToken, Duration: time.Second})
		if !errors.Is(err, ErrNotLoopback) || r != nil {
			t.Errorf("Run(%s) = %v, %v; want nil, ErrNotLoopback", target, r, err)
		}
	}
	for _, target := range []string{"ftp://127.0.0.1/sms", "127.0.0.1:8080", "::"} {
		if _, err := Run(t.Context(), Options{Target: target, AuthToken: testToken, Duration: time.Second}); err == nil {
			t.Errorf("Run(%s) succeeded; want an error", target)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, target := range []string{
		"http://127.0.0.1:8080/sms",
		"http://127.1.2.3/sms",
		"https://[::1]:8443/sms",
		"http://LocalHost:80/sms",
		"http://[::ffff:127.0.0.1]/sms",
	} {
		if err := checkLoopback(target); err != nil {
			t.Errorf("checkLoopback(%s) = %v; want nil", target, err)
		}
	}
}

func TestDialLoopbackOnly(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:80":     true,
		"[::1]:443":        true,
		"10.0.0.1:80":      false,
		"[2001:db8::1]:80": false,
		"93.184.216.34:80": false,
	} {
		err := dialLoopbackOnly("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("dialLoopbackOnly(%s) = %v; want ok %v", addr, err, ok)
		}
		if !ok && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("dialLoopbackOnly(%s) = %v; want ErrNotLoopback", addr, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	good := Options{Target: "http://127.0.0.1:1/sms", AuthToken: testToken, Duration: time.Second}
	for name, mutate := range map[string]func(*Options){
		"no token":        func(o *Options) { o.AuthToken = "" },
		"no duration":     func(o *Options) { o.Duration = 0 },
		"long duration":   func(o *Options) { o.Duration = MaxDuration + 1 },
		"bad kind":        func(o *Options) { o.Kind = "fax" },
		"negative rate":   func(o *Options) { o.Rate = -1 },
		"negative conc":   func(o *Options) { o.Concurrency = -1 },
		"negative max":    func(o *Options) { o.MaxRequests = -1 },
		"relative signed": func(o *Options) { o.SignedURL = "/sms" },
	} {
		o := good
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate succeeded; want an error", name)
		}
	}

	o := good
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Kind != KindSMS || o.Concurrency != DefaultConcurrency || o.SignedURL != o.Target {
		t.Errorf("defaults: kind %q, concurrency %d, signed URL %q", o.Kind, o.Concurrency, o.SignedURL)
	}

	o = good
	o.Target += "#rc=1"
	o.SignedURL = "https://hooks.example.com/sms#ct=2000"
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Target != good.Target || o.SignedURL != "https://hooks.example.com/sms" {
		t.Errorf("fragments kept: target %q, signed URL %q", o.Target, o.SignedURL)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{0.5: 50, 0.95: 95, 0.99: 99, 1: 100, 0: 1} {
		if got := percentile(sorted, p); got != want {
			t.Errorf("percentile(1..100, %v) = %v; want %v", p, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v; want 0", got)
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("percentile([7], 0.99) = %v; want 7", got)
	}
}

func TestRecordBounded(t *testing.T) {
	t.Parallel()
	w := &worker{sampleCap: 10, rng: newTestRand()}
	for i := 1; i <= 1000; i++ {
		w.record(time.Duration(i))
	}
	if len(w.samples) != 10 || w.seen != 1000 || w.max != 1000 {
		t.Errorf("kept %d of %d, max %v; want 10 of 1000, max 1000", len(w.samples), w.seen, w.max)
	}
}

// TestJudge checks that a worker's verdicts, remembered from one answer to
// the next, are always CheckAnswer's.
func TestJudge(t *testing.T) {
	t.Parallel()
	answers := []struct {
		status      int
		contentType string
		body        string
	}{
		{200, "application/xml", emptyTwiML},
		{200, "application/xml", emptyTwiML},
		{200, "application/xml", "<Response>"},
		{200, "application/xml", "<Response>"},
		{200, "text/plain", emptyTwiML},
		{500, "text/plain", emptyTwiML},
		{200, "application/xml", emptyTwiML},
		{200, "application/xml", ""},
		{200, "", ""},
	}
	for _, x := range []twilio.Expectation{twilio.ExpectMessagingTwiML, twilio.ExpectVoiceTwiML} {
		w := &worker{expect: x}
		for i, a := range answers {
			w.answer.Reset()
			w.answer.WriteString(a.body)
			var want twilio.Code
			if err := twilio.CheckAnswer(x, a.status, a.contentType, []byte(a.body)); err != nil {
				want = err.Code
			}
			if got := w.judge(a.status, a.contentType); got != want {
				t.Errorf("expectation %d, answer %d (%d %q %q): code %d; want %d", x, i, a.status, a.contentType, a.body, got, want)
			}
		}
	}
}

func TestReportText(t *testing.T) {
	t.Parallel()
	ref := &Report{Sent: 1000, Accepted: 1000, Statuses: map[int]int{200: 1000}, Elapsed: time.Second, Throughput: 1000, P50: time.Millisecond, P99: 3 * time.Millisecond}
	target := &Report{
		Sent: 500, Accepted: 386,
		Codes:    map[twilio.Code]int{11200: 100, 12300: 10, 11205: 4},
		Statuses: map[int]int{200: 396, 503: 90, 429: 10},
		NoAnswer: 4, Elapsed: time.Second, Throughput: 386,
		P50: 2 * time.Millisecond, P99: 9 * time.Millisecond,
	}

	s := target.String()
	for _, want := range []string{"sent 500", "accepted 386", "Twilio errors 11200×100 11205×4 12300×10", "HTTP 200×396 429×10 503×90",
		"no answer 4", "386.0 accepted/s", "p99 9ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q; want it to contain %q", s, want)
		}
	}
	if lines := strings.Count(s, "\n") + 1; lines > 2 {
		t.Errorf("String() has %d lines; want at most 2", lines)
	}
	if s := ref.String(); !strings.Contains(s, "no Twilio errors") || strings.Contains(s, "no answer") || strings.Contains(s, "interrupted") {
		t.Errorf("String() of a clean run = %q", s)
	}
	if s := (&Report{Sent: 3, Codes: map[twilio.Code]int{11205: 3}, NoAnswer: 3}).String(); !strings.Contains(s, "HTTP none, no answer 3") ||
		!strings.Contains(s, "latency n/a") {
		t.Errorf("String() without answers = %q", s)
	}
	if got := target.Acknowledged(); got != 396 {
		t.Errorf("Acknowledged() = %d; want 396", got)
	}

	c := Compare(ref, target)
	for _, want := range []string{"1000.0 accepted/s", "386.0 accepted/s", "38.6%"} {
		if !strings.Contains(c, want) {
			t.Errorf("Compare() = %q; want it to contain %q", c, want)
		}
	}
	if c := Compare(&Report{}, target); !strings.Contains(c, "n/a") {
		t.Errorf("Compare(empty, target) = %q; want n/a", c)
	}
}
