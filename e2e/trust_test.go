package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// nodeApp is an application that trusts only what Twilio's own Node
// library validates (testdata/twilio-node/app.js): twilio.validateRequest
// for forms and GETs, twilio.validateRequestWithBody for bodySHA256.
type nodeApp struct {
	base string // http://127.0.0.1:PORT
}

// nodeReceived is one request as the Node app saw and judged it.
type nodeReceived struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Body    string            `json:"body"`
	Valid   bool              `json:"valid"`
	Params  map[string]any    `json:"params"`
	EventID string            `json:"event_id"`
	Extra   map[string]string `json:"-"`
}

// startNodeApp runs the Node app with the account's first token. It skips
// the test when Node or the twilio package is missing: .ci/run installs
// both, so CI always runs it.
func startNodeApp(t *testing.T) *nodeApp {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (.ci/run installs it): the check with Twilio's own validator needs it")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "twilio-node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "twilio")); err != nil {
		t.Skip("twilio is not installed for the Node app (.ci/run runs npm ci in e2e/testdata/twilio-node)")
	}
	cmd := exec.Command(node, filepath.Join(dir, "app.js"), authToken)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node app: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				ready <- port
				return
			}
		}
	}()
	select {
	case port := <-ready:
		return &nodeApp{base: "http://127.0.0.1:" + port}
	case <-time.After(startTimeout):
		t.Fatal("the node app did not start")
		return nil
	}
}

func (a *nodeApp) url(path string) string { return a.base + path }

func (a *nodeApp) log(t *testing.T) []nodeReceived {
	t.Helper()
	resp, err := client.Get(a.base + "/log")
	if err != nil {
		t.Fatalf("node app log: %v", err)
	}
	defer resp.Body.Close()
	var got []nodeReceived
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("node app log: %v", err)
	}
	return got
}

// sendAs sends a webhook to Switchboard with the given signature and
// headers, as an attacker holding a captured signature would, and returns
// the status.
func sendAs(t *testing.T, p *proc, method, target, contentType, body, signature string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, p.url(target), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Twilio-Signature", signature)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestForgedContentNeverReachesTheApp is the adversarial review's
// laundering attack, checked where it matters: at an app that validates
// with Twilio's own library. One captured signature over a bare URL (a GET
// webhook, or a POST to a URL with a query) must not carry a body of the
// attacker's past Switchboard, in ack or proxy mode; and replays of one
// signed request with varied unsigned headers reach the app once.
func TestForgedContentNeverReachesTheApp(t *testing.T) {
	forEachStore(t, testForgedContent)
}

func testForgedContent(t *testing.T, st store) {
	app := startNodeApp(t)
	cfg := writeConfig(t, config{storage: st.url, routes: []route{
		{path: "/sms", target: app.url("/sms")},
		{path: "/voice-live", target: app.url("/voice"), mode: "proxy", budget: 3 * time.Second},
	}})
	p := startServe(t, cfg)

	// Genuine traffic: a GET webhook and a form POST.
	getTarget := "/sms?MessageSid=SMget0000000000000000000000000001&Body=hello"
	getSig := twilio.Signature(authToken, publicURL+getTarget, nil)
	if got := sendAs(t, p, http.MethodGet, getTarget, "", "", getSig, nil); got != http.StatusOK {
		t.Fatalf("genuine GET: %d", got)
	}
	form := "MessageSid=SMpost000000000000000000000000001&AccountSid=" + accountSID + "&From=%2B15550001111&Body=hello"
	formSig := signature(t, authToken, publicURL+"/sms", []byte(form))
	if got := sendAs(t, p, http.MethodPost, "/sms", "application/x-www-form-urlencoded", form, formSig, nil); got != http.StatusOK {
		t.Fatalf("genuine POST: %d", got)
	}
	voiceTarget := "/voice-live?CallSid=CAget00000000000000000000000000001"
	voiceSig := twilio.Signature(authToken, publicURL+voiceTarget, nil)

	// Forgeries on the captured URL signatures.
	forged := url.Values{"MessageSid": {"SMforged0000000000000000000000001"}, "Body": {"forged"}, "From": {"+15550002222"}}.Encode()
	attacks := []struct {
		name, method, target, contentType, body, sig string
	}{
		{"GETWithFormBody", http.MethodGet, getTarget, "application/x-www-form-urlencoded", forged, getSig},
		{"POSTFormAsText", http.MethodPost, getTarget, "text/plain", forged, getSig},
		{"POSTJSONWithoutBodySHA256", http.MethodPost, getTarget, "application/json", `{"Body":"forged","twi_message_id":"WBforged"}`, getSig},
		{"ProxyGETWithFormBody", http.MethodGet, voiceTarget, "application/x-www-form-urlencoded", forged, voiceSig},
		{"ProxyPOSTJSONWithoutBodySHA256", http.MethodPost, voiceTarget, "application/json", `{"Digits":"forged"}`, voiceSig},
	}
	for _, a := range attacks {
		if got := sendAs(t, p, a.method, a.target, a.contentType, a.body, a.sig, nil); got != http.StatusForbidden {
			t.Errorf("%s: Switchboard answered %d, want 403", a.name, got)
		}
	}
	// Replays of the genuine POST with unsigned parts varied.
	for i, h := range []map[string]string{
		{"I-Twilio-Idempotency-Token": "attacker-1"},
		{"I-Twilio-Idempotency-Token": "attacker-2", "User-Agent": "TwilioProxy/1.1"},
		{},
	} {
		if got := sendAs(t, p, http.MethodPost, "/sms", "application/x-www-form-urlencoded", form, formSig, h); got != http.StatusOK {
			t.Errorf("replay %d: %d, want 200 (answered as a duplicate)", i, got)
		}
	}
	// The genuine proxy GET, so the app has been reached on that route too.
	if got := sendAs(t, p, http.MethodGet, voiceTarget, "", "", voiceSig, nil); got != http.StatusOK {
		t.Fatalf("genuine proxy GET: %d", got)
	}

	var got []nodeReceived
	eventually(t, 30*time.Second, func() (bool, string) {
		got = app.log(t)
		return len(got) >= 3, fmt.Sprintf("the app received %d requests, want the 3 genuine ones", len(got))
	})
	// Nothing else arrives: every event is delivered, none is pending.
	checkDrained(t, cfg, 30*time.Second)
	got = app.log(t)
	perMessage := map[string]int{}
	for _, r := range got {
		if !r.Valid {
			t.Errorf("the app's Twilio validator refused %s %s: a delivery Switchboard signed badly", r.Method, r.URL)
		}
		if strings.Contains(r.Body, "forged") || strings.Contains(r.URL, "forged") {
			t.Errorf("forged content reached the app (validator said valid=%v): %s %s %q", r.Valid, r.Method, r.URL, r.Body)
		}
		perMessage[r.EventID]++
	}
	if len(got) != 3 {
		t.Errorf("the app received %d requests, want 3 (one per genuine webhook): %+v", len(got), got)
	}
	for id, n := range perMessage {
		if n > 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
}
