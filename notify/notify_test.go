package notify

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/twilio"
)

// epoch is the fake clock's time.
var epoch = time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

func clock() time.Time { return epoch }

// testNotification is a firing notification with text that must be escaped
// or sanitized wherever it goes.
func testNotification() *switchboard.Notification {
	return &switchboard.Notification{
		ID: "notify:ops:webhook-delivery-failing:3:firing:/sms", Rule: "webhook-delivery-failing", Key: "/sms",
		Status: switchboard.AlertFiring, Severity: "critical",
		Summary: "62% of 40 deliveries to /sms failed <@channel> & more", Value: 0.62, Threshold: 0.5, Seq: 3,
		FiredAt: epoch, At: epoch,
		Runbook: "https://github.com/switchboard-dev/switchboard/blob/main/docs/runbooks.md#webhook-error-spike",
		Console: "https://sb.example.com/console/alerts/webhook-delivery-failing",
	}
}

// item is n stored as the alert engine stores it, for notifier name.
func item(t *testing.T, name string, n *switchboard.Notification) (*switchboard.Event, *switchboard.Request) {
	t.Helper()
	it, err := switchboard.NotificationItem(name, n, "0190a0b0-0000-7000-8000-000000000001", epoch)
	if err != nil {
		t.Fatal(err)
	}
	return it.Event, &it.Request
}

// receiver records the requests it gets and answers with respond, or 200.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
}

func newReceiver(t *testing.T, respond http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got, r.body = append(r.got, req), append(r.body, b)
		r.mu.Unlock()
		if respond != nil {
			respond(w, req)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("nothing received")
	}
	return r.got[len(r.got)-1], r.body[len(r.body)-1]
}

// deadURL is a URL nothing listens at.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestPostJudgesAnswers: every transport over HTTP turns answers into
// the same decisions.
func TestPostJudgesAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		respond              http.HandlerFunc
		delivered, permanent bool
		unhealthy            bool
		class                twilio.ErrorClass
	}{
		{"200", nil, true, false, false, ""},
		{"204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, true, false, false, ""},
		{"410 gone", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) }, false, true, false, twilio.ClassHTTPStatus},
		{"400", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) }, false, false, false, twilio.ClassHTTPStatus},
		{"404", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }, false, false, false, twilio.ClassHTTPStatus},
		{"429", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }, false, false, true, twilio.ClassHTTPStatus},
		{"503", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, false, false, true, twilio.ClassHTTPStatus},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		},
			false, false, false, twilio.ClassHTTPStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, tt.respond)
			s, err := NewSlack(r.URL+"/services/T0/B0/SECRET", Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			ev, req := item(t, "slack", testNotification())
			out := s.Notify(t.Context(), ev, req, 1)
			if (out.Err == nil) != tt.delivered || out.Permanent != tt.permanent || out.Unhealthy != tt.unhealthy || out.Class != tt.class {
				t.Errorf("outcome %+v, want delivered %v, permanent %v, unhealthy %v, class %q", out, tt.delivered, tt.permanent, tt.unhealthy, tt.class)
			}
			if out.Target != r.URL || out.Status == 0 {
				t.Errorf("outcome target %q status %d, want %s and the answer's status", out.Target, out.Status, r.URL)
			}
		})
	}
}

// TestPostNoAnswer: a refused connection is tried again and counts
// against the target, and the error names only the origin: a Slack URL's
// path is its secret.
func TestPostNoAnswer(t *testing.T) {
	t.Parallel()
	base := deadURL(t)
	s, err := NewSlack(base+"/services/T0/B0/SECRETTOKEN?x=SECRETQUERY", Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ev, req := item(t, "slack", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if out.Err == nil || out.Permanent || !out.Unhealthy || out.Class != twilio.ClassConnect || out.Status != 0 {
		t.Fatalf("outcome %+v, want a retried connect failure", out)
	}
	if strings.Contains(out.Err.Error(), "SECRET") || strings.Contains(out.Target, "SECRET") {
		t.Errorf("outcome reveals the URL's secret: %v (target %s)", out.Err, out.Target)
	}
	if s.Target() != base {
		t.Errorf("Target = %q, want the origin %q", s.Target(), base)
	}
}

// TestPostBoundsTheAnswer: a huge answer is read only so far, and a
// target that never answers is cut off by the context.
func TestPostBoundsTheAnswer(t *testing.T) {
	t.Parallel()
	huge := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 1024 { // 64 MiB, unless the client stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	s, _ := NewSlack(huge.URL, Options{Now: clock})
	ev, req := item(t, "slack", testNotification())
	out := s.Notify(t.Context(), ev, req, 1)
	if len(out.Excerpt) != excerptBytes || out.Status != 500 {
		t.Errorf("excerpt of %d bytes with status %d, want %d bytes and 500", len(out.Excerpt), out.Status, excerptBytes)
	}

	release := make(chan struct{})
	stuck := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	s, _ = NewSlack(stuck.URL, Options{Now: clock})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	out = s.Notify(ctx, ev, req, 1)
	if out.Err == nil || !out.Unhealthy || out.Permanent {
		t.Errorf("outcome %+v from a target that never answers, want a retried failure", out)
	}
}

// TestUndecodableIsPermanent: an event whose body is not a notification
// is never sent.
func TestUndecodableIsPermanent(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, nil)
	w, _ := NewWebhook(r.URL, []byte("0123456789abcdef"), Options{Now: clock})
	ev, req := item(t, "ops", testNotification())
	req.Body = []byte("not json")
	if out := w.Notify(t.Context(), ev, req, 1); !out.Permanent || out.Err == nil {
		t.Errorf("outcome %+v, want permanent", out)
	}
	if len(r.got) != 0 {
		t.Error("an undecodable body was sent")
	}
}

func TestNewFromConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    config.Notifier
		want string
	}{
		{config.Notifier{Name: "a", Type: "webhook", URL: "https://a.example.com/x?k=1", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "https://a.example.com"},
		{config.Notifier{Name: "b", Type: "slack", URL: "https://hooks.slack.com/services/T/B/X"}, "https://hooks.slack.com"},
		{config.Notifier{Name: "c", Type: "smtp", Address: "mail.example.com:587", From: "a@example.com", To: []string{"b@example.com"}, StartTLS: "required"}, "smtp://mail.example.com:587"},
	}
	for _, tt := range tests {
		n, err := New(tt.c, Options{})
		if err != nil {
			t.Fatalf("New(%s): %v", tt.c.Type, err)
		}
		if n.Target() != tt.want {
			t.Errorf("%s Target = %q, want %q", tt.c.Type, n.Target(), tt.want)
		}
	}
	if _, err := New(config.Notifier{Name: "d", Type: "webhook", URL: "https://a.example.com", Secret: "nope"}, Options{}); err == nil {
		t.Error("a webhook with a bad secret was built")
	}
	if _, err := New(config.Notifier{Name: "e", Type: "pager"}, Options{}); err == nil {
		t.Error("an unknown type was built")
	}
}
