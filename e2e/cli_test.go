package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCLI(t *testing.T) {
	forEachStore(t, testCLI)
}

func testCLI(t *testing.T, st store) {
	// The app refuses each event once with 410 Gone, which dead-letters
	// it at once, and takes it when it comes again.
	a := startApp(t, func(a *app) {
		a.respond = func(_ *delivery, previous int) int {
			if previous == 0 {
				return http.StatusGone
			}
			return http.StatusNoContent
		}
	})
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})

	t.Run("version", func(t *testing.T) {
		out := mustCLI(t, "", "version")
		if !strings.HasPrefix(out, "switchboard ") {
			t.Errorf("switchboard version printed %q; want it to start with %q", out, "switchboard ")
		}
	})

	t.Run("read commands never create the store", func(t *testing.T) {
		for _, args := range [][]string{
			{"events", "list"},
			{"replay", "--dry-run", "--state", "dead"},
			{"messages", "list"},
		} {
			stdout, stderr, err := runCLI(t, cfg, args...)
			if exitCode(err) < 1 || stdout != "" {
				t.Errorf("switchboard %s before migrate: %v, stdout %q; want a non-zero exit and nothing printed", strings.Join(args, " "), err, stdout)
			}
			want := []string{"no switchboard store"}
			if st.name == "sqlite" {
				want = append(want, st.url, "--config")
			} else {
				want = append(want, "never migrated")
			}
			for _, w := range want {
				if !strings.Contains(stderr, w) {
					t.Errorf("switchboard %s before migrate: stderr %q; want it to say %q", strings.Join(args, " "), stderr, w)
				}
			}
		}
		if st.name == "sqlite" {
			if _, err := os.Stat(filepath.Dir(st.url)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after the read commands: stat %s: %v; want it still missing", filepath.Dir(st.url), err)
			}
		}
	})

	t.Run("migrate", func(t *testing.T) {
		// The store is fresh; for SQLite, not even its directory exists.
		for range 2 { // and migrating again changes nothing
			if out := mustCLI(t, cfg, "migrate"); out != "migrations applied\n" {
				t.Errorf("switchboard migrate printed %q", out)
			}
		}
		if st.name == "sqlite" {
			if _, err := os.Stat(st.url); err != nil {
				t.Errorf("after migrate: %v", err)
			}
		}
		if events := listEvents(t, cfg); len(events) != 0 {
			t.Errorf("fresh store lists %d events", len(events))
		}
	})

	t.Run("replay refuses", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string // in stderr
		}{
			{[]string{"replay"}, "replay needs an event id"}, // never everything by accident
			{[]string{"replay", "01a20000-0000-7000-8000-000000000000"}, "not found"},
			{[]string{"replay", "--state", "pending"}, "only delivered or dead events"},
		} {
			stdout, stderr, err := runCLI(t, cfg, tc.args...)
			if exitCode(err) < 1 {
				t.Errorf("switchboard %s: %v; want a non-zero exit status", strings.Join(tc.args, " "), err)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("switchboard %s: stderr %q; want it to contain %q", strings.Join(tc.args, " "), stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("switchboard %s: stdout %q; want nothing", strings.Join(tc.args, " "), stdout)
			}
		}
	})

	t.Run("replay dead event", func(t *testing.T) {
		p := startServe(t, cfg)
		sid := mustReceive(t, newTwilio(t, p), "replay me ✓")
		a.waitFor(t, 30*time.Second, "first delivery", func() bool { return len(a.deliveries) >= 1 },
			func() string { return "no delivery" })
		first := a.snapshot()[0]
		if first.messageSID != sid || first.status != http.StatusGone {
			t.Fatalf("first delivery: message %s answered %d; want %s answered 410", first.messageSID, first.status, sid)
		}
		id := first.eventID

		eventually(t, 10*time.Second, func() (bool, string) {
			dead := listEvents(t, cfg, "--state", "dead", "--sid", sid)
			if len(dead) != 1 || dead[0].ID != id {
				return false, fmt.Sprintf("events list --state dead --sid %s: %+v; want event %s", sid, dead, id)
			}
			if dead[0].Attempts != 1 || !strings.Contains(dead[0].LastError, "410") {
				t.Errorf("dead event: %d attempts, last error %q; want 1 attempt failing with 410", dead[0].Attempts, dead[0].LastError)
			}
			return true, ""
		})

		// A dry run names the event and schedules nothing.
		want := "dry run: would schedule 1 deliveries (nothing scheduled)\n  " + id + "\n"
		for _, args := range [][]string{{"--state", "dead"}, {"--route", "/sms"}, {id}} {
			if out := mustCLI(t, cfg, append([]string{"replay", "--dry-run"}, args...)...); out != want {
				t.Errorf("switchboard replay --dry-run %v printed %q; want %q", args, out, want)
			}
		}
		if ev := showEvent(t, cfg, id); ev.Event.State != "dead" || ev.Event.Attempts != 1 {
			t.Errorf("after dry runs: event %s is %s after %d attempts; want dead after 1", id, ev.Event.State, ev.Event.Attempts)
		}

		// The JSON is the admin API's, byte for byte.
		for _, tc := range []struct {
			args []string
			path string
		}{
			{[]string{"events", "show", "--json", id}, "/api/v1/events/" + id},
			{[]string{"events", "list", "--json", "--sid", sid}, "/api/v1/events?sid=" + sid},
		} {
			if got, want := mustCLI(t, cfg, tc.args...), adminRaw(t, p, tc.path); got != want {
				t.Errorf("switchboard %s printed\n%s\nGET %s answers\n%s", strings.Join(tc.args, " "), got, tc.path, want)
			}
		}
		// The human view: the form decoded one parameter a line, the
		// attempt with its status, latency and Twilio code.
		human := mustCLI(t, cfg, "events", "show", id)
		for _, re := range []string{
			`(?m)^  state +dead$`,
			`(?m)^  Body: replay me ✓$`,
			`(?m)^  MessageSid: ` + sid + `$`,
			`(?m)^  #  STARTED +STATUS +LATENCY +TWILIO +ERROR$`,
			`(?m)^  1  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  410 +\d+\.\d ms +11200 +\S`,
		} {
			if !regexp.MustCompile(re).MatchString(human) {
				t.Errorf("switchboard events show %s: no match for %s in\n%s", id, re, human)
			}
		}

		if out := mustCLI(t, cfg, "replay", id); out != "scheduled 1 deliveries\n" {
			t.Errorf("switchboard replay %s printed %q", id, out)
		}
		a.waitFor(t, 30*time.Second, "replayed delivery", func() bool { return a.okByEvent[id] >= 1 },
			func() string { return fmt.Sprintf("%d deliveries", len(a.deliveries)) })
		deliveries := a.snapshot()
		if len(deliveries) != 2 {
			t.Fatalf("app got %d deliveries; want 2", len(deliveries))
		}
		second := deliveries[1]
		if second.eventID != id || second.attempt != "2" {
			t.Errorf("replayed delivery: event %s, attempt %q; want event %s, attempt 2", second.eventID, second.attempt, id)
		}
		if !bytes.Equal(second.body, first.body) {
			t.Errorf("replayed delivery: body %q; want %q", second.body, first.body)
		}
		if err := checkSignature(second); err != nil {
			t.Errorf("replayed delivery: X-Twilio-Signature: %v", err)
		}

		eventually(t, 10*time.Second, func() (bool, string) {
			ev := showEvent(t, cfg, id)
			if ev.Event.State != "delivered" {
				return false, fmt.Sprintf("event %s is %s after the replay", id, ev.Event.State)
			}
			var statuses []int
			for _, at := range ev.Attempts {
				statuses = append(statuses, at.StatusCode)
			}
			if fmt.Sprint(statuses) != "[410 204]" || ev.Event.Attempts != 2 {
				t.Errorf("events show %s: %d attempts answered %v; want 2, answered [410 204]", id, ev.Event.Attempts, statuses)
			}
			return true, ""
		})

		// Nothing is dead any more, so a bulk replay of dead events finds none.
		if out := mustCLI(t, cfg, "replay", "--state", "dead"); out != "scheduled 0 deliveries\n" {
			t.Errorf("switchboard replay --state dead printed %q", out)
		}
	})
}

// shownEvent is what switchboard events show --json prints.
type shownEvent struct {
	Event    cliEvent `json:"event"`
	Attempts []struct {
		Number     int    `json:"number"`
		StatusCode int    `json:"status_code"`
		Error      string `json:"error"`
	} `json:"attempts"`
}

func showEvent(t *testing.T, cfg, id string) shownEvent {
	t.Helper()
	out := mustCLI(t, cfg, "events", "show", "--json", id)
	var ev shownEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events show --json %s: %v\n%s", id, err, out)
	}
	return ev
}

// exitCode returns a command's exit status: 0 for nil, -1 if it did not
// exit normally.
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		return -1
	}
}

// adminRaw returns the body of a GET of the admin API, as it came.
func adminRaw(t *testing.T, p *proc, path string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v\n%s", path, resp.StatusCode, err, body)
	}
	return string(body)
}

// TestCLIMessages runs the messages commands on a store holding a message
// sent through the simulator: the JSON is the admin API's, the table
// readable, and a message Twilio accepted is never replayed.
func TestCLIMessages(t *testing.T) {
	forEachStore(t, testCLIMessages)
}

func testCLIMessages(t *testing.T, st store) {
	_, srv := startProvider(t)
	cfg := writeConfig(t, config{
		storage:     st.url,
		routes:      []route{{path: "/status", mode: "static"}},
		provider:    srv.URL,
		pools:       []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
		statusRoute: "/status",
	})
	p := startServe(t, cfg)
	status, created := postMessage(t, p, "cli-1", `{"to": "+15557770001", "body": "Your code is 424242", "purpose": "otp"}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/messages = %d, want 202", status)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		var d struct {
			Message apiMessage `json:"message"`
		}
		adminGet(t, p, "/api/v1/messages/"+created.ID, &d)
		return d.Message.State == "sent", "message " + created.ID + " is " + d.Message.State + ", want sent"
	})

	for _, tc := range []struct {
		args []string
		path string
	}{
		{[]string{"messages", "list", "--json"}, "/api/v1/messages"},
		{[]string{"messages", "list", "--json", "--state", "sent", "--pool", "main"}, "/api/v1/messages?state=sent&pool=main"},
		{[]string{"messages", "list", "--json", "--to", "+15557770002"}, "/api/v1/messages?to=%2B15557770002"},
		{[]string{"messages", "show", "--json", created.ID}, "/api/v1/messages/" + created.ID},
	} {
		if got, want := mustCLI(t, cfg, tc.args...), adminRaw(t, p, tc.path); got != want {
			t.Errorf("switchboard %s printed\n%s\nGET %s answers\n%s", strings.Join(tc.args, " "), got, tc.path, want)
		}
	}

	list := mustCLI(t, cfg, "messages", "list")
	if !regexp.MustCompile(`(?m)^ID +CREATED +POOL +TO +STATE +ATTEMPTS +TWILIO SID +ERROR\n` + created.ID + ` +\S+Z +main +\+15557770001 +sent +1 +SM\w+ +-$`).MatchString(list) {
		t.Errorf("switchboard messages list:\n%s", list)
	}
	show := mustCLI(t, cfg, "messages", "show", created.ID)
	for _, want := range []string{"Message " + created.ID + "\n", "\nBody\n  Your code is 424242\n", "\nHistory\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("switchboard messages show: no %q in\n%s", want, show)
		}
	}

	stdout, stderr, err := runCLI(t, cfg, "messages", "replay", created.ID)
	if exitCode(err) < 1 || stdout != "" || !strings.Contains(stderr, "Twilio accepted it") {
		t.Errorf("switchboard messages replay of a sent message: %v, stdout %q, stderr %q; want it refused", err, stdout, stderr)
	}
}
