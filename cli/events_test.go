package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/web"
)

// storeFixture is a SQLite store holding a few events and messages, the
// admin API serving it, and configuration files naming it.
type storeFixture struct {
	store    *sqlite.Store
	cfg      string // admin.redact off
	redacted string // admin.redact on
	api      func(redact bool, path string) string

	form, json, binary string // events: a form body, a JSON body, a non-UTF-8 body
	failed, accepted   string // messages: failed and never accepted; accepted by Twilio
}

var fixtureAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// formBody is a webhook's form: a multi-line text, a phone number, and a
// terminal escape sequence a sender could put in a message.
const formBody = "MessageSid=SMform1&From=%2B15551234567&Body=caf%C3%A9+%26+more%0Aline+two&Evil=%1B%5B2J%1B%5D0%3Bpwned%07"

func newStoreFixture(t *testing.T) *storeFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sb.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &storeFixture{store: s}

	form := storetest.NewItem("/sms", "form", fixtureAt)
	form.Request.Body = []byte(formBody)
	jsonItem := storetest.NewItem("/events", "json", fixtureAt.Add(time.Second))
	jsonItem.Request.Header.Set("Content-Type", "application/json")
	jsonItem.Request.Body = []byte(`{"a":1,"b":[2,3]}`)
	binary := storetest.NewItem("/sms", "binary", fixtureAt.Add(2*time.Second))
	binary.Request.Header.Set("Content-Type", "application/octet-stream")
	binary.Request.Body = []byte{0xff, 0xfe, 0x00, 'x'}
	if err := s.Ingest(ctx, []*switchboard.Ingest{form, jsonItem, binary}); err != nil {
		t.Fatal(err)
	}
	f.form, f.json, f.binary = form.Event.ID, jsonItem.Event.ID, binary.Event.ID
	if err := s.RecordAttempts(ctx, []*switchboard.AttemptResult{{
		Attempt: switchboard.Attempt{EventID: f.form, Number: 1, StartedAt: fixtureAt.Add(time.Minute), TargetURL: "http://app.example/sms?k=v",
			StatusCode: 410, Latency: 1500 * time.Microsecond, ErrorClass: "http-status", TwilioCode: 11200, Error: "HTTP 410 Gone",
			ResponseExcerpt: []byte("gone")},
		State: switchboard.StateDead, Attempts: 1,
	}}); err != nil {
		t.Fatal(err)
	}

	failed := storetest.NewMessage("failed", "+15557654321", fixtureAt)
	accepted := storetest.NewMessage("accepted", "+15557654322", fixtureAt.Add(time.Second))
	for _, m := range []*switchboard.OutboundMessage{failed, accepted} {
		if _, err := s.CreateMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	f.failed, f.accepted = failed.ID, accepted.ID
	for _, r := range []switchboard.SendResult{
		{MessageID: failed.ID, Attempts: 1, State: switchboard.MessageFailed, ErrorCode: 21211, Error: "invalid To", At: fixtureAt.Add(time.Minute)},
		{MessageID: accepted.ID, Attempts: 1, State: switchboard.MessageSent, TwilioSID: "SMaccepted", TwilioStatus: "queued", At: fixtureAt.Add(time.Minute)},
	} {
		if err := s.RecordSend(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	write := func(name string, redact bool) string {
		p := filepath.Join(dir, name)
		toml := fmt.Sprintf("[storage]\nurl = %q\n[admin]\ntoken = \"t\"\nredact = %v\n", path, redact)
		if err := os.WriteFile(p, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.cfg, f.redacted = write("plain.toml", false), write("redacted.toml", true)

	servers := map[bool]*httptest.Server{}
	for _, redact := range []bool{false, true} {
		var opts []web.Option
		if redact {
			opts = append(opts, web.WithRedaction())
		}
		servers[redact] = httptest.NewServer(web.New(s, "t", nil, nil, opts...))
		t.Cleanup(servers[redact].Close)
	}
	f.api = func(redact bool, path string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, servers[redact].URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	return f
}

// run runs a command line and returns its stdout and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &CLI{Stdout: &out, Stderr: &errOut}
	err := c.Run(t.Context(), args)
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("switchboard %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// The JSON the commands print is, byte for byte, what the admin API
// answers for the same records, with and without admin.redact.
func TestJSONIsTheAdminAPIs(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	for _, redact := range []bool{false, true} {
		cfg := f.cfg
		if redact {
			cfg = f.redacted
		}
		for _, tc := range []struct {
			args []string
			path string
		}{
			{[]string{"events", "list", "--json"}, "/api/v1/events"},
			{[]string{"events", "list", "--json", "--route", "/sms", "--state", "dead"}, "/api/v1/events?route=/sms&state=dead"},
			{[]string{"events", "list", "--json", "--limit", "1"}, "/api/v1/events?limit=1"},
			{[]string{"events", "show", "--json", f.form}, "/api/v1/events/" + f.form},
			{[]string{"events", "show", "--json", f.binary}, "/api/v1/events/" + f.binary},
			{[]string{"messages", "list", "--json"}, "/api/v1/messages"},
			{[]string{"messages", "list", "--json", "--state", "failed"}, "/api/v1/messages?state=failed"},
			{[]string{"messages", "list", "--json", "--to", "+15557654322"}, "/api/v1/messages?to=%2B15557654322"},
			{[]string{"messages", "show", "--json", f.accepted}, "/api/v1/messages/" + f.accepted},
		} {
			t.Run(fmt.Sprintf("redact=%v/%s", redact, strings.Join(tc.args[:2], " ")), func(t *testing.T) {
				got := mustRun(t, append(tc.args, "--config", cfg)...)
				if want := f.api(redact, tc.path); got != want {
					t.Errorf("switchboard %s printed\n%s\nGET %s answers\n%s", strings.Join(tc.args, " "), got, tc.path, want)
				}
				for _, leak := range []string{"café", "+15551234567", "Your code is"} {
					if redact && strings.Contains(got, leak) {
						t.Errorf("under admin.redact, %s printed %q", strings.Join(tc.args, " "), leak)
					}
				}
				if strings.Contains(got, "0001-01-01") {
					t.Errorf("a zero time was printed:\n%s", got)
				}
			})
		}
	}
}

func TestEventsShow(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)

	t.Run("form body", func(t *testing.T) {
		out := mustRun(t, "events", "show", "--config", f.cfg, f.form)
		for _, want := range []string{
			"Event " + f.form + "\n",
			"  state            dead\n",
			"  created          2026-11-01T12:00:00.000Z\n",
			"\nHeaders\n  Content-Type: application/x-www-form-urlencoded\n",
			// One parameter a line, in order, decoded; the second line of
			// the text stays under its key.
			"\nBody\n  MessageSid: SMform1\n  From: +15551234567\n  Body: café & more\n      line two\n",
			// The escape sequences are shown, not played.
			`  Evil: \x1b[2J\x1b]0;pwned\a` + "\n",
			"  #  STARTED                   STATUS  LATENCY  TWILIO  ERROR\n",
			"  1  2026-11-01T12:01:00.000Z  410     1.5 ms   11200   HTTP 410 Gone\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("events show: no %q in\n%s", want, out)
			}
		}
		// A dead event has no next attempt, nor a delivery time: zero
		// times are left out, not shown as year 1.
		for _, unwanted := range []string{"\x1b", "\a", "next attempt", "delivered ", "0001-01-01"} {
			if strings.Contains(out, unwanted) {
				t.Errorf("events show: %q in\n%s", unwanted, out)
			}
		}
	})

	t.Run("json body", func(t *testing.T) {
		out := mustRun(t, "events", "show", "--config", f.cfg, f.json)
		if want := "\nBody\n  {\n    \"a\": 1,\n    \"b\": [\n      2,\n      3\n    ]\n  }\n"; !strings.Contains(out, want) {
			t.Errorf("events show: no %q in\n%s", want, out)
		}
		if !strings.Contains(out, "\nAttempts\n  none yet\n") {
			t.Errorf("events show of an event never attempted:\n%s", out)
		}
	})

	t.Run("binary body", func(t *testing.T) {
		out := mustRun(t, "events", "show", "--config", f.cfg, f.binary)
		if want := "\nBody\n  (4 bytes, not UTF-8; base64:)\n  //4AeA==\n"; !strings.Contains(out, want) {
			t.Errorf("events show: no %q in\n%s", want, out)
		}
	})

	t.Run("redacted", func(t *testing.T) {
		out := mustRun(t, "events", "show", "--config", f.redacted, f.form)
		if !strings.Contains(out, "\nBody\n  [redacted]\n") {
			t.Errorf("events show under admin.redact: body not redacted:\n%s", out)
		}
		for _, leak := range []string{"café", "+15551234567", "MessageSid: "} {
			if strings.Contains(out, leak) {
				t.Errorf("events show under admin.redact printed %q:\n%s", leak, out)
			}
		}
	})

	t.Run("unknown event", func(t *testing.T) {
		if _, err := run(t, "events", "show", "--config", f.cfg, "01a20000-0000-7000-8000-000000000000"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("events show of an unknown id: %v; want not found", err)
		}
	})
}

func TestEventsList(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	out := mustRun(t, "events", "list", "--config", f.cfg)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("events list: %d lines; want a header and 3 events:\n%s", len(lines), out)
	}
	// Columns line up: every row starts its CREATED column where the
	// header does.
	col := strings.Index(lines[0], "CREATED")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "2026-11-01T12:00:0") {
			t.Errorf("row not aligned under CREATED:\n%s", out)
		}
	}
	if !strings.Contains(lines[3], "dead") || !strings.Contains(lines[3], "HTTP 410 Gone") || !strings.Contains(lines[3], "SMform") {
		t.Errorf("oldest row %q; want the dead form event with its error", lines[3])
	}
	if out := mustRun(t, "events", "list", "--config", f.cfg, "--limit", "1"); !strings.Contains(out, "\nmore: --cursor ") {
		t.Errorf("events list --limit 1 does not say how to go on:\n%s", out)
	}
	if out := mustRun(t, "events", "list", "--config", f.cfg, "--route", "/nope"); !strings.Contains(out, "no events\n") {
		t.Errorf("events list of nothing:\n%s", out)
	}
	for _, args := range [][]string{{"--state", "lost"}, {"--kind", "fax"}, {"--since", "yesterday"}} {
		if _, err := run(t, append([]string{"events", "list", "--config", f.cfg}, args...)...); err == nil {
			t.Errorf("events list %v: no error", args)
		}
	}
}

func TestReplayDryRun(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--state", "dead"}, "dry run: would schedule 1 deliveries (nothing scheduled)\n  " + f.form + "\n"},
		{[]string{"--route", "/events"}, "dry run: would schedule 0 deliveries (nothing scheduled)\n"},
		{[]string{f.form}, "dry run: would schedule 1 deliveries (nothing scheduled)\n  " + f.form + "\n"},
		{[]string{f.json}, "dry run: would schedule 0 deliveries (nothing scheduled)\n"}, // still pending
	} {
		out := mustRun(t, append([]string{"replay", "--dry-run", "--config", f.cfg}, tc.args...)...)
		if out != tc.want {
			t.Errorf("replay --dry-run %v printed %q; want %q", tc.args, out, tc.want)
		}
	}
	ev, err := f.store.Event(t.Context(), f.form)
	if err != nil || ev.State != switchboard.StateDead {
		t.Fatalf("after dry runs the dead event is %v, %v; want still dead", ev.State, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "replay needs an event id"},
		{[]string{"--state", "pending"}, "only delivered or dead"},
		{[]string{"01a20000-0000-7000-8000-000000000000"}, "not found"},
	} {
		if _, err := run(t, append([]string{"replay", "--dry-run", "--config", f.cfg}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay --dry-run %v: %v; want %q", tc.args, err, tc.want)
		}
	}
	if out := mustRun(t, "replay", "--config", f.cfg, "--state", "dead"); out != "scheduled 1 deliveries\n" {
		t.Errorf("replay --state dead printed %q", out)
	}
}

func TestDryRunText(t *testing.T) {
	for _, tc := range []struct {
		matched int
		sample  []string
		want    string
	}{
		{0, nil, "dry run: would schedule 0 deliveries (nothing scheduled)\n"},
		{2, []string{"a", "b"}, "dry run: would schedule 2 deliveries (nothing scheduled)\n  a\n  b\n"},
		{7, []string{"a", "b"}, "dry run: would schedule 7 deliveries (nothing scheduled)\n  a\n  b\n  ... and 5 more\n"},
	} {
		if got := dryRunText(tc.matched, tc.sample); got != tc.want {
			t.Errorf("dryRunText(%d, %v) = %q; want %q", tc.matched, tc.sample, got, tc.want)
		}
	}
}

// Commands that read a store never make one: a missing file is an error
// naming it, and stays missing.
func TestReadCommandsNeverCreateAStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "missing.db")
	cfg := filepath.Join(dir, "switchboard.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "[storage]\nurl = %q\n", path), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"events", "list"},
		{"events", "show", "01a20000-0000-7000-8000-000000000000"},
		{"replay", "--state", "dead"},
		{"replay", "--dry-run", "--state", "dead"},
		{"messages", "list"},
		{"messages", "show", "01a20000-0000-7000-8000-000000000000"},
		{"messages", "replay", "01a20000-0000-7000-8000-000000000000"},
	} {
		_, err := run(t, append(args, "--config", cfg)...)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--config") {
			t.Errorf("switchboard %s: %v; want an error naming %s and --config", strings.Join(args, " "), err, path)
		}
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("after the read commands, stat %s: %v; want it never created", filepath.Dir(path), err)
	}
}

func TestBodyLines(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		want                    []string
	}{
		{"form", "application/x-www-form-urlencoded", "B=2&A=1+%2B+1&A=3", []string{"B: 2", "A: 1 + 1", "A: 3"}},
		{"form with charset", "application/x-www-form-urlencoded; charset=utf-8", "To=%2B1555", []string{"To: +1555"}},
		{"form value on two lines", "application/x-www-form-urlencoded", "Body=a%0Ab", []string{"Body: a\n    b"}},
		{"bad form is shown as it is", "application/x-www-form-urlencoded", "A=%zz", []string{"A=%zz"}},
		{"json", "application/json", `{"a":[1]}`, []string{"{", `  "a": [`, "    1", "  ]", "}"}},
		{"problem json", "application/problem+json", `{"a":1}`, []string{"{", `  "a": 1`, "}"}},
		{"bad json is shown as it is", "application/json", `{"a":`, []string{`{"a":`}},
		{"text", "text/plain", "one\ntwo", []string{"one", "two"}},
		{"form not said", "", "A=1", []string{"A=1"}},
		{"empty", "application/json", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bodyLines(tc.contentType, tc.body); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("bodyLines(%q, %q) = %q; want %q", tc.contentType, tc.body, got, tc.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain café ✓", "plain café ✓"},
		{"tab\tand\nnewline", "tab\tand\nnewline"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"bell\a", `bell\a`},
		{"\u202eevil", `\u202eevil`}, // right-to-left override
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"bad \xff byte", `bad \xff byte`},
		{"a real \uFFFD stays", "a real \uFFFD stays"},
		{"\u009bC1 CSI", `\u009bC1 CSI`},
	} {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
