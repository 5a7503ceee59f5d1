package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

// fields are the name → value rows of a fields table under n.
func fields(n *html.Node) map[string]string {
	out := map[string]string{}
	for _, tr := range all(n, func(d *html.Node) bool { return d.Data == "tr" }) {
		th := first(tr, func(d *html.Node) bool { return d.Data == "th" })
		td := first(tr, func(d *html.Node) bool { return d.Data == "td" })
		if th != nil && td != nil {
			out[text(th)] = text(td)
		}
	}
	return out
}

func TestEventPageShowsTheExactRequestAndEveryAttempt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ev := seedEvent(f.store, 1, switchboard.StateDead)
	ev.LastError, ev.LastCode, ev.Attempts = "app answered 502", 11200, 2
	f.store.addAttempt(&switchboard.Attempt{EventID: ev.ID, Number: 1, StartedAt: base.Add(time.Second), TargetURL: "https://app.example.com/sms",
		StatusCode: 502, Latency: 120 * time.Millisecond, ErrorClass: "http-status", TwilioCode: 11200, Error: "app answered 502",
		ResponseHeader: http.Header{"Content-Type": {"text/html"}}, ResponseExcerpt: []byte("<h1>Bad Gateway</h1>")})
	f.store.addAttempt(&switchboard.Attempt{EventID: ev.ID, Number: 2, StartedAt: base.Add(time.Minute), TargetURL: "https://app.example.com/sms",
		Latency: 5 * time.Second, ErrorClass: "timeout", TwilioCode: 11205, Error: "no answer within 5s"})
	f.store.addRequest(&switchboard.Request{ID: id(3001), ReceivedAt: base.Add(2 * time.Second), Route: "/sms", Method: "POST",
		URL: "https://sb.example.com/sms", Outcome: switchboard.OutcomeDuplicate, Reason: "duplicate of event " + ev.ID, EventID: ev.ID})
	s := f.signIn()
	page := f.get(s, "/console/events/"+ev.ID, http.StatusOK)
	doc := parseHTML(t, page)

	if line := text(byID(doc, "request-line")); line != "POST https://sb.example.com/sms?From=%2B15550001111" {
		t.Errorf("request line %q", line)
	}
	if sig := text(byID(doc, "signature")); !strings.HasPrefix(sig, "Verified") {
		t.Errorf("signature verdict %q", sig)
	}
	body := fields(byID(doc, "event-body"))
	if body["From"] != caller || body["Body"] != secret || body["MessageSid"] != sid("SM", 1) {
		t.Errorf("form body as a table: %v", body)
	}
	if raw := first(byID(doc, "event-body"), func(n *html.Node) bool { return n.Data == "pre" }); raw == nil || !strings.Contains(text(raw), "Body=meet+me") {
		t.Error("no raw view of the body")
	}
	headers := fields(byID(doc, "request"))
	if headers["X-Twilio-Signature"] != "c2lnbmF0dXJl" {
		t.Errorf("headers %v", headers)
	}
	// The TwiML Twilio got, re-indented.
	answer := first(byID(doc, "answer-body"), func(n *html.Node) bool { return n.Data == "pre" })
	if answer == nil {
		t.Fatal("no answer body")
	}
	wantXML := "<?xml version=\"1.0\"?>\n<Response>\n  <Message>Thanks: " + secret + "</Message>\n</Response>"
	if got := answer.FirstChild.Data; got != wantXML {
		t.Errorf("answer body:\n%s\nwant:\n%s", got, wantXML)
	}
	// Every attempt, with its code and a fix.
	rows := all(byID(doc, "attempts"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-attempt") })
	if len(rows) != 2 {
		t.Fatalf("%d attempt rows", len(rows))
	}
	for i, want := range []string{"11200 HTTP retrieval failure", "11205 HTTP connection failure"} {
		if !strings.Contains(text(rows[i]), want) {
			t.Errorf("attempt %d: %q lacks %q", i+1, text(rows[i]), want)
		}
	}
	if fix := first(rows[0], func(n *html.Node) bool { return attr(n, "class") == "fix" }); !strings.Contains(text(fix), "2xx") {
		t.Errorf("attempt 1 fix %q", text(fix))
	}
	if fix := first(rows[1], func(n *html.Node) bool { return attr(n, "class") == "fix" }); !strings.Contains(text(fix), "background") {
		t.Errorf("attempt 2 fix %q", text(fix))
	}
	if !strings.Contains(text(rows[0]), "<h1>Bad Gateway</h1>") || !strings.Contains(text(rows[0]), "120 ms") {
		t.Errorf("attempt 1: %q", text(rows[0]))
	}
	// Its duplicate.
	dups := all(byID(doc, "duplicates"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-request-id") })
	if len(dups) != 1 || attr(dups[0], "data-request-id") != id(3001) {
		t.Errorf("duplicates: %d rows", len(dups))
	}
	// A dead event can be replayed; the route's target probed.
	if b := byID(doc, "replay-button"); b == nil || hasAttr(b, "disabled") {
		t.Error("the replay button is missing or disabled")
	}
	if byID(doc, "probe-button") == nil {
		t.Error("no probe button")
	}
}

func TestEventPageBodies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contentType, body string
		fields                  map[string]string
		pretty                  string
	}{
		{"json object", "application/json", `{"Body":"hi","Count":3,"Nested":{"a":[1,2]}}`,
			map[string]string{"Body": "hi", "Count": "3", "Nested": `{"a":[1,2]}`}, ""},
		{"json array", "application/json", `[1,{"a":2}]`, nil, "[\n  1,\n  {\n    \"a\": 2\n  }\n]"},
		{"xml", "text/xml", `<Response><Say voice="alice">Hi &amp; bye</Say><Pause/></Response>`, nil,
			"<Response>\n  <Say voice=\"alice\">Hi &amp; bye</Say>\n  <Pause/>\n</Response>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ev := seedEvent(f.store, 1, switchboard.StateDelivered)
			f.store.requests[0].Header.Set("Content-Type", tc.contentType)
			f.store.requests[0].Body = []byte(tc.body)
			s := f.signIn()
			doc := parseHTML(t, f.get(s, "/console/events/"+ev.ID, http.StatusOK))
			body := byID(doc, "event-body")
			if tc.fields != nil {
				got := fields(body)
				for k, v := range tc.fields {
					if got[k] != v {
						t.Errorf("field %s = %q, want %q", k, got[k], v)
					}
				}
			}
			if tc.pretty != "" {
				pre := first(body, func(n *html.Node) bool { return n.Data == "pre" && !strings.Contains(attr(n, "class"), "raw") })
				if pre == nil || pre.FirstChild.Data != tc.pretty {
					t.Errorf("pretty:\n%v\nwant:\n%s", pre, tc.pretty)
				}
			}
			raw := first(body, func(n *html.Node) bool { return n.Data == "pre" && strings.Contains(attr(n, "class"), "raw") })
			if raw == nil || raw.FirstChild.Data != tc.body {
				t.Errorf("raw view: %v", raw)
			}
		})
	}
}

func TestEventPageExplainsAProxyFallback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		attempt  *switchboard.Attempt
		fallback bool
		why      string
	}{
		{"app failed", &switchboard.Attempt{Number: 1, StartedAt: base.Add(100 * time.Millisecond), StatusCode: 200, ErrorClass: "content-type",
			TwilioCode: 12300, Error: "Content-Type text/plain is not XML; not delivered again"}, true, "12300"},
		{"app answered", &switchboard.Attempt{Number: 1, StartedAt: base.Add(100 * time.Millisecond), StatusCode: 200}, false, "own answer"},
		{"no live attempt", nil, true, "circuit"},
		{"only a later delivery", &switchboard.Attempt{Number: 1, StartedAt: base.Add(40 * time.Second), StatusCode: 200}, true, "circuit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ev := seedEvent(f.store, 0, switchboard.StateDelivered)
			ev.Route, ev.Kind = "/voice", switchboard.KindVoice
			if tc.attempt != nil {
				tc.attempt.EventID = ev.ID
				f.store.addAttempt(tc.attempt)
			}
			s := f.signIn()
			page := f.get(s, "/console/events/"+ev.ID, http.StatusOK)
			doc := parseHTML(t, page)
			fb, live := byID(doc, "answer-fallback"), byID(doc, "answer-live")
			switch {
			case tc.fallback && (fb == nil || !strings.Contains(text(fb), tc.why)):
				t.Errorf("fallback: %v", fb)
			case !tc.fallback && (live == nil || !strings.Contains(text(live), tc.why)):
				t.Errorf("live answer: %v", live)
			}
		})
	}
	// An ack-mode route says neither.
	f := newFixture(t)
	ev := seedEvent(f.store, 1, switchboard.StateDelivered)
	s := f.signIn()
	doc := parseHTML(t, f.get(s, "/console/events/"+ev.ID, http.StatusOK))
	if byID(doc, "answer-fallback") != nil || byID(doc, "answer-live") != nil {
		t.Error("an ack route's answer is described as proxied")
	}
}

func TestEventPageWithoutItsRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ev := seedEvent(f.store, 1, switchboard.StateDelivered)
	f.store.requests = nil // pruned by retention
	s := f.signIn()
	page := f.get(s, "/console/events/"+ev.ID, http.StatusOK)
	if !strings.Contains(text(mustID(t, page, "request")), "no longer stored") {
		t.Error("a missing request is not explained")
	}
}

func TestReplayAnEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dead := seedEvent(f.store, 1, switchboard.StateDead)
	retrying := seedEvent(f.store, 2, switchboard.StateRetrying)
	s := f.signIn()

	page := f.post(s, "/console/events/"+dead.ID+"/replay", nil, http.StatusOK)
	if n := mustID(t, page, "action-notice"); !strings.Contains(text(n), "Replay scheduled") {
		t.Errorf("notice %q", text(n))
	}
	if len(f.store.replays) != 1 || f.store.replays[0] != (switchboard.ReplayFilter{EventID: dead.ID}) {
		t.Errorf("replays %+v", f.store.replays)
	}
	if st := text(mustID(t, page, "event-state")); st != "pending" {
		t.Errorf("state after replay %q", st)
	}

	// An event still on its way: the button says why it is disabled, and
	// a POST anyway is refused.
	doc := parseHTML(t, f.get(s, "/console/events/"+retrying.ID, http.StatusOK))
	if b := byID(doc, "replay-button"); b == nil || !hasAttr(b, "disabled") {
		t.Error("the replay button of a retrying event is enabled")
	}
	if why := text(byID(doc, "replay-why")); !strings.Contains(why, "retrying") {
		t.Errorf("why %q", why)
	}
	f.post(s, "/console/events/"+retrying.ID+"/replay", nil, http.StatusConflict)
	if len(f.store.replays) != 1 {
		t.Error("a retrying event was replayed")
	}
	f.post(s, "/console/events/"+id(999)+"/replay", nil, http.StatusNotFound)
}

func TestProbeTheRouteTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ev := seedEvent(f.store, 1, switchboard.StateDead)
	s := f.signIn()
	page := f.post(s, "/console/events/"+ev.ID+"/probe", url.Values{}, http.StatusOK)
	report := mustID(t, page, "probe-report")
	if got := text(report); !strings.Contains(got, "https://app.example.com/sms") || !strings.Contains(got, "12300") ||
		!strings.Contains(got, "application/xml") || !strings.Contains(got, "would log an error") {
		t.Errorf("report %q", got)
	}

	ev.Route = "/none"
	page = f.post(s, "/console/events/"+ev.ID+"/probe", url.Values{}, http.StatusOK)
	if !strings.Contains(text(mustID(t, page, "action-notice")), "no target") {
		t.Error("a route without a target is not explained")
	}

	// Without a prober there is no button, and nothing to post to.
	g := newFixture(t, func(o *console.Options) { o.Prober = nil })
	seedEvent(g.store, 1, switchboard.StateDead)
	gs := g.signIn()
	if byID(parseHTML(t, g.get(gs, "/console/events/"+id(1), http.StatusOK)), "probe-button") != nil {
		t.Error("a probe button without a prober")
	}
	g.post(gs, "/console/events/"+id(1)+"/probe", nil, http.StatusNotFound)
}
