package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/console"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

// TestLeaderKilledAnotherElected: two replicas on PostgreSQL; exactly one
// leads River's maintenance (switchboard_leader 1). It is SIGKILLed; the
// other, once the dead leader's term has expired, is elected, logs it with
// the previous leader, reports the gauge and shows itself leading in the
// console. The test logs how long the election took after the kill:
// River's term decides it.
func TestLeaderKilledAnotherElected(t *testing.T) {
	// The app refuses the first attempt of messages whose body starts
	// "retry", and counts the retries it then takes.
	var mu sync.Mutex
	retried := map[string]bool{}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := r.FormValue("Body")
		if !strings.HasPrefix(body, "retry") {
			return
		}
		if r.Header.Get("X-Switchboard-Attempt") == "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		retried[body] = true
		mu.Unlock()
	}))
	t.Cleanup(app.Close)
	cfg := writeConfig(t, config{storage: pgtest.URL(t), routes: []route{{path: "/sms", target: app.URL + "/sms"}}})
	a, b := startServe(t, cfg), startServe(t, cfg)

	var leader, other *proc
	eventually(t, 60*time.Second, func() (bool, string) {
		ga, gb := scrapeGauge(t, a, "switchboard_leader"), scrapeGauge(t, b, "switchboard_leader")
		switch {
		case ga == 1 && gb == 0:
			leader, other = a, b
		case gb == 1 && ga == 0:
			leader, other = b, a
		default:
			return false, fmt.Sprintf("switchboard_leader is %v and %v; want one leader", ga, gb)
		}
		return true, ""
	})
	leaderNode, otherNode := nodeOf(t, leader), nodeOf(t, other)
	eventually(t, 10*time.Second, func() (bool, string) {
		_, ok := findLog(other, "leader elected", "node", leaderNode)
		return ok, "the other replica has not logged the leader"
	})

	killed := time.Now()
	leader.kill(t)

	// Retries fall due while no replica leads River's maintenance, which
	// would make them available: the survivor does so itself, so they
	// reach the app before the dead leader's term (15 s) lets it be
	// elected.
	tw := newTwilio(t, other)
	const retries = 5
	for i := range retries {
		mustReceive(t, tw, fmt.Sprintf("retry %d", i))
	}
	eventually(t, listenTimeout, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(retried) == retries, fmt.Sprintf("%d of %d retries reached the app", len(retried), retries)
	})
	retriedIn := time.Since(killed)
	if _, ok := findLog(other, "leader elected", "node", otherNode); ok {
		t.Errorf("the retries reached the app only after a new leader was elected (%v after the kill)", retriedIn.Round(10*time.Millisecond))
	}
	var line map[string]any
	eventually(t, listenTimeout, func() (bool, string) {
		var ok bool
		line, ok = findLog(other, "leader elected", "node", otherNode)
		return ok, "no election logged by the surviving replica"
	})
	elected := time.Since(killed)
	if line["this_process"] != true || line["previous"] != leaderNode {
		t.Errorf("election logged as %v; want this_process true, previous %s", line, leaderNode)
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		g := scrapeGauge(t, other, "switchboard_leader")
		return g == 1, fmt.Sprintf("switchboard_leader %v on the new leader", g)
	})
	if n := scrapeGauge(t, other, "switchboard_leader_changes_total"); n < 2 {
		t.Errorf("switchboard_leader_changes_total %v, want at least 2 (the old leader and itself)", n)
	}
	var d console.DashboardJSON
	if err := json.Unmarshal([]byte(consolePage(t, other, "/console/dashboard.json", consoleSignIn(t, other))), &d); err != nil {
		t.Fatal(err)
	}
	if d.Replicas == nil || d.Replicas.Leader == nil || d.Replicas.Leader.Node != otherNode || !d.Replicas.Leader.This {
		t.Errorf("the console shows replicas %+v; want this process leading", d.Replicas)
	}
	// Its beats saw no leader from the dead one's expiry to the election.
	gap := "none seen"
	if ns, ok := line["without_leader_for"].(float64); ok {
		gap = time.Duration(ns).String()
	}
	t.Logf("new leader elected, as logged by it, %v after the kill; without a leader: %s; %d retries delivered %v after the kill",
		elected.Round(10*time.Millisecond), gap, retries, retriedIn.Round(10*time.Millisecond))
}

// nodeOf is the node name p gave in its start-up line.
func nodeOf(t *testing.T, p *proc) string {
	t.Helper()
	line, ok := findLog(p, "switchboard listening")
	if !ok || line["node"] == "" {
		t.Fatalf("%s: no node in its start-up line", p.name)
	}
	return fmt.Sprint(line["node"])
}

// findLog returns the first of p's JSON log lines with message msg whose
// attributes include attrs, given as name, value pairs.
func findLog(p *proc, msg string, attrs ...string) (map[string]any, bool) {
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			if fmt.Sprint(line[attrs[i]]) != attrs[i+1] {
				continue lines
			}
		}
		return line, true
	}
	return nil, false
}
