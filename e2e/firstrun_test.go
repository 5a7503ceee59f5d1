package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A newcomer's first run, through the real binary: the traps a first
// configuration, a first send and a first exposed server fall into are
// refused with what to do instead, and the README's quick start works as
// written.

// runIn runs a switchboard command in dir (the test process's own when
// empty) with the tests' environment plus env, and returns its stdout, its
// stderr and how it exited.
func runIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(childEnv(), env...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	return outBuf.String(), errBuf.String(), err
}

// mustFail runs a switchboard command that must exit with status 1 having
// printed nothing on stdout, and returns its stderr.
func mustFail(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runIn(t, dir, env, args...)
	if exitCode(err) != 1 || stdout != "" {
		t.Fatalf("switchboard %s: %v, stdout %q, stderr %q; want exit status 1 and nothing on stdout",
			strings.Join(args, " "), err, stdout, stderr)
	}
	return stderr
}

// wantAll fails the test unless s contains every one of substrs.
func wantAll(t *testing.T, what, s string, substrs ...string) {
	t.Helper()
	for _, sub := range substrs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q does not contain %q", what, s, sub)
		}
	}
}

// launchIn is launch in dir (the test's own when empty) with the tests'
// environment plus env.
func launchIn(t *testing.T, name, dir string, env []string, out *logBuffer, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(childEnv(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, cmd.Process.Pid, out.tail(64<<10))
		}
	})
	return p
}

var appListeningLine = regexp.MustCompile(`^app listening on http://(\S+?);`)

// appListening returns the address in sim app's "app listening on" line.
func appListening(line []byte) string {
	if m := appListeningLine.FindSubmatch(line); m != nil {
		return string(m[1])
	}
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceOnce replaces old, which s must contain, with new once.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found in:\n%s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

func TestFirstRunUnknownKeys(t *testing.T) {
	base := readFile(t, writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db"), routes: []route{
		{path: "/sms", target: "http://127.0.0.1:3000/sms"},
		{path: "/status", target: "http://127.0.0.1:3000/status"},
	}}))
	for _, tc := range []struct {
		name   string
		config func(string) string
		want   string
	}{
		{"a route written [[route]]", func(s string) string { return s + "\n[[route]]\npath = \"/voice\"\n" },
			`unknown key "route": did you mean "routes"?`},
		{"a misspelt route key", func(s string) string {
			return replaceOnce(t, s, `target = "http://127.0.0.1:3000/status"`, `targt = "http://127.0.0.1:3000/status"`)
		}, `unknown key "routes[1].targt": did you mean "routes[1].target"?`},
		{"a misspelt table key", func(s string) string {
			return replaceOnce(t, s, "[storage]\nurl =", "[storage]\nur =")
		}, `unknown key "storage.ur": did you mean "storage.url"?`},
		{"a misspelt account key", func(s string) string { return replaceOnce(t, s, "auth_tokens =", "auth_token =") },
			`unknown key "accounts[0].auth_token": did you mean "accounts[0].auth_tokens"?`},
		{"an api key's misspelt key", func(s string) string {
			return replaceOnce(t, s, "\n[[routes]]", "\n[[accounts.api_keys]]\nsid = \"SK1\"\nsecrte = \"x\"\n\n[[routes]]")
		}, `unknown key "accounts[0].api_keys[0].secrte": did you mean "accounts[0].api_keys[0].secret"?`},
		{"a misspelt provider key", func(s string) string {
			return s + fmt.Sprintf("\n[[providers]]\nname = \"p\"\naccount = %q\nbase_ur = \"http://127.0.0.1:3901\"\n", accountSID)
		}, `unknown key "providers[0].base_ur": did you mean "providers[0].base_url"?`},
		{"a misspelt pool key", func(s string) string {
			return s + fmt.Sprintf("\n[[providers]]\nname = \"p\"\naccount = %q\n\n[[pools]]\nname = \"x\"\nprovider = \"p\"\nsenders = [\"+15550001001\"]\nrates = 1\n", accountSID)
		}, `unknown key "pools[0].rates": did you mean "pools[0].rate"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "switchboard.toml")
			writeFile(t, path, tc.config(base))
			for _, cmd := range [][]string{{"serve"}, {"migrate"}} {
				stderr := mustFail(t, "", nil, append(cmd, "--config", path)...)
				wantAll(t, "switchboard "+cmd[0], stderr, tc.want, path)
			}
		})
	}

	t.Run("simulator", func(t *testing.T) {
		sim := readFile(t, writeSimConfig(t, "127.0.0.1:1"))
		path := filepath.Join(t.TempDir(), "sim.toml")
		writeFile(t, path, replaceOnce(t, sim, "[[carriers]]", "[[carrier]]"))
		stderr := mustFail(t, "", nil, "sim", "serve", "--config", path, "--listen", "127.0.0.1:0")
		wantAll(t, "sim serve", stderr, `unknown key "carrier": did you mean "carriers"?`, path)

		writeFile(t, path, replaceOnce(t, sim, "sms_url =", "sms_ulr ="))
		stderr = mustFail(t, "", nil, "sim", "serve", path, "--listen", "127.0.0.1:0")
		wantAll(t, "sim serve", stderr, `unknown key "accounts[0].numbers[0].sms_ulr": did you mean "accounts[0].numbers[0].sms_url"?`)
	})
}

func TestFirstRunPathsRelativeToConfig(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	cfg := filepath.Join(etc, "switchboard.toml")
	writeFile(t, cfg, readFile(t, writeConfig(t, config{storage: "data/sb.db"})))
	elsewhere := filepath.Join(root, "elsewhere")
	if err := os.MkdirAll(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}

	// Run from another directory, with the file named absolutely and
	// relatively: the store is beside the file either way.
	for _, cfgArg := range []string{cfg, filepath.Join("..", "etc", "switchboard.toml")} {
		if out, stderr, err := runIn(t, elsewhere, nil, "migrate", "--config", cfgArg); err != nil || out != "migrations applied\n" {
			t.Fatalf("migrate --config %s: %v, %q, %q", cfgArg, err, out, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(etc, "data", "sb.db")); err != nil {
		t.Errorf("the store is not beside the configuration file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "data")); !os.IsNotExist(err) {
		t.Errorf("a store was created in the working directory: %v", err)
	}

	// The environment's path is the shell's: relative to where it runs.
	if _, stderr, err := runIn(t, elsewhere, []string{"SWITCHBOARD_STORAGE_URL=here/sb.db"}, "migrate", "--config", cfg); err != nil {
		t.Fatalf("migrate with SWITCHBOARD_STORAGE_URL: %v, %s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "here", "sb.db")); err != nil {
		t.Errorf("SWITCHBOARD_STORAGE_URL=here/sb.db is not relative to the working directory: %v", err)
	}
}

func TestFirstRunSimServeConfig(t *testing.T) {
	simCfg := writeSimConfig(t, "127.0.0.1:1")
	start := func(t *testing.T, env []string, args ...string) *proc {
		t.Helper()
		p := launchIn(t, "switchboard sim serve", "", env, newLogBuffer(simListening),
			append([]string{"sim", "serve", "--listen", "127.0.0.1:0"}, args...)...)
		p.waitListening(t)
		p.out.waitFor(t, 10*time.Second, "  number ") // its accounts are printed
		return p
	}

	t.Run("--config", func(t *testing.T) {
		p := start(t, nil, "--config", simCfg)
		wantAll(t, "sim serve --config", p.out.String(), "from "+simCfg, "account "+accountSID, "number "+twilioNumber, "(seed 7,")
	})
	t.Run("the file both ways", func(t *testing.T) {
		rel, err := filepath.Rel(".", simCfg)
		if err != nil {
			rel = simCfg
		}
		p := start(t, nil, simCfg, "--config", rel)
		wantAll(t, "sim serve FILE --config FILE", p.out.String(), "account "+accountSID)
	})
	t.Run("two different files", func(t *testing.T) {
		other := writeSimConfig(t, "127.0.0.1:2")
		stderr := mustFail(t, "", nil, "sim", "serve", simCfg, "--config", other, "--listen", "127.0.0.1:0")
		wantAll(t, "sim serve FILE --config OTHER", stderr, "two configuration files", simCfg, other)
	})
	t.Run("SWITCHBOARD_CONFIG is Switchboard's, not the simulator's", func(t *testing.T) {
		sbCfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db")})
		p := start(t, []string{"SWITCHBOARD_CONFIG=" + sbCfg})
		out := p.out.String()
		wantAll(t, "sim serve with SWITCHBOARD_CONFIG", out, "from the demo configuration")
		if strings.Contains(out, accountSID) {
			t.Errorf("sim serve read $SWITCHBOARD_CONFIG: %q", out)
		}
	})
}

func TestFirstRunSend(t *testing.T) {
	sendArgs := []string{"send", "--key", "k1", "--to", "+15557770001", "--body", "hello"}

	t.Run("no configuration", func(t *testing.T) {
		stderr := mustFail(t, t.TempDir(), nil, sendArgs...)
		wantAll(t, "send without configuration", stderr, "no configuration", "--config", "SWITCHBOARD_CONFIG", "SWITCHBOARD_ADMIN_TOKEN")
	})

	t.Run("no admin token", func(t *testing.T) {
		cfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db")})
		writeFile(t, cfg, replaceOnce(t, readFile(t, cfg), fmt.Sprintf("token = %q", adminToken), `token = ""`))
		stderr := mustFail(t, "", nil, append(sendArgs, "--config", cfg)...)
		wantAll(t, "send with an empty admin token", stderr, "admin.token is empty in "+cfg, "SWITCHBOARD_ADMIN_TOKEN")
	})

	t.Run("nothing listening", func(t *testing.T) {
		r := reservePort(t) // bound, not listening: connections are refused
		cfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db")})
		writeFile(t, cfg, replaceOnce(t, readFile(t, cfg), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", r.addr)))
		stderr := mustFail(t, "", nil, append(sendArgs, "--config", cfg)...)
		wantAll(t, "send with no server", stderr, "nothing listens at http://"+r.addr,
			fmt.Sprintf("listen %q in %s", r.addr, cfg), "switchboard serve --config "+cfg, "--server")

		stderr = mustFail(t, "", nil, append(sendArgs, "--config", cfg, "--server", "http://"+r.addr+"/")...)
		wantAll(t, "send --server with no server", stderr, "nothing listens at http://"+r.addr+"/ (from --server)")
	})

	t.Run("wrong admin token", func(t *testing.T) {
		p := startServe(t, writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db")}))
		cfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db")})
		writeFile(t, cfg, replaceOnce(t, readFile(t, cfg), fmt.Sprintf("token = %q", adminToken), `token = "not-the-one"`))
		stderr := mustFail(t, "", nil, append(sendArgs, "--config", cfg, "--server", p.url(""))...)
		wantAll(t, "send with the wrong token", stderr, p.url("")+" refused the admin token", "401", "admin.token in "+cfg)
		if strings.Contains(stderr, "not-the-one") {
			t.Errorf("send printed the token: %q", stderr)
		}
	})
}

func TestFirstRunServeAdminToken(t *testing.T) {
	configWith := func(t *testing.T, listen, token string) string {
		cfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "sb.db")})
		s := replaceOnce(t, readFile(t, cfg), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", listen))
		writeFile(t, cfg, replaceOnce(t, s, fmt.Sprintf("token = %q", adminToken), fmt.Sprintf("token = %q", token)))
		return cfg
	}
	for _, tc := range []struct{ listen, token string }{
		{"0.0.0.0:0", ""},
		{"0.0.0.0:0", "change-me"},
		{":0", "change-me"},
		{"[::]:0", ""},
	} {
		t.Run(fmt.Sprintf("refused on %s with %q", tc.listen, tc.token), func(t *testing.T) {
			stderr := mustFail(t, "", nil, "serve", "--config", configWith(t, tc.listen, tc.token))
			wantAll(t, "serve", stderr, "refusing to serve", tc.listen, "admin.token", "SWITCHBOARD_ADMIN_TOKEN", `listen = "127.0.0.1:8080"`)
			if strings.Contains(stderr, "switchboard listening") {
				t.Errorf("serve listened: %q", stderr)
			}
		})
	}
	t.Run("the environment's token counts", func(t *testing.T) {
		stderr := mustFail(t, "", []string{"SWITCHBOARD_ADMIN_TOKEN=change-me"}, "serve", "--config", configWith(t, "0.0.0.0:0", "s3cret-of-mine"))
		wantAll(t, "serve", stderr, "refusing to serve")
	})
	t.Run("loopback, example token: a warning", func(t *testing.T) {
		p := startServe(t, configWith(t, "127.0.0.1:0", "change-me"))
		p.out.waitFor(t, 10*time.Second, `"level":"WARN"`, "admin.token is the example's")
		if strings.Contains(p.out.String(), "change-me") {
			t.Errorf("serve logged the token")
		}
	})
	t.Run("every interface, a token of one's own", func(t *testing.T) {
		p := startServe(t, configWith(t, "0.0.0.0:0", "s3cret-of-mine"))
		if strings.Contains(p.out.String(), "admin.token") {
			t.Errorf("serve warned about a token of its own: %s", p.out.String())
		}
	})
}

func TestFirstRunVersion(t *testing.T) {
	// The tests' binary: whatever it records, it says so honestly.
	out := mustCLI(t, "", "version")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "switchboard ") || lines[3] != "built:      unknown" {
		t.Errorf("switchboard version printed %q; want five lines, the build time unknown", out)
	}

	// A release-like build: VCS stamping on and a build time linked in.
	// Where Go can stamp the commit (a git checkout), version prints the
	// one Go recorded, which is the checkout's HEAD.
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "switchboard")
	build := exec.Command("go", "build", "-buildvcs=true",
		"-ldflags", "-X github.com/switchboard-dev/switchboard/cli.buildTime=2026-01-02T03:04:05Z", "-o", bin, "./cmd/switchboard")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		// Outside a checkout (a source archive), -buildvcs=true fails:
		// build without it, and expect no commit.
		build = exec.Command("go", "build", "-buildvcs=false",
			"-ldflags", "-X github.com/switchboard-dev/switchboard/cli.buildTime=2026-01-02T03:04:05Z", "-o", bin, "./cmd/switchboard")
		build.Dir = root
		if out2, err2 := build.CombinedOutput(); err2 != nil {
			t.Fatalf("go build: %v\n%s\n%v\n%s", err, out, err2, out2)
		}
	}
	recorded := map[string]string{}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	for sc := bufio.NewScanner(bytes.NewReader(info)); sc.Scan(); {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "build" {
			if k, v, ok := strings.Cut(f[1], "="); ok {
				recorded[k] = v
			}
		}
	}
	wantCommit, wantTime := "unknown", "unknown"
	if rev := recorded["vcs.revision"]; rev != "" {
		wantCommit, wantTime = rev, recorded["vcs.time"]
		if recorded["vcs.modified"] == "true" {
			wantCommit += "-dirty"
		}
		head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
		if err == nil && strings.TrimSpace(string(head)) != rev {
			t.Errorf("go recorded commit %s; git says HEAD is %s", rev, head)
		}
	}
	cmd := exec.Command(bin, "version")
	cmd.Env = childEnv()
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, want := range []string{"commit:     " + wantCommit + "\n", "committed:  " + wantTime + "\n", "built:      2026-01-02T03:04:05Z\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("version printed:\n%s\nwant a line %q (go recorded %v)", got, want, recorded)
		}
	}
}

// The README's quick start, with the example files as they ship, moved to
// free ports: the simulator, the sample app and the gateway, each its own
// process; traffic from sim traffic delivered to the app with valid
// signatures; a message sent with send and delivered by the simulator,
// its status callbacks reaching the app. SQLite only: it is the example's
// store.
func TestFirstRunQuickStart(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // the clone
	cwd := t.TempDir() // where the commands run: not the files' directory

	app := launchIn(t, "switchboard sim app", cwd, nil, newLogBuffer(appListening),
		"sim", "app", "--auth-token", "primary-auth-token", "--listen", "127.0.0.1:0")
	app.waitListening(t)
	simPort, servePort := reservePort(t), reservePort(t)

	ports := strings.NewReplacer("127.0.0.1:3000", app.addr, "127.0.0.1:3901", simPort.addr, "127.0.0.1:8080", servePort.addr)
	sbExample := readFile(t, filepath.Join(root, "switchboard.example.toml"))
	simExample := readFile(t, filepath.Join(root, "sim.example.toml"))
	for _, addr := range []string{"127.0.0.1:3000", "127.0.0.1:3901", "127.0.0.1:8080"} {
		if !strings.Contains(sbExample+simExample, addr) {
			t.Fatalf("the example files do not mention %s", addr)
		}
	}
	sbCfg, simCfg := filepath.Join(dir, "switchboard.example.toml"), filepath.Join(dir, "sim.example.toml")
	writeFile(t, sbCfg, ports.Replace(sbExample))
	writeFile(t, simCfg, ports.Replace(simExample))

	simPort.free()
	tw := launchIn(t, "switchboard sim serve", cwd, nil, newLogBuffer(simListening),
		"sim", "serve", "--config", simCfg, "--listen", simPort.addr)
	tw.waitListening(t)
	servePort.free()
	sb := launchIn(t, "switchboard serve", cwd, nil, newLogBuffer(switchboardListening), "serve", "--config", sbCfg)
	sb.waitListening(t)
	if _, err := os.Stat(filepath.Join(dir, "switchboard-data", "switchboard.db")); err != nil {
		t.Errorf("the example's store is not beside its file: %v", err)
	}

	out, stderr, err := runIn(t, cwd, nil, "sim", "traffic", "--config", sbCfg, "--route", "/sms", "--rate", "20", "--duration", "1s")
	if err != nil || !strings.Contains(out, "no Twilio errors") {
		t.Fatalf("sim traffic: %v\n%s\n%s", err, out, stderr)
	}
	m := regexp.MustCompile(`sent (\d+): accepted (\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("sim traffic: %q; want every webhook accepted", out)
	}
	var sent int
	fmt.Sscan(m[1], &sent)

	listIn := func(flags ...string) []cliEvent {
		t.Helper()
		stdout, stderr, err := runIn(t, cwd, nil, append([]string{"events", "list", "--config", sbCfg, "--json", "--limit", "500"}, flags...)...)
		if err != nil {
			t.Fatalf("events list: %v\n%s", err, stderr)
		}
		var page struct{ Items []cliEvent }
		if err := json.Unmarshal([]byte(stdout), &page); err != nil {
			t.Fatalf("events list --json: %v\n%s", err, stdout)
		}
		return page.Items
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		events := listIn("--route", "/sms", "--state", "delivered")
		return len(events) == sent, fmt.Sprintf("%d of %d /sms events delivered", len(events), sent)
	})
	if n := strings.Count(app.out.String(), "POST /sms message sid=SM"); n != sent {
		t.Errorf("the app printed %d deliveries on /sms; want %d", n, sent)
	}

	out, stderr, err = runIn(t, cwd, nil, "send", "--config", sbCfg, "--key", "order-1", "--to", "+14155550100",
		"--body", "Your code is 123456", "--purpose", "otp")
	if err != nil || !strings.HasPrefix(out, "accepted: message ") || !strings.HasSuffix(out, ", pool transactional, queued\n") {
		t.Fatalf("send: %v, %q, %q", err, out, stderr)
	}
	// The simulator delivers it (the example's seed makes that outcome
	// fixed), and its callbacks come back through /status to the app.
	app.out.waitFor(t, 30*time.Second, "message-status", "status=sent", "status=delivered")
	eventually(t, 30*time.Second, func() (bool, string) {
		events := listIn("--route", "/status", "--state", "delivered")
		return len(events) >= 2, fmt.Sprintf("%d /status events delivered", len(events))
	})

	appOut := app.out.String()
	if strings.Contains(appOut, "signature=bad") || strings.Contains(appOut, "signature=missing") || strings.Count(appOut, "signature=ok") < sent+2 {
		t.Errorf("the app's signature checks:\n%s\nwant every one ok", appOut)
	}
	for _, private := range []string{"+14155550100", "Your code", "+18885550100"} {
		if strings.Contains(appOut, private) {
			t.Errorf("the app printed %q:\n%s", private, appOut)
		}
	}
	for _, p := range []*proc{sb, tw, app} {
		if _, err := p.stop(t); err != nil {
			t.Errorf("%s after SIGTERM: %v; want exit status 0", p.name, err)
		}
	}
}
