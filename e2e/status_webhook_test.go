package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sim"
)

// TestStatusWebhookGetsTheCallbacks sends a message with a status_webhook
// through the simulator, which plays Twilio and calls back every status
// change on Switchboard's status route: each callback reaches the route's
// target and, as an event of its own, the message's status webhook, byte
// for byte and signed for the webhook's own URL.
func TestStatusWebhookGetsTheCallbacks(t *testing.T) {
	forEachStore(t, testStatusWebhook)
}

func testStatusWebhook(t *testing.T, st store) {
	tunnel := newLateTunnel(t) // the simulator's callbacks, to the serve process
	tw, err := sim.New(sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers: []sim.Number{{Number: outboundSender, Throughput: 100}},
		}},
		Carriers:  []sim.Carrier{{Latency: sim.Latency{Median: 50 * time.Millisecond, P99: 200 * time.Millisecond}}},
		Transport: tunnel,
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

	target, hook := startApp(t), startApp(t) // the status route's target; the message's status webhook
	cfg := writeConfig(t, config{
		storage:     st.url,
		routes:      []route{{path: "/status", target: target.url("/status")}},
		provider:    srv.URL,
		pools:       []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
		statusRoute: "/status",
		egressAllow: []string{"127.0.0.0/8"}, // the status webhook is a local app
	})
	p := startServe(t, cfg)
	tunnel.to(p.addr)

	hookURL := hook.url("/hooks/status?tenant=e2e")
	status, created := postMessage(t, p, "status-webhook-1",
		fmt.Sprintf(`{"to": "+15557770002", "body": "status webhook test", "status_webhook": %q}`, hookURL))
	if status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/messages = %d, want 202", status)
	}

	// The simulator delivers the message and calls back every status
	// after the first.
	var sid string
	var want []string
	eventually(t, 10*time.Second, func() (bool, string) {
		d := messageDetail(t, p, created.ID)
		sid = d.Message.TwilioSID
		m, ok := tw.Message(sid)
		if !ok {
			return false, "message " + created.ID + " not at the simulator yet (" + d.Message.State + ")"
		}
		want = want[:0]
		for _, h := range m.History[1:] {
			want = append(want, h.Status)
		}
		acked := tunnel.acked(sid)
		return m.Status == sim.StatusDelivered && acked == len(want),
			fmt.Sprintf("at the simulator %s; %d of %d callbacks acknowledged", m.Status, acked, len(want))
	})
	slices.Sort(want)
	if !slices.Contains(want, "sent") || !slices.Contains(want, "delivered") {
		t.Fatalf("the simulator called back %v, want sent and delivered among them", want)
	}

	// Each callback reaches both, as an event of its own at each, naming
	// the message by the SID its app knows it by, the one the create
	// answered (created.SID), with Twilio's beside it in a header.
	ours := (&switchboard.OutboundMessage{ID: created.ID}).SID()
	statuses := func(a *app) (got []string, byEvent map[string]*delivery) {
		byEvent = map[string]*delivery{}
		for _, d := range a.deliveries {
			if d.messageSID == ours && d.status/100 == 2 && byEvent[d.eventID] == nil {
				byEvent[d.eventID] = d
				form, _ := url.ParseQuery(string(d.body))
				got = append(got, form.Get("MessageStatus"))
			}
		}
		slices.Sort(got)
		return got, byEvent
	}
	for _, a := range []struct {
		name string
		app  *app
	}{{"route target", target}, {"status webhook", hook}} {
		a.app.waitFor(t, 10*time.Second, a.name+" gets every callback", func() bool {
			got, _ := statuses(a.app)
			return len(got) >= len(want)
		}, func() string {
			got, _ := statuses(a.app)
			return fmt.Sprintf("got %v, want %v", got, want)
		})
	}

	target.mu.Lock()
	routeGot, routeEvents := statuses(target)
	target.mu.Unlock()
	hook.mu.Lock()
	hookGot, hookEvents := statuses(hook)
	hook.mu.Unlock()
	t.Logf("simulator called back %v; route target got %v; status webhook got %v", want, routeGot, hookGot)
	if !slices.Equal(routeGot, want) || !slices.Equal(hookGot, want) {
		t.Errorf("route target got %v, status webhook got %v; the simulator called back %v", routeGot, hookGot, want)
	}
	for _, events := range []map[string]*delivery{routeEvents, hookEvents} {
		for id, d := range events {
			form, err := url.ParseQuery(string(d.body))
			if err != nil || form.Get("MessageSid") != ours || form.Get("SmsSid") != ours || strings.Contains(string(d.body), sid) {
				t.Errorf("event %s: MessageSid %q SmsSid %q, want %s in each and Twilio's %s nowhere: %s", id,
					form.Get("MessageSid"), form.Get("SmsSid"), ours, sid, d.body)
			}
			if got := d.header.Get("X-Switchboard-Twilio-Sid"); got != sid {
				t.Errorf("event %s: X-Switchboard-Twilio-Sid %q, want Twilio's %s", id, got, sid)
			}
			if strings.Contains(d.requestURI, switchboard.SIDParam) {
				t.Errorf("event %s: delivered to %s, with Switchboard's own parameter", id, d.requestURI)
			}
		}
	}
	var events struct {
		Items []struct {
			ID, Kind   string
			MessageSID string `json:"message_sid"`
		} `json:"items"`
	}
	adminGet(t, p, "/api/v1/events?sid="+ours+"&limit=100", &events)
	if len(events.Items) != len(routeEvents)+len(hookEvents) {
		t.Errorf("events API by %s: %d events, want the %d callbacks delivered", ours, len(events.Items), len(routeEvents)+len(hookEvents))
	}
	for _, ev := range events.Items {
		if ev.MessageSID != ours {
			t.Errorf("events API: event %s names message %s, want %s", ev.ID, ev.MessageSID, ours)
		}
	}
	routeBodies := map[string]bool{}
	for id, d := range routeEvents {
		if hookEvents[id] != nil {
			t.Errorf("event %s delivered to both: the status webhook's copy should be an event of its own", id)
		}
		routeBodies[string(d.body)] = true
		if err := checkSignature(d); err != nil {
			t.Errorf("route target: event %s: %v", id, err)
		}
	}
	for id, d := range hookEvents {
		if !strings.HasPrefix(d.requestURI, "/hooks/status?tenant=e2e") || d.method != http.MethodPost {
			t.Errorf("status webhook: event %s called as %s %s, want POST %s", id, d.method, d.requestURI, hookURL)
		}
		if err := checkSignature(d); err != nil {
			t.Errorf("status webhook: event %s not signed for its own URL: %v", id, err)
		}
		if !routeBodies[string(d.body)] {
			t.Errorf("status webhook: event %s carries a body the route target never got: %q", id, d.body)
		}
	}
}
