package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSDKNode runs the SDK scenarios (sdk_test.go) with Twilio's own Node
// library, twilio-node, through testdata/twilio-node/client.js. It skips
// when Node or the library is missing: .ci/run installs both, so CI always
// runs it.
func TestSDKNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (.ci/run installs it): the twilio-node scenarios need it")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "twilio-node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "twilio")); err != nil {
		t.Skip("twilio is not installed for Node (.ci/run runs npm ci in e2e/testdata/twilio-node)")
	}
	forEachStore(t, func(t *testing.T, st store) {
		h := startSDKHarness(t, st)
		runSDKScenarios(t, h, func(t *testing.T, base, user, pass, account string) sdkClient {
			return &nodeClient{node: node, dir: dir, base: base, user: user, pass: pass, account: account}
		})
	})
}

// nodeTimeout bounds one run of client.js, fetch-until's 30 s included.
const nodeTimeout = 60 * time.Second

// nodeClient runs client.js scenarios with one set of credentials: an API
// key's when user is a key SID (SK…), else the account's.
type nodeClient struct {
	node, dir                 string
	base, user, pass, account string
}

// nodeOutput is what client.js prints, around the scenario's own result.
type nodeOutput struct {
	Error    *sdkError `json:"error"`
	Requests []struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"requests"`
}

// run runs a scenario with args, decodes its result into out and returns
// the API's error, if it answered one. Every request the library made must
// have gone to Switchboard.
func (c *nodeClient) run(t *testing.T, scenario string, args map[string]any, out any) *sdkError {
	t.Helper()
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.node, filepath.Join(c.dir, "client.js"), scenario, string(a))
	cmd.Dir = c.dir
	cmd.Env = c.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.js %s: %v\nstderr:\n%s", scenario, err, stderr.String())
	}
	var res nodeOutput
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("node client.js %s printed %q: %v", scenario, stdout.String(), err)
	}
	var urls []string
	for _, r := range res.Requests {
		urls = append(urls, r.URL)
	}
	if u := onlyTo(c.base, urls); u != "" {
		t.Errorf("twilio-node sent a request to %s, not to Switchboard at %s", u, c.base)
	}
	if res.Error != nil {
		return res.Error
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("node client.js %s printed %q: %v", scenario, stdout.String(), err)
	}
	return nil
}

// env is the test's environment without Twilio's variables (TWILIO_EDGE
// and TWILIO_REGION would change the hosts the library calls) and with
// client.js's.
func (c *nodeClient) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TWILIO_") && !strings.HasPrefix(kv, "SWITCHBOARD_") && !strings.HasPrefix(kv, "HTTP_PROXY=") {
			env = append(env, kv)
		}
	}
	env = append(env, "SWITCHBOARD_URL="+c.base, "TWILIO_ACCOUNT_SID="+c.account)
	if strings.HasPrefix(c.user, "SK") {
		return append(env, "TWILIO_API_KEY="+c.user, "TWILIO_API_SECRET="+c.pass)
	}
	return append(env, "TWILIO_AUTH_TOKEN="+c.pass)
}

func (c *nodeClient) create(t *testing.T, to, body, statusCallback string) (sdkMessage, *sdkError) {
	var out struct{ Message sdkMessage }
	e := c.run(t, "create", map[string]any{"to": to, "from": outboundSender, "body": body, "statusCallback": statusCallback}, &out)
	return out.Message, e
}

func (c *nodeClient) createTwice(t *testing.T, to, body string) ([]sdkMessage, *sdkError) {
	var out struct{ Messages []sdkMessage }
	e := c.run(t, "create-twice", map[string]any{"to": to, "from": outboundSender, "body": body}, &out)
	return out.Messages, e
}

func (c *nodeClient) fetch(t *testing.T, sid string) (sdkMessage, *sdkError) {
	var out struct{ Message sdkMessage }
	e := c.run(t, "fetch", map[string]any{"sid": sid}, &out)
	return out.Message, e
}

func (c *nodeClient) fetchUntil(t *testing.T, sid, status string) (sdkMessage, *sdkError) {
	var out struct{ Message sdkMessage }
	e := c.run(t, "fetch-until", map[string]any{"sid": sid, "status": status, "timeoutMs": 30000}, &out)
	return out.Message, e
}

func (c *nodeClient) list(t *testing.T, to string, limit, pageSize int) (sdkPaged, sdkPaged, *sdkError) {
	var out struct{ List, Each sdkPaged }
	e := c.run(t, "list", map[string]any{"to": to, "limit": limit, "pageSize": pageSize}, &out)
	return out.List, out.Each, e
}

func (c *nodeClient) call(t *testing.T, to, from, twimlURL string) (string, *sdkError) {
	var out struct{ Call struct{ SID string } }
	e := c.run(t, "call", map[string]any{"to": to, "from": from, "url": twimlURL}, &out)
	return out.Call.SID, e
}
