package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Switchboard between the real binaries: switchboard sim serve plays
// Twilio, over its REST and control APIs, and switchboard sim traffic
// offers load, with nothing from package sim in the test process.
func TestSimulatorBinaries(t *testing.T) {
	forEachStore(t, testSimulatorBinaries)
}

func testSimulatorBinaries(t *testing.T, st store) {
	a := startApp(t)
	cfg := writeConfig(t, config{storage: st.url, routes: []route{
		{path: "/sms", target: a.url("/app/sms")},
		{path: "/status", target: a.url("/app/status")},
	}})
	p := startServe(t, cfg)
	tw := startSim(t, writeSimConfig(t, p.addr))

	// Inbound messages, made to happen through the simulator's control
	// API, reach the app through Switchboard.
	const inbound = 5
	var inboundSIDs []string
	for i := range inbound {
		res := simInbound(t, tw, fmt.Sprintf("inbound %d ✓", i))
		w := res.Webhook
		if w == nil || w.Status != http.StatusOK || w.Error != nil || w.ContentType != "application/xml" || w.Body != "<Response/>" {
			t.Fatalf("inbound message %d: webhook %+v; want <Response/> answered 200 and accepted", i, w)
		}
		inboundSIDs = append(inboundSIDs, res.SID)
	}
	a.waitForSIDs(t, 30*time.Second, inboundSIDs)

	// Outbound messages, created through the REST API, have their status
	// callbacks delivered through Switchboard.
	const outbound = 3
	var outboundSIDs []string
	for i := range outbound {
		outboundSIDs = append(outboundSIDs, simCreateMessage(t, tw, fmt.Sprintf("outbound %d", i)))
	}
	a.waitFor(t, 30*time.Second, "sent and delivered callbacks of every outbound message", func() bool {
		got := callbackStatuses(a)
		for _, sid := range outboundSIDs {
			if !got[sid]["sent"] || !got[sid]["delivered"] {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("callbacks by message: %v", callbackStatuses(a)) })
	for _, sid := range outboundSIDs {
		var m struct{ Status string }
		if status := simAPI(t, tw, http.MethodGet, "/2010-04-01/Accounts/"+accountSID+"/Messages/"+sid+".json", nil, &m); status != http.StatusOK || m.Status != "delivered" {
			t.Errorf("GET message %s: status %d, message %s; want 200, delivered", sid, status, m.Status)
		}
	}

	// Load, straight at Switchboard, signed for its public URL.
	accepted := runTraffic(t, p)

	// Switchboard answered every webhook the way Twilio wants: the
	// debugger log is empty.
	if alerts := simAlerts(t, tw); len(alerts) > 0 {
		t.Errorf("Twilio's debugger logged %d alerts, first %+v; want none", len(alerts), alerts[0])
	}

	// Every message reached the app once, re-signed for its URL.
	checkDrained(t, cfg, 30*time.Second)
	a.mu.Lock()
	deliveries := append([]*delivery(nil), a.deliveries...)
	smsSIDs := map[string]int{}
	for _, d := range deliveries {
		if err := checkSignature(d); err != nil {
			t.Errorf("%s %s: X-Twilio-Signature: %v", d.method, d.requestURI, err)
		}
		if d.requestURI == "/app/sms" {
			smsSIDs[d.messageSID]++
		}
	}
	for id, n := range a.byEvent {
		if n != 1 {
			t.Errorf("event %s delivered %d times; want once", id, n)
		}
	}
	a.mu.Unlock()
	for _, sid := range inboundSIDs {
		if smsSIDs[sid] != 1 {
			t.Errorf("inbound message %s delivered %d times; want once", sid, smsSIDs[sid])
		}
	}
	for sid, n := range smsSIDs {
		if n != 1 {
			t.Errorf("message %s delivered %d times; want once", sid, n)
		}
	}
	if got, want := len(smsSIDs), inbound+accepted; got != want {
		t.Errorf("app got %d distinct messages on /sms; want %d inbound and %d from sim traffic", got, inbound, accepted)
	}

	// With Switchboard gone, Twilio cannot connect: 11205, in the
	// debugger log too.
	if _, err := p.stop(t); err != nil {
		t.Errorf("switchboard serve after SIGTERM: %v; want exit status 0", err)
	}
	res := simInbound(t, tw, "nobody home")
	if w := res.Webhook; w == nil || w.Error == nil || w.Error.Code != twilio.CodeHTTPConnectionFailure || !strings.Contains(w.Error.Reason, "connection refused") {
		t.Errorf("inbound message with Switchboard stopped: webhook %+v; want error 11205, connection refused", w)
	}
	alerts := simAlerts(t, tw)
	if len(alerts) != 1 || alerts[0].ErrorCode != "11205" || alerts[0].ResourceSID != res.SID || alerts[0].RequestURL != publicURL+"/sms" {
		t.Errorf("Twilio's debugger log: %+v; want one 11205 alert for %s at %s", alerts, res.SID, publicURL+"/sms")
	}
}

// writeSimConfig writes switchboard sim serve's configuration: the tests'
// account, owning twilioNumber (sending 100 segments a second) whose SMS
// URL is publicURL+"/sms", webhooks for publicURL going to switchboard,
// and carriers that deliver every message 20 ms after it is sent.
func writeSimConfig(t *testing.T, switchboard string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed = 7\n\n[tunnels]\n%q = %q\n\n", publicURL, "http://"+switchboard)
	fmt.Fprintf(&b, "[[accounts]]\nsid = %q\nauth_tokens = [%q]\n\n", accountSID, authToken)
	fmt.Fprintf(&b, "  [[accounts.numbers]]\n  number = %q\n  type = \"long-code\"\n  throughput = 100\n  sms_url = %q\n\n",
		twilioNumber, publicURL+"/sms")
	b.WriteString("[[carriers]]\nprefix = \"\"\nlatency = { median = \"20ms\", p99 = \"20ms\" }\n")
	path := filepath.Join(t.TempDir(), "sim.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSim runs switchboard sim serve with the configuration at cfgPath on
// a free loopback port and returns once it listens.
func startSim(t *testing.T, cfgPath string) *proc {
	t.Helper()
	p := launch(t, "switchboard sim serve", newLogBuffer(simListening), "sim", "serve", cfgPath, "--listen", "127.0.0.1:0")
	p.waitListening(t)
	return p
}

var simListeningLine = regexp.MustCompile(`^sim listening on http://(\S+)`)

// simListening returns the address in sim serve's "sim listening on" line.
func simListening(line []byte) string {
	if m := simListeningLine.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	return ""
}

// simAPI calls the simulator's API as the tests' account, with a form if
// not nil, decodes the JSON answer into out and returns its status.
func simAPI(t *testing.T, tw *proc, method, path string, form url.Values, out any) int {
	t.Helper()
	var body io.Reader = http.NoBody
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, tw.url(path), body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(accountSID, authToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s %s: status %d: %v\n%s", method, path, resp.StatusCode, err, data)
	}
	return resp.StatusCode
}

// simInboundResult is the control API's answer to an inbound message.
type simInboundResult struct {
	SID     string `json:"sid"`
	Webhook *struct {
		Status      int                 `json:"status"`
		ContentType string              `json:"content_type"`
		Body        string              `json:"body"`
		Tries       int                 `json:"tries"`
		Error       *twilio.AnswerError `json:"error"`
	} `json:"webhook"`
}

// simInbound makes a message from handset to twilioNumber happen through
// the control API.
func simInbound(t *testing.T, tw *proc, body string) simInboundResult {
	t.Helper()
	var res simInboundResult
	form := url.Values{"From": {handset}, "To": {twilioNumber}, "Body": {body}}
	if status := simAPI(t, tw, http.MethodPost, "/sim/v1/Accounts/"+accountSID+"/InboundMessages", form, &res); status != http.StatusCreated || res.SID == "" {
		t.Fatalf("POST InboundMessages: status %d, %+v; want 201 and a MessageSid", status, res)
	}
	return res
}

// simCreateMessage sends a message from twilioNumber to handset through
// the REST API, with its status callbacks going to publicURL+"/status",
// and returns its SID.
func simCreateMessage(t *testing.T, tw *proc, body string) string {
	t.Helper()
	var m struct{ SID, Status string }
	form := url.Values{"From": {twilioNumber}, "To": {handset}, "Body": {body}, "StatusCallback": {publicURL + "/status"}}
	if status := simAPI(t, tw, http.MethodPost, "/2010-04-01/Accounts/"+accountSID+"/Messages.json", form, &m); status != http.StatusCreated || m.SID == "" {
		t.Fatalf("POST Messages.json: status %d, %+v; want 201 and a MessageSid", status, m)
	}
	return m.SID
}

// simAlert is an entry of the simulator's debugger log.
type simAlert struct {
	ErrorCode   string `json:"error_code"`
	AlertText   string `json:"alert_text"`
	RequestURL  string `json:"request_url"`
	ResourceSID string `json:"resource_sid"`
}

// simAlerts returns the simulator's debugger log, newest first.
func simAlerts(t *testing.T, tw *proc) []simAlert {
	t.Helper()
	var page struct{ Alerts []simAlert }
	if status := simAPI(t, tw, http.MethodGet, "/v1/Alerts", nil, &page); status != http.StatusOK {
		t.Fatalf("GET /v1/Alerts: status %d", status)
	}
	return page.Alerts
}

// callbackStatuses returns the statuses of the status callbacks the app
// took, by MessageSid. a.mu must be held.
func callbackStatuses(a *app) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, d := range a.deliveries {
		if d.requestURI != "/app/status" || d.status >= 300 {
			continue
		}
		form, err := url.ParseQuery(string(d.body))
		if err != nil {
			continue
		}
		if out[d.messageSID] == nil {
			out[d.messageSID] = map[string]bool{}
		}
		out[d.messageSID][form.Get("MessageStatus")] = true
	}
	return out
}

// runTraffic runs switchboard sim traffic against Switchboard at p, fails
// the test unless every request it sent was accepted, and returns how many
// were.
func runTraffic(t *testing.T, p *proc) int {
	t.Helper()
	out := mustCLI(t, "", "sim", "traffic",
		"--target", p.url("/sms"), "--signed-url", publicURL+"/sms",
		"--account-sid", accountSID, "--auth-token", authToken,
		"--kind", "sms", "--rate", "200", "--duration", "2s")
	m := trafficSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sim traffic printed no summary:\n%s", out)
	}
	sent, _ := strconv.Atoi(m[1])
	accepted, _ := strconv.Atoi(m[2])
	if sent == 0 || accepted != sent || m[3] != "no Twilio errors" || m[4] != fmt.Sprintf(" 200×%d", sent) {
		t.Fatalf("sim traffic: sent %d, accepted %d, %s, HTTP%s; want every request answered 200 and accepted:\n%s",
			sent, accepted, m[3], m[4], out)
	}
	t.Logf("switchboard sim traffic:\n%s", out)
	return accepted
}

// trafficSummary matches sim traffic's counts: sent, accepted, Twilio's
// errors and the HTTP statuses.
var trafficSummary = regexp.MustCompile(`sent (\d+): accepted (\d+), (no Twilio errors|Twilio errors[^;]*); HTTP((?: \d+×\d+)*)`)
