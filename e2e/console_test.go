package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-dev/switchboard"
)

// The console in a real browser, against the real binary, with the
// simulator as Twilio: sign in, watch an event arrive live, find it by
// SID, read it, replay it, look at messages and the dashboard, sign out.
// Screenshots of each page go to the folder the test logs.
func TestConsoleInABrowser(t *testing.T) {
	forEachStore(t, testConsoleInABrowser)
}

const consoleBody = "console check ✓ hello"

func testConsoleInABrowser(t *testing.T, st store) {
	a := startApp(t)
	_, provider := startProvider(t)
	cfg := writeConfig(t, config{
		storage:     st.url,
		routes:      []route{{path: "/sms", target: a.url("/app/sms")}, {path: "/status", mode: "static"}},
		provider:    provider.URL,
		pools:       []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
		statusRoute: "/status",
		// The dashboard catches up every second, so that this webhook
		// shows there without a minute's wait.
		dashboardInterval: time.Second,
	})
	p := startServe(t, cfg)
	tw := startSim(t, writeSimConfig(t, p.addr))

	checkNoAccessWithoutSession(t, p)

	b := startBrowser(t, screenshotDir(t, st.name))
	b.run(t, "open the console",
		chromedp.Navigate(p.url("/console/")),
		chromedp.WaitVisible(chromedp.ID("signin-token")))
	b.screenshot(t, "1-signin")
	b.run(t, "sign in with a wrong token",
		chromedp.SendKeys(chromedp.ID("signin-token"), "not-the-token"),
		chromedp.Submit(chromedp.ID("signin-token")),
		chromedp.WaitVisible(chromedp.ID("signin-error")))
	signIn(t, b, p)

	// A webhook the simulator sends appears without a reload: a marker
	// set on the page now is still there when the row is.
	b.run(t, "mark the page", void(chromedp.Evaluate[bool](`window.__stillHere = true`)))
	sid := simInbound(t, tw, consoleBody).SID
	b.run(t, "see the new event appear live",
		void(chromedp.Poll[bool](fmt.Sprintf(`document.querySelector('#events-table').innerText.includes(%q) && window.__stillHere === true`, sid),
			chromedp.WithPollingTimeout(20*time.Second))))
	b.screenshot(t, "2-inspector")

	// Search by SID: the filter is in the URL, and only that event is left.
	b.run(t, "search by SID",
		chromedp.SetValue(chromedp.ID("search"), sid),
		chromedp.Submit(chromedp.ID("search")))
	eventually(t, 10*time.Second, func() (bool, string) {
		at := get(t, b, "read the address", chromedp.Location())
		return strings.Contains(at, "q="+sid), "the address " + at + " does not carry the search"
	})
	b.run(t, "see the results", chromedp.WaitVisible(chromedp.ID("events-table")))
	rows := get(t, b, "count the rows found", chromedp.Evaluate[int](`document.querySelectorAll('#events-table tbody tr[data-event-id]').length`))
	if rows != 1 {
		t.Fatalf("searching %s shows %d events, want 1", sid, rows)
	}

	// Open it: the body as received, and its delivery attempt.
	a.waitForSIDs(t, 30*time.Second, []string{sid})
	b.run(t, "open the event",
		chromedp.Click(chromedp.CSS("#events-table tbody tr[data-event-id] a")),
		chromedp.WaitVisible(chromedp.ID("event-body")))
	eventURL := get(t, b, "read the event's address", chromedp.Location())
	if text := b.visibleText(t); !strings.Contains(text, consoleBody) || !strings.Contains(text, sid) {
		t.Fatalf("the event page does not show the body %q and SID %s:\n%s", consoleBody, sid, truncate(text, 3000))
	}
	waitForAttempts(t, b, eventURL, 1)
	b.screenshot(t, "3-event")

	// Replay it: a new attempt, and the app gets it again.
	b.run(t, "replay the event",
		chromedp.Click(chromedp.ID("replay-button")),
		chromedp.WaitVisible(chromedp.ID("event-body")))
	waitForAttempts(t, b, eventURL, 2)
	a.waitFor(t, 30*time.Second, "the replayed delivery", func() bool { return a.okBySID[sid] >= 2 },
		func() string { return fmt.Sprintf("the app took %s %d times", sid, a.okBySID[sid]) })

	// An action without the CSRF token, or from another site, is refused.
	checkCSRF(t, b, p, eventURL)

	// Requests, messages and the dashboard.
	b.run(t, "open the requests", chromedp.Navigate(p.url("/console/requests")), chromedp.WaitVisible(chromedp.ID("requests-table")))
	b.screenshot(t, "4-requests")
	status, msg := postMessage(t, p, "console-1", `{"to": "+15557770001", "body": "Your code is 424242", "purpose": "otp"}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/messages = %d", status)
	}
	b.run(t, "see the message listed",
		chromedp.Navigate(p.url("/console/messages")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#messages-table tr[data-message-id=%q]`, msg.ID))))
	b.screenshot(t, "5-messages")
	b.run(t, "open the message",
		chromedp.Navigate(p.url("/console/messages/"+msg.ID)),
		chromedp.WaitVisible(chromedp.ID("timeline")))
	b.screenshot(t, "6-message")

	// The dashboard reads the store's per-minute rollups: reload until
	// the webhook above is counted and the charts are drawn.
	eventually(t, 90*time.Second, func() (bool, string) {
		b.run(t, "open the dashboard",
			chromedp.Navigate(p.url("/console/dashboard?range=1h")),
			chromedp.WaitVisible(chromedp.ID("dashboard")))
		drawn := get(t, b, "read the dashboard", chromedp.Evaluate[[]float64](`(() => {
			const d = JSON.parse(document.getElementById('dashboard-data').textContent);
			const sum = s => (s || []).reduce((a, b) => a + (b || 0), 0);
			const attempts = (d.routes || []).reduce((a, r) => a + r.total_attempts, 0);
			return [document.querySelectorAll('#dashboard canvas').length, sum(d.accepted), attempts];
		})()`))
		return drawn[0] >= 4 && drawn[1] > 0 && drawn[2] >= 2,
			fmt.Sprintf("dashboard: %v canvases, %v webhooks/s summed, %v attempts; want charts with the webhook and its two attempts", drawn[0], drawn[1], drawn[2])
	})
	b.screenshot(t, "7-dashboard")

	// The alerts (the default rules, listed) and the Debugger feed's page
	// render under the console's policy.
	b.run(t, "open the alerts", chromedp.Navigate(p.url("/console/alerts")), chromedp.WaitVisible(chromedp.ID("alerts-table")))
	if rules := get(t, b, "count the rules", chromedp.Evaluate[int](`document.querySelectorAll('#alerts-table tbody tr').length`)); rules < len(switchboard.DefaultAlertRules()) {
		t.Errorf("the alerts page lists %d rows, want at least the %d default rules", rules, len(switchboard.DefaultAlertRules()))
	}
	b.screenshot(t, "8-alerts")
	b.run(t, "open the Debugger feed", chromedp.Navigate(p.url("/console/debugger")), chromedp.WaitVisible(chromedp.ID("debugger-table")))
	b.screenshot(t, "9-debugger")

	// Sign out: back at the sign-in form, and the old cookie is worth
	// nothing.
	cookie := sessionCookie(t, b)
	b.run(t, "sign out",
		chromedp.Navigate(p.url("/console/")),
		chromedp.WaitVisible(chromedp.ID("signout-button")),
		chromedp.Click(chromedp.ID("signout-button")),
		chromedp.WaitVisible(chromedp.ID("signin-token")))
	if status := consoleGet(t, p, "/console/events", cookie); status != http.StatusSeeOther && status != http.StatusFound {
		t.Errorf("after signing out, the old session's cookie gets %d, want a redirect to sign in", status)
	}
}

// The console with admin.redact: phone numbers and message text are
// nowhere on its pages.
func TestConsoleRedacts(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store) {
		a := startApp(t)
		p := startServe(t, writeConfig(t, config{storage: st.url, redact: true,
			routes: []route{{path: "/sms", target: a.url("/app/sms")}}}))
		tw := startSim(t, writeSimConfig(t, p.addr))
		sid := simInbound(t, tw, consoleBody).SID
		a.waitForSIDs(t, 30*time.Second, []string{sid})

		b := startBrowser(t, screenshotDir(t, st.name+"-redacted"))
		b.run(t, "open the console", chromedp.Navigate(p.url("/console/")), chromedp.WaitVisible(chromedp.ID("signin-token")))
		signIn(t, b, p)
		b.run(t, "open the event",
			chromedp.WaitVisible(chromedp.CSS("#events-table tbody tr[data-event-id] a")),
			chromedp.Click(chromedp.CSS("#events-table tbody tr[data-event-id] a")),
			chromedp.WaitVisible(chromedp.ID("event-body")))
		b.screenshot(t, "event-redacted")
		html := get(t, b, "read the page", chromedp.OuterHTML(chromedp.CSS("html")))
		for _, secret := range []string{"4155550100", "4155550199", "hello", url.QueryEscape(consoleBody)} {
			if strings.Contains(html, secret) {
				t.Errorf("the redacted event page shows %q", secret)
			}
		}
		if !strings.Contains(html, sid) {
			t.Errorf("the redacted event page does not show the SID %s (SIDs are not personal data)", sid)
		}
	})
}

func signIn(t *testing.T, b *browser, p *proc) {
	t.Helper()
	b.run(t, "sign in",
		chromedp.Navigate(p.url("/console/login")),
		chromedp.WaitVisible(chromedp.ID("signin-token")),
		chromedp.SetValue(chromedp.ID("signin-token"), adminToken),
		chromedp.Submit(chromedp.ID("signin-token")),
		chromedp.WaitVisible(chromedp.ID("events-table")))
}

// waitForAttempts reloads the event page until it lists n attempts.
func waitForAttempts(t *testing.T, b *browser, eventURL string, n int) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		b.run(t, "open the event", chromedp.Navigate(eventURL), chromedp.WaitVisible(chromedp.ID("event-body")))
		got := get(t, b, "count the attempts", chromedp.Evaluate[int](`document.querySelectorAll('#attempts tbody tr[data-attempt]').length`))
		return got >= n, fmt.Sprintf("the event page lists %d attempts, want %d", got, n)
	})
}

// sessionCookie is the browser's console session cookie.
func sessionCookie(t *testing.T, b *browser) *http.Cookie {
	t.Helper()
	res := get(t, b, "read the cookies", func(ctx context.Context, _ *chromedp.Target) (network.GetCookiesResult, error) {
		return chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	})
	cookies := res.Cookies
	for _, c := range cookies {
		if c.Name == "switchboard_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie HttpOnly=%v SameSite=%v, want HttpOnly and Strict", c.HTTPOnly, c.SameSite)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatalf("no session cookie among %d", len(cookies))
	return nil
}

// consoleGet fetches path with cookie (nil for none), without following
// redirects, and returns the status.
func consoleGet(t *testing.T, p *proc, path string, cookie *http.Cookie) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// checkNoAccessWithoutSession: pages send to the sign-in form, data and
// streams answer 401, and the admin token as a bearer is not a session.
func checkNoAccessWithoutSession(t *testing.T, p *proc) {
	t.Helper()
	for _, path := range []string{"/console/", "/console/events", "/console/requests", "/console/messages", "/console/dashboard",
		"/console/alerts", "/console/alerts/circuit-open", "/console/debugger"} {
		if status := consoleGet(t, p, path, nil); status != http.StatusSeeOther && status != http.StatusFound {
			t.Errorf("GET %s without a session = %d, want a redirect to sign in", path, status)
		}
	}
	for _, path := range []string{"/console/dashboard.json", "/console/events/stream"} {
		if status := consoleGet(t, p, path, nil); status != http.StatusUnauthorized {
			t.Errorf("GET %s without a session = %d, want 401", path, status)
		}
	}
	if status := consoleGet(t, p, "/console/events", &http.Cookie{Name: "switchboard_session", Value: adminToken}); status != http.StatusSeeOther && status != http.StatusFound {
		t.Errorf("the admin token as a session cookie = %d, want a redirect to sign in", status)
	}
}

// checkCSRF posts the replay action with the browser's session but
// without the page's token, and with it from another site: both refused.
func checkCSRF(t *testing.T, b *browser, p *proc, eventURL string) {
	t.Helper()
	cookie := sessionCookie(t, b)
	token := get(t, b, "read the CSRF token", chromedp.AttributeValue(chromedp.CSS(`meta[name="csrf-token"]`), "content")).Value
	if token == "" {
		t.Fatal("no CSRF token on the page")
	}
	u, err := url.Parse(eventURL)
	if err != nil {
		t.Fatal(err)
	}
	post := func(form url.Values, origin string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url(u.Path+"/replay"), strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.AddCookie(cookie)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := post(url.Values{}, ""); status != http.StatusForbidden {
		t.Errorf("replay without a CSRF token = %d, want 403", status)
	}
	wrong := "0" + token[1:] // one digit changed, whatever the token's first is
	if token[0] == '0' {
		wrong = "1" + token[1:]
	}
	if status := post(url.Values{"csrf": {wrong}}, ""); status != http.StatusForbidden {
		t.Errorf("replay with a wrong CSRF token = %d, want 403", status)
	}
	if status := post(url.Values{"csrf": {token}}, "https://evil.example"); status != http.StatusForbidden {
		t.Errorf("replay from another origin = %d, want 403", status)
	}
}
