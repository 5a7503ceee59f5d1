package deliver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// fakeNotifier answers each attempt with the next of its outcomes (the
// last one repeated) and records what it was given.
type fakeNotifier struct {
	mu       sync.Mutex
	outcomes []deliver.NotifyOutcome
	got      []*switchboard.Notification
	attempts []int
}

func (f *fakeNotifier) Notify(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, attempt int) deliver.NotifyOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n switchboard.Notification
	if err := json.Unmarshal(req.Body, &n); err != nil {
		return deliver.NotifyOutcome{Err: fmt.Errorf("decode: %w", err), Permanent: true}
	}
	f.got, f.attempts = append(f.got, &n), append(f.attempts, attempt)
	o := f.outcomes[min(len(f.got), len(f.outcomes))-1]
	return o
}

func (f *fakeNotifier) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func notifierRoute(name string, f *fakeNotifier) deliver.Route {
	return deliver.Route{Path: switchboard.NotifierRoute(name), Target: "https://alerts.example.com", MaxAttempts: 5,
		MaxAge: 72 * time.Hour, Notify: f.Notify}
}

// notification stores a notification of rule for notifier, as the alert
// engine does, and returns its event's id.
func (h *harness) notification(t *testing.T, notifier, rule string) string {
	t.Helper()
	seq := h.keys.Add(1) // a firing of its own, so a notification of its own
	n := &switchboard.Notification{Rule: rule, Key: "/sms", Status: switchboard.AlertFiring, Severity: "critical",
		Seq: seq, FiredAt: h.clock.Now(), At: h.clock.Now()}
	it, err := switchboard.NotificationItem(notifier, n, fmt.Sprintf("0190a0b0-0000-7000-8000-%012d", seq), h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Ingest(t.Context(), []*switchboard.Ingest{it}); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return it.Event.ID
}

var (
	notified    = deliver.NotifyOutcome{Status: 200}
	unavailable = deliver.NotifyOutcome{Status: 503, Err: errors.New("HTTP 503"), Class: twilio.ClassHTTPStatus, Unhealthy: true,
		Excerpt: []byte(strings.Repeat("x", 10<<10))}
)

func TestNotifyRetriesThenDelivers(t *testing.T) {
	t.Parallel()
	f := &fakeNotifier{outcomes: []deliver.NotifyOutcome{unavailable, unavailable, notified}}
	h := newHarness(t, nil, []deliver.Route{notifierRoute("ops", f)}, nil)
	id := h.notification(t, "ops", "webhook-dead-letters")

	h.wantRetry(t, id, 750*time.Millisecond)
	h.wantRetry(t, id, 1500*time.Millisecond)
	wantNoError(t, h.deliver(t.Context(), id))
	wantState(t, h.event(t, id), switchboard.StateDelivered, 3, time.Time{})

	if f.calls() != 3 || f.attempts[0] != 1 || f.attempts[2] != 3 {
		t.Errorf("notifier called with attempts %v, want 1, 2, 3", f.attempts)
	}
	if n := f.got[0]; n.Rule != "webhook-dead-letters" || n.ID != "notify:ops:webhook-dead-letters:1:firing:/sms" || n.Seq != 1 {
		t.Errorf("notifier given %+v", n)
	}
	atts := h.attempts(t, id)
	if len(atts) != 3 {
		t.Fatalf("%d attempts recorded, want 3", len(atts))
	}
	first := atts[0]
	if first.TargetURL != "https://alerts.example.com" || first.StatusCode != 503 || first.Error != "HTTP 503" ||
		first.ErrorClass != string(twilio.ClassHTTPStatus) || len(first.ResponseExcerpt) != 4<<10 {
		t.Errorf("failed attempt recorded as %+v (excerpt %d bytes)", first, len(first.ResponseExcerpt))
	}
	if last := atts[2]; last.StatusCode != 200 || last.Error != "" || last.ErrorClass != "" {
		t.Errorf("delivered attempt recorded as %+v", last)
	}
}

func TestNotifyPermanentRefusalIsDead(t *testing.T) {
	t.Parallel()
	refused := deliver.NotifyOutcome{Target: "smtp://mail.example.com:587", Status: 550, Err: errors.New("SMTP 550 5.1.1 no such user"), Permanent: true}
	f := &fakeNotifier{outcomes: []deliver.NotifyOutcome{refused}}
	h := newHarness(t, nil, []deliver.Route{notifierRoute("mail", f)}, func(o *deliver.Options) { o.BreakerFailures = 1 })
	id := h.notification(t, "mail", "queue-lag")
	wantNoError(t, h.deliver(t.Context(), id))
	wantState(t, h.event(t, id), switchboard.StateDead, 1, time.Time{})
	a := h.onlyAttempt(t, id)
	if a.TargetURL != "smtp://mail.example.com:587" || a.StatusCode != 550 || a.Error != "SMTP 550 5.1.1 no such user; refused for good: not retried" {
		t.Errorf("attempt recorded as %+v", a)
	}
	// A refusal proves the server up: its breaker stays closed.
	for _, b := range h.d.Breakers() {
		if b.State != "closed" {
			t.Errorf("breaker of %s %s after a permanent refusal, want closed", b.Target, b.State)
		}
	}
}

func TestNotifyMaxAttempts(t *testing.T) {
	t.Parallel()
	f := &fakeNotifier{outcomes: []deliver.NotifyOutcome{unavailable}}
	r := notifierRoute("ops", f)
	r.MaxAttempts = 2
	h := newHarness(t, nil, []deliver.Route{r}, nil)
	id := h.notification(t, "ops", "queue-lag")
	h.wantRetry(t, id, 750*time.Millisecond)
	wantNoError(t, h.deliver(t.Context(), id))
	wantState(t, h.event(t, id), switchboard.StateDead, 2, time.Time{})
	if atts := h.attempts(t, id); !strings.HasSuffix(atts[1].Error, "max attempts (2) reached") {
		t.Errorf("last attempt's error %q", atts[1].Error)
	}
}

func TestNotifyHeedsRetryAfter(t *testing.T) {
	t.Parallel()
	throttled := deliver.NotifyOutcome{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"30"}},
		Err: errors.New("HTTP 429"), Class: twilio.ClassHTTPStatus, Unhealthy: true}
	f := &fakeNotifier{outcomes: []deliver.NotifyOutcome{throttled}}
	h := newHarness(t, nil, []deliver.Route{notifierRoute("slack", f)}, nil)
	h.wantRetry(t, h.notification(t, "slack", "queue-lag"), 30*time.Second)
}

func TestNotifyCircuitBreaker(t *testing.T) {
	t.Parallel()
	down := &fakeNotifier{outcomes: []deliver.NotifyOutcome{unavailable}}
	up := &fakeNotifier{outcomes: []deliver.NotifyOutcome{notified}}
	other := notifierRoute("mail", up) // on the same host as ops
	h := newHarness(t, nil, []deliver.Route{notifierRoute("ops", down), other},
		func(o *deliver.Options) { o.BreakerFailures, o.BreakerOpenFor = 2, time.Hour })

	for range 2 {
		h.wantRetry(t, h.notification(t, "ops", "queue-lag"), 750*time.Millisecond)
	}
	id := h.notification(t, "ops", "queue-lag")
	wantNoError(t, h.deliver(t.Context(), id))
	if ev := h.event(t, id); ev.State != switchboard.StatePending || ev.Attempts != 0 || ev.NextAttemptAt.IsZero() {
		t.Errorf("event with the circuit open: %s after %d attempts, next %v; want pending, waiting", ev.State, ev.Attempts, ev.NextAttemptAt)
	}
	if down.calls() != 2 {
		t.Errorf("notifier called %d times, want 2: its circuit should be open", down.calls())
	}
	// Another notifier, even on the same host, has its own breaker, named
	// after its route.
	mail := h.notification(t, "mail", "queue-lag")
	wantNoError(t, h.deliver(t.Context(), mail))
	wantState(t, h.event(t, mail), switchboard.StateDelivered, 1, time.Time{})
	states := map[string]string{}
	for _, b := range h.d.Breakers() {
		states[b.Target] = b.State
	}
	if len(states) != 2 || states["notify:ops"] != "open" || states["notify:mail"] != "closed" {
		t.Errorf("Breakers() = %v", states)
	}
}

func TestNotifyShutdownIsNotTheTargetsFailure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var f *fakeNotifier
	f = &fakeNotifier{outcomes: []deliver.NotifyOutcome{{Err: context.Canceled, Class: twilio.ClassTimeout, Unhealthy: true}}}
	r := notifierRoute("ops", f)
	inner := r.Notify
	r.Notify = func(c context.Context, ev *switchboard.Event, req *switchboard.Request, n int) deliver.NotifyOutcome {
		cancel()
		return inner(c, ev, req, n)
	}
	h := newHarness(t, nil, []deliver.Route{r}, nil)
	id := h.notification(t, "ops", "queue-lag")
	wantNoError(t, h.deliver(ctx, id))
	a := h.onlyAttempt(t, id)
	if a.ErrorClass != deliver.ClassInterrupted {
		t.Errorf("attempt class %q, want interrupted", a.ErrorClass)
	}
	if ev := h.event(t, id); ev.State != switchboard.StateRetrying {
		t.Errorf("event %s, want retrying", ev.State)
	}
}
