package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/sim"
)

const (
	phoneAccount = "AC00000000000000000000000000000001"
	phoneToken   = "0123456789abcdef0123456789abcdef"
)

// phoneSim runs an in-process simulator whose numbers call app: +12065550100
// at /sms and /voice, answered with TwiML, and +12065550101 at /plain,
// answered with text Twilio refuses.
func phoneSim(t *testing.T) string {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		switch r.URL.Path {
		case "/sms":
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, `<Response><Message>You said: `+r.Form.Get("Body")+`</Message><Say voice="alice">unheard</Say></Response>`)
		case "/voice":
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, `<Response><Say voice="alice" language="en-US">Hello there</Say>`+
				`<Gather numDigits="1" action="/menu"><Say>Press 1</Say></Gather><Hangup/></Response>`)
		default:
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "thanks!")
		}
	}))
	t.Cleanup(app.Close)
	tw, err := sim.New(sim.Config{
		Seed: 1,
		Accounts: []sim.Account{{
			SID: phoneAccount, AuthTokens: []string{phoneToken},
			Numbers: []sim.Number{
				{Number: "+12065550100", SMSURL: app.URL + "/sms", VoiceURL: app.URL + "/voice"},
				{Number: "+12065550101", SMSURL: app.URL + "/plain"},
			},
		}},
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
	return srv.URL
}

func TestSimPhone(t *testing.T) {
	t.Parallel()
	simURL := phoneSim(t)
	creds := []string{"--sim", simURL, "--account", phoneAccount, "--token", phoneToken}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"sms answered with a reply", append([]string{"sim", "sms", "--from", "+15551230000", "--to", "+12065550100", "hi"}, creds...), []string{
			"SMS SM", "from +15551230000 to +12065550100",
			"webhook POST " + "http://127.0.0.1:", "/sms → 200 application/xml in ",
			"Twilio would:\n", `  reply SMS: "You said: hi"` + "\n", `  say: "unheard" (voice alice) — ignored: not a messaging verb` + "\n",
			"(reply messages created: SM",
		}},
		{"call answered with say and gather", append([]string{"sim", "call", "--from", "+15551230000", "--to", "+12065550100"}, creds...), []string{
			"call CA", "/voice → 200 text/xml in ",
			`  say: "Hello there" (voice alice, language en-US)` + "\n",
			"  gather input (digits 1, action /menu)\n",
			`    say: "Press 1"` + "\n",
			"  hang up\n",
		}},
		{"answer Twilio refuses", append([]string{"sim", "sms", "--to", "+12065550101", "hello"}, creds...), []string{
			"/plain → 200 text/plain in ",
			"Twilio refuses it: 12300",
			"fix: send Content-Type: application/xml (or text/xml) with TwiML",
			"Twilio does nothing with the answer",
		}},
		{"opt-out keyword", append([]string{"sim", "sms", "--to", "+12065550100", "STOP"}, creds...), []string{
			"to +12065550100", "opt-out keyword STOP",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runCLI(t.Context(), tt.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			t.Log(out)
			if strings.Contains(out, "\x1b[") {
				t.Errorf("output coloured though not a terminal:\n%q", out)
			}
		})
	}
}

func TestSimPhoneJSONAndEnvironment(t *testing.T) {
	t.Parallel()
	simURL := phoneSim(t)
	var out, errOut strings.Builder
	c := &CLI{Stdout: &out, Stderr: &errOut, Environ: []string{
		"SWITCHBOARD_SIM_ACCOUNT=" + phoneAccount, "SWITCHBOARD_SIM_TOKEN=" + phoneToken,
	}}
	if err := c.Run(t.Context(), []string{"sim", "sms", "--sim", simURL, "--to", "+12065550100", "--print-json", "json please"}); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var ans simAnswer
	if err := json.Unmarshal([]byte(out.String()), &ans); err != nil {
		t.Fatalf("--print-json printed %q: %v", out.String(), err)
	}
	if w := ans.Webhook; w == nil || w.Status != 200 || w.Error != nil || !strings.Contains(w.Body, "You said: json please") || len(ans.Replies) != 1 {
		t.Errorf("answer %+v, webhook %+v; want 200 with the reply TwiML and one reply", ans, ans.Webhook)
	}
}

// Without flags, the credentials and the number come from the simulator
// configuration given with --config.
func TestSimPhoneConfig(t *testing.T) {
	t.Parallel()
	simURL := phoneSim(t)
	path := filepath.Join(t.TempDir(), "sim.toml")
	toml := fmt.Sprintf("[[accounts]]\nsid = %q\nauth_tokens = [%q]\n\n  [[accounts.numbers]]\n  number = \"+12065550100\"\n", phoneAccount, phoneToken)
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t.Context(), "sim", "sms", "--config", path, "--sim", simURL, "hi")
	if err != nil || !strings.Contains(out, "to +12065550100") || !strings.Contains(out, `reply SMS: "You said: hi"`) {
		t.Errorf("sim sms --config: %v\n%s", err, out)
	}
}

func TestSimPhoneRefused(t *testing.T) {
	t.Parallel()
	simURL := phoneSim(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wrong token", []string{"--account", phoneAccount, "--token", "wrong", "--to", "+12065550100", "hi"}, "sim answered 401: 20003"},
		{"number not owned", []string{"--account", phoneAccount, "--token", phoneToken, "--to", "+19995550100", "hi"}, "sim answered 4"},
		{"unknown account, no token", []string{"--account", "ACnobody", "hi"}, "not in the simulator configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runCLI(t.Context(), append([]string{"sim", "sms", "--sim", simURL}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one saying %q\n%s", err, tt.want, out)
			}
		})
	}
	if _, err := runCLI(t.Context(), "sim", "call", "--sim", "http://127.0.0.1:1", "--account", phoneAccount, "--token", phoneToken, "--to", "+12065550100"); err == nil || !strings.Contains(err.Error(), "is sim serve running") {
		t.Errorf("no simulator: err %v, want one asking whether sim serve runs", err)
	}
}

func TestPainter(t *testing.T) {
	t.Parallel()
	if got := newPainter(true).red("x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("terminal red = %q", got)
	}
	if got := newPainter(false).red("x"); got != "x" {
		t.Errorf("plain red = %q", got)
	}
}
