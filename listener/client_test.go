package listener

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

func TestClientRefusedOnBadToken(t *testing.T) {
	rg := newRig(t, nil)
	c, _ := rg.client("http://localhost:3000")
	c.Token = "wrong"
	_, done := runClient(t, c)
	err := receive(t, "Run to give up", done)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "bad token") {
		t.Fatalf("Run = %v, want ErrRefused with the server's message", err)
	}
}

func TestClientRefusedOnUnknownListener(t *testing.T) {
	rg := newRig(t, nil)
	c, _ := rg.client("http://localhost:3000")
	c.Listener = "other"
	_, done := runClient(t, c)
	if err := receive(t, "Run to give up", done); !errors.Is(err, ErrRefused) {
		t.Fatalf("Run = %v, want ErrRefused", err)
	}
}

// fakeServer is a hostile server: it sends the frames a test gives it and
// hands back what the listener answers.
func fakeServer(t *testing.T, frames ...*Frame) (*httptest.Server, chan *Frame) {
	answers := make(chan *Frame, len(frames))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conn.SetReadLimit(MaxFrameBytes)
		ctx := r.Context()
		for _, f := range append([]*Frame{{Type: TypeHello, Routes: []string{"/sms"}}}, frames...) {
			data, _ := json.Marshal(f)
			if conn.Write(ctx, websocket.MessageText, data) != nil {
				return
			}
		}
		for range frames {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var f Frame
			if json.Unmarshal(data, &f) == nil {
				answers <- &f
			}
		}
		<-ctx.Done()
	}))
	t.Cleanup(srv.Close)
	return srv, answers
}

func TestClientFetchesOnlyTheForwardToOrigin(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	a := newApp(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(a.URL, "http://"), ":")
	urls := []string{
		other.URL + "/sms",                        // another port
		"http://localhost:" + port + "/sms",       // another host name
		"https://127.0.0.1:" + port + "/sms",      // another scheme
		"http://user@127.0.0.1:" + port + "/sms",  // user info
		"file:///etc/passwd",                      // not http
		"http://169.254.169.254/latest/meta-data", // the cloud's metadata
	}
	var frames []*Frame
	for i, u := range urls {
		frames = append(frames, &Frame{Type: TypeRequest, ID: uint64(i + 1), Method: "GET", URL: u})
	}
	frames = append(frames, &Frame{Type: TypeRequest, ID: 99, Method: "POST", URL: a.URL + "/sms",
		Header: http.Header{"X-Twilio-Signature": {"sig"}, "X-Switchboard-Event-Id": {"ev-1"}}, Body: []byte("Body=hi")})
	srv, answers := fakeServer(t, frames...)
	c := &Client{Server: srv.URL, Token: "t", Listener: "dev", ForwardTo: a.URL}
	runClient(t, c)
	for range frames {
		ans := receive(t, "an answer", answers)
		if ans.ID == 99 {
			if ans.Status != 200 || string(ans.Body) != "<Response/>" || ans.Error != "" {
				t.Fatalf("answer from the app = %+v", ans)
			}
			continue
		}
		if ans.Class != string(twilio.ClassProtocol) || ans.Status != 0 {
			t.Fatalf("request %d to %s: answer %+v, want refused", ans.ID, urls[ans.ID-1], ans)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("%d requests made elsewhere", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) != 1 || a.reqs[0].Header.Get("X-Twilio-Signature") != "sig" {
		t.Fatalf("app got %d requests", len(a.reqs))
	}
}

func TestClientCutsTheAnswer(t *testing.T) {
	a := newApp(t)
	a.handle = func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", MaxAnswerBytes+1000)))
	}
	srv, answers := fakeServer(t, &Frame{Type: TypeRequest, ID: 1, Method: "POST", URL: a.URL + "/sms"})
	runClient(t, &Client{Server: srv.URL, Listener: "dev", ForwardTo: a.URL})
	if ans := receive(t, "the answer", answers); len(ans.Body) != MaxAnswerBytes || ans.Status != 200 {
		t.Fatalf("answer of %d bytes, status %d", len(ans.Body), ans.Status)
	}
}

// dialRaw connects to the rig as a hand-written listener and reads the
// hello.
func dialRaw(t *testing.T, rg *rig) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, rg.srv.URL+Path+"?listener=dev&forward_to=http://127.0.0.1:1",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(MaxFrameBytes)
	t.Cleanup(func() { conn.CloseNow() })
	_, data, err := conn.Read(ctx)
	var hello Frame
	if err != nil || json.Unmarshal(data, &hello) != nil || hello.Type != TypeHello || hello.Listener != "dev" {
		t.Fatalf("hello: %s, %v", data, err)
	}
	return conn
}

// closedWith reads conn until the server closes it and returns the code.
func closedWith(t *testing.T, conn *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestHostileListenerFramesCloseTheConnection(t *testing.T) {
	tests := []struct {
		name  string
		typ   websocket.MessageType
		frame string
		want  websocket.StatusCode
	}{
		{"oversized", websocket.MessageText, `{"type":"response","id":1,"body":"` + strings.Repeat("A", MaxFrameBytes) + `"}`, websocket.StatusMessageTooBig},
		{"malformed", websocket.MessageText, `{"type":`, websocket.StatusPolicyViolation},
		{"binary", websocket.MessageBinary, `{}`, websocket.StatusPolicyViolation},
		{"wrong type", websocket.MessageText, `{"type":"request","id":1}`, websocket.StatusPolicyViolation},
		{"unknown id", websocket.MessageText, `{"type":"response","id":12345,"status":200}`, websocket.StatusPolicyViolation},
		{"hello from the listener", websocket.MessageText, `{"type":"hello"}`, websocket.StatusPolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, nil)
			conn := dialRaw(t, rg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = conn.Write(ctx, tt.typ, []byte(tt.frame))
			if code := closedWith(t, conn); code != tt.want {
				t.Fatalf("closed with %v, want %v", code, tt.want)
			}
			waitFor(t, "the session to end", func() bool { return rg.connected("dev") == 0 })
		})
	}
}

func TestNewerRawConnectionClosesTheOlder(t *testing.T) {
	rg := newRig(t, nil)
	old := dialRaw(t, rg)
	dialRaw(t, rg)
	if code := closedWith(t, old); code != closeReplaced {
		t.Fatalf("older connection closed with %v", code)
	}
	if n := rg.connected("dev"); n != 1 {
		t.Fatalf("connected = %d", n)
	}
}

func TestCrossOriginBrowserRefused(t *testing.T) {
	rg := newRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, rg.srv.URL+Path+"?listener=dev&forward_to=http://127.0.0.1:1",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}, "Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: %v, %v", resp, err)
	}
}

func TestRoundTripAfterTheListenerLeft(t *testing.T) {
	rg := newRig(t, nil)
	conn := dialRaw(t, rg)
	tun, ok := rg.hub.Tunnel("dev")
	if !ok {
		t.Fatal("no tunnel")
	}
	if got := tun.Target("/sms"); got != "http://127.0.0.1:1/sms" {
		t.Fatalf("Target = %q", got)
	}
	conn.CloseNow()
	waitFor(t, "the session to end", func() bool { return rg.connected("dev") == 0 })
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/sms", nil)
	if _, err := tun.RoundTrip(req); !errors.Is(err, switchboard.ErrListenerGone) {
		t.Fatalf("RoundTrip = %v", err)
	}
}

func TestOriginOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://LocalHost:3000/sms", "http://localhost:3000"},
		{"http://localhost/x", "http://localhost:80"},
		{"HTTPS://example.com", "https://example.com:443"},
		{"http://[::1]:8080/", "http://[::1]:8080"},
		{"ftp://x", ""},
		{"http://u@x", ""},
		{"/relative", ""},
	}
	for _, tt := range tests {
		got, err := originOf(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("originOf(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// A refusal's text is printed on the developer's terminal: a hostile
// server's escape codes in it are not passed on.
func TestClientRefusalDropsControlCharacters(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no\x1b]0;pwned\x07\x1b[2J entry", http.StatusUnauthorized)
	}))
	defer srv.Close()
	c := &Client{Server: srv.URL, Token: "t", Listener: "dev", ForwardTo: "http://localhost:3000"}
	_, done := runClient(t, c)
	err := receive(t, "Run to give up", done)
	if !errors.Is(err, ErrRefused) || strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), "entry") {
		t.Fatalf("Run = %q, want ErrRefused with the server's text, without control characters", err)
	}
}
