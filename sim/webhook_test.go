package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// smsHook is a messaging webhook for acctSID.
func smsHook(u string) Webhook {
	return Webhook{
		AccountSID: acctSID, URL: u, Params: url.Values{"MessageSid": {"SM1"}, "Body": {"hi"}},
		Expect: twilio.ExpectMessagingTwiML, ResourceSID: "SM1",
	}
}

// fragmentName names a subtest after a URL fragment.
func fragmentName(f string) string {
	if f == "" {
		return "Defaults"
	}
	return f
}

// TestWebhookConnectRetries: a refused connection is tried again once by
// default, as often as #rc says, and reported as 11205.
func TestWebhookConnectRetries(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	tests := []struct {
		fragment string
		tries    int
	}{
		{"", 2},
		{"#rc=0", 1},
		{"#rc=3", 4},
		{"#rc=1&rp=4xx", 2}, // connect failures are retried under every policy
	}
	for _, tt := range tests {
		t.Run(fragmentName(tt.fragment), func(t *testing.T) {
			t.Parallel()
			s := newSim(t, testConfig())
			r, err := s.Send(withTimeout(t), smsHook("http://"+addr+"/sms"+tt.fragment))
			if err != nil {
				t.Fatal(err)
			}
			if r.Tries != tt.tries || r.Error == nil || r.Error.Code != twilio.CodeHTTPConnectionFailure || r.Status != 0 || r.Accepted() {
				t.Errorf("result %+v (error %v): want %d tries ending in 11205", r, r.Error, tt.tries)
			}
			if r.URL != "http://"+addr+"/sms" {
				t.Errorf("URL %q: want it without the fragment", r.URL)
			}
			if a := s.Alerts(acctSID); len(a) != 1 || a[0].Code() != twilio.CodeHTTPConnectionFailure {
				t.Errorf("alerts %+v, want one 11205", a)
			}
		})
	}
}

// TestWebhookRetryPolicy: #rp says which answers are tried again; retries
// keep the idempotency token.
func TestWebhookRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fragment string
		status   int // answered first; then 200
		tries    int
		accepted bool
	}{
		{"", 503, 1, false},
		{"#rp=5xx", 503, 2, true},
		{"#rp=4xx", 503, 1, false},
		{"#rp=4xx", 429, 2, true},
		{"#rp=5xx", 404, 1, false},
		{"#rp=all", 404, 2, true},
		{"#rp=5xx&rc=0", 503, 1, false},
	}
	for _, tt := range tests {
		t.Run(fragmentName(tt.fragment)+"/"+http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			a := newApp(func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 0 {
					w.WriteHeader(tt.status)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			srv := startApp(t, a)
			s := newSim(t, testConfig())
			r, err := s.Send(withTimeout(t), smsHook(srv.URL+"/sms"+tt.fragment))
			if err != nil {
				t.Fatal(err)
			}
			if r.Tries != tt.tries || r.Accepted() != tt.accepted {
				t.Errorf("%d tries, accepted %v (%v); want %d, %v", r.Tries, r.Accepted(), r.Error, tt.tries, tt.accepted)
			}
			if !tt.accepted && (r.Status != tt.status || r.Error == nil || r.Error.Code != twilio.CodeHTTPRetrievalFailure) {
				t.Errorf("status %d, error %v; want %d and 11200", r.Status, r.Error, tt.status)
			}
			reqs := a.requests()
			if len(reqs) != tt.tries {
				t.Fatalf("app got %d requests, want %d", len(reqs), tt.tries)
			}
			for _, q := range reqs {
				if q.Token() != r.IdempotencyToken || q.Signature() != reqs[0].Signature() {
					t.Errorf("try with token %s, signature %s: want every try the same as the first (%s)", q.Token(), q.Signature(), r.IdempotencyToken)
				}
			}
			if n := len(s.Alerts(acctSID)); (n == 0) != tt.accepted {
				t.Errorf("%d alerts, accepted %v", n, tt.accepted)
			}
		})
	}
}

// blockUntilDone is a handler that answers only when its request's
// context ends, so it never answers.
func blockUntilDone(w http.ResponseWriter, r *http.Request, _ int) {
	<-r.Context().Done()
}

// TestWebhookTimeouts: #rt bounds each try and #tt all of them, exactly,
// inside a bubble.
func TestWebhookTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fragment string
		tries    int
		latency  time.Duration
	}{
		{"#rt=100&tt=300", 1, 100 * time.Millisecond}, // a timeout is not retried by default
		{"#rt=100&tt=300&rp=rt", 2, 200 * time.Millisecond},
		{"#rt=100&tt=300&rp=rt&rc=5", 3, 300 * time.Millisecond}, // tt cuts the tries
		{"#rt=1000&tt=300&rp=all", 1, 300 * time.Millisecond},
		{"#tt=300&rc=5&rp=all", 1, 300 * time.Millisecond}, // rt defaults to 15 s
		{"", 1, 15 * time.Second},                          // Twilio's 15 s
	}
	for _, tt := range tests {
		t.Run(fragmentName(tt.fragment), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := newApp(blockUntilDone)
				s := callbackSim(t, testConfig(), a)
				start := time.Now()
				r, err := s.Send(t.Context(), smsHook("http://app.test/sms"+tt.fragment))
				if err != nil {
					t.Fatal(err)
				}
				if r.Tries != tt.tries || r.Latency != tt.latency || time.Since(start) != tt.latency {
					t.Errorf("%d tries in %v (%v): want %d in %v", r.Tries, r.Latency, time.Since(start), tt.tries, tt.latency)
				}
				if r.Error == nil || r.Error.Code != twilio.CodeHTTPConnectionFailure || r.Status != 0 {
					t.Errorf("error %v, status %d: want 11205 and no answer", r.Error, r.Status)
				}
				if n := len(a.requests()); n != tt.tries {
					t.Errorf("app got %d requests, want %d", n, tt.tries)
				}
			})
		})
	}
}

// TestWebhookTimeoutsOverNetwork: the same limits against a real server
// whose handler never answers.
func TestWebhookTimeoutsOverNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fragment           string
		minTries, maxTries int
	}{
		{"#rt=100&tt=300", 1, 1},
		{"#rt=100&tt=300&rp=rt&rc=5", 1, 3}, // without tt there would be 6
	}
	for _, tt := range tests {
		t.Run(tt.fragment, func(t *testing.T) {
			t.Parallel()
			a := newApp(blockUntilDone)
			srv := startApp(t, a)
			s := newSim(t, testConfig())
			r, err := s.Send(withTimeout(t), smsHook(srv.URL+"/sms"+tt.fragment))
			if err != nil {
				t.Fatal(err)
			}
			if r.Tries < tt.minTries || r.Tries > tt.maxTries || r.Error == nil || r.Error.Code != twilio.CodeHTTPConnectionFailure {
				t.Errorf("%d tries, error %v; want %d–%d tries ending in 11205", r.Tries, r.Error, tt.minTries, tt.maxTries)
			}
			if !strings.Contains(r.Error.Reason, "#rt override") || !strings.Contains(r.Error.Reason, "#tt override") {
				t.Errorf("reason %q: want it to name the overrides", r.Error.Reason)
			}
		})
	}
}

// TestFallback: when the URL fails, the fallback URL gets the same
// parameters plus ErrorCode and ErrorUrl, and its answer is the one used.
func TestFallback(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	a := newApp(func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/fallback":
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte("<Response><Message>from the fallback</Message></Response>"))
		case "/fallback-voice":
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write([]byte("<Response><Say>fallback</Say></Response>"))
		case "/fallback-broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	srv := startApp(t, a)
	tests := []struct {
		name, url, fallback string
		errorCode           string
		accepted            bool
		alerts              []twilio.Code
	}{
		{"Status500", srv.URL + "/sms", srv.URL + "/fallback", "11200", true, []twilio.Code{11200}},
		{"Refused", "http://" + addr + "/sms#rc=0", srv.URL + "/fallback", "11205", true, []twilio.Code{11205}},
		{"FallbackFails", srv.URL + "/sms", srv.URL + "/fallback-broken", "11200", false, []twilio.Code{11200, 11200}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			n := numberOf(t, &cfg, []string{longCode, tollFree, shortCode}[i])
			n.SMSURL, n.SMSFallbackURL, n.SMSFallbackMethod = tt.url, tt.fallback, "POST"
			s := newSim(t, cfg)
			res, err := s.ReceiveMessage(withTimeout(t), InboundMessage{From: handset, To: n.Number, Body: "help me"})
			if err != nil {
				t.Fatal(err)
			}
			wh := res.Webhook
			if wh.Error == nil || wh.Fallback == nil || wh.Accepted() != tt.accepted || wh.Final() != wh.Fallback {
				t.Fatalf("result %+v: want a failure, then the fallback (accepted %v)", wh, tt.accepted)
			}
			fallbackPath, _ := url.Parse(tt.fallback)
			r := lastTo(t, a, fallbackPath.Path)
			if r.Form.Get("ErrorCode") != tt.errorCode || r.Form.Get("ErrorUrl") != wh.URL || r.Form.Get("Body") != "help me" || r.Form.Get("MessageSid") != res.SID {
				t.Errorf("fallback form %v: want the message's parameters, ErrorCode %s and ErrorUrl %s", r.Form, tt.errorCode, wh.URL)
			}
			if strings.Contains(r.Form.Get("ErrorUrl"), "#") {
				t.Errorf("ErrorUrl %q has the fragment", r.Form.Get("ErrorUrl"))
			}
			var codes []twilio.Code
			for _, al := range s.Alerts(acctSID) {
				codes = append(codes, al.Code())
			}
			if len(codes) != len(tt.alerts) || codes[0] != tt.alerts[0] || codes[len(codes)-1] != tt.alerts[len(tt.alerts)-1] {
				t.Errorf("alerts %v, want %v", codes, tt.alerts)
			}
			// The fallback's <Message> is the reply.
			if tt.accepted {
				if len(res.Replies) != 1 {
					t.Fatalf("replies %v, want the fallback's", res.Replies)
				}
				if m, _ := s.Message(res.Replies[0]); m.Body != "from the fallback" {
					t.Errorf("reply %q, want the fallback's", m.Body)
				}
			} else if len(res.Replies) != 0 {
				t.Errorf("replies %v, want none", res.Replies)
			}
		})
	}

	t.Run("Voice", func(t *testing.T) {
		cfg := testConfig()
		n := numberOf(t, &cfg, longCode)
		n.VoiceURL, n.VoiceFallbackURL, n.VoiceFallbackMethod = srv.URL+"/voice", srv.URL+"/fallback-voice", "GET"
		s := newSim(t, cfg)
		res, err := s.ReceiveCall(withTimeout(t), InboundCall{From: handset, To: longCode})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Webhook.Accepted() || res.Webhook.Fallback == nil || res.Webhook.Fallback.Method != http.MethodGet {
			t.Errorf("result %+v: want the fallback, by GET, accepted", res.Webhook)
		}
		r := lastTo(t, a, "/fallback-voice")
		if r.Method != http.MethodGet || r.Form.Get("ErrorCode") != "11200" || r.Form.Get("CallSid") != res.SID {
			t.Errorf("fallback %s %s: want a GET with ErrorCode 11200 and the call's parameters", r.Method, r.URL)
		}
	})
}

// TestAnswerAlerts: answers Twilio does not accept are in the debugger
// log with its codes, and readable through the Monitor API.
func TestAnswerAlerts(t *testing.T) {
	t.Parallel()
	big := "<Response><Message>" + strings.Repeat("x", twilio.MaxTwiMLBytes) + "</Message></Response>"
	a := newApp(func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "server error", http.StatusInternalServerError)
		case "/no-content-type":
			w.Header()["Content-Type"] = nil // no sniffing either
			_, _ = w.Write([]byte("<Response/>"))
		case "/plain":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("<Response/>"))
		case "/malformed":
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write([]byte("<Response><Message>hi</Response>"))
		case "/too-large":
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte(big))
		case "/good":
			w.Header().Set("Content-Type", "text/html; charset=utf-8") // tolerated
			_, _ = w.Write([]byte("<Response/>"))
		case "/notify-404":
			w.WriteHeader(http.StatusNotFound)
		case "/notify-500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			<-r.Context().Done()
		}
	})
	srv := startApp(t, a)
	refused := "http://" + closedPort(t)
	s := newSim(t, testConfig())
	ctx := withTimeout(t)

	tests := []struct {
		name   string
		send   func() (*WebhookResult, error)
		code   twilio.Code // 0: accepted
		status int
	}{
		{"Status500", sendTo(ctx, s, srv.URL+"/500", twilio.ExpectMessagingTwiML), 11200, 500},
		{"NoContentType", sendTo(ctx, s, srv.URL+"/no-content-type", twilio.ExpectMessagingTwiML), 12300, 200},
		{"NotXML", sendTo(ctx, s, srv.URL+"/plain", twilio.ExpectVoiceTwiML), 12300, 200},
		{"Malformed", sendTo(ctx, s, srv.URL+"/malformed", twilio.ExpectMessagingTwiML), 12100, 200},
		{"TooLarge", sendTo(ctx, s, srv.URL+"/too-large", twilio.ExpectMessagingTwiML), 11750, 200},
		{"Timeout", sendTo(ctx, s, srv.URL+"/slow#rt=100&tt=100", twilio.ExpectMessagingTwiML), 11205, 0},
		{"Refused", sendTo(ctx, s, refused+"/sms#rc=0", twilio.ExpectMessagingTwiML), 11205, 0},
		{"Good", sendTo(ctx, s, srv.URL+"/good", twilio.ExpectVoiceTwiML), 0, 200},
		{"StatusCallbackIgnoresBody", sendTo(ctx, s, srv.URL+"/malformed", twilio.ExpectStatus), 0, 200},
		{"ClientNotification500", notify(ctx, s, srv.URL+"/notify-500"), 13807, 500},
		{"ClientNotification404", notify(ctx, s, srv.URL+"/notify-404"), 0, 404},
	}
	want := map[string]twilio.Code{} // request URL → code
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.send()
			if err != nil {
				t.Fatal(err)
			}
			code := twilio.Code(0)
			if r.Error != nil {
				code = r.Error.Code
			}
			if code != tt.code || r.Status != tt.status {
				t.Errorf("code %d (%v), status %d; want %d, %d", code, r.Error, r.Status, tt.code, tt.status)
			}
			if tt.code != 0 {
				want[r.URL] = tt.code
			}
		})
	}

	// The same alerts through the Monitor API, newest first.
	rec := serve(s.Handler(), apiRequest(http.MethodGet, "/v1/Alerts", acctSID, acctToken, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/Alerts: %d %s", rec.Code, rec.Body)
	}
	var page struct {
		Alerts []struct {
			SID          string `json:"sid"`
			AccountSID   string `json:"account_sid"`
			ErrorCode    string `json:"error_code"`
			RequestURL   string `json:"request_url"`
			ResourceSID  string `json:"resource_sid"`
			DateCreated  string `json:"date_created"`
			ResponseBody string `json:"response_body"`
		} `json:"alerts"`
		Meta struct {
			Key string `json:"key"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	got := map[string]twilio.Code{}
	for _, al := range page.Alerts {
		code, _ := strconv.Atoi(al.ErrorCode)
		got[al.RequestURL] = twilio.Code(code)
		if !alertSIDPattern.MatchString(al.SID) || al.AccountSID != acctSID || al.ResourceSID == "" {
			t.Errorf("alert %+v: want an NO… SID, the account and the resource", al)
		}
		if _, err := time.Parse(time.RFC3339, al.DateCreated); err != nil {
			t.Errorf("alert date_created %q: %v", al.DateCreated, err)
		}
	}
	if page.Meta.Key != "alerts" || len(page.Alerts) != len(want) {
		t.Errorf("%d alerts (key %q), want %d", len(page.Alerts), page.Meta.Key, len(want))
	}
	for u, code := range want {
		if got[u] != code {
			t.Errorf("alert for %s: %d, want %d", u, got[u], code)
		}
	}
	// One by SID, and none for another account.
	if len(page.Alerts) > 0 {
		sid := page.Alerts[0].SID
		if rec := serve(s.Handler(), apiRequest(http.MethodGet, "/v1/Alerts/"+sid, acctSID, acctToken, nil)); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), sid) {
			t.Errorf("GET /v1/Alerts/%s: %d %s", sid, rec.Code, rec.Body)
		}
		if rec := serve(s.Handler(), apiRequest(http.MethodGet, "/v1/Alerts/"+sid, otherSID, otherTok, nil)); rec.Code != http.StatusNotFound {
			t.Errorf("another account's GET /v1/Alerts/%s: %d, want 404", sid, rec.Code)
		}
	}
	if rec := serve(s.Handler(), apiRequest(http.MethodGet, "/v1/Alerts", "", "", nil)); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /v1/Alerts without auth: %d, want 401", rec.Code)
	}
}

func sendTo(ctx context.Context, s *Sim, u string, x twilio.Expectation) func() (*WebhookResult, error) {
	return func() (*WebhookResult, error) {
		wh := smsHook(u)
		wh.Expect = x
		return s.Send(ctx, wh)
	}
}

func notify(ctx context.Context, s *Sim, u string) func() (*WebhookResult, error) {
	return func() (*WebhookResult, error) {
		res, err := s.NotifyClient(ctx, ClientNotification{AccountSID: acctSID, URL: u, From: handset, To: "client:bob"})
		if err != nil {
			return nil, err
		}
		return res.Webhook, nil
	}
}

func TestTunnelLongestPrefix(t *testing.T) {
	t.Parallel()
	c := newWebhookClient(nil, map[string]string{
		"https://hooks.example.com":      "http://127.0.0.1:1000",
		"https://hooks.example.com/sms/": "http://127.0.0.1:2000/app",
		"https://other.example.com":      "http://127.0.0.1:3000",
	}, "us1")
	for _, tt := range []struct{ public, want string }{
		{"https://hooks.example.com/voice?x=1", "http://127.0.0.1:1000/voice?x=1"},
		{"https://hooks.example.com/sms", "http://127.0.0.1:2000/app"},
		{"https://hooks.example.com/sms?a=b", "http://127.0.0.1:2000/app?a=b"},
		{"https://hooks.example.com/smsx", "http://127.0.0.1:1000/smsx"},
		{"https://hooks.example.comx/sms", "https://hooks.example.comx/sms"},
		{"https://elsewhere.example.com/sms", "https://elsewhere.example.com/sms"},
	} {
		for range 20 { // map order varies between iterations
			if got := c.tunnel(tt.public); got != tt.want {
				t.Fatalf("tunnel(%q) = %q, want %q", tt.public, got, tt.want)
			}
		}
	}
}
