package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
	"github.com/switchboard-dev/switchboard/sim"
	"golang.org/x/net/html"
)

const (
	phoneAccount = "AC00000000000000000000000000000001"
	phoneToken   = "0123456789abcdef0123456789abcdef"
	appNumber    = "+12065550100" // answers with TwiML, recorded as an event
	plainNumber  = "+12065550101" // answers with text Twilio refuses
	handset      = "+15551230000"
)

// phoneFixture is a console whose phone sends through an in-process
// simulator. Its numbers call a small app that answers TwiML and, as the
// gateway in front of it would, records each webhook as an event in the
// console's store.
func phoneFixture(t *testing.T, adjust ...func(*console.Options)) *fixture {
	t.Helper()
	var f *fixture
	var n atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		k := n.Add(1)
		f.store.addEvent(&switchboard.Event{
			ID: id(int(5000 + k)), Route: r.URL.Path, MessageSID: r.Form.Get("MessageSid"), CallSID: r.Form.Get("CallSid"),
			State: switchboard.StateDelivered, CreatedAt: base, UpdatedAt: base,
		})
		switch r.URL.Path {
		case "/sms":
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, `<Response><Message>You said: `+html.EscapeString(r.Form.Get("Body"))+`</Message></Response>`)
		case "/voice":
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, `<Response><Say voice="alice">Hello &lt;caller&gt;</Say><Gather numDigits="1"><Say>Press 1</Say></Gather></Response>`)
		default:
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "thanks!")
		}
	}))
	t.Cleanup(app.Close)
	tw, err := sim.New(sim.Config{
		Seed: 1,
		Accounts: []sim.Account{{
			SID: phoneAccount, AuthTokens: []string{phoneToken},
			Numbers: []sim.Number{
				{Number: appNumber, SMSURL: app.URL + "/sms", VoiceURL: app.URL + "/voice"},
				{Number: plainNumber, SMSURL: app.URL + "/plain"},
			},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	srv, err := tw.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f = newFixture(t, append([]func(*console.Options){func(o *console.Options) {
		o.Phones = []*sim.PhoneClient{{URL: srv.URL, Account: phoneAccount, Token: phoneToken}}
	}}, adjust...)...)
	return f
}

func sms(from, to, text string) url.Values {
	return url.Values{"kind": {"sms"}, "from": {from}, "to": {to}, "text": {text}}
}

func TestPhonePage(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t)
	s := f.signIn()
	page := f.get(s, "/console/phone", http.StatusOK)
	doc := parseHTML(t, page)
	if nav := byID(doc, "nav-phone"); nav == nil || attr(nav, "aria-current") != "page" {
		t.Errorf("the nav has no current Phone link:\n%s", page)
	}
	for _, form := range []string{"phone-sms", "phone-call"} {
		n := byID(doc, form)
		if n == nil {
			t.Fatalf("no form #%s", form)
		}
		csrf := first(n, func(d *html.Node) bool { return d.Data == "input" && attr(d, "name") == "csrf" })
		if csrf == nil || attr(csrf, "value") != s.csrf {
			t.Errorf("form #%s does not carry the session's CSRF token", form)
		}
	}
	// Other pages link to it too.
	if byID(parseHTML(t, f.get(s, "/console/events", http.StatusOK)), "nav-phone") == nil {
		t.Error("the events page has no Phone link")
	}
}

func TestPhoneAbsentWithoutSimulator(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	f.get(s, "/console/phone", http.StatusNotFound)
	f.post(s, "/console/phone", sms(handset, appNumber, "hi"), http.StatusNotFound)
	if byID(parseHTML(t, f.get(s, "/console/events", http.StatusOK)), "nav-phone") != nil {
		t.Error("a Phone link shows without a simulator")
	}
}

func TestPhoneNeedsSignInAndCSRF(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t)
	if w := f.do("GET", "/console/phone", nil, nil); w.Code/100 != 3 || !strings.HasPrefix(w.Header().Get("Location"), "/console/login") {
		t.Errorf("GET signed out: status %d to %q, want a redirect to sign in", w.Code, w.Header().Get("Location"))
	}
	s := f.signIn()
	for name, form := range map[string]url.Values{
		"no token":    sms(handset, appNumber, "hi"),
		"wrong token": func() url.Values { v := sms(handset, appNumber, "hi"); v.Set("csrf", "forged"); return v }(),
	} {
		if w := f.do("POST", "/console/phone", form, s.cookie); w.Code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, w.Code)
		}
	}
	cross := f.do("POST", "/console/phone", func() url.Values { v := sms(handset, appNumber, "hi"); v.Set("csrf", s.csrf); return v }(),
		s.cookie, "Sec-Fetch-Site", "cross-site")
	if cross.Code != http.StatusForbidden {
		t.Errorf("cross-site: status %d, want 403", cross.Code)
	}
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	if len(f.store.events) != 0 {
		t.Errorf("a refused form reached the app: %d events", len(f.store.events))
	}
}

func TestPhoneSMS(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t)
	s := f.signIn()
	page := f.post(s, "/console/phone", sms(handset, appNumber, "hi <b>there</b>"), http.StatusOK)
	doc := parseHTML(t, page)
	res := mustID(t, page, "phone-result")
	sidv := attr(res, "data-sid")
	if !strings.HasPrefix(sidv, "SM") {
		t.Fatalf("result SID %q, want SM…", sidv)
	}
	if got := text(mustID(t, page, "phone-plan")); got != `reply SMS: "You said: hi <b>there</b>"` {
		t.Errorf("plan %q", got)
	}
	if strings.Contains(page, "<b>there</b>") {
		t.Error("the text's markup reached the page unescaped")
	}
	if got := text(mustID(t, page, "phone-text")); got != "hi <b>there</b>" {
		t.Errorf("text %q", got)
	}
	row := first(byID(doc, "phone-webhooks"), func(n *html.Node) bool { return n.Data == "td" && hasAttr(n, "data-status") })
	if row == nil || attr(row, "data-status") != "200" {
		t.Errorf("webhook status cell %v", row)
	}
	if first(doc, func(n *html.Node) bool { return hasAttr(n, "data-latency") }) == nil {
		t.Error("no latency shown")
	}
	if got := attr(mustID(t, page, "phone-inspector"), "href"); got != "/console/events?q="+sidv {
		t.Errorf("inspector link %q", got)
	}
	if got := attr(mustID(t, page, "phone-event"), "href"); !strings.HasPrefix(got, "/console/events/"+id(5000)[:20]) {
		t.Errorf("event link %q", got)
	}
	if !strings.Contains(text(mustID(t, page, "phone-replies")), "SM") {
		t.Error("the reply message is not listed")
	}
}

func TestPhoneCall(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t)
	s := f.signIn()
	page := f.post(s, "/console/phone", url.Values{"kind": {"call"}, "from": {handset}, "to": {appNumber}}, http.StatusOK)
	if sidv := attr(mustID(t, page, "phone-result"), "data-sid"); !strings.HasPrefix(sidv, "CA") {
		t.Errorf("result SID %q, want CA…", sidv)
	}
	plan := text(mustID(t, page, "phone-plan"))
	for _, want := range []string{`say: "Hello <caller>"`, "gather", `say: "Press 1"`} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan %q lacks %q", plan, want)
		}
	}
	if byID(parseHTML(t, page), "phone-event") == nil {
		t.Error("no link to the call's event")
	}
}

func TestPhoneRefusedAnswer(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t)
	s := f.signIn()
	page := f.post(s, "/console/phone", sms(handset, plainNumber, "hi"), http.StatusOK)
	mustID(t, page, "phone-refused")
	if tw := text(mustID(t, page, "phone-webhooks")); !strings.Contains(tw, "refuses it: 12300") {
		t.Errorf("webhooks %q do not say Twilio refuses the answer", tw)
	}
}

func TestPhoneHostileInput(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t)
	s := f.signIn()
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"oversized text", sms(handset, appNumber, strings.Repeat("é", 1601)), http.StatusBadRequest, "1601 characters"},
		{"empty text", sms(handset, appNumber, "  "), http.StatusBadRequest, "Write the text"},
		{"control characters", sms(handset, appNumber, "a\x00b"), http.StatusBadRequest, "control characters"},
		{"bad from", sms("<script>alert(1)</script>", appNumber, "hi"), http.StatusBadRequest, "From must be"},
		{"bad to", sms(handset, "12065550100", "hi"), http.StatusBadRequest, "To must be"},
		{"no kind", url.Values{"from": {handset}, "to": {appNumber}}, http.StatusBadRequest, "Choose"},
		{"unknown account", func() url.Values { v := sms(handset, appNumber, "hi"); v.Set("account", "AC1"); return v }(), http.StatusBadRequest, "account"},
		{"a number the simulator does not own", sms(handset, "+12065559999", "hi"), http.StatusBadGateway, "could not take it"},
		{"form too large", sms(handset, appNumber, strings.Repeat("a", 40<<10)), http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := f.post(s, "/console/phone", tt.form, tt.status)
			if strings.Contains(page, "<script>alert") {
				t.Error("input reached the page unescaped")
			}
			if tt.want == "" {
				return
			}
			if got := text(mustID(t, page, "phone-error")); !strings.Contains(got, tt.want) {
				t.Errorf("error %q lacks %q", got, tt.want)
			}
		})
	}
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	if len(f.store.events) != 0 {
		t.Errorf("a refused form reached the app: %d events", len(f.store.events))
	}
}

func TestPhoneRedacted(t *testing.T) {
	t.Parallel()
	f := phoneFixture(t, func(o *console.Options) { o.Redact = true })
	s := f.signIn()
	page := f.post(s, "/console/phone", sms(handset, appNumber, secret), http.StatusOK)
	// What the page shows: its text and its attributes' values, unescaped.
	var shown strings.Builder
	for n := range parseHTML(t, page).Descendants() {
		shown.WriteString(n.Data + "\n")
		for _, a := range n.Attr {
			shown.WriteString(a.Val + "\n")
		}
	}
	for _, hidden := range []string{secret, handset, appNumber} {
		if strings.Contains(shown.String(), hidden) {
			t.Errorf("redacted page shows %q", hidden)
		}
	}
	if got := text(mustID(t, page, "phone-plan")); got != "reply SMS: "+switchboard.Redacted {
		t.Errorf("plan %q", got)
	}
}

func TestPhoneSimulatorDown(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	for name, u := range map[string]string{"down": down.URL, "redirects": redirect.URL, "not http": "file:///etc/passwd"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(o *console.Options) {
				o.Phones = []*sim.PhoneClient{{URL: u, Account: phoneAccount, Token: phoneToken}}
			})
			s := f.signIn()
			page := f.post(s, "/console/phone", sms(handset, appNumber, "hi"), http.StatusBadGateway)
			mustID(t, page, "phone-error")
		})
	}
}
