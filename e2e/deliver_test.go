package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestByteExactAndResigned(t *testing.T) {
	forEachStore(t, testByteExactAndResigned)
}

func testByteExactAndResigned(t *testing.T, st store) {
	a := startApp(t)
	cfg := writeConfig(t, config{storage: st.url, routes: []route{
		{path: "/sms", target: a.url("/app/sms")},
		{path: "/status", target: a.url("/app/status?tenant=e2e")}, // the target's own query is kept
		{path: "/client", target: a.url("/app/client")},
	}})
	p := startServe(t, cfg)

	smsSID, statusSID, getSID := newSID("SM"), newSID("SM"), newSID("SM")
	// Not as url.Values.Encode would write it: keys out of order, a
	// repeated key, lowercase escapes, both spellings of a space and
	// characters outside ASCII. Any re-encoding on the way shows.
	form := webhook{
		path:        "/sms",
		contentType: "application/x-www-form-urlencoded",
		body: []byte("ToCountry=US&Body=Gr%c3%bc%C3%9Fe+aus+M%C3%BCnchen%20%E2%98%95%F0%9F%99%82&MessageSid=" + smsSID +
			"&AccountSid=" + accountSID + "&From=%2B14155550100&To=%2B14155550199&MediaUrl0=&Tag=b&Tag=a&Tag=b" +
			"&SmsStatus=received&NumMedia=0&ApiVersion=2010-04-01"),
		token:  authToken,
		header: twilioHeader("idem-" + randomHex(8)),
	}
	get := webhook{ // signed with the second token, as during a rotation
		method: http.MethodGet,
		path: "/sms?MessageSid=" + getSID + "&AccountSid=" + accountSID + "&From=%2B14155550101" +
			"&Body=%C2%BFD%C3%B3nde%3F+%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF&SmsStatus=received",
		token:  secondaryToken,
		header: twilioHeader("idem-" + randomHex(8)),
	}
	status := webhook{
		path:        "/status",
		contentType: "application/x-www-form-urlencoded",
		body: []byte("MessageSid=" + statusSID + "&MessageStatus=delivered&SmsStatus=delivered&AccountSid=" + accountSID +
			"&From=%2B14155550199&To=%2B14155550100&ApiVersion=2010-04-01"),
		token:  authToken,
		header: twilioHeader("idem-" + randomHex(8)),
	}
	notification := webhook{ // a Voice SDK client notification: JSON, signed through bodySHA256
		path:        "/client",
		contentType: "application/json",
		body: []byte(`{"twi_message_id":"` + newSID("RM") + `","twi_account_sid":"` + accountSID +
			`","twi_call_sid":"` + newSID("CA") + `","type":"answered","note":"café ☕"}`),
		token:  authToken,
		header: twilioHeader("idem-" + randomHex(8)),
	}

	// Rejected requests first: if they were delivered, they would be
	// among the deliveries waited for below.
	unsigned, _ := inboundSMS("/sms", "unsigned")
	unsigned.token = ""
	forged, _ := inboundSMS("/sms", "forged")
	forged.token = "not-the-auth-token"
	for name, w := range map[string]webhook{"unsigned": unsigned, "forged": forged} {
		if s := mustSend(t, p, w); s.status != http.StatusForbidden {
			t.Errorf("%s webhook: status %d (%s); want 403", name, s.status, s.body)
		}
	}

	twiml := answer{http.StatusOK, "application/xml", "<Response/>"}
	empty := answer{http.StatusOK, "", ""}
	type want struct {
		w           webhook
		answer      answer
		path        string // on the app
		targetQuery string // the query of the route's target
	}
	wants := map[string]want{
		"form":   {form, twiml, "/app/sms", ""},
		"get":    {get, twiml, "/app/sms", ""},
		"status": {status, empty, "/app/status", "tenant=e2e"},
		"client": {notification, empty, "/app/client", ""},
	}
	sents := map[string]*sent{}
	for name, w := range wants {
		s := mustSend(t, p, w.w)
		if got := answerOf(s); got != w.answer {
			t.Errorf("%s webhook answered %v; want %v", name, got, w.answer)
		}
		sents[name] = s
	}
	// Twilio retrying the form webhook, as it does after a timeout: the
	// same request, idempotency token included.
	if s := mustSend(t, p, form); answerOf(s) != twiml {
		t.Errorf("retried webhook answered %v; want the original %v", answerOf(s), twiml)
	}

	a.waitFor(t, 30*time.Second, "4 events delivered", func() bool { return len(a.okByEvent) >= len(wants) },
		func() string { return fmt.Sprintf("%d events delivered", len(a.okByEvent)) })

	// A retry after the delivery is still the same event, answered the same.
	if s := mustSend(t, p, form); answerOf(s) != twiml {
		t.Errorf("webhook retried after delivery answered %v; want the original %v", answerOf(s), twiml)
	}

	byKey := map[string]*delivery{}
	eventIDs := map[string]bool{}
	for _, d := range a.snapshot() {
		key := d.method + " " + strings.SplitN(d.requestURI, "?", 2)[0]
		if byKey[key] != nil {
			t.Errorf("%s delivered twice (event ids %s, %s)", key, byKey[key].eventID, d.eventID)
		}
		byKey[key] = d
		eventIDs[d.eventID] = true
	}
	if len(byKey) != len(wants) {
		t.Errorf("app got %d distinct requests; want %d", len(byKey), len(wants))
	}
	for name, w := range wants {
		method := w.w.method
		if method == "" {
			method = http.MethodPost
		}
		d := byKey[method+" "+w.path]
		if d == nil {
			t.Errorf("%s webhook: no %s %s delivered", name, method, w.path)
			continue
		}
		checkDelivery(t, name, w.w, sents[name], d, w.targetQuery)
	}

	// Neither the rejected requests nor the retries made events: there are
	// exactly the four, all delivered, as the CLI and the admin API agree.
	var listed []cliEvent
	eventuallyCLI(t, 10*time.Second, func() (bool, string) {
		listed = listEvents(t, cfg)
		for _, e := range listed {
			if e.State != "delivered" {
				return false, fmt.Sprintf("event %s (%s) is %s", e.ID, e.Route, e.State)
			}
		}
		return true, ""
	})
	var listedIDs []string
	for _, e := range listed {
		listedIDs = append(listedIDs, e.ID)
		if e.Attempts != 1 {
			t.Errorf("event %s: %d attempts; want 1", e.ID, e.Attempts)
		}
	}
	if !sameSet(listedIDs, keys(eventIDs)) {
		t.Errorf("events list: %v; want the events the app got, %v", listedIDs, keys(eventIDs))
	}
	var apiIDs []string
	for _, e := range apiEvents(t, p, "state=delivered") {
		apiIDs = append(apiIDs, e.ID)
	}
	if !sameSet(apiIDs, listedIDs) {
		t.Errorf("GET /api/v1/events?state=delivered: %v; events list says %v", apiIDs, listedIDs)
	}
	if resp, err := client.Get(p.url("/api/v1/events")); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/events without a token: status %d; want 401", resp.StatusCode)
		}
	}
	// Whatever the timing, a retried request is never delivered again.
	if n := len(a.snapshot()); n != len(wants) {
		t.Errorf("app got %d requests; want %d", n, len(wants))
	}
}

// answer is what Switchboard answered Twilio.
type answer struct {
	status      int
	contentType string
	body        string
}

func answerOf(s *sent) answer { return answer{s.status, s.contentType, string(s.body)} }

// checkDelivery compares what the app got with the webhook Twilio sent to a
// route whose target has the query targetQuery.
func checkDelivery(t *testing.T, name string, w webhook, s *sent, d *delivery, targetQuery string) {
	t.Helper()
	if !bytes.Equal(d.body, w.body) {
		t.Errorf("%s: app got body\n%q\nwant byte for byte\n%q", name, d.body, w.body)
	}
	// The query Twilio called with (bodySHA256 included) follows the
	// target's own.
	_, sentQuery, _ := strings.Cut(s.target, "?")
	_, gotQuery, _ := strings.Cut(d.requestURI, "?")
	wantQuery := sentQuery
	if targetQuery != "" {
		wantQuery = strings.TrimSuffix(targetQuery+"&"+sentQuery, "&")
	}
	if gotQuery != wantQuery {
		t.Errorf("%s: app got query %q; want %q", name, gotQuery, wantQuery)
	}
	for _, h := range []string{"I-Twilio-Idempotency-Token", "X-Home-Region", "User-Agent"} {
		if got, want := d.header.Get(h), w.header.Get(h); got != want {
			t.Errorf("%s: %s %q; want %q", name, h, got, want)
		}
	}
	if got := d.header.Get("Content-Type"); got != w.contentType {
		t.Errorf("%s: Content-Type %q; want %q", name, got, w.contentType)
	}
	if d.eventID == "" {
		t.Errorf("%s: no X-Switchboard-Event-Id", name)
	}
	if d.attempt != "1" {
		t.Errorf("%s: X-Switchboard-Attempt %q; want 1", name, d.attempt)
	}
	if d.header.Get("X-Twilio-Signature") == s.signature {
		t.Errorf("%s: app got Twilio's own signature, not one for its URL", name)
	}
	if err := checkSignature(d); err != nil {
		t.Errorf("%s: X-Twilio-Signature for %s: %v", name, "http://"+d.host+d.requestURI, err)
	}
}

func TestAppDownThenUp(t *testing.T) {
	forEachStore(t, testAppDownThenUp)
}

func testAppDownThenUp(t *testing.T, st store) {
	const n = 200
	appPort := reservePort(t) // nothing answers there yet
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: "http://" + appPort.addr + "/sms"}}})
	p := startServe(t, cfg)

	// Every webhook is acknowledged though the app is down.
	sids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				hook, sid := inboundSMS("/sms", fmt.Sprintf("message %d", i))
				sids[i] = sid
				s, err := send(t.Context(), p, hook)
				if err == nil && s.status == http.StatusOK {
					continue
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					failures = append(failures, fmt.Sprintf("status %d: %s", s.status, s.body))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d webhooks not acknowledged: %v", len(failures), n, failures[:min(len(failures), 5)])
	}
	// Switchboard has been failing to reach the app for long enough that
	// its circuit opened.
	p.out.waitFor(t, 30*time.Second, `"msg":"circuit breaker"`, `"to":"open"`)

	up := time.Now()
	a := startAppAt(t, appPort)
	a.waitForSIDs(t, 60*time.Second, sids)
	t.Logf("all %d events delivered %v after the app came up", n, time.Since(up).Round(time.Millisecond))

	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.okByEvent) != n {
		t.Errorf("app took %d distinct events; want %d", len(a.okByEvent), n)
	}
	for id, count := range a.okByEvent {
		if count > 1 {
			t.Errorf("event %s taken %d times", id, count)
		}
	}
	for sid, count := range a.okBySID {
		if count > 1 {
			t.Errorf("message %s taken %d times", sid, count)
		}
	}
}

// keys returns a set's members.
func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// sameSet reports whether a and b hold the same strings, each once.
func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b) && len(slices.Compact(a)) == len(b)
}
