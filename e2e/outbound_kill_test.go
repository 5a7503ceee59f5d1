package e2e

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
)

// TestOutboundKillWhileSending sends a backlog through a pool of two
// senders and SIGKILLs switchboard serve while sends are in flight: some
// messages are created at the simulator whose answers the dead process
// never read. After a restart on the same store every accepted message is
// sent, and the simulator has each exactly once: no idempotency key is sent
// twice.
func TestOutboundKillWhileSending(t *testing.T) {
	forEachStore(t, testOutboundKill)
}

func testOutboundKill(t *testing.T, st store) {
	const (
		n         = 150
		holdAfter = 40 // creates answered before the simulator holds its answers
		held      = 3  // held answers, at least, when serve is killed
	)
	// On SQLite the restarted process takes back the send jobs the dead one
	// had running at once. On PostgreSQL they wait for River's rescue:
	// delivery.timeout + 30 s (32 s here, see server.Start), plus up to 30 s
	// until the rescuer next looks, plus the leader's election.
	recovery := 45 * time.Second
	if st.name == "postgres" {
		recovery = 150 * time.Second
	}
	senders := []string{"+15550002001", "+15550002002"}
	tw, err := sim.New(sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers: []sim.Number{{Number: senders[0], Throughput: 100}, {Number: senders[1], Throughput: 100}},
		}},
		Transport: callbackSink{}, // no status route: nothing calls back
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	api := &holdingAPI{next: tw.Handler(), holdAfter: holdAfter, release: make(chan struct{})}
	srv := httptest.NewServer(api) // loopback
	t.Cleanup(srv.Close)
	t.Cleanup(api.releaseAll) // before srv.Close, which waits for held handlers

	cfg := writeConfig(t, config{
		storage:  st.url,
		routes:   []route{{path: "/status", mode: "static"}},
		provider: srv.URL,
		pools:    []pool{{name: "main", senders: senders, rate: 20}},
	})
	p := startServe(t, cfg)

	// Every message has a recipient and a body of its own, so that a
	// message sent twice shows at the simulator as two with the same To.
	want := map[string]string{} // To → body
	ids := map[string]string{}  // message ID → To
	for i := range n {
		to, body := fmt.Sprintf("+1555700%04d", i), fmt.Sprintf("kill test message %d", i)
		status, m := postMessage(t, p, fmt.Sprintf("kill-%d", i),
			fmt.Sprintf(`{"to": %q, "body": %q, "pool": "main"}`, to, body))
		if status != http.StatusAccepted {
			t.Fatalf("POST /api/v1/messages #%d = %d, want 202", i, status)
		}
		want[to], ids[m.ID] = body, to
	}

	// Kill while creates are in flight: the simulator has created some
	// messages whose answers are held, so that the dead process recorded
	// them as sending and never learnt their SIDs.
	eventually(t, 30*time.Second, func() (bool, string) {
		h := api.heldCount()
		return h >= held, fmt.Sprintf("%d creates held at the simulator, want %d", h, held)
	})
	atSim := len(tw.Messages(accountSID))
	heldAtKill := api.heldCount()
	p.kill(t)
	api.releaseAll()
	if atSim == 0 || atSim >= n {
		t.Fatalf("killed with %d of %d messages at the simulator; want some but not all", atSim, n)
	}
	t.Logf("killed with %d of %d messages at the simulator, %d of them with their answers held", atSim, n, heldAtKill)

	start := time.Now()
	p = startServe(t, cfg) // again, on the same store
	eventually(t, recovery, func() (bool, string) {
		sent := listMessages(t, p, "state=sent&limit=500")
		return len(sent) == n, fmt.Sprintf("%d of %d messages sent", len(sent), n)
	})
	t.Logf("every message sent %v after the restart", time.Since(start).Round(time.Millisecond))

	// At the simulator: each message exactly once.
	byTo := map[string]sim.Message{}
	for _, m := range tw.Messages(accountSID) {
		if prev, dup := byTo[m.To]; dup {
			t.Errorf("sent twice to %s: %s (%q) and %s (%q)", m.To, prev.SID, prev.Body, m.SID, m.Body)
			continue
		}
		byTo[m.To] = m
		if body, ok := want[m.To]; !ok || body != m.Body {
			t.Errorf("at the simulator: %s to %s with %q; not a message the test sent", m.SID, m.To, m.Body)
		}
	}
	if len(byTo) != n {
		t.Errorf("the simulator has messages to %d recipients, want %d", len(byTo), n)
	}
	// And each accepted message recorded with the SID it has there.
	for _, m := range listMessages(t, p, "limit=500") {
		to, ok := ids[m.ID]
		if !ok {
			t.Errorf("message %s: not one the test created", m.ID)
			continue
		}
		if at := byTo[to]; m.State != "sent" || m.TwilioSID != at.SID {
			t.Errorf("message %s to %s: %s with SID %q; the simulator has %q", m.ID, to, m.State, m.TwilioSID, at.SID)
		}
	}
	// The held ones were found at Twilio, not sent again.
	if found := strings.Count(p.out.String(), `"msg":"found at Twilio: recorded as sent, not resent"`); found < heldAtKill {
		t.Errorf("the restarted process found %d messages at Twilio; want at least the %d created before the kill without an answer", found, heldAtKill)
	}
}

// holdingAPI serves the simulator's REST API and, once holdAfter messages
// have been created, holds the answers of further creates (the messages
// are created) until released or the client goes away: a request that
// reached Twilio whose answer the caller never reads.
type holdingAPI struct {
	next      http.Handler
	holdAfter int
	release   chan struct{}
	once      sync.Once
	created   atomic.Int64
	held      atomic.Int64
}

func (h *holdingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Messages.json") {
		h.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	if rec.Code == http.StatusCreated && h.created.Add(1) > int64(h.holdAfter) {
		select {
		case <-h.release:
		default:
			h.held.Add(1)
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (h *holdingAPI) heldCount() int { return int(h.held.Load()) }

func (h *holdingAPI) releaseAll() { h.once.Do(func() { close(h.release) }) }

// TestOutboundCallbacksOutOfOrder sends messages whose status callbacks
// arrive late, out of order and twice, some of them undelivered or failed:
// each message ends in the simulator's final status, with its error code,
// and every callback is in its history.
func TestOutboundCallbacksOutOfOrder(t *testing.T) {
	forEachStore(t, testOutboundCallbacks)
}

func testOutboundCallbacks(t *testing.T, st store) {
	const n = 20
	senders := []string{"+15550003001", "+15550003002"}
	// Callbacks go to whichever serve process listens once it does.
	tunnel := newLateTunnel(t)
	callbacks := sim.Callbacks{
		Delay:          sim.Latency{Median: 20 * time.Millisecond, P99: 200 * time.Millisecond},
		ReorderRate:    0.3,
		ReorderBy:      300 * time.Millisecond,
		DuplicateRate:  0.3,
		DuplicateAfter: 200 * time.Millisecond,
	}
	tw, err := sim.New(sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers: []sim.Number{{Number: senders[0], Throughput: 100}, {Number: senders[1], Throughput: 100}},
		}},
		Carriers: []sim.Carrier{
			{Prefix: "", Latency: sim.Latency{Median: 100 * time.Millisecond, P99: 400 * time.Millisecond}},
			// A fifth of the recipients are unreachable, a tenth refused
			// before they are sent.
			{Prefix: "+1555801", Latency: sim.Latency{Median: 100 * time.Millisecond, P99: 400 * time.Millisecond},
				Outcomes: []sim.Outcome{{Status: "undelivered", Code: 30003, Rate: 1}}},
			{Prefix: "+1555802", Outcomes: []sim.Outcome{{Status: "failed", Code: 30007, Rate: 1}}},
		},
		Callbacks: callbacks,
		Transport: tunnel,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	srv, err := tw.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	cfg := writeConfig(t, config{
		storage:     st.url,
		routes:      []route{{path: "/status", mode: "static"}},
		provider:    srv.URL,
		pools:       []pool{{name: "main", senders: senders, rate: 10}},
		statusRoute: "/status",
	})
	p := startServe(t, cfg)
	tunnel.to(p.addr)

	var ids []string
	for i := range n {
		prefix := "+1555800" // delivered
		switch i % 10 {
		case 1, 6:
			prefix = "+1555801" // undelivered, 30003
		case 2:
			prefix = "+1555802" // failed, 30007
		}
		status, m := postMessage(t, p, fmt.Sprintf("callbacks-%d", i),
			fmt.Sprintf(`{"to": "%s%04d", "body": "callback test message %d"}`, prefix, i, i))
		if status != http.StatusAccepted {
			t.Fatalf("POST /api/v1/messages #%d = %d, want 202", i, status)
		}
		ids = append(ids, m.ID)
	}

	// Every message reaches its final status at the simulator, and the
	// simulator has sent every callback it will: none for a while, longer
	// than the latest a held back or repeated one comes.
	quiet := callbacks.Delay.P99*2 + callbacks.ReorderBy + callbacks.DuplicateAfter
	start := time.Now()
	eventually(t, 30*time.Second, func() (bool, string) {
		at := tw.Messages(accountSID)
		final := 0
		for _, m := range at {
			if m.Status == sim.StatusDelivered || m.Status == sim.StatusUndelivered || m.Status == sim.StatusFailed {
				final++
			}
		}
		idle := tunnel.idleFor()
		return len(at) == n && final == n && idle > quiet,
			fmt.Sprintf("%d of %d messages final at the simulator; callbacks idle for %v, want %v", final, len(at), idle, quiet)
	})

	// Switchboard ends where the simulator did, with every callback it
	// took in the message's history (its follow-up comes after the
	// answer).
	outcomes := map[string]int{}
	eventually(t, 15*time.Second, func() (bool, string) {
		clear(outcomes)
		for _, id := range ids {
			d := messageDetail(t, p, id)
			m := d.Message
			at, ok := tw.Message(m.TwilioSID)
			if !ok {
				return false, fmt.Sprintf("message %s (%s): SID %q not at the simulator", id, m.State, m.TwilioSID)
			}
			if m.State != at.Status || m.TwilioStatus != at.Status || m.ErrorCode != int(at.ErrorCode) {
				return false, fmt.Sprintf("message %s: %s (Twilio status %q, error %d); the simulator has %s (error %d), history %+v",
					id, m.State, m.TwilioStatus, m.ErrorCode, at.Status, int(at.ErrorCode), d.History)
			}
			recorded := 0
			for _, h := range d.History {
				if h.Source == "callback" {
					recorded++
				}
			}
			if acked := tunnel.acked(m.TwilioSID); recorded < acked {
				return false, fmt.Sprintf("message %s: %d callbacks in its history; Switchboard acknowledged %d: %+v",
					id, recorded, acked, d.History)
			}
			outcomes[m.State]++
		}
		return true, ""
	})
	t.Logf("all %d messages final in %v: %v; %d callbacks acknowledged", n, time.Since(start).Round(time.Millisecond),
		outcomes, tunnel.total())

	// The applied changes only ever moved forward, and the last one is
	// the final status.
	rank := map[string]int{"queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4, "failed": 4, "read": 5}
	for _, id := range ids {
		d := messageDetail(t, p, id)
		last := ""
		for _, h := range d.History {
			if !h.Applied {
				continue
			}
			if last != "" && rank[h.Status] <= rank[last] {
				t.Errorf("message %s: applied %s after %s: %+v", id, h.Status, last, d.History)
			}
			last = h.Status
		}
		if last != d.Message.State {
			t.Errorf("message %s: last applied status %q, state %s", id, last, d.Message.State)
		}
	}
	if outcomes["delivered"] == 0 || outcomes["undelivered"] == 0 || outcomes["failed"] == 0 {
		t.Errorf("outcomes %v: want some delivered, undelivered and failed", outcomes)
	}
}

// apiMessageDetail is GET /api/v1/messages/{id}.
type apiMessageDetail struct {
	Message struct {
		apiMessage
		TwilioStatus string `json:"twilio_status"`
		ErrorCode    int    `json:"error_code"`
	} `json:"message"`
	History []struct {
		Status    string `json:"status"`
		ErrorCode int    `json:"error_code"`
		Source    string `json:"source"`
		Applied   bool   `json:"applied"`
	} `json:"history"`
}

func messageDetail(t *testing.T, p *proc, id string) apiMessageDetail {
	t.Helper()
	var d apiMessageDetail
	adminGet(t, p, "/api/v1/messages/"+id, &d)
	return d
}

// listMessages calls GET /api/v1/messages with a query and returns the
// first page.
func listMessages(t testing.TB, p *proc, query string) []apiMessage {
	t.Helper()
	var page struct {
		Items []apiMessage `json:"items"`
	}
	adminGet(t, p, "/api/v1/messages?"+query, &page)
	return page.Items
}

// lateTunnel carries the simulator's webhooks to a serve process over
// loopback, to the address it is given once the process listens, and
// counts the status callbacks acknowledged for each message.
type lateTunnel struct {
	rt   http.RoundTripper
	addr atomic.Pointer[string]

	mu       sync.Mutex
	bySID    map[string]map[string]int // acknowledged callbacks by MessageSid and MessageStatus
	inFlight int
	last     time.Time // when the last one started or ended
}

func newLateTunnel(t *testing.T) *lateTunnel {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &lateTunnel{rt: tr, bySID: map[string]map[string]int{}, last: time.Now()}
}

func (l *lateTunnel) to(addr string) { l.addr.Store(&addr) }

func (l *lateTunnel) RoundTrip(req *http.Request) (*http.Response, error) {
	addr := l.addr.Load()
	if addr == nil {
		return nil, fmt.Errorf("no serve process to tunnel %s to yet", req.URL)
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	form, _ := url.ParseQuery(string(body))
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", *addr, *addr
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	l.mark(0, "", "")
	resp, err := l.rt.RoundTrip(out)
	acked := ""
	if err == nil && resp.StatusCode/100 == 2 {
		acked = form.Get("MessageSid")
	}
	l.mark(-1, acked, form.Get("MessageStatus"))
	return resp, err
}

// mark records a callback starting (delta 0, counted in flight) or ending
// (delta -1), acknowledged for sid with status when sid is not empty.
func (l *lateTunnel) mark(delta int, sid, status string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if delta == 0 {
		l.inFlight++
	} else {
		l.inFlight--
	}
	if sid != "" {
		if l.bySID[sid] == nil {
			l.bySID[sid] = map[string]int{}
		}
		l.bySID[sid][status]++
	}
	l.last = time.Now()
}

// idleFor is how long no callback has been in flight; zero while one is.
func (l *lateTunnel) idleFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight > 0 {
		return 0
	}
	return time.Since(l.last)
}

// acked is how many distinct callbacks (one per status: the simulator's
// repeats are copies of one signed callback, which Switchboard answers as
// duplicates) were acknowledged for sid.
func (l *lateTunnel) acked(sid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.bySID[sid])
}

func (l *lateTunnel) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0
	for _, statuses := range l.bySID {
		for _, n := range statuses {
			total += n
		}
	}
	return total
}
