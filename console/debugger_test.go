package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"

	"golang.org/x/net/html"
)

const (
	dbgAccount  = "AC00000000000000000000000000000001"
	dbgMessage  = "SM0123456789abcdef0123456789abcdef"
	dbgSid      = "NO00000000000000000000000000000042"
	dbgCaller   = "+15550001111"
	dbgSecret   = "meet me at the old mill"
	dbgResponse = "no user 15559990000"
)

// debuggerFixture is a console over a real SQLite store holding an
// outbound message Twilio knows as dbgMessage, an inbound event of it,
// and a Debugger webhook's event and alert about it.
type debuggerFixture struct {
	*fixture
	store              *sqlite.Store
	alertEv, inboundEv *switchboard.Event
	message            *switchboard.OutboundMessage
}

func newDebuggerFixture(t *testing.T, redact bool) *debuggerFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Millisecond)
	f := &debuggerFixture{fixture: &fixture{t: t, clock: &clock{now: now}, logs: &syncBuffer{}}, store: st}
	f.c = console.New(st, console.Options{Token: token, Now: f.clock.Now, Redact: redact,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Routes: []console.Route{{Path: "/sms"}, {Path: "/debugger"}}})

	m := storetest.NewMessage("k1", dbgCaller, now.Add(-time.Minute))
	m.AccountSID, m.Body = dbgAccount, dbgSecret
	if _, err := st.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent, TwilioSID: dbgMessage}); err != nil {
		t.Fatal(err)
	}
	f.message = m

	inbound := storetest.NewItem("/sms", "in-1", now.Add(-50*time.Second))
	inbound.Event.AccountSID, inbound.Event.MessageSID = dbgAccount, dbgMessage
	alert := storetest.DebuggerItem(dbgAccount, dbgSid, dbgMessage, 30007, now.Add(-40*time.Second))
	payload := `{"resource_sid":"` + dbgMessage + `","error_code":"30007","more_info":{"Msg":"Carrier violation for ` + dbgCaller + `"},` +
		`"webhook":{"request":{"url":"https://app.example.com/status?To=%2B15550001111","method":"POST","parameters":{"Body":"` + dbgSecret + `"}},` +
		`"response":{"status_code":"502","body":"` + dbgResponse + `"}}}`
	alert.Request.Body = []byte(url.Values{"Sid": {dbgSid}, "AccountSid": {dbgAccount}, "Level": {"Error"},
		"Timestamp": {"2026-11-01T12:00:00Z"}, "PayloadType": {"application/json"}, "Payload": {payload}}.Encode())
	alert.Debugger.Payload = []byte(payload)
	alert.Debugger.URL = "https://app.example.com/status?To=%2B15550001111"
	// An earlier alert about it: a status webhook of the app's that
	// failed, whose code has a fix.
	failed := storetest.DebuggerItem(dbgAccount, "NO00000000000000000000000000000041", dbgMessage, 11200, now.Add(-45*time.Second))
	if err := st.Ingest(ctx, []*switchboard.Ingest{inbound, failed, alert}); err != nil {
		t.Fatal(err)
	}
	f.alertEv, f.inboundEv = alert.Event, inbound.Event
	return f
}

func TestDebuggerPagesLinkAlertsToTheirResource(t *testing.T) {
	t.Parallel()
	f := newDebuggerFixture(t, false)
	s := f.signIn()

	// The Debugger webhook's event: the parsed alert, its fix, and what it
	// is about, linked.
	page := f.get(s, "/console/events/"+f.alertEv.ID, http.StatusOK)
	doc := parseHTML(t, page)
	alert := byID(doc, "debugger-alert")
	if alert == nil {
		t.Fatalf("no alert on the Debugger event's page:\n%s", page)
	}
	shown := text(alert)
	for _, want := range []string{"30007", "Error", "https://app.example.com/status", "502", dbgSid} {
		if !strings.Contains(shown, want) {
			t.Errorf("alert section lacks %q: %s", want, shown)
		}
	}
	about := byID(doc, "debugger-about")
	if about == nil {
		t.Fatal("no section about the alert's resource")
	}
	links := hrefs(about)
	if !links["/console/messages/"+f.message.ID] || !links["/console/events/"+f.inboundEv.ID] {
		t.Errorf("about section links %v, want the message and the inbound event", links)
	}
	if links["/console/events/"+f.alertEv.ID] {
		t.Error("the alert's own event listed as one of its resource's")
	}

	// The message's page and the inbound event's page say what the
	// Debugger reported, linking the alert's event.
	for _, path := range []string{"/console/messages/" + f.message.ID, "/console/events/" + f.inboundEv.ID} {
		page := f.get(s, path, http.StatusOK)
		rep := byID(parseHTML(t, page), "debugger-reported")
		if rep == nil {
			t.Fatalf("%s: no Debugger section:\n%s", path, page)
		}
		if !strings.Contains(text(rep), "Twilio's Debugger reported 2 alerts") ||
			!strings.Contains(text(rep), "check the app's logs") || !hrefs(rep)["/console/events/"+f.alertEv.ID] {
			t.Errorf("%s: Debugger section %q links %v", path, text(rep), hrefs(rep))
		}
	}

	// The list, by code and by resource; an unknown resource lists none.
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"", true}, {"?code=30007", true}, {"?code=11200", false}, {"?code=21211", false}, {"?resource=" + dbgMessage, true},
		{"?resource=SMffffffffffffffffffffffffffffffff", false},
	} {
		page := f.get(s, "/console/debugger"+tc.query, http.StatusOK)
		if got := strings.Contains(page, `data-debugger-sid="`+dbgSid+`"`); got != tc.want {
			t.Errorf("/console/debugger%s lists the alert: %v, want %v", tc.query, got, tc.want)
		}
	}
	for _, bad := range []string{"?resource=x%27+OR+1%3D1", "?code=abc", "?cursor=%00"} {
		f.get(s, "/console/debugger"+bad, http.StatusBadRequest)
	}
	if nav := hrefs(parseHTML(t, f.get(s, "/console/events", http.StatusOK))); !nav["/console/debugger"] {
		t.Error("no Debugger entry in the navigation")
	}
}

func TestDebuggerPagesRedact(t *testing.T) {
	t.Parallel()
	f := newDebuggerFixture(t, true)
	s := f.signIn()
	for _, path := range []string{"/console/debugger", "/console/events/" + f.alertEv.ID, "/console/messages/" + f.message.ID,
		"/console/events/" + f.inboundEv.ID} {
		page := f.get(s, path, http.StatusOK)
		for _, leak := range []string{"5550001111", "5559990000", "old mill", "To=%2B"} {
			if strings.Contains(page, leak) {
				t.Errorf("%s shows %q", path, leak)
			}
		}
	}
	page := f.get(s, "/console/events/"+f.alertEv.ID, http.StatusOK)
	if !strings.Contains(text(byID(parseHTML(t, page), "debugger-alert")), switchboard.Redacted) {
		t.Error("the alert's payload is not marked redacted")
	}
}

// hrefs are the links under n.
func hrefs(n *html.Node) map[string]bool {
	out := map[string]bool{}
	for _, a := range all(n, func(n *html.Node) bool { return n.Data == "a" }) {
		out[attr(a, "href")] = true
	}
	return out
}

// Another account's alerts and events naming this account's message SID
// (its own signed webhooks can name any SID) are not about the message:
// they never show on its pages, and however many there are, they do not
// crowd out the account's own.
func TestDebuggerPagesIgnoreOtherAccountsNamingTheSID(t *testing.T) {
	t.Parallel()
	f := newDebuggerFixture(t, false)
	const other = "AC00000000000000000000000000000002"
	var items []*switchboard.Ingest
	var foreign []string
	now := f.clock.Now()
	for i := range 25 {
		a := storetest.DebuggerItem(other, fmt.Sprintf("NO%032x", 900+i), dbgMessage, 21610, now.Add(-10*time.Second+time.Duration(i)*time.Millisecond))
		ev := storetest.NewItem("/sms", fmt.Sprintf("other-%d", i), now.Add(-10*time.Second+time.Duration(i)*time.Millisecond))
		ev.Event.AccountSID, ev.Event.MessageSID = other, dbgMessage
		items = append(items, a, ev)
		foreign = append(foreign, "/console/events/"+a.Event.ID, "/console/events/"+ev.Event.ID)
	}
	if err := f.store.Ingest(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	s := f.signIn()
	for _, path := range []string{"/console/messages/" + f.message.ID, "/console/events/" + f.inboundEv.ID} {
		page := f.get(s, path, http.StatusOK)
		rep := byID(parseHTML(t, page), "debugger-reported")
		if rep == nil {
			t.Fatalf("%s: the account's own alerts crowded out by another account's:\n%s", path, page)
		}
		links := hrefs(rep)
		if !links["/console/events/"+f.alertEv.ID] || !strings.Contains(text(rep), "reported 2 alerts") {
			t.Errorf("%s: Debugger section %q links %v, want the account's 2 alerts", path, text(rep), links)
		}
		if strings.Contains(page, "21610") {
			t.Errorf("%s shows another account's alert", path)
		}
	}
	about := byID(parseHTML(t, f.get(s, "/console/events/"+f.alertEv.ID, http.StatusOK)), "debugger-about")
	if about == nil {
		t.Fatal("no section about the alert's resource")
	}
	links := hrefs(about)
	if !links["/console/events/"+f.inboundEv.ID] {
		t.Errorf("the account's own event crowded out of the alert's page by another account's: links %v", links)
	}
	for _, l := range foreign {
		if links[l] {
			t.Errorf("the alert's page links another account's event %s", l)
		}
	}
}
