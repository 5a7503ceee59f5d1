package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	dashboardFile = "grafana/switchboard.json"
	rulesFile     = "prometheus/rules.yml"
)

// dashboardExprs returns every "expr" in the dashboard, wherever it is.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if len(exprs) == 0 {
		t.Fatalf("%s: no expressions", dashboardFile)
	}
	return exprs
}

// loadRules loads rules.yml as Prometheus does, strictly.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	return groups
}

// metricNames are the metric names expr selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("parse %q: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%q selects series by no metric name", expr)
			return nil
		}
		names = append(names, name)
		return nil
	})
	return names
}

// Every expression of the dashboard and the rules parses with Prometheus'
// own parser, and selects only metrics a running binary exports.
func TestPromQLNamesExportedMetrics(t *testing.T) {
	t.Parallel()
	exprs := dashboardExprs(t)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	want := map[string][]string{} // metric name → expressions naming it
	for _, e := range exprs {
		for _, n := range metricNames(t, e) {
			want[n] = append(want[n], e)
		}
	}
	if t.Failed() {
		return
	}
	exported := func(have map[string]bool) []string {
		var missing []string
		for n := range want {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && have[b] {
					base = b
				}
			}
			if !have[base] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		return missing
	}
	bin := startWithTraffic(t)
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		missing = exported(bin.scrape(t))
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // a poll interval
	}
	for _, n := range missing {
		t.Errorf("metric %s is not exported by the binary; used in %q", n, want[n][0])
	}
	t.Logf("serve's log:\n%s", bin.log.String())
}

// Every default alert rule has a Prometheus alert of the same name,
// severity and runbook.
func TestRulesMatchDefaultAlerts(t *testing.T) {
	t.Parallel()
	alerts := map[string]rulefmt.Rule{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("%s: recording rule %q: want alerts only", rulesFile, r.Record)
				continue
			}
			alerts[r.Alert] = r
		}
	}
	for _, d := range switchboard.DefaultAlertRules() {
		r, ok := alerts[d.Name]
		if !ok {
			t.Errorf("default alert %s has no Prometheus alert", d.Name)
			continue
		}
		delete(alerts, d.Name)
		if r.Labels["severity"] != d.Severity {
			t.Errorf("%s: severity %q, want %q", d.Name, r.Labels["severity"], d.Severity)
		}
		if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/runbooks.md#"+d.Runbook) {
			t.Errorf("%s: runbook_url %q, want docs/runbooks.md#%s", d.Name, r.Annotations["runbook_url"], d.Runbook)
		}
		if d.For > 0 && time.Duration(r.For) != d.For {
			t.Errorf("%s: for %v, want %v", d.Name, time.Duration(r.For), d.For)
		}
		if time.Duration(r.KeepFiringFor) != d.ClearFor {
			t.Errorf("%s: keep_firing_for %v, want clear_for %v", d.Name, time.Duration(r.KeepFiringFor), d.ClearFor)
		}
		if w := "[" + model.Duration(d.Window).String() + "]"; d.Condition != switchboard.AlertAckLatency && d.Condition != switchboard.AlertBreakerOpen &&
			!strings.Contains(r.Expr, w) {
			t.Errorf("%s: expression has no %s window: %s", d.Name, w, r.Expr)
		}
	}
	for name := range alerts {
		t.Errorf("Prometheus alert %s is no default alert", name)
	}
}

// Each default alert's runbook anchor is a heading of docs/runbooks.md.
func TestRunbookAnchors(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anchors := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			continue
		}
		anchors[anchorOf(strings.TrimLeft(line, "# "))] = true
	}
	for _, d := range switchboard.DefaultAlertRules() {
		if !anchors[d.Runbook] {
			t.Errorf("alert %s: runbook %q is no heading of docs/runbooks.md", d.Name, d.Runbook)
		}
	}
}

// anchorOf is the anchor GitHub gives a heading: lowercase, spaces as
// hyphens, punctuation other than hyphens and underscores dropped.
func anchorOf(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestAnchorOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"429-storm": "429-storm", "Queue lag": "queue-lag", "Slow acks (p95)": "slow-acks-p95"} {
		if got := anchorOf(in); got != want {
			t.Errorf("anchorOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// running is a switchboard serve process.
type running struct {
	addr string
	log  *syncBuffer
	db   string // the SQLite database's path
}

// syncBuffer is a buffer written by one goroutine and read by another.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const (
	testAccount = "AC00000000000000000000000000000001"
	testToken   = "deploy-test-token"
	publicURL   = "https://hooks.example.com"
	sender      = "+15550001111"
)

// startWithTraffic starts serve on a temporary SQLite store with a route,
// a status route and a pool, and gives it some of each kind of traffic, so
// that the labelled metrics have series: a webhook delivered to an app, a
// message sent through a provider that first answers 429, and its
// delivery receipt.
func startWithTraffic(t *testing.T) *running {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, "<Response/>")
	}))
	t.Cleanup(app.Close)
	var creates atomic.Int64
	const messageSID = "SM0123456789abcdef0123456789abcdef"
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if creates.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"code":20429,"message":"Too Many Requests","status":429}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid":%q,"account_sid":%q,"status":"queued","to":"+15557654321","from":%q}`, messageSID, testAccount, sender)
	}))
	t.Cleanup(provider.Close)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "switchboard.toml")
	body := fmt.Sprintf(`listen = "127.0.0.1:0"
public_url = %q
[storage]
url = "sb.db"
[admin]
token = "secret"
[delivery]
backoff_base = "50ms"
backoff_max = "200ms"
[outbound]
status_route = "/status"
[[accounts]]
sid = %q
auth_tokens = [%q]
[[routes]]
path = "/sms"
account = %q
target = %q
[[routes]]
path = "/status"
account = %q
target = %q
[[providers]]
name = "twilio"
account = %q
base_url = %q
[[pools]]
name = "otp"
provider = "twilio"
senders = [%q]
rate = 10
`, publicURL, testAccount, testToken, testAccount, app.URL+"/sms", testAccount, app.URL+"/status", testAccount, provider.URL, sender)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", cfg)
	cmd.Env = cleanEnv()
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cancel()
			<-done
		}
		cancel()
		pw.Close()
	})
	r := &running{log: &syncBuffer{}, db: filepath.Join(dir, "sb.db")}
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.log.Write(append(sc.Bytes(), '\n'))
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "switchboard listening" {
				addrs <- entry.Addr
			}
		}
	}()
	select {
	case r.addr = <-addrs:
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start listening")
	}

	post := func(path string, form url.Values, req func(*http.Request)) {
		t.Helper()
		q, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+path, strings.NewReader(form.Encode()))
		q.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req(q)
		resp, err := http.DefaultClient.Do(q)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
	}
	signed := func(path string) func(*http.Request) {
		return func(q *http.Request) {
			body, _ := io.ReadAll(q.Body)
			form, _ := url.ParseQuery(string(body))
			q.Body = io.NopCloser(bytes.NewReader(body))
			q.Header.Set("X-Twilio-Signature", twilio.Signature(testToken, publicURL+path, form))
		}
	}
	post("/sms", url.Values{"AccountSid": {testAccount}, "MessageSid": {"SM00000000000000000000000000000001"},
		"From": {"+15557654321"}, "To": {sender}, "Body": {"hello"}}, signed("/sms"))
	post("/2010-04-01/Accounts/"+testAccount+"/Messages.json", url.Values{"From": {sender}, "To": {"+15557654321"}, "Body": {"code 1234"}},
		func(q *http.Request) { q.SetBasicAuth(testAccount, testToken) })
	// The receipt once Twilio (the provider) accepted the message.
	deadline := time.Now().Add(60 * time.Second)
	for creates.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the provider got %d creates, want the 429 and the send\n%s", creates.Load(), r.log)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval
	}
	for time.Now().Before(deadline) {
		q := url.Values{"AccountSid": {testAccount}, "MessageSid": {messageSID}, "SmsSid": {messageSID}, "MessageStatus": {"delivered"},
			"From": {sender}, "To": {"+15557654321"}, "ApiVersion": {"2010-04-01"}}
		post("/status", q, signed("/status"))
		if r.scrape(t)["switchboard_outbound_status_total"] {
			break
		}
		time.Sleep(200 * time.Millisecond) // the send may not be recorded yet: try again
	}
	return r
}

// scrape returns the metric names r exports now.
func (r *running) scrape(t *testing.T) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for n, f := range families {
		if len(f.GetMetric()) > 0 {
			names[n] = true
		}
	}
	return names
}

// cleanEnv is this process's environment without SWITCHBOARD_ variables,
// which would override the test's configuration.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SWITCHBOARD_") })
}
