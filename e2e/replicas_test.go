package e2e

import (
	"cmp"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
)

// The failover tests run three switchboard serve replicas on one
// PostgreSQL store, behind a balancer, under a steady stream of signed
// webhooks, and break one replica while the stream goes on: they kill it,
// stop it for longer than its lease, or restart all three in turn. What
// they share is here: the replicas, the balancer, the stream, the app
// that records every delivery, and the store read from the side.

// replica is one switchboard serve process among replicas, and the node
// it names itself: its heartbeats', its jobs' and River's leader's name.
type replica struct {
	*proc
	node string
}

// startReplicas starts n replicas of the configuration at cfg together,
// so that they migrate the fresh schema at once, as a deployment's do.
func startReplicas(t *testing.T, cfg string, n int, args ...string) []*replica {
	t.Helper()
	procs := make([]*proc, n)
	for i := range procs {
		procs[i] = launchServe(t, cfg, args...)
	}
	replicas := make([]*replica, n)
	for i, p := range procs {
		p.waitListening(t)
		replicas[i] = &replica{proc: p, node: nodeOf(t, p)}
	}
	return replicas
}

// startReplica starts one more replica, as a rolling restart does.
func startReplica(t *testing.T, cfg string, args ...string) *replica {
	t.Helper()
	p := startServe(t, cfg, args...)
	return &replica{proc: p, node: nodeOf(t, p)}
}

// balancer is a load balancer in front of the replicas, as Twilio's
// webhooks would reach them: each webhook goes to the next replica in
// turn, and one a replica does not take (refused, or reset because the
// replica died) goes on to the next, as a balancer retries a failed
// upstream. A replica taken out of the rotation (a failed health check)
// gets no new webhooks.
type balancer struct {
	transport *http.Transport

	mu    sync.Mutex
	addrs []string
	turn  int

	rerouted atomic.Int64 // webhooks a replica did not take, sent to the next
}

func newBalancer(t *testing.T, replicas []*replica) *balancer {
	b := &balancer{transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}}
	for _, r := range replicas {
		b.add(r)
	}
	t.Cleanup(b.transport.CloseIdleConnections)
	return b
}

func (b *balancer) add(r *replica) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs = append(b.addrs, r.addr)
}

func (b *balancer) remove(r *replica) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs = slices.DeleteFunc(b.addrs, func(a string) bool { return a == r.addr })
}

// RoundTrip sends req to the replicas in turn until one answers.
func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	addrs := slices.Clone(b.addrs)
	first := b.turn
	b.turn++
	b.mu.Unlock()
	if len(addrs) == 0 {
		return nil, errors.New("balancer: no replica in the rotation")
	}
	var err error
	for i := range addrs {
		out := req.Clone(req.Context())
		if req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		out.URL.Scheme, out.URL.Host, out.Host = "http", addrs[(first+i)%len(addrs)], ""
		resp, rerr := b.transport.RoundTrip(out)
		if rerr == nil {
			return resp, nil
		}
		err = rerr
		if req.Context().Err() != nil {
			break // Twilio's own timeout: it decides what follows
		}
		b.rerouted.Add(1)
	}
	return nil, err
}

// newBalancedTwilio returns a simulated Twilio whose webhooks for
// publicURL go through lb, in place of newTwilio's tunnel to one replica.
func newBalancedTwilio(t *testing.T, replicas []*replica, lb *balancer) *sim.Sim {
	t.Helper()
	return newTwilio(t, replicas[0].proc, func(c *sim.Config) { c.Tunnels, c.Transport = nil, lb })
}

// ackedWebhook is a webhook Switchboard acknowledged: the message's body
// and when Twilio had the acknowledgement.
type ackedWebhook struct {
	body string
	at   time.Time
}

// steadyLoad makes inbound messages happen at a steady rate, each in a
// goroutine of its own (a bounded number at once), recording those whose
// webhook Switchboard acknowledged, until stopped or until limit messages.
type steadyLoad struct {
	stopping chan struct{}
	done     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	acked  map[string]ackedWebhook // by MessageSid
	sent   int
	other  int      // answered otherwise, or not at all
	whyNot []string // what became of the first few of those
}

// record notes what became of one webhook.
func (l *steadyLoad) record(sid, body string, r *sim.WebhookResult, err error) {
	at := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	switch {
	case err == nil && acknowledged(r):
		l.acked[sid] = ackedWebhook{body: body, at: at}
		return
	case err != nil:
		l.whyNot = append(l.whyNot, err.Error())
	default:
		l.whyNot = append(l.whyNot, describe(r))
	}
	l.other++
	l.whyNot = l.whyNot[:min(len(l.whyNot), 5)]
}

// startLoad begins the stream; it stops by itself after limit messages,
// and when the test ends at the latest.
func startLoad(t *testing.T, tw *sim.Sim, perSecond float64, limit int) *steadyLoad {
	l := &steadyLoad{stopping: make(chan struct{}), done: make(chan struct{}), acked: map[string]ackedWebhook{}}
	ctx := t.Context()
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
		defer tick.Stop()
		// Enough for the rate while a replica stalls its share of the
		// posts; beyond it the rate drops rather than the posts piling up.
		slots := make(chan struct{}, 64)
		for i := range limit {
			select {
			case <-l.stopping:
				return
			case <-tick.C:
			}
			select {
			case <-l.stopping:
				return
			case slots <- struct{}{}:
			}
			body := fmt.Sprintf("steady %d %s", i, randomHex(4))
			wg.Go(func() {
				defer func() { <-slots }()
				sid, r, err := receive(ctx, tw, body)
				l.record(sid, body, r, err)
			})
		}
	}()
	t.Cleanup(l.stop)
	return l
}

// burst makes n inbound messages happen at once, on top of the stream,
// with bodies that start with prefix, and returns once their webhooks are
// answered. Those Switchboard acknowledges are recorded with the others.
func (l *steadyLoad) burst(t *testing.T, tw *sim.Sim, prefix string, n int) {
	var wg sync.WaitGroup
	for i := range n {
		body := fmt.Sprintf("%s %d %s", prefix, i, randomHex(4))
		wg.Go(func() {
			sid, r, err := receive(t.Context(), tw, body)
			l.record(sid, body, r, err)
		})
	}
	wg.Wait()
}

// stop ends the stream and waits for the webhooks under way to be
// answered.
func (l *steadyLoad) stop() {
	l.once.Do(func() { close(l.stopping) })
	<-l.done
}

// waitAcked waits until at least n more webhooks than now have been
// acknowledged.
func (l *steadyLoad) waitAcked(t *testing.T, n int) {
	t.Helper()
	want := l.counts().acked + n
	eventually(t, 60*time.Second, func() (bool, string) {
		c := l.counts()
		return c.acked >= want, fmt.Sprintf("%d of %d webhooks acknowledged (%d sent, %d not acknowledged)", c.acked, want, c.sent, c.other)
	})
}

type loadCounts struct {
	sent, acked, other int
	whyNot             []string
}

func (l *steadyLoad) counts() loadCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadCounts{l.sent, len(l.acked), l.other, slices.Clone(l.whyNot)}
}

// String says how many webhooks were sent and acknowledged, and what
// became of the first few of the others.
func (c loadCounts) String() string {
	s := fmt.Sprintf("%d webhooks sent, %d acknowledged", c.sent, c.acked)
	if c.other > 0 {
		s += fmt.Sprintf(", %d not (%s)", c.other, strings.Join(c.whyNot, "; "))
	}
	return s
}

// acknowledged returns the webhooks acknowledged so far, by MessageSid.
func (l *steadyLoad) acknowledged() map[string]ackedWebhook {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]ackedWebhook, len(l.acked))
	for sid, a := range l.acked {
		out[sid] = a
	}
	return out
}

// appRequest is one delivery request the app got.
type appRequest struct {
	eventID string // X-Switchboard-Event-Id
	attempt int    // X-Switchboard-Attempt
	sid     string // the form's MessageSid
	body    string // the form's Body
	arrived time.Time

	// Set under the app's lock.
	answered time.Time     // when it was answered 200; zero if it was not
	gone     time.Time     // when the replica gave up on it while it was held
	release  chan struct{} // not nil while held: closed to answer it
	status   int           // the answer it is released with; 0: 200
}

// replicasApp is the app the replicas deliver to. It records every
// request and answers 200, after delay; the requests its hold rule
// matches it holds instead, until released or until the replica making
// one gives up (its timeout, or its death), so that a replica has
// deliveries in flight when the test breaks it.
type replicasApp struct {
	srv   *httptest.Server
	delay time.Duration

	mu       sync.Mutex
	holding  func(*appRequest) bool // nil: none
	requests []*appRequest
}

func startReplicasApp(t *testing.T, delay time.Duration) *replicasApp {
	t.Helper()
	a := &replicasApp{delay: delay}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	t.Cleanup(func() { a.release(everyRequest) }) // before it closes
	return a
}

func (a *replicasApp) url(path string) string { return a.srv.URL + path }

func (a *replicasApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read whole first: only then does the server watch the connection,
	// and end r's context when the replica goes away.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	form, _ := url.ParseQuery(string(body))
	n, _ := strconv.Atoi(r.Header.Get("X-Switchboard-Attempt"))
	req := &appRequest{eventID: r.Header.Get("X-Switchboard-Event-Id"), attempt: n,
		sid: form.Get("MessageSid"), body: form.Get("Body"), arrived: time.Now()}
	a.mu.Lock()
	a.requests = append(a.requests, req)
	var release <-chan struct{}
	var delay <-chan time.Time
	if a.holding != nil && a.holding(req) {
		req.release = make(chan struct{})
		release = req.release
	} else if a.delay > 0 {
		delay = time.After(a.delay) // a slow app, so that deliveries are in flight
	}
	a.mu.Unlock()
	if release != nil || delay != nil {
		select {
		case <-release:
		case <-delay:
		case <-r.Context().Done():
		}
		// Released as the replica died, which select may not have seen.
		if r.Context().Err() != nil {
			a.mu.Lock()
			req.gone = time.Now()
			a.mu.Unlock()
			return
		}
	}
	a.mu.Lock()
	status := cmp.Or(req.status, http.StatusOK)
	if status == http.StatusOK {
		req.answered = time.Now() // before the replica can have the answer
	}
	a.mu.Unlock()
	w.WriteHeader(status)
}

// hold makes the app hold the requests that arrive from now on and
// match, and answer the others; nil holds none.
func (a *replicasApp) hold(match func(*appRequest) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holding = match
}

// everyRequest matches every request, for hold and release.
func everyRequest(*appRequest) bool { return true }

// release answers the held requests that match with 200.
func (a *replicasApp) release(match func(*appRequest) bool) { a.releaseWith(match, http.StatusOK) }

// releaseWith answers the held requests that match with status.
func (a *replicasApp) releaseWith(match func(*appRequest) bool, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.requests {
		if r.release != nil && r.gone.IsZero() && match(r) {
			r.status = status
			close(r.release)
			r.release = nil
		}
	}
}

// held returns the events of the requests held now.
func (a *replicasApp) held() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]bool{}
	for _, r := range a.requests {
		if r.release != nil && r.gone.IsZero() {
			out[r.eventID] = true
		}
	}
	return out
}

// heldAndWaiting returns how many of events the app holds a request of,
// and how many it has had no request for.
func (a *replicasApp) heldAndWaiting(events map[string]bool) (held, waiting int) {
	heldNow, seen := a.held(), map[string]bool{}
	for _, r := range a.snapshot() {
		seen[r.eventID] = true
	}
	for id := range events {
		switch {
		case heldNow[id]:
			held++
		case !seen[id]:
			waiting++
		}
	}
	return held, waiting
}

// snapshot returns copies of the requests so far, in order of arrival.
func (a *replicasApp) snapshot() []appRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]appRequest, len(a.requests))
	for i, r := range a.requests {
		out[i] = *r
		out[i].release = nil
	}
	return out
}

// firstAnswered returns, for every event the app answered, its first
// request answered 200.
func firstAnswered(reqs []appRequest) map[string]appRequest {
	out := map[string]appRequest{}
	for _, r := range reqs {
		if first, ok := out[r.eventID]; !r.answered.IsZero() && (!ok || r.answered.Before(first.answered)) {
			out[r.eventID] = r
		}
	}
	return out
}

// waitDelivered waits until the app has answered a delivery of every
// acknowledged webhook.
func (a *replicasApp) waitDelivered(t *testing.T, acked map[string]ackedWebhook) {
	t.Helper()
	eventually(t, 60*time.Second, func() (bool, string) {
		answered := map[string]bool{}
		for _, r := range a.snapshot() {
			if !r.answered.IsZero() {
				answered[r.sid] = true
			}
		}
		var missing []string
		for sid := range acked {
			if !answered[sid] {
				missing = append(missing, sid)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d of %d acknowledged webhooks not delivered, e.g. %v",
			len(missing), len(acked), missing[:min(len(missing), 3)])
	})
}

// checkDeliveries checks what the app got against what was acknowledged:
// every acknowledged message delivered with the body it was sent with (0
// lost), each message under one event only (the replica that took a
// webhook Twilio then sent to another did not make it a second event),
// and no event's attempt number on two requests (two processes never
// made one attempt). It returns the app's requests.
func checkDeliveries(t *testing.T, acked map[string]ackedWebhook, a *replicasApp) []appRequest {
	t.Helper()
	reqs := a.snapshot()
	bodies := map[string]map[string]bool{} // MessageSid → bodies answered
	events := map[string]map[string]bool{} // MessageSid → events answered
	type try struct {
		event   string
		attempt int
	}
	tries := map[try]int{}
	for _, r := range reqs {
		tries[try{r.eventID, r.attempt}]++
		if r.answered.IsZero() {
			continue
		}
		if bodies[r.sid] == nil {
			bodies[r.sid], events[r.sid] = map[string]bool{}, map[string]bool{}
		}
		bodies[r.sid][r.body] = true
		events[r.sid][r.eventID] = true
	}
	lost := 0
	for sid, ack := range acked {
		if !bodies[sid][ack.body] {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged message %s (%q) never delivered with its body", sid, ack.body)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged messages lost", lost, len(acked))
	}
	for sid, ids := range events {
		if len(ids) > 1 {
			t.Errorf("message %s delivered under %d events: %v", sid, len(ids), slices.Sorted(func(yield func(string) bool) {
				for id := range ids {
					if !yield(id) {
						return
					}
				}
			}))
		}
	}
	for k, n := range tries {
		if n > 1 {
			t.Errorf("event %s: attempt %d reached the app %d times", k.event, k.attempt, n)
		}
	}
	return reqs
}

// longestDelay returns the longest time from a webhook's acknowledgement
// to the first delivery of it the app took, over the webhooks acked
// within [from, to] but those of the events in except, and how many those
// were.
func longestDelay(acked map[string]ackedWebhook, reqs []appRequest, from, to time.Time, except map[string]bool) (longest time.Duration, n int) {
	first := map[string]time.Time{} // MessageSid → first answered
	skip := map[string]bool{}       // MessageSids of the events in except
	for _, r := range reqs {
		if at, ok := first[r.sid]; !r.answered.IsZero() && (!ok || r.arrived.Before(at)) {
			first[r.sid] = r.arrived
		}
		if except[r.eventID] {
			skip[r.sid] = true
		}
	}
	for sid, ack := range acked {
		if ack.at.Before(from) || ack.at.After(to) || skip[sid] {
			continue
		}
		n++
		longest = max(longest, first[sid].Sub(ack.at))
	}
	return longest, n
}

// replicasDB reads the replicas' store from the side.
type replicasDB struct{ db *sql.DB }

func openReplicasDB(t *testing.T, storage string) *replicasDB {
	t.Helper()
	return &replicasDB{db: openDB(t, store{name: "postgres", url: storage}).db}
}

// leader returns the node River's maintenance leader runs on, or "".
func (d *replicasDB) leader(t *testing.T) string {
	t.Helper()
	var node string
	err := d.db.QueryRowContext(t.Context(), `SELECT leader_id FROM river_leader`).Scan(&node)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("read River's leader: %v", err)
	}
	return node
}

// waitLeader waits until River's leader is one of replicas, and returns
// it.
func (d *replicasDB) waitLeader(t *testing.T, replicas []*replica) *replica {
	t.Helper()
	var leader *replica
	eventually(t, 30*time.Second, func() (bool, string) {
		node := d.leader(t)
		for _, r := range replicas {
			if r.node == node {
				leader = r
				return true, ""
			}
		}
		return false, fmt.Sprintf("River's leader is %q, none of the replicas", node)
	})
	return leader
}

// runningOn returns the events of the delivery jobs running on node.
func (d *replicasDB) runningOn(t *testing.T, node string) map[string]bool {
	t.Helper()
	rows, err := d.db.QueryContext(t.Context(), `SELECT e->>'id'
        FROM river_job j, jsonb_array_elements(j.args->'events') e
        WHERE j.state = 'running' AND j.kind = 'switchboard_deliver'
        AND j.attempted_by[array_upper(j.attempted_by, 1)] = $1`, node)
	if err != nil {
		t.Fatalf("read the jobs running on %s: %v", node, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitHeldOn waits until the app holds at least n requests of events
// whose jobs run on node, and returns those events.
func (d *replicasDB) waitHeldOn(t *testing.T, a *replicasApp, node string, n int) map[string]bool {
	t.Helper()
	var both map[string]bool
	eventually(t, 30*time.Second, func() (bool, string) {
		held, running := a.held(), d.runningOn(t, node)
		both = map[string]bool{}
		for id := range running {
			if held[id] {
				both[id] = true
			}
		}
		return len(both) >= n, fmt.Sprintf("the app holds %d deliveries, %d of them of the %d events running on %s; want %d",
			len(held), len(both), len(running), node, n)
	})
	return both
}

// findWaiting polls, for a moment, for one of replicas, each with
// workers delivery workers, that runs jobs with as many events whose
// deliveries the app holds and more it has had no request for, which
// therefore wait for a worker. It returns the one with the most of those
// waiting, or nil and how they stand.
func (d *replicasDB) findWaiting(t *testing.T, a *replicasApp, replicas []*replica, workers int) (*replica, string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var best *replica
		most := 0
		var counts []string
		for _, r := range replicas {
			held, waiting := a.heldAndWaiting(d.runningOn(t, r.node))
			if held >= workers && waiting > most {
				best, most = r, waiting
			}
			counts = append(counts, fmt.Sprintf("%d held and %d waiting", held, waiting))
		}
		if best != nil || time.Now().After(deadline) {
			return best, strings.Join(counts, ", ")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDrained waits until no event is waiting for a delivery.
func (d *replicasDB) waitDrained(t *testing.T) {
	t.Helper()
	eventually(t, 60*time.Second, func() (bool, string) {
		var n int
		if err := d.db.QueryRowContext(t.Context(),
			`SELECT count(*) FROM events WHERE state IN ('pending', 'retrying')`).Scan(&n); err != nil {
			t.Fatalf("count waiting events: %v", err)
		}
		return n == 0, fmt.Sprintf("%d events still waiting for a delivery", n)
	})
}

// checkDeliveredOnce checks that the store records at most one delivered
// attempt (answered 2xx) of every event, and returns how many events it
// records and how many attempts.
func (d *replicasDB) checkDeliveredOnce(t *testing.T) (events, attempts int) {
	t.Helper()
	rows, err := d.db.QueryContext(t.Context(), `SELECT event_id, count(*) FROM attempts
        WHERE error_class = '' AND status_code BETWEEN 200 AND 299
        GROUP BY event_id HAVING count(*) > 1`)
	if err != nil {
		t.Fatalf("count delivered attempts: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		t.Errorf("event %s: %d delivered attempts on record, want at most one", id, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := d.db.QueryRowContext(t.Context(),
		`SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM attempts)`).Scan(&events, &attempts); err != nil {
		t.Fatalf("count events and attempts: %v", err)
	}
	return events, attempts
}
