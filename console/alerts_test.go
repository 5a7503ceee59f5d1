package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

func withAlerts(o *console.Options) { o.Alerts = switchboard.DefaultAlertRules() }

// seedAlerts stores webhook-dead-letters firing on /sms and resolved on
// /voice, and twilio-429-storm firing on pool main.
func seedAlerts(f *fixture) {
	f.store.seedAlert(switchboard.AlertState{Rule: "webhook-dead-letters", Key: "/voice", Status: switchboard.AlertOK, Seq: 1,
		FiredAt: base.Add(-time.Hour), ResolvedAt: base.Add(-30 * time.Minute), UpdatedAt: base.Add(-30 * time.Minute)})
	f.store.seedAlert(switchboard.AlertState{Rule: "webhook-dead-letters", Key: "/sms", Status: switchboard.AlertFiring, Value: 3, Seq: 2,
		Summary: "3 events of /sms dead-lettered in 15m", FiredAt: base.Add(-time.Minute), UpdatedAt: base.Add(-time.Minute)})
	f.store.seedAlert(switchboard.AlertState{Rule: "twilio-429-storm", Key: "main", Status: switchboard.AlertFiring, Value: 40, Seq: 1,
		FiredAt: base.Add(-2 * time.Minute), UpdatedAt: base.Add(-2 * time.Minute)})
}

// act posts an action's form and wants a redirect to the alert's page,
// which it returns.
func (f *fixture) act(s session, target string, form url.Values) string {
	f.t.Helper()
	form.Set("csrf", s.csrf)
	w := f.do("POST", target, form, s.cookie)
	if w.Code != http.StatusSeeOther {
		f.t.Fatalf("POST %s %v: status %d, want 303\n%s", target, form, w.Code, w.Body)
	}
	return w.Header().Get("Location")
}

func TestAlertsPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withAlerts)
	seedAlerts(f)
	s := f.signIn()
	page := f.get(s, "/console/alerts", http.StatusOK)
	doc := parseHTML(t, page)
	var rules []string
	for _, tr := range all(mustID(t, page, "alerts-table"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-rule") }) {
		r := attr(tr, "data-rule")
		if hasAttr(tr, "data-key") {
			r += " " + attr(tr, "data-key")
		}
		rules = append(rules, r)
	}
	// Firing first (critical before warning), and firing keys first.
	want := []string{"webhook-dead-letters", "webhook-dead-letters /sms", "webhook-dead-letters /voice", "twilio-429-storm", "twilio-429-storm main"}
	if len(rules) != len(want)+len(switchboard.DefaultAlertRules())-2 || !slices.Equal(rules[:len(want)], want) {
		t.Errorf("rows %v", rules)
	}
	sms := first(doc, func(n *html.Node) bool { return attr(n, "data-key") == "/sms" })
	if got := text(sms); !strings.Contains(got, "firing") || !strings.Contains(got, "3") || !strings.Contains(got, "> 0") ||
		!strings.Contains(got, "2026-03-01 11:59:00") {
		t.Errorf("/sms row %q", got)
	}
	link := first(doc, func(n *html.Node) bool { return n.Data == "a" && strings.Contains(attr(n, "href"), "runbooks.md") })
	if link == nil || attr(link, "href") != console.DefaultRunbookBase+"#webhook-error-spike" && attr(link, "href") != console.DefaultRunbookBase+"#dead-letters" {
		t.Errorf("runbook link %v", link)
	}
	nav := first(doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == "/console/alerts" })
	if nav == nil || attr(nav, "aria-current") != "page" {
		t.Error("no current Alerts entry in the navigation")
	}
	// A delivery rate is a floor, shown as a share.
	if rate := first(doc, func(n *html.Node) bool { return attr(n, "data-rule") == "delivery-rate-drop" }); !strings.Contains(text(rate), "< 90.0%") {
		t.Errorf("delivery-rate-drop row %q", text(rate))
	}
}

func TestAlertsPageRunbookBaseAndNoRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withAlerts, func(o *console.Options) { o.RunbookBase = "https://wiki.example.com/runbooks" })
	s := f.signIn()
	page := f.get(s, "/console/alerts/queue-lag", http.StatusOK)
	if href := attr(mustID(t, page, "runbook"), "href"); href != "https://wiki.example.com/runbooks#queue-lag" {
		t.Errorf("runbook %q", href)
	}
	mustID(t, page, "no-history")

	bare := newFixture(t)
	bs := bare.signIn()
	mustID(t, bare.get(bs, "/console/alerts", http.StatusOK), "no-rules")
	bare.get(bs, "/console/alerts/queue-lag", http.StatusNotFound)
}

func TestAlertAcknowledgeFromTheConsole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withAlerts)
	seedAlerts(f)
	s := f.signIn()
	page := f.get(s, "/console/alerts/webhook-dead-letters?key=%2Fsms", http.StatusOK)
	if got := text(mustID(t, page, "alert-status")); got != "firing" {
		t.Errorf("status %q", got)
	}
	if got := text(mustID(t, page, "alert-summary")); got != "3 events of /sms dead-lettered in 15m" {
		t.Errorf("summary %q", got)
	}
	form := mustID(t, page, "ack-form")
	key := first(form, func(n *html.Node) bool { return attr(n, "name") == "key" })
	if attr(key, "value") != "/sms" {
		t.Errorf("the form acknowledges %q", attr(key, "value"))
	}

	f.clock.advance(time.Minute)
	to := f.act(s, "/console/alerts/webhook-dead-letters/ack", url.Values{"key": {"/sms"}, "by": {"  alice  "}})
	if to != "/console/alerts/webhook-dead-letters?done=acknowledged&key=%2Fsms" {
		t.Errorf("redirect to %q", to)
	}
	page = f.get(s, to, http.StatusOK)
	if got := text(mustID(t, page, "alert-acked")); got != "by alice at 2026-03-01 12:01:00.000" {
		t.Errorf("acknowledged %q", got)
	}
	if !strings.Contains(text(mustID(t, page, "action-notice")), "Acknowledged") {
		t.Error("no notice")
	}
	if byID(parseHTML(t, page), "ack-form") != nil {
		t.Error("an acknowledged alert offers acknowledging again")
	}
	if whats := historyWhats(t, page); !slices.Equal(whats, []string{"acknowledged", "firing"}) {
		t.Errorf("history %v", whats)
	}

	// Someone else, a moment later; a resolved alert; one never fired.
	for _, tc := range []struct {
		key    string
		status int
		says   string
	}{
		{"/sms", http.StatusConflict, "already acknowledged by alice"},
		{"/voice", http.StatusBadRequest, "only a firing alert"},
		{"/status", http.StatusNotFound, "never fired"},
	} {
		page = f.post(s, "/console/alerts/webhook-dead-letters/ack", url.Values{"key": {tc.key}, "by": {"bob"}}, tc.status)
		if got := text(mustID(t, page, "action-notice")); !strings.Contains(got, tc.says) {
			t.Errorf("%s: notice %q, want %q", tc.key, got, tc.says)
		}
	}
	if st, _ := f.store.alertState("webhook-dead-letters", "/sms"); st.AckedBy != "alice" || st.Version != 2 {
		t.Errorf("stored %+v", st)
	}
	if st, _ := f.store.alertState("webhook-dead-letters", "/voice"); !st.AckedAt.IsZero() {
		t.Errorf("a resolved alert acknowledged: %+v", st)
	}
}

func historyWhats(t *testing.T, page string) []string {
	t.Helper()
	var whats []string
	for _, tr := range all(mustID(t, page, "alert-history"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-what") }) {
		whats = append(whats, attr(tr, "data-what"))
	}
	return whats
}

func TestAlertSilenceFromTheConsole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withAlerts)
	seedAlerts(f)
	s := f.signIn()
	const rule = "/console/alerts/webhook-dead-letters"

	to := f.act(s, rule+"/silence", url.Values{"key": {"/sms"}, "for": {"4h"}})
	page := f.get(s, to, http.StatusOK)
	if got := text(mustID(t, page, "alert-silenced")); got != "2026-03-01 16:00:00.000" {
		t.Errorf("silenced until %q", got)
	}
	mustID(t, page, "unsilence-form")
	f.act(s, rule+"/silence", url.Values{"key": {"/sms"}, "until": {"2026-03-02T08:30"}})
	if st, _ := f.store.alertState("webhook-dead-letters", "/sms"); !st.SilencedUntil.Equal(time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)) {
		t.Errorf("custom: silenced until %v", st.SilencedUntil)
	}
	to = f.act(s, rule+"/unsilence", url.Values{"key": {"/sms"}})
	page = f.get(s, to, http.StatusOK)
	if byID(parseHTML(t, page), "alert-silenced") != nil || byID(parseHTML(t, page), "unsilence-form") != nil {
		t.Error("still shown silenced")
	}
	if whats := historyWhats(t, page); !slices.Equal(whats, []string{"unsilenced", "silenced", "silenced", "firing"}) {
		t.Errorf("history %v", whats)
	}

	// Refused: too far, in the past, not a time.
	for _, tc := range []struct {
		until  string
		status int
	}{
		{"2026-04-01T12:00:01", http.StatusBadRequest},
		{"9999-01-01T00:00", http.StatusBadRequest},
		{"2026-03-01T11:00", http.StatusBadRequest},
		{"", http.StatusBadRequest},
		{"next tuesday", http.StatusBadRequest},
	} {
		f.post(s, rule+"/silence", url.Values{"key": {"/sms"}, "until": {tc.until}}, tc.status)
	}
	if st, _ := f.store.alertState("webhook-dead-letters", "/sms"); !st.SilencedUntil.IsZero() {
		t.Errorf("a refused silence took: %v", st.SilencedUntil)
	}

	// The whole rule: every key shows it, and a key never stored too.
	to = f.act(s, rule+"/silence", url.Values{"key": {"*"}, "for": {"24h"}, "by": {"ops"}})
	if to != rule+"?done=silenced" {
		t.Errorf("redirect to %q", to)
	}
	page = f.get(s, to, http.StatusOK)
	if got := text(mustID(t, page, "rule-silenced")); got != "2026-03-02 12:00:00.000" {
		t.Errorf("rule silenced until %q", got)
	}
	for _, tr := range all(mustID(t, page, "rule-alerts"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-key") }) {
		if !strings.Contains(text(tr), "2026-03-02 12:00:00") {
			t.Errorf("%s: %q, not silenced", attr(tr, "data-key"), text(tr))
		}
	}
	page = f.get(s, rule+"?key=%2Fstatus", http.StatusOK)
	if got := text(mustID(t, page, "alert-silenced")); got != "2026-03-02 12:00:00.000" {
		t.Errorf("a key never stored: silenced until %q", got)
	}
	if st, ok := f.store.alertState("webhook-dead-letters", switchboard.AlertAllKeys); !ok || !strings.Contains(f.store.lastAlertEvent().Note, "ops") {
		t.Errorf("rule-wide state %+v", st)
	}
}

func TestAlertActionsRefuseForgedPosts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withAlerts)
	seedAlerts(f)
	s := f.signIn()
	actions := []struct {
		path string
		form url.Values
	}{
		{"/console/alerts/webhook-dead-letters/ack", url.Values{"key": {"/sms"}}},
		{"/console/alerts/webhook-dead-letters/silence", url.Values{"key": {"/sms"}, "for": {"1h"}}},
		{"/console/alerts/webhook-dead-letters/unsilence", url.Values{"key": {"/sms"}}},
	}
	for _, a := range actions {
		if w := f.do("POST", a.path, a.form, s.cookie); w.Code != http.StatusForbidden {
			t.Errorf("%s without a CSRF token: %d", a.path, w.Code)
		}
		forged := url.Values{"csrf": {strings.Repeat("0", len(s.csrf))}}
		for k, v := range a.form {
			forged[k] = v
		}
		if w := f.do("POST", a.path, forged, s.cookie); w.Code != http.StatusForbidden {
			t.Errorf("%s with a wrong CSRF token: %d", a.path, w.Code)
		}
		good := url.Values{"csrf": {s.csrf}}
		for k, v := range a.form {
			good[k] = v
		}
		if w := f.do("POST", a.path, good, s.cookie, "Sec-Fetch-Site", "cross-site"); w.Code != http.StatusForbidden {
			t.Errorf("%s from another site: %d", a.path, w.Code)
		}
		if w := f.do("POST", a.path, good, nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/console/login") {
			t.Errorf("%s signed out: %d %s", a.path, w.Code, w.Header().Get("Location"))
		}
	}
	if st, _ := f.store.alertState("webhook-dead-letters", "/sms"); st.Version != 1 {
		t.Errorf("a forged post acted: %+v", st)
	}
	// Unknown rules, and hostile keys.
	f.get(s, "/console/alerts/no-such-rule", http.StatusNotFound)
	f.post(s, "/console/alerts/no-such-rule/ack", url.Values{"key": {"/sms"}}, http.StatusNotFound)
	f.post(s, "/console/alerts/no-such-rule/silence", url.Values{"for": {"1h"}}, http.StatusNotFound)
	f.post(s, "/console/alerts/webhook-dead-letters/silence", url.Values{"key": {strings.Repeat("k", 600)}, "for": {"1h"}}, http.StatusBadRequest)
	f.post(s, "/console/alerts/webhook-dead-letters/silence", url.Values{"key": {"a\x00b"}, "for": {"1h"}}, http.StatusBadRequest)
	f.get(s, "/console/alerts/webhook-dead-letters?key=a%00b", http.StatusBadRequest)
}

func TestAlertsRedacted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withAlerts, func(o *console.Options) { o.Redact = true })
	f.store.seedAlert(switchboard.AlertState{Rule: "twilio-debugger-errors", Key: "11200", Status: switchboard.AlertFiring, Value: 12, Seq: 1,
		Summary: "12 errors 11200, last for https://app.example.com/sms?From=%2B15550001111 to " + caller, UpdatedAt: base})
	s := f.signIn()
	f.act(s, "/console/alerts/twilio-debugger-errors/ack", url.Values{"key": {"11200"}, "by": {business}})
	for _, path := range []string{"/console/alerts", "/console/alerts/twilio-debugger-errors", "/console/alerts/twilio-debugger-errors?key=11200"} {
		page := f.get(s, path, http.StatusOK)
		if strings.Contains(page, "5550001111") || strings.Contains(page, "5559990000") || !strings.Contains(page, "11200") {
			t.Errorf("%s leaks or hides too much:\n%s", path, page)
		}
	}
}
