package console_test

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

// leaks lists what of the fixtures' numbers and bodies s shows: the
// numbers in any spelling (E.164, URL-encoded, bare digits), the message
// text, and the status webhook's secret.
func leaks(s string) []string {
	var out []string
	for _, x := range []string{"5550001111", "5559990000", "old mill", "meet+me", "s3cr3t", "Bad Gateway"} {
		if strings.Contains(s, x) {
			out = append(out, x)
		}
	}
	return out
}

func TestRedactionHidesNumbersAndBodiesEverywhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *console.Options) { o.Redact = true })
	ev := seedEvent(f.store, 1, switchboard.StateDead, func(e *switchboard.Event) {
		e.LastError, e.LastCode = "app said: no user "+caller, 11200
	})
	seedEvent(f.store, 2, switchboard.StateDelivered, func(e *switchboard.Event) {
		e.Target = "https://app.example.com/status?token=s3cr3t"
	})
	f.store.addAttempt(&switchboard.Attempt{EventID: ev.ID, Number: 1, StartedAt: base, TargetURL: "https://app.example.com/sms?From=%2B15550001111",
		StatusCode: 502, ErrorClass: "http-status", TwilioCode: 11200, Error: "answered 502 for " + caller,
		ResponseHeader:  http.Header{"Content-Type": {"text/html"}, "Location": {"https://app.example.com/u?n=15550001111"}, "X-User": {caller}},
		ResponseExcerpt: []byte("<h1>Bad Gateway</h1> for " + caller)})
	f.store.addRequest(&switchboard.Request{ID: id(2001), ReceivedAt: base, Route: "/sms", Method: "POST",
		URL: "https://sb.example.com/sms?To=%2B15559990000", Outcome: switchboard.OutcomeRejected,
		Reason: "signature invalid for From " + caller, Body: []byte("From=%2B15550001111&Body=meet+me")})
	m := seedMessage(f.store, 1, func(m *switchboard.OutboundMessage) {
		m.State, m.TwilioSID, m.ErrorCode = switchboard.MessageFailed, "", 21211
		m.LastError = "The 'To' number " + caller + " is not a valid phone number."
		m.StatusWebhook = "https://app.example.com/hook?token=s3cr3t"
		m.MediaURLs = []string{"https://media.example.com/old+mill.jpg"}
	}, switchboard.StatusChange{Status: "failed", ErrorCode: 21211, At: base.Add(2 * time.Second), Source: "send", Applied: true})
	s := f.signIn()

	for _, path := range []string{
		"/console/events", "/console/events/" + ev.ID, "/console/events/" + id(2), "/console/requests", "/console/requests/" + id(1001),
		"/console/requests/" + id(2001), "/console/messages", "/console/messages/" + m.ID,
	} {
		page := f.get(s, path, http.StatusOK)
		if l := leaks(page); len(l) > 0 {
			t.Errorf("%s shows %v", path, l)
		}
		if !strings.Contains(page, switchboard.Redacted) {
			t.Errorf("%s: nothing marked redacted", path)
		}
	}
	// The probe's report and the replay's page too.
	if l := leaks(f.post(s, "/console/events/"+ev.ID+"/probe", nil, http.StatusOK)); len(l) > 0 {
		t.Errorf("probe shows %v", l)
	}
	if l := leaks(f.post(s, "/console/messages/"+m.ID+"/replay", nil, http.StatusOK)); len(l) > 0 {
		t.Errorf("message replay shows %v", l)
	}
	// A redacted form keeps its field names.
	body := fields(mustID(t, f.get(s, "/console/events/"+ev.ID, http.StatusOK), "event-body"))
	if body["From"] != switchboard.Redacted || body["Body"] != switchboard.Redacted {
		t.Errorf("redacted form %v", body)
	}
}

// An error of Go's HTTP client quotes the URL it called, and a GET
// webhook's parameters are in that URL's query: the message's text and
// numbers behind encoded spaces.
func TestRedactionHidesTheQueriesErrorsQuote(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *console.Options) { o.Redact = true })
	called := `Get "https://app.example.com/sms?Body=meet%20me%20at%20the%20old%20mill%20%2B15550001111&To=%2B15559990000": dial tcp: connection refused`
	ev := seedEvent(f.store, 1, switchboard.StateDead, func(e *switchboard.Event) { e.LastError = called })
	f.store.addAttempt(&switchboard.Attempt{EventID: ev.ID, Number: 1, StartedAt: base, TargetURL: "https://app.example.com/sms",
		ErrorClass: "connection", Error: called})
	s := f.signIn()
	for _, path := range []string{"/console/events", "/console/events/" + ev.ID} {
		page := f.get(s, path, http.StatusOK)
		if l := leaks(page); len(l) > 0 || strings.Contains(page, "old%20mill") {
			t.Errorf("%s shows %v of %q", path, l, called)
		}
	}
}

func TestRedactionHidesNumbersInLiveRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, func(o *console.Options) { o.Redact = true })
		s := f.signIn()
		rec, cancel, done := openStream(f, s, "/console/events/stream")
		defer func() { cancel(); <-done }()
		synctest.Wait()
		seedEvent(f.store, 1, switchboard.StateDead, func(e *switchboard.Event) { e.LastError = "no user " + caller })
		time.Sleep(time.Second)
		synctest.Wait()
		out := rec.take()
		if len(parseSSE(out)) != 1 {
			t.Fatalf("no row: %q", out)
		}
		if l := leaks(out); len(l) > 0 {
			t.Errorf("a live row shows %v", l)
		}
	})
}

func TestWithoutRedactionEverythingShows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ev := seedEvent(f.store, 1, switchboard.StateDead)
	s := f.signIn()
	page := f.get(s, "/console/events/"+ev.ID, http.StatusOK)
	if !strings.Contains(page, "5550001111") || !strings.Contains(page, "old mill") {
		t.Error("without redaction the number or the body is hidden")
	}
	if strings.Contains(page, switchboard.Redacted) {
		t.Error("redacted without admin.redact")
	}
}
