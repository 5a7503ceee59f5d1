package deliver_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/egress"
)

// allowLoopback lets events with a Target reach the tests' local servers,
// as egress.allow does for local development.
func allowLoopback(o *deliver.Options) {
	o.Egress = egress.New(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
}

// A fan-out event whose Target is on loopback, with no allowlist: no
// request reaches it, and the event is dead at its first attempt with the
// denial on record (not retried, naming the address class and not the
// URL's query). More events to the same target meet the same refusal, not
// an open circuit that would keep them pending; the route's own target,
// on loopback too, is delivered as ever.
func TestDeliverFanoutToAnInternalTargetIsDead(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	hook := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/status", a.URL+"/status")},
		func(o *deliver.Options) { o.BreakerFailures = 1 })

	hookURL := hook.URL + "/hooks/status?token=s3cr3t"
	var fans []string
	var main string
	for range 3 {
		main = h.ingest(t, "/status", func(it *switchboard.Ingest) { fans = append(fans, fanout(it, hookURL)) })
	}
	for _, id := range fans {
		if err := h.deliver(t.Context(), id); err != nil {
			t.Fatalf("Deliver fan-out event: %v", err)
		}
		wantState(t, h.event(t, id), switchboard.StateDead, 1, time.Time{})
		att := h.onlyAttempt(t, id)
		if att.ErrorClass != deliver.ClassDenied || att.StatusCode != 0 {
			t.Errorf("attempt class %q status %d, want %q and no status", att.ErrorClass, att.StatusCode, deliver.ClassDenied)
		}
		if !strings.Contains(att.Error, "loopback") || !strings.Contains(att.Error, "not retried") {
			t.Errorf("attempt error %q: want the loopback denial, not retried", att.Error)
		}
		if strings.Contains(att.Error, "s3cr3t") {
			t.Errorf("attempt error %q names the URL's query", att.Error)
		}
	}
	if n := hook.hits.Load(); n != 0 {
		t.Fatalf("the internal target received %d requests, want none", n)
	}
	if err := h.deliver(t.Context(), main); err != nil {
		t.Fatal(err)
	}
	wantState(t, h.event(t, main), switchboard.StateDelivered, 1, time.Time{})
	if n := a.hits.Load(); n != 1 {
		t.Errorf("route target called %d times, want 1: route targets are not subject to the egress policy", n)
	}
}

// The same fan-out event with loopback on the allowlist is delivered.
func TestDeliverFanoutToAnAllowedInternalTarget(t *testing.T) {
	t.Parallel()
	hook := newApp(t, nil)
	h := newHarness(t, nil, []deliver.Route{route("/status", "")}, allowLoopback)
	var fan string
	h.ingest(t, "/status", func(it *switchboard.Ingest) { fan = fanout(it, hook.URL+"/hooks/status") })
	if err := h.deliver(t.Context(), fan); err != nil {
		t.Fatal(err)
	}
	wantState(t, h.event(t, fan), switchboard.StateDelivered, 1, time.Time{})
	if n := hook.hits.Load(); n != 1 {
		t.Fatalf("allowed internal target received %d requests, want 1", n)
	}
	wantSigned(t, hook.last(t))
}

// A Target named by a host name that resolves to loopback is refused when
// it is dialled: the address connected to is checked, not the URL's text.
// With loopback allowed, the same name is delivered to.
func TestDeliverFanoutCheckedAfterResolution(t *testing.T) {
	t.Parallel()
	hook := newApp(t, nil)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(hook.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	target := "http://localhost:" + port + "/hooks/status"

	h := newHarness(t, nil, []deliver.Route{route("/status", "")}, nil)
	var fan string
	h.ingest(t, "/status", func(it *switchboard.Ingest) { fan = fanout(it, target) })
	if err := h.deliver(t.Context(), fan); err != nil {
		t.Fatal(err)
	}
	wantState(t, h.event(t, fan), switchboard.StateDead, 1, time.Time{})
	if att := h.onlyAttempt(t, fan); att.ErrorClass != deliver.ClassDenied || !strings.Contains(att.Error, "loopback") {
		t.Errorf("attempt %q: %q, want a loopback denial", att.ErrorClass, att.Error)
	}
	if n := hook.hits.Load(); n != 0 {
		t.Fatalf("a name resolving to loopback received %d requests, want none", n)
	}

	allowed := newHarness(t, nil, []deliver.Route{route("/status", "")}, allowLoopback)
	allowed.ingest(t, "/status", func(it *switchboard.Ingest) { fan = fanout(it, target) })
	if err := allowed.deliver(t.Context(), fan); err != nil {
		t.Fatal(err)
	}
	wantState(t, allowed.event(t, fan), switchboard.StateDelivered, 1, time.Time{})
	if n := hook.hits.Load(); n != 1 {
		t.Fatalf("with loopback allowed, %d requests arrived, want 1", n)
	}
}
