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
// because each paces at its share (the rate divided by the replicas
// alive), and every message is sent once.
func TestOutboundReplicasShareTheRate(t *testing.T) {
	const (
		rate = 10.0 // per sender, the pool's only one
		n    = 60
	)
	tw, srv := startProvider(t)
	cfg := writeConfig(t, config{
		storage:  pgtest.URL(t),
		provider: srv.URL,
		pools:    []pool{{name: "main", senders: []string{outboundSender}, rate: rate}},
	})
	// Workers enough to hold every turn of the backlog in process.
	appendConfig(t, cfg, "\n[outbound]\nsend_workers = 256\n")
	a, b := startServe(t, cfg), startServe(t, cfg)
	for _, p := range []*proc{a, b} {
		eventually(t, 15*time.Second, func() (bool, string) {
			share := scrapeGauge(t, p, "switchboard_outbound_rate_share")
			return share == 2, fmt.Sprintf("%s shares the rate with %v processes, want 2", p.addr, share)
		})
	}

	posted := time.Now() // before the first message exists
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
	var last time.Time
	for _, m := range at {
		if m.Created.After(last) {
			last = m.Created
		}
	}
	// Each replica paces the sender at half its rate: one that sent k of
	// the messages made its last request no sooner than (k-1) × 2/rate
	// after the first message was posted, and one of them sent at least
	// n/2. So the last create arrives at least (n-2)/rate after the first
	// post, however late the machine's load makes any request; unshared,
	// the replicas could be done in half that.
	took := last.Sub(posted)
	least := time.Duration(float64(n-2) / rate * float64(time.Second))
	if took < least {
		t.Errorf("%d messages created within %v of the first post: faster than the sender's %v/s allows (%v); the replicas did not share it",
			n, took.Round(time.Millisecond), rate, least)
	}
	t.Logf("%d messages from two replicas, the last %v after the first post (at least %v at %v/s)", n, took.Round(time.Millisecond), least, rate)
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
