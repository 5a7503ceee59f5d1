package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
)

func TestKillDuringLoad(t *testing.T) {
	forEachStore(t, testKillDuringLoad)
}

func testKillDuringLoad(t *testing.T, st store) {
	// On SQLite the restarted process takes back the jobs the dead one had
	// running as soon as it holds the delivery lock. On PostgreSQL another
	// replica may still be working them, so they wait for the rescue period:
	// delivery.timeout + 30s (32s here) plus up to 30s until River's rescuer
	// next looks.
	recovery := 90 * time.Second
	if st.name == "postgres" {
		recovery = 150 * time.Second
	}
	const (
		senders  = 16
		killedAt = 1500 // acknowledged webhooks
	)
	// A slow app, so that deliveries are in flight when the process dies.
	a := startApp(t, func(a *app) { a.delay = 10 * time.Millisecond })
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	p := startServe(t, cfg)

	ctx, stopSending := context.WithCancel(t.Context())
	defer stopSending()
	acked := newAcks(killedAt)
	waitSenders := blast(ctx, newTwilio(t, p), senders, acked)
	acked.waitReached(t, 60*time.Second)
	p.kill(t) // while the senders are still going
	stopSending()
	waitSenders()
	sids := acked.list()
	t.Logf("killed after %d webhooks were acknowledged; the app had taken %d by then", len(sids), len(a.snapshot()))

	startServe(t, cfg) // again, on the same storage
	a.waitForSIDs(t, recovery, sids)
	messages, extra := a.redelivered(sids)
	t.Logf("all %d acknowledged messages delivered; %d of them more than once (%d extra deliveries)", len(sids), messages, extra)

	// Nothing is left behind, acknowledged or not: requests stored just
	// before the kill but never answered may sit in a job the dead process
	// had taken, and on PostgreSQL wait for the same rescue.
	checkDrained(t, cfg, recovery)
}

// checkDrained waits until the store has no event pending or retrying.
func checkDrained(t *testing.T, cfg string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		var waiting []string
		for _, state := range []string{"pending", "retrying"} {
			for _, e := range listEvents(t, cfg, "--state", state) {
				waiting = append(waiting, fmt.Sprintf("%s (%s, %d attempts)", e.ID, e.State, e.Attempts))
			}
		}
		return len(waiting) == 0, fmt.Sprintf("%d events still waiting: %s", len(waiting),
			strings.Join(waiting[:min(len(waiting), 5)], ", "))
	})
}

func TestGracefulShutdown(t *testing.T) {
	forEachStore(t, testGracefulShutdown)
}

func testGracefulShutdown(t *testing.T, st store) {
	const grace = 10 * time.Second
	// The app holds deliveries until the shutdown has begun, so that some
	// are in flight when it does.
	release := make(chan struct{})
	var releaseOnce sync.Once
	a := startApp(t, func(a *app) { a.hold = release })
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the app closes
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	// The first deliveries are held from before the 500th webhook until
	// the shutdown has begun: on a busy machine longer than writeConfig's
	// 2 s delivery timeout, after which a held delivery is rightly tried
	// again. The timeout here outlasts any hold, so that every delivery
	// the shutdown finds in flight is one it must finish.
	setDeliveryTimeout(t, cfg, "5m")
	p := startServe(t, cfg, "--grace", grace.String())

	ctx, stopSending := context.WithCancel(t.Context())
	defer stopSending()
	acked := newAcks(500)
	waitSenders := blast(ctx, newTwilio(t, p), 16, acked)
	acked.waitReached(t, 60*time.Second)
	a.waitFor(t, 10*time.Second, "deliveries in flight", func() bool { return a.active > 0 },
		func() string { return "none" })

	start := time.Now()
	p.signal(syscall.SIGTERM) // while webhooks and deliveries are in flight
	p.out.waitFor(t, 10*time.Second, `"msg":"shutting down"`)
	a.mu.Lock()
	held := a.active
	a.mu.Unlock()
	releaseOnce.Do(func() { close(release) })
	p.wait(t)
	took := time.Since(start)
	stopSending()
	waitSenders()
	if p.waitErr != nil {
		t.Errorf("switchboard serve after SIGTERM: %v; want exit status 0", p.waitErr)
	}
	if took > grace {
		t.Errorf("switchboard serve took %v to stop; want at most the %v grace period", took.Round(time.Millisecond), grace)
	}
	if !strings.Contains(p.out.String(), `"msg":"switchboard stopped"`) {
		t.Error(`switchboard serve did not log "switchboard stopped"`)
	}
	sids := acked.list()
	t.Logf("stopped in %v after %d webhooks were acknowledged, with %d deliveries in flight; the app had taken %d",
		took.Round(time.Millisecond), len(sids), held, len(a.snapshot()))

	startServe(t, cfg) // again, on the same storage
	a.waitForSIDs(t, 60*time.Second, sids)
	checkDrained(t, cfg, 30*time.Second)
	// A graceful stop finishes what it started: nothing is delivered twice.
	if messages, extra := a.redelivered(sids); messages > 0 {
		t.Errorf("%d acknowledged messages delivered more than once (%d extra deliveries)", messages, extra)
	}
}

// setDeliveryTimeout sets the delivery timeout in the configuration file
// at path, which writeConfig wrote.
func setDeliveryTimeout(t *testing.T, path, timeout string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const old = "\ntimeout = \"2s\"\n"
	if !strings.Contains(string(b), old) {
		t.Fatalf("configuration has no %q", old)
	}
	b = []byte(strings.Replace(string(b), old, fmt.Sprintf("\ntimeout = %q\n", timeout), 1))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTwoReplicasOnePostgres(t *testing.T) {
	forEachStore(t, testTwoReplicas)
}

func testTwoReplicas(t *testing.T, st store) {
	if st.name != "postgres" {
		t.Skip("replicas share a PostgreSQL store")
	}
	const n = 300
	// A slow app, so that a second delivery of an event would overlap the
	// first.
	a := startApp(t, func(a *app) { a.delay = 5 * time.Millisecond })
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	// Started together: both migrate the fresh schema at once.
	replicas := []*proc{launchServe(t, cfg), launchServe(t, cfg)}
	for _, r := range replicas {
		r.waitListening(t)
	}

	// A Twilio for each replica, as if behind a load balancer.
	sids := receiveAll(t, []*sim.Sim{newTwilio(t, replicas[0]), newTwilio(t, replicas[1])}, n)
	a.waitForSIDs(t, 60*time.Second, sids)
	checkDrained(t, cfg, 30*time.Second)
	for i, r := range replicas {
		if _, err := r.stop(t); err != nil {
			t.Errorf("replica %d after SIGTERM: %v; want exit status 0", i, err)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.byEvent) != n {
		t.Errorf("app got %d distinct events; want %d", len(a.byEvent), n)
	}
	for id, count := range a.byEvent {
		if count != 1 {
			t.Errorf("event %s delivered %d times; want once", id, count)
		}
	}
	if a.overlaps > 0 {
		t.Errorf("%d deliveries of an event overlapped another of the same event", a.overlaps)
	}
}

// With --shutdown-delay, a SIGTERM first makes the process unready while
// it goes on acknowledging webhooks, for a load balancer to stop sending
// it any, and only then does it shut down.
func TestShutdownDelay(t *testing.T) {
	a := startApp(t)
	cfg := writeConfig(t, config{storage: t.TempDir() + "/sb.db", routes: []route{{path: "/sms", target: a.url("/sms")}}})
	p := startServe(t, cfg, "--shutdown-delay", "30s", "--grace", "5s")
	tw := newTwilio(t, p)
	before := mustReceive(t, tw, "before the signal")

	p.signal(syscall.SIGTERM)
	p.out.waitFor(t, 10*time.Second, `"msg":"shutting down after a delay`)
	resp, err := http.Get(p.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while the shutdown waits = %d %q, want 503", resp.StatusCode, body)
	}
	during := mustReceive(t, tw, "during the delay") // still acknowledged
	a.waitForSIDs(t, 30*time.Second, []string{before, during})
	if strings.Contains(p.out.String(), `"msg":"shutting down"`) {
		t.Fatal("shut down before its delay")
	}
	p.kill(t) // the delay is long, so that a slow machine cannot outlast it above

	// A short delay ends, then the process shuts down and exits 0.
	q := startServe(t, cfg, "--shutdown-delay", "500ms", "--grace", "5s")
	q.signal(syscall.SIGTERM)
	q.wait(t)
	if q.waitErr != nil {
		t.Errorf("switchboard serve after SIGTERM: %v; want exit status 0", q.waitErr)
	}
	out := q.out.String()
	delayed, stopped := strings.Index(out, `"msg":"shutting down after a delay`), strings.Index(out, `"msg":"switchboard stopped"`)
	if delayed < 0 || stopped < delayed {
		t.Errorf("want the delay logged, then the stop; log:\n%s", out)
	}
}
