package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// heldApp holds every request until released, then answers 200 at once.
type heldApp struct {
	*httptest.Server
	release chan struct{}

	mu   sync.Mutex
	held int
	cond chan struct{} // closed and replaced whenever held changes
}

func startHeldApp(t *testing.T) *heldApp {
	t.Helper()
	a := &heldApp{release: make(chan struct{}), cond: make(chan struct{})}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that a client gone ends r's context
		a.mu.Lock()
		a.held++
		close(a.cond)
		a.cond = make(chan struct{})
		a.mu.Unlock()
		select {
		case <-a.release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(a.Close)
	return a
}

// waitHeld waits until the app holds at least n requests.
func (a *heldApp) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(startTimeout)
	for {
		a.mu.Lock()
		held, cond := a.held, a.cond
		a.mu.Unlock()
		if held >= n {
			return
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("the app holds %d requests, want %d", held, n)
		}
	}
}

// TestStalledProcessDoesNotBlameTheApp: a serve process stopped (SIGSTOP)
// for longer than the delivery timeout while its requests wait at a
// healthy app resumes to find them timed out. That is its own stall, not
// the app's timeout: the attempts are recorded as interrupted and the
// app's circuit breaker does not open.
func TestStalledProcessDoesNotBlameTheApp(t *testing.T) {
	app := startHeldApp(t)
	p := startServe(t, writeConfig(t, config{
		storage: t.TempDir() + "/switchboard.db",
		routes:  []route{{path: "/sms", target: app.URL + "/sms"}},
	}))
	tw := newTwilio(t, p)
	const n = 8 // more than the breaker's 5 consecutive failures
	for i := range n {
		mustReceive(t, tw, fmt.Sprintf("stall-%d", i))
	}
	app.waitHeld(t, n)

	p.signal(syscall.SIGSTOP)
	// The stall itself, not a wait for a condition: the process must be
	// stopped for longer than delivery.timeout (2s in the tests' config).
	<-time.After(4 * time.Second)
	p.signal(syscall.SIGCONT)

	p.out.waitFor(t, listenTimeout, "was not running for")
	close(app.release)
	eventually(t, listenTimeout, func() (bool, string) {
		delivered := len(apiEvents(t, p, "state=delivered"))
		return delivered == n, fmt.Sprintf("%d of %d events delivered", delivered, n)
	})
	if log := p.out.String(); strings.Contains(log, `"to":"open"`) {
		t.Errorf("the app's circuit breaker opened over the process's own stall:\n%s", p.out.tail(8<<10))
	}
}
