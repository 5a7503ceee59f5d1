package sim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/sim"
)

const (
	pcAccount = "AC00000000000000000000000000000001"
	pcToken   = "0123456789abcdef0123456789abcdef"
	pcNumber  = "+12065550100"
	pcHandset = "+15551230000"
)

// phoneClientSim runs a simulator whose number calls an app answering
// TwiML, and returns a client for it.
func phoneClientSim(t *testing.T) *sim.PhoneClient {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		if r.URL.Path == "/voice" {
			_, _ = io.WriteString(w, `<Response><Say>Hello</Say></Response>`)
			return
		}
		_, _ = io.WriteString(w, `<Response><Message>got `+r.Form.Get("Body")+`</Message></Response>`)
	}))
	t.Cleanup(app.Close)
	tw, err := sim.New(sim.Config{Seed: 1, Accounts: []sim.Account{{
		SID: pcAccount, AuthTokens: []string{pcToken},
		Numbers: []sim.Number{{Number: pcNumber, SMSURL: app.URL + "/sms", VoiceURL: app.URL + "/voice"}},
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	srv, err := tw.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &sim.PhoneClient{URL: srv.URL, Account: pcAccount, Token: pcToken}
}

func TestPhoneClient(t *testing.T) {
	t.Parallel()
	pc := phoneClientSim(t)
	ans, err := pc.SMS(t.Context(), pcHandset, pcNumber, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ans.SID, "SM") || ans.Webhook == nil || ans.Webhook.Status != 200 || len(ans.Replies) != 1 {
		t.Fatalf("sms answer %+v", ans)
	}
	if got := ans.Webhook.Final().Body; !strings.Contains(got, "<Message>got hi</Message>") {
		t.Errorf("sms body %q", got)
	}
	call, err := pc.Call(t.Context(), pcHandset, pcNumber)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(call.SID, "CA") || call.Webhook == nil || !strings.Contains(call.Webhook.Body, "<Say>Hello</Say>") {
		t.Errorf("call answer %+v", call)
	}
}

func TestPhoneClientFailures(t *testing.T) {
	t.Parallel()
	good := phoneClientSim(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, good.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"`+strings.Repeat("A", 2*sim.MaxPhoneAnswer)+`"}`)
	}))
	t.Cleanup(huge.Close)
	tests := []struct {
		name string
		pc   sim.PhoneClient
		to   string
		want string
	}{
		{"wrong token", sim.PhoneClient{URL: good.URL, Account: pcAccount, Token: "wrong"}, pcNumber, "sim answered 401: 20003"},
		{"number not owned", *good, "+12065559999", "sim answered 404"},
		{"redirect not followed", sim.PhoneClient{URL: redirect.URL, Account: pcAccount, Token: pcToken}, pcNumber, "sim answered 307"},
		{"answer cut at the bound", sim.PhoneClient{URL: huge.URL, Account: pcAccount, Token: pcToken}, pcNumber, "read the answer"},
		{"not a web URL", sim.PhoneClient{URL: "file:///etc/passwd", Account: pcAccount, Token: pcToken}, pcNumber, "not an http or https URL"},
		{"no host", sim.PhoneClient{URL: "http://", Account: pcAccount, Token: pcToken}, pcNumber, "not an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.pc.SMS(t.Context(), pcHandset, tt.to, "hi")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
	raw, err := good.Post(t.Context(), sim.EndpointInboundMessages, url.Values{"From": {pcHandset}, "To": {pcNumber}, "Body": {"x"}})
	if err != nil || !strings.Contains(string(raw), `"sid":"SM`) {
		t.Errorf("Post: %v %s", err, raw)
	}
}
