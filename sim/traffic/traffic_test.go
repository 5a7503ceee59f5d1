package load

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

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

func checkOrdered(t *testing.T, r *Report) {
	t.Helper()
	if !(r.P50 <= r.P95 && r.P95 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: p50 %v p95 %v p99 %v max %v", r.P50, r.P95, r.P99, r.Max)
	}
}

func TestRunReference(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	r, err := Run(t.Context(), Options{Target: url + "/sms", AuthToken: testToken, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Sent == 0 || r.OK != r.Sent {
		t.Errorf("sent %d, ok %d; want ok == sent > 0", r.Sent, r.OK)
	}
	if r.Errors != 0 || len(r.Non2xx) != 0 {
		t.Errorf("errors %d, non-2xx %v; want none", r.Errors, r.Non2xx)
	}
	if r.Max <= 0 || r.Throughput <= 0 {
		t.Errorf("max %v, throughput %v; want both positive", r.Max, r.Throughput)
	}
	checkOrdered(t, r)
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

// twilioChecker is a webhook endpoint that checks requests the way
// Switchboard does and answers 403 to any it would reject.
type twilioChecker struct {
	signedURL string

	mu       sync.Mutex
	failures []string
	sids     map[string][]string // MessageSid: statuses, or "" for inbound messages
	tokens   map[string]bool
	nonASCII int
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
	w.WriteHeader(http.StatusNoContent)
}

func (c *twilioChecker) check(r *http.Request, body []byte) error {
	ct := r.Header.Get("Content-Type")
	if err := twilio.ValidateRequest([]string{testToken}, c.signedURL, ct, body, r.Header.Get("X-Twilio-Signature")); err != nil {
		return err
	}
	for name, want := range map[string]string{
		"Content-Type":  "application/x-www-form-urlencoded",
		"User-Agent":    "TwilioProxy/1.1",
		"X-Home-Region": "us1",
	} {
		if got := r.Header.Get(name); got != want {
			return errors.New(name + ": " + got)
		}
	}
	if r.Method != http.MethodPost {
		return errors.New("method " + r.Method)
	}
	token := r.Header.Get("I-Twilio-Idempotency-Token")
	if _, err := uuid.Parse(token); err != nil {
		return errors.New("idempotency token: " + err.Error())
	}
	form, err := twilio.ParseForm(body)
	if err != nil {
		return err
	}
	sid := form.Get("MessageSid")
	if len(sid) != 34 || !strings.HasPrefix(sid, "SM") || form.Get("SmsSid") != sid {
		return errors.New("bad MessageSid/SmsSid " + sid)
	}
	if !strings.HasPrefix(form.Get("AccountSid"), "AC") || form.Get("ApiVersion") != "2010-04-01" {
		return errors.New("bad AccountSid or ApiVersion")
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens[token] {
		return errors.New("idempotency token reused: " + token)
	}
	c.tokens[token] = true
	c.sids[sid] = append(c.sids[sid], form.Get("MessageStatus"))
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

func TestRunSigned(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindSMS, KindStatus} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := &twilioChecker{
				signedURL: "https://hooks.example.com/sms?tenant=a%27b",
				sids:      make(map[string][]string),
				tokens:    make(map[string]bool),
			}
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)

			const n = 300
			r, err := Run(t.Context(), Options{
				Target:      srv.URL + "/sms",
				SignedURL:   c.signedURL,
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
			if len(c.failures) > 0 {
				t.Errorf("%d requests rejected, first: %s", len(c.failures), c.failures[0])
			}
			if r.Sent != n || r.OK != n || len(r.Non2xx) != 0 || r.Errors != 0 {
				t.Fatalf("report %v; want %d sent, all ok", r, n)
			}
			if len(c.tokens) != n {
				t.Errorf("%d distinct idempotency tokens; want %d", len(c.tokens), n)
			}
			switch kind {
			case KindSMS:
				if len(c.sids) != n {
					t.Errorf("%d distinct MessageSids; want %d", len(c.sids), n)
				}
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

func TestRunRate(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	r, err := Run(t.Context(), Options{Target: url + "/sms", AuthToken: testToken, Rate: 200, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Sent < 150 || r.Sent > 250 {
		t.Errorf("sent %d at 200/s for 1s; want about 200", r.Sent)
	}
	if r.Errors != 0 || r.OK != r.Sent {
		t.Errorf("report %v; want every request ok", r)
	}
	checkOrdered(t, r)
}

func TestRunMaxRequests(t *testing.T) {
	t.Parallel()
	url := startReference(t)

	for _, rate := range []float64{0, 1000} {
		r, err := Run(t.Context(), Options{Target: url, AuthToken: testToken, Rate: rate, Duration: time.Minute, MaxRequests: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 10 || r.OK != 10 {
			t.Errorf("rate %v: report %v; want 10 sent and ok", rate, r)
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
	if r == nil || r.OK != 0 {
		t.Errorf("report %v; want one with nothing ok", r)
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
		"bad kind":        func(o *Options) { o.Kind = "voice" },
		"negative rate":   func(o *Options) { o.Rate = -1 },
		"negative conc":   func(o *Options) { o.Concurrency = -1 },
		"negative max":    func(o *Options) { o.MaxRequests = -1 },
		"relative signed": func(o *Options) { o.SignedURL = "/sms" },
	} {
		o := good
		mutate(&o)
		if err := o.validate(); err == nil {
			t.Errorf("%s: validate succeeded; want an error", name)
		}
	}

	o := good
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.Kind != KindSMS || o.Concurrency != DefaultConcurrency || o.SignedURL != o.Target {
		t.Errorf("defaults: kind %q, concurrency %d, signed URL %q", o.Kind, o.Concurrency, o.SignedURL)
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

func TestReportText(t *testing.T) {
	t.Parallel()
	ref := &Report{Sent: 1000, OK: 1000, Non2xx: map[int]int{}, Elapsed: time.Second, Throughput: 1000, P50: time.Millisecond, P99: 3 * time.Millisecond}
	target := &Report{Sent: 500, OK: 400, Non2xx: map[int]int{503: 90, 429: 10}, Elapsed: time.Second, Throughput: 400, P50: 2 * time.Millisecond, P99: 9 * time.Millisecond}

	s := target.String()
	for _, want := range []string{"sent 500", "ok 400", "429×10 503×90", "400.0 ok/s", "p99 9ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q; want it to contain %q", s, want)
		}
	}
	c := Compare(ref, target)
	for _, want := range []string{"1000.0 ok/s", "400.0 ok/s", "40.0%"} {
		if !strings.Contains(c, want) {
			t.Errorf("Compare() = %q; want it to contain %q", c, want)
		}
	}
	if c := Compare(&Report{}, target); !strings.Contains(c, "n/a") {
		t.Errorf("Compare(empty, target) = %q; want n/a", c)
	}
}
