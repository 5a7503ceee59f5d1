package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
)

// listenerKey is the [[listeners]] key of the tests' listener "laptop".
const listenerKey = "laptop-key-0123456789abcdef0123456789"

// listenerConfig routes /sms (ack) and /laptop/voice (proxy) through the
// listener "laptop", which connects with its own key.
const listenerConfig = `
[[routes]]
path = "/sms"
account = "` + accountSID + `"
mode = "ack"
listener = "laptop"

[[routes]]
path = "/laptop/voice"
account = "` + accountSID + `"
mode = "proxy"
listener = "laptop"
budget = "10s"
twiml = "<Response><Say>fallback</Say></Response>"

[[listeners]]
name = "laptop"
key = "` + listenerKey + `"
`

// listenTimeout bounds waiting for a listener's deliveries: 200 webhooks
// through a listener, on a busy machine.
const listenTimeout = 90 * time.Second

// TestListenerGetsWhatItMissed is issue 17's check of switchboard listen:
// while no listener is connected, 200 signed webhooks arrive; a listener
// then connects and the local app (which trusts only twilio-node's
// validateRequest) receives all 200, once each, in order, each valid for
// its local URL. A proxy route through the listener answers a call with
// the app's TwiML, and the fallback while no listener is connected. A
// listener killed mid-stream and started again loses nothing: at least
// once, a repeat carrying the same event id.
func TestListenerGetsWhatItMissed(t *testing.T) {
	forEachStore(t, testListenerGetsWhatItMissed)
}

func testListenerGetsWhatItMissed(t *testing.T, st store) {
	app := startNodeApp(t)
	p := startServe(t, writeConfig(t, config{storage: st.url, extra: listenerConfig}))
	tw := newTwilio(t, p, func(c *sim.Config) { c.Accounts[0].Numbers[0].VoiceURL = publicURL + "/laptop/voice" })

	// No listener: messages wait, and a call gets the fallback (its
	// event waits too, after the messages).
	missed := receiveMany(t, tw, "missed", 200)
	if got := call(t, tw); !strings.Contains(got, "fallback") {
		t.Errorf("call with no listener answered %q, want the fallback", got)
	}

	l := startListener(t, p, app.base)
	connected := time.Now()
	got := waitReceived(t, app, 201) // the messages, and the call's event
	t.Logf("the listener delivered the 201 waiting events within %v of connecting", time.Since(connected).Round(time.Millisecond))
	wantInOrder(t, got[:200], "/sms", missed)
	if last := got[200]; !strings.HasPrefix(last.URL, app.base+"/laptop/voice") || !last.Valid {
		t.Errorf("after the messages the app got %s (valid %v), want the call's webhook", last.URL, last.Valid)
	}
	if got := call(t, tw); !strings.Contains(got, "Hello from the laptop") {
		t.Errorf("call through the listener answered %q, want the app's TwiML", got)
	}

	// Killed mid-stream: the slow app is still answering when the
	// listener dies; the next listener delivers what is left.
	l.kill(t)
	before := len(app.log(t))
	slow := receiveMany(t, tw, "slow", 200)
	l = startListener(t, p, app.base+"/slow/sms")
	waitReceived(t, app, before+30)
	l.kill(t)
	startListener(t, p, app.base+"/slow/sms")
	eventually(t, listenTimeout, func() (bool, string) {
		n := distinctBodies(app.log(t)[before:])
		return n == len(slow), fmt.Sprintf("%d of %d slow messages received", n, len(slow))
	})
	wantAtLeastOnce(t, app.log(t)[before:], slow)
}

// startListener runs switchboard listen as the laptop, forwarding to
// forwardTo, and returns once it is connected.
func startListener(t *testing.T, p *proc, forwardTo string) *proc {
	t.Helper()
	l := launchIn(t, "switchboard listen", "", []string{"SWITCHBOARD_TOKEN=" + listenerKey}, newLogBuffer(listenerReady),
		"listen", "--server", p.url(""), "--listener", "laptop", "--forward-to", forwardTo)
	l.waitListening(t)
	return l
}

// listenerReady reports switchboard listen's line saying it is connected.
func listenerReady(line []byte) string {
	if bytes.Contains(line, []byte("Ready")) {
		return "ready"
	}
	return ""
}

// call places a call to the number and returns what Switchboard answered.
func call(t *testing.T, tw *sim.Sim) string {
	t.Helper()
	res, err := tw.ReceiveCall(t.Context(), sim.InboundCall{From: handset, To: twilioNumber})
	if err != nil || res.Webhook == nil {
		t.Fatalf("inbound call: %v", err)
	}
	return string(res.Webhook.Body)
}

// receiveMany makes n messages happen, each acknowledged, and returns
// their bodies in the order Twilio sent them.
func receiveMany(t *testing.T, tw *sim.Sim, prefix string, n int) []string {
	t.Helper()
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("%s-%03d", prefix, i)
		mustReceive(t, tw, bodies[i])
	}
	return bodies
}

// waitReceived waits until the app has received at least n requests and
// returns them.
func waitReceived(t *testing.T, app *nodeApp, n int) []nodeReceived {
	t.Helper()
	var got []nodeReceived
	eventually(t, listenTimeout, func() (bool, string) {
		got = app.log(t)
		return len(got) >= n, fmt.Sprintf("the app received %d requests, want %d", len(got), n)
	})
	return got
}

// bodyOf is the message text of a form webhook the app received.
func bodyOf(r nodeReceived) string {
	form, _ := url.ParseQuery(r.Body)
	return form.Get("Body")
}

// wantInOrder checks that got are the messages want, once each, in order,
// each valid for the local URL the listener forwarded to.
func wantInOrder(t *testing.T, got []nodeReceived, path string, want []string) {
	t.Helper()
	for i, r := range got {
		if !r.Valid {
			t.Errorf("request %d (%s) failed twilio-node's validateRequest", i, r.URL)
		}
		if !strings.Contains(r.URL, path) {
			t.Errorf("request %d at %s, want the route's path %s on the local app", i, r.URL, path)
		}
		if b := bodyOf(r); i < len(want) && b != want[i] {
			t.Fatalf("request %d is %q, want %q: not in the order Twilio sent them", i, b, want[i])
		}
	}
}

// distinctBodies counts the different messages among got.
func distinctBodies(got []nodeReceived) int {
	seen := map[string]bool{}
	for _, r := range got {
		seen[bodyOf(r)] = true
	}
	return len(seen)
}

// wantAtLeastOnce checks that every message of want arrived, valid, each
// first copy in order, and that any repeat carries its first copy's event
// id.
func wantAtLeastOnce(t *testing.T, got []nodeReceived, want []string) {
	t.Helper()
	eventOf := map[string]string{}
	var firsts []string
	for _, r := range got {
		if !r.Valid {
			t.Errorf("%s failed twilio-node's validateRequest", r.URL)
		}
		b := bodyOf(r)
		id, seen := eventOf[b]
		switch {
		case !seen:
			eventOf[b] = r.EventID
			firsts = append(firsts, b)
		case id != r.EventID:
			t.Errorf("%q delivered again as event %s, first as %s: a repeat must carry the same event id", b, r.EventID, id)
		}
	}
	for i, b := range firsts {
		if i < len(want) && b != want[i] {
			t.Fatalf("message %d first arrived as %q, want %q", i, b, want[i])
		}
	}
	if repeats := len(got) - len(firsts); repeats > 0 {
		t.Logf("%d messages delivered twice across the killed listener (at least once)", repeats)
	}
}
