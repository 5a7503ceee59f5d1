package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

// The Twilio account every test's webhooks come from. The first token
// re-signs deliveries; both are accepted on intake.
const (
	accountSID     = "ACe2e00000000000000000000000000000"
	authToken      = "e2e-primary-auth-token"
	secondaryToken = "e2e-secondary-auth-token"
	adminToken     = "e2e-admin-token"

	// publicURL is where Twilio believes Switchboard is; webhooks are
	// signed for it and sent to the loopback address instead.
	publicURL = "https://hooks.example.com"
)

// Time limits for the processes the tests run.
const (
	startTimeout = 20 * time.Second // from exec to "switchboard listening"
	stopTimeout  = 30 * time.Second // from a signal to the process's exit
	cliTimeout   = 30 * time.Second // one CLI command
)

// store is the storage a test runs against.
type store struct {
	name string // "sqlite" or "postgres"
	url  string // storage.url
}

// forEachStore runs test as the subtests "sqlite", with a database file in a
// temporary directory, and "postgres", with a schema of its own (skipped
// unless SWITCHBOARD_TEST_POSTGRES_URL is set).
func forEachStore(t *testing.T, test func(t *testing.T, st store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		test(t, store{name: "sqlite", url: filepath.Join(t.TempDir(), "data", "switchboard.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, store{name: "postgres", url: pgtest.URL(t)})
	})
}

// route is one [[routes]] entry.
type route struct {
	path        string
	target      string
	maxAttempts int    // 0: delivery.max_attempts
	twiml       string // "": the default, <Response/>
	mode        string // "": ack
	budget      time.Duration
}

// pool is one [[pools]] entry, sending through the provider.
type pool struct {
	name     string
	senders  []string
	rate     float64
	purposes []string // nil: every purpose
}

// config is what a test's configuration file says.
type config struct {
	storage string
	routes  []route
	// provider, when set, is the base URL of a [[providers]] entry named
	// "sim" of the test account, which pools send through.
	provider    string
	pools       []pool
	statusRoute string // [outbound] status_route
	// egressAllow is [egress] allow: the internal prefixes status webhooks
	// may reach, such as the tests' own apps on 127.0.0.1.
	egressAllow []string
	redact      bool // [admin] redact
	// dashboardInterval is [admin] dashboard_interval; 0 leaves the
	// default.
	dashboardInterval time.Duration
	// extra is TOML appended to the file as it is, after everything
	// else: further tables such as [alerting] or [[notifiers]].
	extra string
	// adminListen is [admin] listen: the admin endpoints' own address.
	adminListen string
}

// writeConfig writes c as a TOML file in a temporary directory and returns
// its path. Delivery timings are short so that retries happen within a
// test's time.
func writeConfig(t testing.TB, c config) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen = %q\npublic_url = %q\n\n", "127.0.0.1:0", publicURL)
	fmt.Fprintf(&b, "[log]\nlevel = %q\n\n", "info")
	fmt.Fprintf(&b, "[storage]\nurl = %q\n\n", c.storage)
	fmt.Fprintf(&b, "[admin]\ntoken = %q\nredact = %v\n", adminToken, c.redact)
	if c.dashboardInterval > 0 {
		fmt.Fprintf(&b, "dashboard_interval = %q\n", c.dashboardInterval)
	}
	if c.adminListen != "" {
		fmt.Fprintf(&b, "listen = %q\n", c.adminListen)
	}
	b.WriteString("\n")
	b.WriteString(`[delivery]
timeout = "2s"
connect_timeout = "1s"
backoff_base = "50ms"
backoff_max = "500ms"
poll_interval = "20ms"
breaker_open_for = "300ms"
max_attempts = 1000

`)
	fmt.Fprintf(&b, "[[accounts]]\nsid = %q\nauth_tokens = [%q, %q]\n", accountSID, authToken, secondaryToken)
	for _, r := range c.routes {
		mode := r.mode
		if mode == "" {
			mode = "ack"
		}
		fmt.Fprintf(&b, "\n[[routes]]\npath = %q\naccount = %q\nmode = %q\ntarget = %q\n", r.path, accountSID, mode, r.target)
		if r.budget > 0 {
			fmt.Fprintf(&b, "budget = %q\n", r.budget)
		}
		if r.maxAttempts > 0 {
			fmt.Fprintf(&b, "max_attempts = %d\n", r.maxAttempts)
		}
		if r.twiml != "" {
			fmt.Fprintf(&b, "twiml = %q\n", r.twiml)
		}
	}
	if c.provider != "" {
		fmt.Fprintf(&b, "\n[[providers]]\nname = \"sim\"\nbase_url = %q\naccount = %q\n", c.provider, accountSID)
	}
	for _, p := range c.pools {
		fmt.Fprintf(&b, "\n[[pools]]\nname = %q\nprovider = \"sim\"\nrate = %v\nsenders = [", p.name, p.rate)
		for i, n := range p.senders {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", n)
		}
		b.WriteString("]\n")
		if p.purposes != nil {
			fmt.Fprintf(&b, "purposes = [\"%s\"]\n", strings.Join(p.purposes, `", "`))
		}
	}
	if c.statusRoute != "" {
		fmt.Fprintf(&b, "\n[outbound]\nstatus_route = %q\n", c.statusRoute)
	}
	if c.egressAllow != nil {
		fmt.Fprintf(&b, "\n[egress]\nallow = [\"%s\"]\n", strings.Join(c.egressAllow, `", "`))
	}
	if c.extra != "" {
		b.WriteString("\n" + c.extra + "\n")
	}
	path := filepath.Join(t.TempDir(), "switchboard.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is a switchboard process that serves: switchboard serve, or
// switchboard sim serve.
type proc struct {
	name string // such as "switchboard serve", for messages
	cmd  *exec.Cmd
	out  *logBuffer
	addr string // host:port it listens on, once listening

	exited  chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, once exited
}

// startServe runs switchboard serve with the configuration at cfgPath and
// returns once it listens. The process is killed when the test ends, and
// its output logged if the test failed.
func startServe(t *testing.T, cfgPath string, args ...string) *proc {
	t.Helper()
	p := launchServe(t, cfgPath, args...)
	p.waitListening(t)
	return p
}

// launchServe starts switchboard serve without waiting for it to listen;
// call waitListening next.
func launchServe(t *testing.T, cfgPath string, args ...string) *proc {
	t.Helper()
	return launch(t, "switchboard serve", newLogBuffer(switchboardListening), append([]string{"serve", "--config", cfgPath}, args...)...)
}

// launch starts the switchboard binary with args, its output going to out,
// which reports the address it listens on. The process is killed when the
// test ends, and its output logged if the test failed.
func launch(t *testing.T, name string, out *logBuffer, args ...string) *proc {
	t.Helper()
	return launchIn(t, name, "", nil, out, args...)
}

// waitListening waits for the process to log the address it listens on.
func (p *proc) waitListening(t *testing.T) {
	t.Helper()
	select {
	case p.addr = <-p.out.listening:
	case <-p.exited:
		t.Fatalf("%s exited before listening (%v):\n%s", p.name, p.waitErr, p.out.tail(16<<10))
	case <-time.After(startTimeout):
		t.Fatalf("%s not listening after %v:\n%s", p.name, startTimeout, p.out.tail(16<<10))
	}
}

// url returns the URL of path on the process's listener.
func (p *proc) url(path string) string { return "http://" + p.addr + path }

func (p *proc) signal(sig os.Signal) {
	// ErrProcessDone when it has exited already: nothing to do.
	_ = p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and returns how long the process took to exit and how
// it exited (nil for status 0).
func (p *proc) stop(t *testing.T) (took time.Duration, err error) {
	t.Helper()
	start := time.Now()
	p.signal(syscall.SIGTERM)
	p.wait(t)
	return time.Since(start), p.waitErr
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(syscall.SIGKILL)
	p.wait(t)
}

func (p *proc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.signal(syscall.SIGKILL)
		<-p.exited
		t.Fatalf("%s still running %v after the signal; killed it", p.name, stopTimeout)
	}
}

// logBuffer collects a process's output and reports the address in the
// first line that its listening function finds one in.
type logBuffer struct {
	listening   chan string              // receives the listening address once
	listeningOn func(line []byte) string // the address a line announces, or ""

	mu      sync.Mutex
	buf     bytes.Buffer
	scanned int           // bytes of buf already split into lines
	changed chan struct{} // closed and replaced on every write
	found   bool
}

func newLogBuffer(listeningOn func(line []byte) string) *logBuffer {
	return &logBuffer{listening: make(chan string, 1), listeningOn: listeningOn, changed: make(chan struct{})}
}

// switchboardListening returns the address in switchboard serve's
// "switchboard listening" log line.
func switchboardListening(line []byte) string {
	if !bytes.Contains(line, []byte("switchboard listening")) {
		return ""
	}
	var entry struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal(line, &entry) != nil || entry.Msg != "switchboard listening" {
		return ""
	}
	return entry.Addr
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	for !b.found {
		rest := b.buf.Bytes()[b.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		b.scanned += i + 1
		if addr := b.listeningOn(rest[:i]); addr != "" {
			b.found = true
			b.listening <- addr
		}
	}
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// waitFor waits until the output contains every one of substrs.
func (b *logBuffer) waitFor(t *testing.T, timeout time.Duration, substrs ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		out, changed := b.buf.Bytes(), b.changed
		all := true
		for _, s := range substrs {
			all = all && bytes.Contains(out, []byte(s))
		}
		b.mu.Unlock()
		if all {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the process did not log %q within %v", substrs, timeout)
		}
	}
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n bytes of the output, from a line start.
func (b *logBuffer) tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}

// runCLI runs a switchboard command with the configuration at cfgPath
// (none when empty) and returns its stdout, its stderr and how it exited.
func runCLI(t *testing.T, cfgPath string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	if cfgPath != "" {
		args = append(args, "--config", cfgPath)
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = childEnv()
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	return outBuf.String(), errBuf.String(), err
}

// mustCLI runs a switchboard command that must succeed and returns its
// stdout.
func mustCLI(t *testing.T, cfgPath string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCLI(t, cfgPath, args...)
	if err != nil {
		t.Fatalf("switchboard %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// cliEvent is an event as switchboard events list --json and events show
// print it.
type cliEvent struct {
	ID         string `json:"id"`
	Route      string `json:"route"`
	Kind       string `json:"kind"`
	MessageSID string `json:"message_sid"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"last_error"`
}

// listEvents runs switchboard events list --json with extra flags and
// returns the events of the first page.
func listEvents(t *testing.T, cfgPath string, flags ...string) []cliEvent {
	t.Helper()
	out := mustCLI(t, cfgPath, append([]string{"events", "list", "--json", "--limit", "500"}, flags...)...)
	var page struct {
		Items []cliEvent `json:"items"`
		Next  string     `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("events list --json: %v\n%s", err, out)
	}
	return page.Items
}

// eventually polls a condition (an event's state read with the CLI or the
// API, the simulator's messages) every 50 ms until it holds, failing the
// test at the deadline with the last reason it gave.
func eventually(t testing.TB, timeout time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiEvents calls the admin API's GET /api/v1/events with a query.
func apiEvents(t *testing.T, p *proc, query string) []apiEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.url("/api/v1/events?"+query), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/events?%s: status %d", query, resp.StatusCode)
	}
	var page struct {
		Items []apiEvent `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	return page.Items
}

// apiEvent is an event as the admin API shows it.
type apiEvent struct {
	ID         string `json:"id"`
	Route      string `json:"route"`
	Kind       string `json:"kind"`
	MessageSID string `json:"message_sid"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
}
