package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The Debugger feed end to end, between the real binaries: a message
// sent through Switchboard that the simulator's carrier fails with 30007
// becomes an alert in the simulator's debugger log, which it POSTs, signed
// like Twilio and twice, to Switchboard's route of kind debugger. The
// alert is stored once, listed by the admin API under the message's SID,
// and the console's page of the message links to it.
func TestDebuggerFeed(t *testing.T) {
	forEachStore(t, testDebuggerFeed)
}

const debuggerRoute = "/twilio/debugger"

func testDebuggerFeed(t *testing.T, st store) {
	// The simulator needs Switchboard's address for its tunnel and
	// Switchboard the simulator's for its provider: a front, started
	// first, passes the simulator's webhooks on to Switchboard once it
	// listens.
	var upstream atomic.Pointer[url.URL]
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		if u := upstream.Load(); u != nil {
			r.SetURL(u)
		}
	}})
	t.Cleanup(front.Close)
	tw := startSim(t, writeDebuggerSimConfig(t, front.URL))
	// An alert on the Debugger's 30007, told to a webhook notifier.
	hook := &notificationSink{name: "webhook", secret: notifierSecret}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)

	cfgPath := writeConfig(t, config{
		storage:           st.url,
		routes:            []route{{path: "/status", mode: "static"}},
		provider:          tw.url(""),
		pools:             []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
		statusRoute:       "/status",
		dashboardInterval: time.Second,
		extra: fmt.Sprintf(`[alerting]
interval = "1s"

[[alerts]]
name = "carrier-30007"
condition = "error_code"
source = "debugger"
code = 30007
window = "5m"
threshold = 0
severity = "critical"
runbook = "twilio-debugger-errors"

[[notifiers]]
name = "ops"
type = "webhook"
url = %q
secret = %q
`, hookSrv.URL+"/alerts", notifierSecret),
	})
	// The debugger route: no target, its alerts are stored only.
	appendFile(t, cfgPath, fmt.Sprintf("\n[[routes]]\npath = %q\naccount = %q\nkind = \"debugger\"\n", debuggerRoute, accountSID))
	p := startServe(t, cfgPath)
	upstream.Store(&url.URL{Scheme: "http", Host: p.addr})

	status, created := postMessage(t, p, "debugger-1", `{"to": "+15557770042", "body": "Your code is 123456", "purpose": "otp"}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/messages = %d, want 202", status)
	}
	var sent apiMessage
	eventually(t, 30*time.Second, func() (bool, string) {
		var d struct {
			Message apiMessage `json:"message"`
		}
		adminGet(t, p, "/api/v1/messages/"+created.ID, &d)
		sent = d.Message
		return sent.TwilioSID != "", "message " + created.ID + " is " + sent.State + ", not sent yet"
	})

	// The simulator sends the Debugger webhook twice; both reach the
	// route, and one alert is stored.
	type alert struct {
		Sid         string `json:"sid"`
		ResourceSID string `json:"resource_sid"`
		ErrorCode   int    `json:"error_code"`
		EventID     string `json:"event_id"`
	}
	var alerts []alert
	eventually(t, 30*time.Second, func() (bool, string) {
		var page struct{ Items []alert }
		adminGet(t, p, "/api/v1/debugger?resource_sid="+sent.TwilioSID, &page)
		alerts = page.Items
		var reqs struct{ Items []struct{ Outcome string } }
		adminGet(t, p, "/api/v1/requests?route="+url.QueryEscape(debuggerRoute), &reqs)
		return len(alerts) == 1 && len(reqs.Items) == 2, fmt.Sprintf("%d alerts about %s and %d requests on the debugger route, want 1 and 2",
			len(alerts), sent.TwilioSID, len(reqs.Items))
	})
	a := alerts[0]
	if a.ErrorCode != 30007 || a.ResourceSID != sent.TwilioSID || a.EventID == "" || !strings.HasPrefix(a.Sid, "NO") {
		t.Errorf("alert %+v, want 30007 about %s", a, sent.TwilioSID)
	}
	var reqs struct{ Items []struct{ Outcome string } }
	adminGet(t, p, "/api/v1/requests?route="+url.QueryEscape(debuggerRoute), &reqs)
	outcomes := map[string]int{}
	for _, r := range reqs.Items {
		outcomes[r.Outcome]++
	}
	if outcomes["accepted"] != 1 || outcomes["duplicate"] != 1 {
		t.Errorf("debugger route's requests %v, want one accepted and its duplicate", outcomes)
	}
	var all struct{ Items []alert }
	adminGet(t, p, "/api/v1/debugger", &all)
	if len(all.Items) != 1 {
		t.Errorf("%d alerts stored, want 1", len(all.Items))
	}

	// The console's page of the message says what the Debugger reported,
	// linking the alert's event, whose page links back to the message.
	cookie := consoleSignIn(t, p)
	page := consolePage(t, p, "/console/messages/"+created.ID, cookie)
	if !strings.Contains(page, "Twilio's Debugger reported 1 alert") || !strings.Contains(page, `href="/console/events/`+a.EventID+`"`) {
		t.Errorf("the message's page does not link the Debugger's alert %s:\n%s", a.EventID, page)
	}
	page = consolePage(t, p, "/console/events/"+a.EventID, cookie)
	if !strings.Contains(page, `id="debugger-alert"`) || !strings.Contains(page, `href="/console/messages/`+created.ID+`"`) {
		t.Errorf("the alert's event page does not show it with its message %s:\n%s", created.ID, page)
	}

	// The alert rule on its code fires, once, signed, and the console's
	// alerts page shows it firing.
	want := map[string]string{"carrier-30007": "30007"}
	hook.waitFor(t, 2*time.Minute, want, "firing")
	hook.mu.Lock()
	got := append([]notification(nil), hook.got...)
	hook.mu.Unlock()
	if len(got) != 1 || got[0].rule != "carrier-30007" || got[0].key != "30007" || got[0].status != "firing" {
		t.Errorf("notifications %+v, want one firing of carrier-30007 for 30007", got)
	}
	if err := hook.signatureErr(); err != nil {
		t.Error(err)
	}
	// The notification is stored before the alert's state (so that a
	// crash between them repeats the transition without losing it): the
	// page may show it firing a moment after the notification arrived.
	eventually(t, 30*time.Second, func() (bool, string) {
		page = consolePage(t, p, "/console/alerts", cookie)
		return strings.Contains(page, `class="rule status-firing" data-rule="carrier-30007"`),
			"the console's alerts page does not show carrier-30007 firing:\n" + page
	})
}

// writeDebuggerSimConfig writes the simulator's configuration: the tests'
// account, sending from outboundSender, with its Debugger webhook on
// Switchboard's debugger route, every webhook going to switchboard, every
// message undelivered with 30007, and every webhook sent twice.
func writeDebuggerSimConfig(t *testing.T, switchboard string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed = 11\n\n[callbacks]\nduplicate_rate = 1\nduplicate_after = \"100ms\"\n\n[tunnels]\n%q = %q\n\n", publicURL, switchboard)
	fmt.Fprintf(&b, "[[accounts]]\nsid = %q\nauth_tokens = [%q]\ndebugger_url = %q\n\n", accountSID, authToken, publicURL+debuggerRoute)
	fmt.Fprintf(&b, "  [[accounts.numbers]]\n  number = %q\n  throughput = 100\n\n", outboundSender)
	b.WriteString("[[carriers]]\nprefix = \"\"\nlatency = { median = \"20ms\", p99 = \"20ms\" }\noutcomes = [{ status = \"undelivered\", code = 30007, rate = 1.0 }]\n")
	path := filepath.Join(t.TempDir(), "sim.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// consoleSignIn signs in to the console with the admin token, as a
// browser's form would, and returns the session cookie.
func consoleSignIn(t *testing.T, p *proc) *http.Cookie {
	t.Helper()
	resp, err := noRedirects.PostForm(p.url("/console/login"), url.Values{"token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "switchboard_session" {
			return c
		}
	}
	t.Fatalf("sign in: status %d, no session cookie", resp.StatusCode)
	return nil
}

// consolePage fetches a console page with the session cookie and returns
// it; anything but 200 fails the test.
func consolePage(t *testing.T, p *proc, path string, cookie *http.Cookie) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v\n%s", path, resp.StatusCode, err, body)
	}
	return string(body)
}
