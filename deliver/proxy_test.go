package deliver_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

const twiml = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>`

// answer returns a handler answering status with the Content-Type (none
// when empty) and body.
func answer(code int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = nil // no sniffed type: absent means absent
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// answerBudget is the live budget of the tests that check what an answer,
// or a failure to connect, is made into, not how fast it came: far more
// than the app takes on a busy machine, so that it never cuts one short.
const answerBudget = 30 * time.Second

// proxyOnce stores an event for the route at path and proxies it.
func (h *harness) proxyOnce(t *testing.T, path string, budget time.Duration, x twilio.Expectation) (*deliver.Live, *switchboard.Event, *switchboard.Request) {
	t.Helper()
	id := h.ingest(t, path, nil)
	ev := h.event(t, id)
	req, err := h.store.Request(context.Background(), ev.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	return h.d.Proxy(t.Context(), ev, req, budget, x), ev, req
}

func TestProxyFaults(t *testing.T) {
	t.Parallel()
	wav := bytes.Repeat([]byte{'R', 'I', 'F', 'F', 0, 0}, 100)
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		x        twilio.Expectation
		wantCode twilio.Code // 0: the app's answer is passed on
		wantType string      // Content-Type Twilio gets when passed on
		state    switchboard.State
	}{
		{"good TwiML", answer(200, "application/xml", twiml), twilio.ExpectVoiceTwiML, 0, "application/xml", switchboard.StateDelivered},
		{"text/html TwiML is relabelled", answer(200, "text/html; charset=utf-8", twiml), twilio.ExpectVoiceTwiML, 0, "application/xml; charset=utf-8", switchboard.StateDelivered},
		{"empty messaging answer", answer(204, "", ""), twilio.ExpectMessagingTwiML, 0, "", switchboard.StateDelivered},
		{"500", answer(500, "text/plain", "boom"), twilio.ExpectVoiceTwiML, twilio.CodeHTTPRetrievalFailure, "", switchboard.StateDelivered},
		{"401 with WWW-Authenticate", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="app"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, twilio.ExpectVoiceTwiML, twilio.CodeHTTPRetrievalFailure, "", switchboard.StateDelivered},
		{"302 to an invalid URL", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Location", "ftp://files.example.com/twiml")
			w.WriteHeader(http.StatusFound)
		}, twilio.ExpectVoiceTwiML, twilio.CodeHTTPRetrievalFailure, "", switchboard.StateDelivered},
		{"no Content-Type", answer(200, "", twiml), twilio.ExpectVoiceTwiML, twilio.CodeInvalidContentType, "", switchboard.StateDelivered},
		{"text/plain", answer(200, "text/plain", twiml), twilio.ExpectMessagingTwiML, twilio.CodeInvalidContentType, "", switchboard.StateDelivered},
		{"MP3 labelled audio/x-wav", answer(200, "audio/x-wav", string(wav)), twilio.ExpectVoiceTwiML, twilio.CodeInvalidContentType, "", switchboard.StateDelivered},
		{"malformed XML", answer(200, "application/xml", "<Response><Say>hi</Response>"), twilio.ExpectVoiceTwiML, twilio.CodeDocumentParseFailure, "", switchboard.StateDelivered},
		{"70 kB document", answer(200, "application/xml", "<Response><Say>"+strings.Repeat("a", 70<<10)+"</Say></Response>"), twilio.ExpectVoiceTwiML, twilio.CodeResponseTooLarge, "", switchboard.StateDelivered},
		{"closed mid-answer", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("<Response>"))
			panic(http.ErrAbortHandler) // drops the connection
		}, twilio.ExpectVoiceTwiML, twilio.CodeHTTPProtocolViolation, "", switchboard.StateDelivered},
		{"slow past the budget", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, twilio.ExpectVoiceTwiML, twilio.CodeHTTPConnectionFailure, "", switchboard.StateDelivered},
		{"client notification 404", answer(404, "", ""), twilio.ExpectClientNotification, 0, "", switchboard.StateDelivered},
		{"client notification 500", answer(500, "", ""), twilio.ExpectClientNotification, twilio.CodeClientNotificationFailed, "", switchboard.StateDelivered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, tt.handler)
			h := newHarness(t, nil, []deliver.Route{route("/voice", a.URL+"/voice")}, nil)
			budget := answerBudget
			if tt.name == "slow past the budget" {
				// The app never answers; the budget need only be long
				// enough for the request to reach it on a busy machine.
				budget = 5 * time.Second
			}
			live, ev, _ := h.proxyOnce(t, "/voice", budget, tt.x)
			if live.Result == nil {
				t.Fatal("no attempt result")
			}
			r := live.Result
			if r.State != tt.state || r.Attempt.Number != 1 || r.Attempt.EventID != ev.ID {
				t.Errorf("result state %s attempt %d, want %s attempt 1", r.State, r.Attempt.Number, tt.state)
			}
			if tt.wantCode == 0 {
				if live.Error != nil {
					t.Fatalf("Error = %v, want the app's answer passed on", live.Error)
				}
				if live.Answer.ContentType != tt.wantType {
					t.Errorf("answer Content-Type %q, want %q", live.Answer.ContentType, tt.wantType)
				}
				if r.Attempt.TwilioCode != 0 || r.Attempt.Error != "" {
					t.Errorf("attempt recorded code %d error %q for a good answer", r.Attempt.TwilioCode, r.Attempt.Error)
				}
				return
			}
			if live.Error == nil || live.Error.Code != tt.wantCode {
				t.Fatalf("Error = %v, want code %d", live.Error, tt.wantCode)
			}
			if r.Attempt.TwilioCode != int(tt.wantCode) || !strings.Contains(r.Attempt.Error, "not delivered again") {
				t.Errorf("attempt code %d error %q, want %d and a note that it is not redelivered", r.Attempt.TwilioCode, r.Attempt.Error, tt.wantCode)
			}
			if a.hits.Load() == 0 {
				t.Error("the app was never called")
			}
		})
	}
}

func TestProxyRedeliversWhatTheAppNeverGot(t *testing.T) {
	t.Parallel()
	tls := httptest.NewTLSServer(answer(200, "application/xml", twiml)) // a certificate nobody trusts
	t.Cleanup(tls.Close)
	tests := []struct {
		name   string
		target string
		code   twilio.Code
		class  twilio.ErrorClass
	}{
		{"connection refused", "http://" + deadAddr(t) + "/voice", twilio.CodeHTTPConnectionFailure, twilio.ClassConnect},
		{"bad certificate", tls.URL + "/voice", twilio.CodeCertificateInvalid, twilio.ClassTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			rt := route("/voice", tt.target)
			rt.RedeliverOn = []string{"connect", "dns", "tls"}
			h := newHarness(t, clock, []deliver.Route{rt}, nil)
			live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
			if live.Error == nil || live.Error.Code != tt.code {
				t.Fatalf("Error = %v, want %d", live.Error, tt.code)
			}
			r := live.Result
			if r.State != switchboard.StateRetrying || r.Attempt.ErrorClass != string(tt.class) {
				t.Errorf("state %s class %q, want retrying %q", r.State, r.Attempt.ErrorClass, tt.class)
			}
			if want := clock.Now().Add(750 * time.Millisecond); !r.NextAttemptAt.Equal(want) {
				t.Errorf("next attempt %v, want the policy's first backoff %v", r.NextAttemptAt, want)
			}
		})
	}
}

func TestProxyRedeliverOnIsTheRoutesChoice(t *testing.T) {
	t.Parallel()
	a := newApp(t, answer(503, "", ""))
	rt := route("/sms", a.URL+"/sms")
	rt.RedeliverOn = []string{"5xx"}
	h := newHarness(t, nil, []deliver.Route{rt}, nil)
	live, _, _ := h.proxyOnce(t, "/sms", answerBudget, twilio.ExpectMessagingTwiML)
	if live.Result.State != switchboard.StateRetrying {
		t.Errorf("503 with redeliver_on 5xx: state %s, want retrying", live.Result.State)
	}
}

func TestProxyFollowsRedirectsResigned(t *testing.T) {
	t.Parallel()
	var final *app
	final = newApp(t, answer(200, "application/xml", twiml))
	hop := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", final.URL+"/final")
		w.WriteHeader(http.StatusTemporaryRedirect) // keeps the POST
	})
	h := newHarness(t, nil, []deliver.Route{route("/voice", hop.URL+"/first")}, nil)
	live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Error != nil {
		t.Fatalf("Error = %v, want the final hop's answer", live.Error)
	}
	got := final.last(t)
	if got.method != http.MethodPost || len(got.body) == 0 {
		t.Errorf("final hop got %s with %d bytes, want the POST", got.method, len(got.body))
	}
	wantSigned(t, got) // signed for the final URL, not the first

	// More than MaxRedirects is Twilio's 11200.
	var loop *app
	loop = newApp(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", loop.URL+r.URL.Path+"x")
		w.WriteHeader(http.StatusFound)
	})
	h2 := newHarness(t, nil, []deliver.Route{route("/voice", loop.URL+"/l")}, nil)
	live, _, _ = h2.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Error == nil || live.Error.Code != twilio.CodeHTTPRetrievalFailure {
		t.Errorf("redirect loop: Error = %v, want 11200", live.Error)
	}
	if n := loop.hits.Load(); n != deliver.MaxRedirects+1 {
		t.Errorf("redirect loop: %d requests, want %d", n, deliver.MaxRedirects+1)
	}
}

func TestProxyBusyTargetFailsFast(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		answer(200, "application/xml", twiml)(w, r)
	})
	rt := route("/voice", a.URL+"/voice")
	rt.MaxInFlight = 1
	h := newHarness(t, nil, []deliver.Route{rt}, nil)
	done := make(chan *deliver.Live)
	go func() {
		live, _, _ := h.proxyOnce(t, "/voice", 10*time.Second, twilio.ExpectVoiceTwiML)
		done <- live
	}()
	<-entered // the one slot is taken
	live, _, _ := h.proxyOnce(t, "/voice", 10*time.Second, twilio.ExpectVoiceTwiML)
	if live.Result != nil || live.Error == nil || !strings.Contains(live.Error.Reason, "in flight") {
		t.Errorf("second proxy with the slot taken: %+v, want no attempt and a busy error", live)
	}
	close(release)
	if first := <-done; first.Error != nil {
		t.Errorf("first proxy: %v", first.Error)
	}
	if n := a.hits.Load(); n != 1 {
		t.Errorf("app called %d times, want 1", n)
	}
}

func TestProxyOpenCircuitFailsFast(t *testing.T) {
	t.Parallel()
	target := "http://" + deadAddr(t) + "/voice"
	h := newHarness(t, nil, []deliver.Route{route("/voice", target)}, func(o *deliver.Options) {
		o.BreakerFailures, o.BreakerOpenFor = 1, time.Hour
	})
	if live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML); live.Result == nil {
		t.Fatal("first proxy made no attempt")
	}
	live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Result != nil || live.Error == nil || !strings.Contains(live.Error.Reason, "circuit") {
		t.Errorf("with the circuit open: %+v, want no attempt", live)
	}
}

func TestProxyRespectsMaxAttempts(t *testing.T) {
	t.Parallel()
	rt := route("/voice", "http://"+deadAddr(t)+"/voice")
	rt.RedeliverOn, rt.MaxAttempts = []string{"connect"}, 1
	h := newHarness(t, nil, []deliver.Route{rt}, nil)
	live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
	if live.Result.State != switchboard.StateDead || !strings.Contains(live.Result.Attempt.Error, "max attempts") {
		t.Errorf("refused with max_attempts 1: state %s error %q, want dead", live.Result.State, live.Result.Attempt.Error)
	}
}

// droppingApp is an app on a raw listener that answers the first request
// of each connection with TwiML and keeps the connection open, then closes
// it without a word when the next request arrives on it: the keep-alive
// race in which the app drops an idle connection just as it is reused. It
// counts the requests it answered.
type droppingApp struct {
	ln       net.Listener
	answered atomic.Int64
}

func newDroppingApp(t *testing.T) *droppingApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &droppingApp{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go a.serve(c)
		}
	}()
	return a
}

func (a *droppingApp) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	req, err := http.ReadRequest(r)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	a.answered.Add(1)
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s", len(twiml), twiml)
	_, _ = r.Peek(1) // the next request on this connection: dropped unread
}

func TestProxyResendsWhatAKeptConnectionDropped(t *testing.T) {
	t.Parallel()
	app := newDroppingApp(t)
	rt := route("/voice", "http://"+app.ln.Addr().String()+"/voice")
	h := newHarness(t, newClock(), []deliver.Route{rt}, nil)
	for i := range 3 {
		live, _, _ := h.proxyOnce(t, "/voice", answerBudget, twilio.ExpectVoiceTwiML)
		if live.Error != nil || live.Result.State != switchboard.StateDelivered {
			t.Fatalf("call %d: %v, state %s; want the app's answer, sent again on a fresh connection", i+1, live.Error, live.Result.State)
		}
	}
	if n := app.answered.Load(); n != 3 {
		t.Errorf("the app answered %d requests, want 3: each once", n)
	}
}
