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

	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
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
	tap := newWiretap(t)
	tw := newTwilio(t, p, tappedBy(tap))
	// During an auth token rotation Twilio signs with the new token, which
	// Switchboard has as its second one.
	rotated := newTwilio(t, p, tappedBy(tap), signingWith(secondaryToken))
	// Twilio signing with a token Switchboard does not have.
	stale := newTwilio(t, p, signingWith("not-the-auth-token"))

	smsSID, statusSID, getSID := newSID("SM"), newSID("SM"), newSID("SM")
	const formType = "application/x-www-form-urlencoded"
	// Not as url.Values.Encode would write it: keys out of order, a
	// repeated key, lowercase escapes, both spellings of a space and
	// characters outside ASCII. Any re-encoding on the way shows.
	form := sim.Webhook{
		URL:         publicURL + "/sms",
		ContentType: formType,
		Body: []byte("ToCountry=US&Body=Gr%c3%bc%C3%9Fe+aus+M%C3%BCnchen%20%E2%98%95%F0%9F%99%82&MessageSid=" + smsSID +
			"&AccountSid=" + accountSID + "&From=%2B14155550100&To=%2B14155550199&MediaUrl0=&Tag=b&Tag=a&Tag=b" +
			"&SmsStatus=received&NumMedia=0&ApiVersion=2010-04-01"),
		Expect: twilio.ExpectMessagingTwiML,
	}
	get := sim.Webhook{ // signed with the second token, as during a rotation
		Method: http.MethodGet,
		URL: publicURL + "/sms?MessageSid=" + getSID + "&AccountSid=" + accountSID + "&From=%2B14155550101" +
			"&Body=%C2%BFD%C3%B3nde%3F+%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF&SmsStatus=received",
		Expect: twilio.ExpectMessagingTwiML,
	}
	status := sim.Webhook{
		URL:         publicURL + "/status",
		ContentType: formType,
		Body: []byte("MessageSid=" + statusSID + "&MessageStatus=delivered&SmsStatus=delivered&AccountSid=" + accountSID +
			"&From=%2B14155550199&To=%2B14155550100&ApiVersion=2010-04-01"),
		Expect: twilio.ExpectStatus,
	}
	notification := sim.Webhook{ // a Voice SDK client notification: JSON, signed through bodySHA256
		URL:         publicURL + "/client",
		ContentType: "application/json",
		Body: []byte(`{"twi_message_id":"` + newSID("RM") + `","twi_account_sid":"` + accountSID +
			`","twi_call_sid":"` + newSID("CA") + `","type":"answered","note":"café ☕"}`),
		Expect: twilio.ExpectClientNotification,
	}

	// Rejected requests first: if they were delivered, they would be
	// among the deliveries waited for below.
	if got := sendForged(t, p, "/sms", ""); got.status != http.StatusForbidden {
		t.Errorf("unsigned webhook: answered %v; want 403", got)
	}
	if got := sendForged(t, p, "/sms", "forged-auth-token"); got.status != http.StatusForbidden {
		t.Errorf("forged webhook: answered %v; want 403", got)
	}
	staleSID := mustReceive403(t, stale)
	if alerts := stale.Alerts(accountSID); len(alerts) != 1 || alerts[0].Code() != twilio.CodeHTTPRetrievalFailure || alerts[0].ResourceSID != staleSID {
		t.Errorf("Twilio's debugger log after a 403: %+v; want one 11200 alert for %s", alerts, staleSID)
	}

	twiml := answer{http.StatusOK, "application/xml", "<Response/>"}
	empty := answer{http.StatusOK, "", ""}
	type want struct {
		w           sim.Webhook
		sender      *sim.Sim
		answer      answer
		path        string // on the app
		targetQuery string // the query of the route's target
	}
	wants := map[string]want{
		"form":   {form, tw, twiml, "/app/sms", ""},
		"get":    {get, rotated, twiml, "/app/sms", ""},
		"status": {status, tw, empty, "/app/status", "tenant=e2e"},
		"client": {notification, tw, empty, "/app/client", ""},
	}
	sent := map[string]*wireRequest{}
	for name, w := range wants {
		r := mustSend(t, w.sender, w.w)
		if got := answerOf(r); got != w.answer || r.Error != nil || r.Tries != 1 {
			t.Errorf("%s webhook: %s, answered %v; want %v, accepted at the first try", name, describe(r), got, w.answer)
		}
		sent[name] = tap.request(t, r.IdempotencyToken)
	}
	// Twilio retrying the form webhook, as it does after a timeout: the
	// same request, idempotency token included.
	if got := resend(t, sent["form"]); got != twiml {
		t.Errorf("retried webhook answered %v; want the original %v", got, twiml)
	}

	a.waitFor(t, 30*time.Second, "4 events delivered", func() bool { return len(a.okByEvent) >= len(wants) },
		func() string { return fmt.Sprintf("%d events delivered", len(a.okByEvent)) })

	// A retry after the delivery is still the same event, answered the same.
	if got := resend(t, sent["form"]); got != twiml {
		t.Errorf("webhook retried after delivery answered %v; want the original %v", got, twiml)
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
		method := w.w.Method
		if method == "" {
			method = http.MethodPost
		}
		d := byKey[method+" "+w.path]
		if d == nil {
			t.Errorf("%s webhook: no %s %s delivered", name, method, w.path)
			continue
		}
		checkDelivery(t, name, w.w.Body, sent[name], d, w.targetQuery)
	}
	// Twilio accepted every answer: its debugger logged nothing.
	for name, s := range map[string]*sim.Sim{"primary token": tw, "rotated token": rotated} {
		if alerts := s.Alerts(""); len(alerts) > 0 {
			t.Errorf("Twilio (%s) logged %d alerts, first %+v; want none", name, len(alerts), alerts[0])
		}
	}

	// Neither the rejected requests nor the retries made events: there are
	// exactly the four, all delivered, as the CLI and the admin API agree.
	var listed []cliEvent
	eventually(t, 10*time.Second, func() (bool, string) {
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

// mustReceive403 makes an inbound message happen whose webhook Switchboard
// must refuse with 403, which Twilio logs as 11200, and returns its
// MessageSid.
func mustReceive403(t *testing.T, tw *sim.Sim) string {
	t.Helper()
	sid, r, err := receive(t.Context(), tw, "signed with a stale token")
	if err != nil {
		t.Fatalf("inbound message: %v", err)
	}
	if r.Status != http.StatusForbidden || r.Error == nil || r.Error.Code != twilio.CodeHTTPRetrievalFailure {
		t.Errorf("webhook signed with a token Switchboard does not have: %s; want 403, Twilio error 11200", describe(r))
	}
	return sid
}

// checkDelivery compares what the app got with the webhook Twilio sent (a
// body, and the request as it went out) to a route whose target has the
// query targetQuery.
func checkDelivery(t *testing.T, name string, body []byte, sent *wireRequest, d *delivery, targetQuery string) {
	t.Helper()
	if !bytes.Equal(d.body, body) || !bytes.Equal(sent.body, body) {
		t.Errorf("%s: app got body\n%q\nTwilio sent\n%q\nwant both byte for byte\n%q", name, d.body, sent.body, body)
	}
	// The query Twilio called with (bodySHA256 included) follows the
	// target's own.
	_, sentQuery, _ := strings.Cut(sent.target, "?")
	_, gotQuery, _ := strings.Cut(d.requestURI, "?")
	wantQuery := sentQuery
	if targetQuery != "" {
		wantQuery = strings.TrimSuffix(targetQuery+"&"+sentQuery, "&")
	}
	if gotQuery != wantQuery {
		t.Errorf("%s: app got query %q; want %q", name, gotQuery, wantQuery)
	}
	for _, h := range []string{"I-Twilio-Idempotency-Token", "X-Home-Region", "User-Agent", "Content-Type"} {
		if got, want := d.header.Get(h), sent.header.Get(h); got != want {
			t.Errorf("%s: %s %q; Twilio sent %q", name, h, got, want)
		}
	}
	if d.eventID == "" {
		t.Errorf("%s: no X-Switchboard-Event-Id", name)
	}
	if d.attempt != "1" {
		t.Errorf("%s: X-Switchboard-Attempt %q; want 1", name, d.attempt)
	}
	if d.header.Get("X-Twilio-Signature") == sent.header.Get("X-Twilio-Signature") {
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
	sids := receiveAll(t, []*sim.Sim{newTwilio(t, p)}, n)
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

// receiveAll makes n inbound messages happen, 8 at a time, the ith through
// tws[i%len(tws)], fails the test unless Switchboard acknowledged every
// one, and returns their MessageSids.
func receiveAll(t *testing.T, tws []*sim.Sim, n int) []string {
	t.Helper()
	const workers = 8
	sids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				sid, r, err := receive(t.Context(), tws[i%len(tws)], fmt.Sprintf("message %d", i))
				sids[i] = sid
				if err == nil && acknowledged(r) {
					continue
				}
				why := ""
				if err != nil {
					why = err.Error()
				} else {
					why = describe(r)
				}
				mu.Lock()
				failures = append(failures, fmt.Sprintf("message %d (through Twilio %d): %s", i, i%len(tws), why))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d webhooks not acknowledged: %v", len(failures), n, failures[:min(len(failures), 5)])
	}
	return sids
}
