package sim

import (
	"encoding/json"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

const debuggerURL = "https://hooks.example.com/twilio/debugger"

// debuggerRequests are the app's requests to the Debugger webhook's path.
func debuggerRequests(a *app) []request {
	var out []request
	for _, r := range a.requests() {
		if r.URL == "http://hooks.example.com/twilio/debugger" {
			out = append(out, r)
		}
	}
	return out
}

// checkDebuggerRequest checks that r is a Debugger webhook Twilio would
// send for account's token, and returns its alert as Switchboard reads it.
func checkDebuggerRequest(t *testing.T, r request) map[string]any {
	t.Helper()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("debugger webhook %s %s", r.Method, r.Header.Get("Content-Type"))
	}
	if err := twilio.ValidateRequest([]string{acctToken}, debuggerURL, r.Header.Get("Content-Type"), r.Body, r.Signature()); err != nil {
		t.Fatalf("debugger webhook not signed with the account's token: %v", err)
	}
	if _, err := twilio.ParseDebugger(r.Form, acctSID); err != nil {
		t.Fatalf("Switchboard refuses the debugger webhook: %v", err)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(r.Form.Get("Payload")), &payload); err != nil {
		t.Fatal(err)
	}
	return payload
}

// A message the carrier fails with 30007 is an alert about it, sent to
// the Debugger webhook, twice at duplicate_rate 1, with one Sid.
func TestDebuggerWebhookOfCarrierFailure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newApp(nil)
		cfg := testConfig()
		cfg.Transport = handlerTransport{a}
		cfg.Accounts[0].DebuggerURL = debuggerURL
		cfg.Carriers = []Carrier{{Outcomes: []Outcome{{Status: StatusUndelivered, Code: 30007, Rate: 1}}}}
		cfg.Callbacks.DuplicateRate = 1
		s := newSim(t, cfg)
		m, err := s.CreateMessage(acctSID, SendParams{From: fastNumber, To: "+15550009999", Body: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()

		alerts := s.Alerts(acctSID)
		if len(alerts) != 1 || alerts[0].ErrorCode != "30007" || alerts[0].ResourceSID != m.SID {
			t.Fatalf("debugger log %+v, want one 30007 about %s", alerts, m.SID)
		}
		reqs := debuggerRequests(a)
		if len(reqs) != 2 {
			t.Fatalf("%d debugger webhooks, want 2 (duplicate_rate 1)", len(reqs))
		}
		for _, r := range reqs {
			p := checkDebuggerRequest(t, r)
			if r.Form.Get("Sid") != alerts[0].SID || r.Form.Get("AccountSid") != acctSID || r.Form.Get("Level") != "Error" ||
				r.Form.Get("PayloadType") != "application/json" || r.Form.Get("Timestamp") == "" {
				t.Errorf("form %v", r.Form)
			}
			if p["resource_sid"] != m.SID || p["error_code"] != "30007" || p["webhook"] != nil {
				t.Errorf("payload %v", p)
			}
		}
	})
}

// A failed webhook's alert carries the request Twilio made and what it
// got; a Debugger webhook that fails is tried again, and never becomes
// an alert itself.
func TestDebuggerWebhookOfFailedWebhookIsRetried(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newApp(func(w http.ResponseWriter, r *http.Request, n int) {
			switch {
			case r.URL.Path == "/twilio/debugger" && n == 0:
				w.WriteHeader(http.StatusServiceUnavailable)
			case r.URL.Path == "/twilio/debugger":
				w.WriteHeader(http.StatusOK)
			default:
				http.Error(w, "no such user", http.StatusBadGateway)
			}
		})
		cfg := testConfig()
		cfg.Transport = handlerTransport{a}
		cfg.Accounts[0].DebuggerURL = debuggerURL
		s := newSim(t, cfg)
		if _, err := s.Send(t.Context(), Webhook{AccountSID: acctSID, URL: "https://app.example.com/status", Params: map[string][]string{"MessageSid": {"SM1"}},
			Expect: twilio.ExpectStatus, ResourceSID: "SM0123456789abcdef0123456789abcdef"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()

		if alerts := s.Alerts(acctSID); len(alerts) != 1 || alerts[0].ErrorCode != "11200" {
			t.Fatalf("debugger log %+v, want one 11200 (the Debugger webhook's own failure is no alert)", alerts)
		}
		reqs := debuggerRequests(a)
		if len(reqs) != 2 || reqs[0].Form.Get("Sid") != reqs[1].Form.Get("Sid") {
			t.Fatalf("%d debugger webhooks, want the alert tried twice", len(reqs))
		}
		p := checkDebuggerRequest(t, reqs[1])
		wh, _ := p["webhook"].(map[string]any)
		req, _ := wh["request"].(map[string]any)
		resp, _ := wh["response"].(map[string]any)
		if req["url"] != "https://app.example.com/status" || req["method"] != "POST" || resp["status_code"] != "502" ||
			resp["body"] != "no such user\n" || p["resource_sid"] != "SM0123456789abcdef0123456789abcdef" {
			t.Errorf("payload %v", p)
		}
		al, err := twilio.ParseDebugger(reqs[1].Form, acctSID)
		if err != nil || al.Status != 502 || al.ErrorCode != 11200 || al.URL != "https://app.example.com/status" {
			t.Errorf("as Switchboard reads it: %+v, %v", al, err)
		}
	})
}

func TestDebuggerURLMustBeHTTP(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Accounts[0].DebuggerURL = "ftp://x"
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("a debugger_url that is not http(s) was accepted")
	}
}
