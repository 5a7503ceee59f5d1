package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

// firstAttemptHolder holds every first attempt until the client gives up,
// and answers any later attempt at once, noting when each event's came
// and with which attempt number.
type firstAttemptHolder struct {
	*httptest.Server
	mu      sync.Mutex
	held    int
	again   map[string]time.Time // event id → when its next attempt came
	numbers map[string]string    // event id → X-Switchboard-Attempt of that attempt
}

func startFirstAttemptHolder(t *testing.T) *firstAttemptHolder {
	t.Helper()
	a := &firstAttemptHolder{again: map[string]time.Time{}, numbers: map[string]string{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read first: only then does the server watch the connection,
		// and end the request's context when the replica dies.
		_, _ = io.Copy(io.Discard, r.Body)
		id, n := r.Header.Get("X-Switchboard-Event-Id"), r.Header.Get("X-Switchboard-Attempt")
		a.mu.Lock()
		if n == "1" {
			a.held++
			a.mu.Unlock()
			<-r.Context().Done() // the replica making it dies meanwhile
			return
		}
		if _, ok := a.again[id]; !ok {
			a.again[id], a.numbers[id] = time.Now(), n
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *firstAttemptHolder) counts() (held, again int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held, len(a.again)
}

// TestReplicaKilledMidDelivery: three replicas on PostgreSQL; the one
// delivering five events is SIGKILLed while the app holds them. The
// others take its jobs over once it has stopped beating, and deliver each
// event again as attempt 2 (the first on record as interrupted). The test
// logs how long after the kill the last event reached the app.
func TestReplicaKilledMidDelivery(t *testing.T) {
	app := startFirstAttemptHolder(t)
	cfg := writeConfig(t, config{storage: pgtest.URL(t), routes: []route{{path: "/sms", target: app.URL + "/sms"}}})
	first := startServe(t, cfg)
	tw := newTwilio(t, first)
	const n = 5
	for i := range n {
		mustReceive(t, tw, fmt.Sprintf("failover-%d", i))
	}
	eventually(t, listenTimeout, func() (bool, string) {
		held, _ := app.counts()
		return held == n, fmt.Sprintf("the app holds %d of %d first attempts", held, n)
	})
	second, third := startServe(t, cfg), startServe(t, cfg)

	killed := time.Now()
	first.kill(t)
	eventually(t, listenTimeout, func() (bool, string) {
		_, again := app.counts()
		return again == n, fmt.Sprintf("%d of %d events delivered again after the kill", again, n)
	})
	app.mu.Lock()
	var last time.Duration
	for id, at := range app.again {
		last = max(last, at.Sub(killed))
		if app.numbers[id] != "2" {
			t.Errorf("event %s came again as attempt %s, want 2", id, app.numbers[id])
		}
	}
	app.mu.Unlock()
	t.Logf("the killed replica's %d in-flight deliveries reached the app again within %v of the kill", n, last.Round(time.Millisecond))
	// Taken over because the replica stopped beating, not because its
	// jobs ran past River's own rescue time (half a minute and more).
	const tookOver = "took over the jobs of a replica that stopped beating"
	if !strings.Contains(second.out.String(), tookOver) && !strings.Contains(third.out.String(), tookOver) {
		t.Errorf("no replica logged %q", tookOver)
	}
	eventually(t, listenTimeout, func() (bool, string) {
		delivered := len(apiEvents(t, second, "state=delivered"))
		return delivered == n, fmt.Sprintf("%d of %d events delivered", delivered, n)
	})
}
