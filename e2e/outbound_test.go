package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sim"
)

// The sender the outbound tests' pool sends from, owned by the test
// account at the simulator.
const outboundSender = "+15550001001"

// TestOutboundSendsOnceThroughTheSimulator runs switchboard serve with a
// pool whose provider is the simulator: a message created through the
// native API reaches the simulator exactly once, with Switchboard's status
// route as its StatusCallback, and the same idempotency key again answers
// the same message without sending it again.
func TestOutboundSendsOnceThroughTheSimulator(t *testing.T) {
	forEachStore(t, testOutboundSendsOnce)
}

func testOutboundSendsOnce(t *testing.T, st store) {
	tw, srv := startProvider(t)

	cfg := writeConfig(t, config{
		storage:     st.url,
		routes:      []route{{path: "/status", mode: "static"}},
		provider:    srv.URL,
		pools:       []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
		statusRoute: "/status",
	})
	p := startServe(t, cfg)

	const msg = `{"to": "+15557770001", "body": "Your code is 424242", "purpose": "otp"}`
	status, created := postMessage(t, p, "order-1", msg)
	if status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/messages = %d, want 202: %+v", status, created)
	}
	if created.ID == "" || created.Pool != "main" || created.State != "queued" {
		t.Fatalf("created message = %+v", created)
	}

	var sent apiMessage
	eventually(t, 30*time.Second, func() (bool, string) {
		var d struct {
			Message apiMessage `json:"message"`
		}
		adminGet(t, p, "/api/v1/messages/"+created.ID, &d)
		sent = d.Message
		return sent.State == "sent", "message " + created.ID + " is " + sent.State + ", want sent (last error: " + sent.LastError + ")"
	})
	if sent.TwilioSID == "" || sent.From != outboundSender || sent.Attempts != 1 {
		t.Errorf("sent message = %+v, want a Twilio SID, from %s, one attempt", sent, outboundSender)
	}

	at := tw.Messages(accountSID)
	if len(at) != 1 {
		t.Fatalf("the simulator has %d messages, want 1", len(at))
	}
	m := at[0]
	if m.SID != sent.TwilioSID || m.To != "+15557770001" || m.From != outboundSender || m.Body != "Your code is 424242" {
		t.Errorf("at the simulator: %+v, want the message sent as %s", m, sent.TwilioSID)
	}
	sb := &switchboard.OutboundMessage{ID: created.ID}
	if want := publicURL + "/status?SwitchboardSid=" + sb.SID(); m.StatusCallback != want {
		t.Errorf("StatusCallback = %q, want Switchboard's status route with the message's SID, %q", m.StatusCallback, want)
	}

	status, again := postMessage(t, p, "order-1", msg)
	if status != http.StatusOK || again.ID != created.ID {
		t.Errorf("repeat = %d %+v, want 200 with message %s", status, again, created.ID)
	}
	status, _ = postMessage(t, p, "order-1", strings.Replace(msg, "424242", "000000", 1))
	if status != http.StatusConflict {
		t.Errorf("same key, another payload = %d, want 409", status)
	}
	if n := len(tw.Messages(accountSID)); n != 1 {
		t.Errorf("after the repeat the simulator has %d messages, want still 1", n)
	}
}

// apiMessage is an outbound message as the admin API shows it.
type apiMessage struct {
	ID        string `json:"id"`
	Pool      string `json:"pool"`
	State     string `json:"state"`
	From      string `json:"from"`
	TwilioSID string `json:"twilio_sid"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// postMessage calls POST /api/v1/messages with an idempotency key and
// returns the status and, for a 200 or 202, the message.
func postMessage(t *testing.T, p *proc, key, body string) (int, apiMessage) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url("/api/v1/messages"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /api/v1/messages: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m apiMessage
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("POST /api/v1/messages: %v\n%s", err, b)
		}
	}
	return resp.StatusCode, m
}

// callbackSink is the simulator's webhook transport: it answers every
// status callback 204 without any network.
type callbackSink struct{}

func (callbackSink) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Status: "204 No Content", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(nil)), ContentLength: 0, Request: r}, nil
}

// startProvider starts the simulator as the outbound provider: the e2e
// account owning outboundSender at 100 messages/s, served on loopback.
// Its status callbacks stay in the test process (callbackSink): tests that
// use it do not check their tracking.
func startProvider(t *testing.T) (*sim.Sim, *sim.Server) {
	t.Helper()
	tw := newProviderSim(t)
	srv, err := tw.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return tw, srv
}

// newProviderSim is a simulated Twilio with the tests' account, owning
// outboundSender, whose status callbacks go nowhere. It is closed when
// the test ends.
func newProviderSim(t *testing.T) *sim.Sim {
	t.Helper()
	tw, err := sim.New(sim.Config{
		Seed: 1,
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers: []sim.Number{{Number: outboundSender, Throughput: 100}},
		}},
		Transport: callbackSink{},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	return tw
}
