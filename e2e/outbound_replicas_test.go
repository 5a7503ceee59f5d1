package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

// TestOutboundReplicasShareTheRate runs two switchboard serve processes on
// one PostgreSQL store, sending one pool's backlog through the simulator:
// together they keep the sender at its configured rate, not at twice it,
// because each request takes the sender's turn in the store first (the
// turns the replicas share), and every message is sent once. At the
// simulator's arrival stamps no window of a second, less transitJitter,
// holds more than the rate's creates.
func TestOutboundReplicasShareTheRate(t *testing.T) {
	const (
		rate = 10.0 // per sender, the pool's only one
		n    = 60
	)
	tw, api, provider := startStampedProvider(t)
	cfg := writeConfig(t, config{
		storage:  pgtest.URL(t),
		provider: provider,
		pools:    []pool{{name: "main", senders: []string{outboundSender}, rate: rate}},
	})
	// Workers enough to hold every turn of the backlog in process.
	appendConfig(t, cfg, "\n[outbound]\nsend_workers = 256\n")
	a, b := startServe(t, cfg), startServe(t, cfg)
	for _, p := range []*proc{a, b} {
		eventually(t, 15*time.Second, func() (bool, string) {
			alive := scrapeGauge(t, p, "switchboard_outbound_rate_share")
			return alive == 2, fmt.Sprintf("%s counts %v processes sending, want 2", p.addr, alive)
		})
	}

	late := watchLateness(t) // from the sends on
	posted := time.Now()     // before the first message exists
	for i := range n {
		p := []*proc{a, b}[i%2]
		body := fmt.Sprintf(`{"to": "+1555777%04d", "body": "replica %d"}`, i, i)
		if status, m := postMessage(t, p, fmt.Sprintf("replica-%d", i), body); status != http.StatusAccepted {
			t.Fatalf("POST = %d %+v", status, m)
		}
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		got := len(tw.Messages(accountSID))
		return got >= n, fmt.Sprintf("%d of %d messages at the simulator", got, n)
	})
	at := tw.Messages(accountSID)
	if len(at) != n {
		t.Fatalf("%d messages at the simulator, want %d: one was sent twice", len(at), n)
	}
	arrivals := api.arrived()[outboundSender]
	sortTimes(arrivals)
	last := arrivals[len(arrivals)-1]
	// The replicas' requests of the sender take turns an interval apart
	// (1/rate, by PostgreSQL's clock), and each goes no sooner than its
	// turn, which comes no sooner than the first post: the last create
	// arrives at least (n-1)/rate after it, however late the machine's
	// load makes any request; unshared, the replicas could be done in half
	// that.
	took := last.Sub(posted)
	least := time.Duration(float64(n-1) / rate * float64(time.Second))
	if took < least {
		t.Errorf("%d messages created within %v of the first post: faster than the sender's %v/s allows (%v); the replicas did not share it",
			n, took.Round(time.Millisecond), rate, least)
	}
	t.Logf("%d messages from two replicas, the last %v after the first post (at least %v at %v/s)", n, took.Round(time.Millisecond), least, rate)
	checkWindows(t, arrivals, rate, late)
}

// scrapeGauge returns the value of an unlabelled metric on p's /metrics,
// or -1 when it is absent.
func scrapeGauge(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	resp, err := client.Get(p.url("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return -1
}
