package sim

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/twilio"
)

// syncBuffer is a bytes.Buffer the app's handler and the test can share.
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

func TestApp(t *testing.T) {
	t.Parallel()
	const token = "app-auth-token"
	message := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "SmsStatus": {"received"},
		"From": {"+15557654321"}, "Body": {"a secret message"}, "AccountSid": {"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}
	status := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "MessageStatus": {"delivered"},
		"To": {"+15557654321"}}
	voice := url.Values{"CallSid": {"CA0123456789abcdef0123456789abcdef"}, "CallStatus": {"ringing"}, "From": {"+15557654321"}}

	type request struct {
		method, path string
		form         url.Values
		body         string // instead of form
		sign         string // the URL to sign for, "" for the app's own
		token        string // "" for the app's
		unsigned     bool
		header       map[string]string
	}
	for _, tc := range []struct {
		name        string
		appToken    string
		publicURL   string
		req         request
		status      int
		contentType string
		body        string
		line        string // the one line logged
	}{
		{name: "signed message", appToken: token,
			req:    request{method: "POST", path: "/sms", form: message, header: map[string]string{"X-Switchboard-Event-Id": "01a2-ev"}},
			status: 200, contentType: "application/xml", body: "<Response/>",
			line: "POST /sms message sid=SM0123456789abcdef0123456789abcdef status=received event=01a2-ev signature=ok -> 200"},
		{name: "signed status callback", appToken: token,
			req:    request{method: "POST", path: "/status", form: status},
			status: 200, body: "",
			line: "POST /status message-status sid=SM0123456789abcdef0123456789abcdef status=delivered signature=ok -> 200"},
		{name: "signed call, with a query", appToken: token,
			req:    request{method: "POST", path: "/voice?step=1", form: voice},
			status: 200, contentType: "application/xml", body: "<Response/>",
			line: "POST /voice voice sid=CA0123456789abcdef0123456789abcdef status=ringing signature=ok -> 200"},
		{name: "behind a proxy: signed for the public URL", appToken: token, publicURL: "https://app.example.com/",
			req:    request{method: "POST", path: "/sms", form: message, sign: "https://app.example.com/sms"},
			status: 200, contentType: "application/xml", body: "<Response/>",
			line: "POST /sms message sid=SM0123456789abcdef0123456789abcdef status=received signature=ok -> 200"},
		{name: "signed with another token", appToken: token,
			req:    request{method: "POST", path: "/sms", form: message, token: "forger"},
			status: 403, line: "POST /sms signature=bad -> 403"},
		{name: "signed for another URL", appToken: token,
			req:    request{method: "POST", path: "/sms", form: message, sign: "https://elsewhere.example.com/sms"},
			status: 403, line: "POST /sms signature=bad -> 403"},
		{name: "signed for another path", appToken: token,
			req:    request{method: "POST", path: "/sms", form: message, sign: "APP/voice"},
			status: 403, line: "POST /sms signature=bad -> 403"},
		{name: "unsigned", appToken: token,
			req:    request{method: "POST", path: "/sms", form: message, unsigned: true},
			status: 403, line: "POST /sms signature=missing -> 403"},
		{name: "no token: not checked",
			req:    request{method: "POST", path: "/sms", form: message, unsigned: true},
			status: 200, contentType: "application/xml", body: "<Response/>",
			line: "POST /sms message sid=SM0123456789abcdef0123456789abcdef status=received signature=unchecked -> 200"},
		{name: "GET", appToken: token, req: request{method: "GET", path: "/sms"},
			status: 405, line: "GET /sms -> refused: not a POST"},
		{name: "oversized body", appToken: token,
			req:    request{method: "POST", path: "/sms", body: strings.Repeat("a", 65<<10), unsigned: true},
			status: 413, line: "POST /sms -> refused: body over 64 KiB"},
		{name: "a path that would forge a log line", appToken: token,
			req:    request{method: "POST", path: "/sms%0APOST%20/x%20signature=ok", form: message, unsigned: true},
			status: 403, line: `POST "/sms\nPOST /x signature=ok" signature=missing -> 403`},
		{name: "identifiers of the wrong shape are left out",
			req: request{method: "POST", path: "/sms", unsigned: true,
				form: url.Values{"MessageSid": {"+15557654321"}, "MessageStatus": {"Your code is 1234"}}},
			status: 200, line: "POST /sms message-status signature=unchecked -> 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log syncBuffer
			app := &App{AuthToken: tc.appToken, PublicURL: tc.publicURL, Log: &log}
			srv, err := app.Serve(t.Context(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })

			body, contentType := tc.req.body, "text/plain"
			if tc.req.form != nil {
				body, contentType = tc.req.form.Encode(), "application/x-www-form-urlencoded"
			}
			req, err := http.NewRequest(tc.req.method, srv.URL+tc.req.path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", contentType)
			for k, v := range tc.req.header {
				req.Header.Set(k, v)
			}
			if !tc.req.unsigned {
				signFor, signToken := strings.Replace(tc.req.sign, "APP", srv.URL, 1), tc.req.token
				if signFor == "" {
					signFor = srv.URL + tc.req.path
				}
				if signToken == "" {
					signToken = token
				}
				_, sig, err := twilio.SignRequest(signToken, signFor, contentType, []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-Twilio-Signature", sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 && (string(answer) != tc.body || resp.Header.Get("Content-Type") != tc.contentType && tc.contentType != "") {
				t.Errorf("answer %q (%s); want %q (%s)", answer, resp.Header.Get("Content-Type"), tc.body, tc.contentType)
			}
			srv.Close() // the line is written once the handler returns
			lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
			if len(lines) != 1 || lines[0] != tc.line {
				t.Errorf("logged %q; want one line, %q", lines, tc.line)
			}
			for _, secret := range []string{"+15557654321", "5557654321", "secret message", "Your code"} {
				if strings.Contains(log.String(), secret) {
					t.Errorf("logged %q, which contains %q", log.String(), secret)
				}
			}
		})
	}
}
