package e2e

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/sim"
)

// The pacing requirement: under a backlog each pool stays at or
// below its rate and reaches at least 95% of it, and the simulator answers
// no create 429 when the configured rates match its own.
//
// Where it is checked: the bounds themselves — no sender's request ever
// earlier than its rate allows, and each sender at its rate over a
// backlog — are checked exactly, on a fake clock, where pacing is decided:
// the outbound package's TestPacingWhereDecided runs the sender's whole
// send path on testing/synctest's clock and stamps each request as the
// sender makes it. Here, end to end through the real binary,
// TestOutboundPacing checks what no CPU load can break: every message is
// created once, no create is answered 429 at a concurrency limit an
// unpaced burst exceeds, and no sender finishes sooner than its rate
// allows. The arrival-based figures (how early the creates came at the
// simulator, the share of the rate reached) depend on the transport and
// the machine's load, and are reported by BenchmarkOutboundPacing.

// pacedPool is a pool of the pacing scenario: its senders, each configured
// at rate messages/s in Switchboard and at the same throughput at the
// simulator, and the backlog posted to it.
type pacedPool struct {
	name    string
	senders []string
	labels  []string // what the test's messages call each sender (no numbers)
	rate    float64
	backlog int
}

// pacingPools are the scenario's pools: two senders at 10 messages/s, and
// one at 5/s; each pool's backlog is twelve seconds of its rate, longer
// than MaxWait, so that sends both wait in process and are rescheduled.
var pacingPools = []pacedPool{
	{name: "fast", senders: []string{"+15550003001", "+15550003002"}, labels: []string{"fast/1", "fast/2"}, rate: 10, backlog: 240},
	{name: "slow", senders: []string{"+15550003101"}, labels: []string{"slow/1"}, rate: 5, backlog: 60},
}

// pacingMaxWait is outbound.Policy.MaxWait's default: the longest a send
// waits in process for its turn before it is rescheduled.
const pacingMaxWait = 10 * time.Second

// pacingRun is what one run of the pacing scenario saw.
type pacingRun struct {
	total       int       // messages posted
	posted      time.Time // before the first message was posted
	messages    []apiMessage
	atSim       []sim.Message
	arrived     map[string][]time.Time // creates' arrivals at the simulator, by sender, sorted
	api         *statusCounter
	concurrency int // the simulator's concurrency limit
}

// runPacing posts the backlog of pacingPools to switchboard serve (the real
// binary) on storage, sending to the simulator over loopback, and waits
// until every message is created at the simulator and recorded as sent.
// The simulator paces the senders' numbers at the same throughput, holds
// every create apiLatency and lets the account have only a few creates in
// flight.
func runPacing(tb testing.TB, storage string) *pacingRun {
	tb.Helper()
	var (
		numbers   []sim.Number
		poolRates float64
		nSenders  int
		total     int
	)
	for _, pl := range pacingPools {
		for _, n := range pl.senders {
			numbers = append(numbers, sim.Number{Number: n, Throughput: pl.rate})
		}
		poolRates += pl.rate * float64(len(pl.senders))
		nSenders += len(pl.senders)
		total += pl.backlog
	}
	// Each create holds its place in the account's concurrency limit for
	// apiLatency. Paced, a sender has one create in flight at a time (its
	// requests are 100 ms or more apart); the limit allows each sender
	// four, so that creates the test process (the simulator) was too busy
	// to take for a few hundred milliseconds, and then takes at once, stay
	// within it. An unpaced burst from the send workers (hundreds) exceeds
	// it at once.
	const apiLatency = 20 * time.Millisecond
	concurrency := 4 * nSenders
	tw, err := sim.New(sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken}, Numbers: numbers,
		}},
		ConcurrencyLimit: concurrency,
		APILatency:       apiLatency,
		Transport:        callbackSink{}, // no status route: nothing calls back
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tw.Close)
	api := &statusCounter{next: tw.Handler()}
	srv := httptest.NewServer(api) // loopback
	tb.Cleanup(srv.Close)

	var cfgPools []pool
	for _, pl := range pacingPools {
		cfgPools = append(cfgPools, pool{name: pl.name, senders: pl.senders, rate: pl.rate})
	}
	cfg := writeConfig(tb, config{
		storage:  storage,
		routes:   []route{{path: "/status", mode: "static"}},
		provider: srv.URL,
		pools:    cfgPools,
	})
	// Send workers enough to hold every pool's waiting sends, as
	// outbound.Policy documents: rate × senders × MaxWait (its default,
	// 10 s) summed over the pools (250), and some over.
	workers := int(poolRates*pacingMaxWait.Seconds()) + 16
	appendConfig(tb, cfg, fmt.Sprintf("\n[outbound]\nsend_workers = %d\n", workers))
	p := startServeTB(tb, cfg)

	// The backlog, interleaved by pool in proportion to the pools' rates
	// so that the send queue, which runs jobs in the order they are due,
	// holds every pool's share from the start. Posted from a few
	// goroutines, while the first sends go out.
	type post struct{ key, body string }
	var order []post
	next := make([]int, len(pacingPools))
	for range total {
		// The pool furthest behind its share goes next.
		i := 0
		for j, pl := range pacingPools {
			if float64(next[j])/float64(pl.backlog) < float64(next[i])/float64(pacingPools[i].backlog) {
				i = j
			}
		}
		pl, k := pacingPools[i], next[i]
		next[i]++
		order = append(order, post{
			key:  fmt.Sprintf("pace-%s-%d", pl.name, k),
			body: fmt.Sprintf(`{"to": "+1555800%d%03d", "body": "pacing test %s %d", "pool": %q, "purpose": "transactional"}`, i, k, pl.name, k, pl.name),
		})
	}
	posted := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		postErrs []string
		cursor   atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			for {
				i := int(cursor.Add(1)) - 1
				if i >= len(order) {
					return
				}
				if status, err := createMessage(tb, p, order[i].key, order[i].body); err != nil || status != http.StatusAccepted {
					mu.Lock()
					postErrs = append(postErrs, fmt.Sprintf("%s: %d %v", order[i].key, status, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(postErrs) > 0 {
		tb.Fatalf("%d of %d posts failed, first: %s", len(postErrs), total, postErrs[0])
	}
	tb.Logf("%d messages posted in %v", total, time.Since(posted).Round(time.Millisecond))

	// Every message at the simulator; then every one recorded as sent.
	// The deadlines are liveness bounds only, far above the 12 s the
	// backlog takes at its rate: how fast it went is not checked here.
	eventually(tb, 3*time.Minute, func() (bool, string) {
		n := len(tw.Messages(accountSID))
		return n >= total, fmt.Sprintf("%d of %d messages created at the simulator", n, total)
	})
	eventually(tb, time.Minute, func() (bool, string) {
		sent := listMessages(tb, p, "state=sent&limit=500")
		return len(sent) == total, fmt.Sprintf("%d of %d messages recorded as sent", len(sent), total)
	})
	r := &pacingRun{total: total, posted: posted, messages: listMessages(tb, p, "limit=500"),
		atSim: tw.Messages(accountSID), arrived: api.arrived(), api: api, concurrency: concurrency}
	for _, times := range r.arrived {
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	}
	return r
}

// TestOutboundPacing sends the pacing scenario's backlog (runPacing)
// through the real binary on each store and checks, end to end, what a
// paced sender guarantees whatever the machine's load: every message is
// created once, in one attempt; no create is answered 429 at a concurrency
// limit an unpaced burst exceeds; and each sender's last create arrives no
// sooner after the backlog was posted than its rate allows for its
// creates. The exact bounds (no request ever earlier than its sender's
// rate allows, the rate reached) are checked where they are decided, by
// the outbound package's TestPacingWhereDecided; the arrival figures are
// logged here and measured by BenchmarkOutboundPacing.
func TestOutboundPacing(t *testing.T) {
	forEachStore(t, testOutboundPacing)
}

func testOutboundPacing(t *testing.T, st store) {
	r := runPacing(t, st.url)
	for _, m := range r.messages {
		if m.Attempts != 1 {
			t.Errorf("message %s took %d attempts, want 1 (last error: %s)", m.ID, m.Attempts, m.LastError)
		}
	}
	if len(r.atSim) != r.total {
		t.Errorf("the simulator has %d messages, want %d: one per message", len(r.atSim), r.total)
	}
	seen := map[string]bool{}
	for _, m := range r.atSim {
		if seen[m.To] {
			t.Errorf("message %s: a second message to the same recipient", m.SID)
		}
		seen[m.To] = true
	}
	if n := r.api.count(http.StatusTooManyRequests); n > 0 {
		t.Errorf("the simulator answered %d creates 429 (concurrency limit %d); want none with the rates matched", n, r.concurrency)
	}
	t.Logf("simulator answers: %s", r.api.summary())

	for _, pl := range pacingPools {
		for i, n := range pl.senders {
			times := r.arrived[n]
			if len(times) < 2 {
				t.Errorf("sender %s: %d creates, want a backlog", pl.labels[i], len(times))
				continue
			}
			// A sender's k-th request goes no sooner than (k-1)/rate
			// after its first, which goes no sooner than the first
			// post, and arrives after it goes: so the bound holds
			// however late any request is.
			least := time.Duration(float64(len(times)-1) / pl.rate * float64(time.Second))
			if took := times[len(times)-1].Sub(r.posted); took < least {
				t.Errorf("sender %s: %d creates within %v of the first post, want at least %v at %v/s: faster than its rate",
					pl.labels[i], len(times), took.Round(time.Millisecond), least, pl.rate)
			}
			// For the log: what the transport and the machine's load
			// added (BenchmarkOutboundPacing measures them).
			over, _, _ := worstWindow(times, pl.rate, 1)
			span := times[len(times)-1].Sub(times[0])
			gap, at := largestGap(times)
			achieved := float64(len(times)-1) / span.Seconds()
			t.Logf("sender %s: %d creates, the last %v after the first post (at least %v); from the first to the last %v: %.2f/s of %v/s (%.1f%%); most early at arrival %v; largest gap %v after create %d",
				pl.labels[i], len(times), times[len(times)-1].Sub(r.posted).Round(time.Millisecond), least, span.Round(time.Millisecond),
				achieved, pl.rate, 100*achieved/pl.rate, over.Round(100*time.Microsecond), gap.Round(time.Millisecond), at)
		}
	}
}

// BenchmarkOutboundPacing runs the pacing scenario (runPacing) on each
// store and reports, from the creates' arrival times at the simulator,
// what the transport and the machine's load add to the pacing Switchboard
// decides (which TestPacingWhereDecided in the outbound package checks
// exactly):
//
//   - rate-min-%: the lowest share of its rate any sender reached over its
//     backlog, (creates-1)/(last-first) against its rate;
//   - early-ms: the most any sender's creates came earlier than a bucket of
//     its rate with a burst of one allows (0 or less: none), the worst
//     window over every pair of its creates;
//   - pool-early-ms: the same for each pool's creates together, against
//     the pool's rate with a burst of one per sender;
//   - 429s: creates the simulator refused for its concurrency limit;
//   - resent: messages that took more than one attempt.
//
// The figures are the worst over the b.N runs. PostgreSQL runs when
// SWITCHBOARD_TEST_POSTGRES_URL is set.
//
//	go test -race ./e2e -run XXX -bench OutboundPacing -benchtime 1x -count 3
func BenchmarkOutboundPacing(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			rateMin, early, poolEarly := math.Inf(1), math.Inf(-1), math.Inf(-1)
			var refused, resent int
			for range b.N {
				storage := filepath.Join(b.TempDir(), "data", "switchboard.db")
				if engine == "postgres" {
					storage = pgtest.URL(b) // skips without the variable
				}
				r := runPacing(b, storage)
				for _, pl := range pacingPools {
					var poolTimes []time.Time
					for i, n := range pl.senders {
						times := r.arrived[n]
						if len(times) < 2 {
							b.Fatalf("sender %s: %d creates", pl.labels[i], len(times))
						}
						poolTimes = append(poolTimes, times...)
						over, _, _ := worstWindow(times, pl.rate, 1)
						early = max(early, float64(over)/float64(time.Millisecond))
						achieved := float64(len(times)-1) / times[len(times)-1].Sub(times[0]).Seconds()
						rateMin = min(rateMin, 100*achieved/pl.rate)
					}
					slices.SortFunc(poolTimes, func(a, b time.Time) int { return a.Compare(b) })
					over, _, _ := worstWindow(poolTimes, pl.rate*float64(len(pl.senders)), len(pl.senders))
					poolEarly = max(poolEarly, float64(over)/float64(time.Millisecond))
				}
				refused += r.api.count(http.StatusTooManyRequests)
				for _, m := range r.messages {
					if m.Attempts != 1 {
						resent++
					}
				}
			}
			b.ReportMetric(rateMin, "rate-min-%")
			b.ReportMetric(early, "early-ms")
			b.ReportMetric(poolEarly, "pool-early-ms")
			b.ReportMetric(float64(refused), "429s")
			b.ReportMetric(float64(resent), "resent")
		})
	}
}

// worstWindow returns how much earlier than a token bucket of rate with
// burst allows the creates come, at worst: the largest
// (j-i+1-burst)/rate - (times[j]-times[i]) over i < j, and that i and j.
// A bucket that paced them exactly gives at most 0.
func worstWindow(times []time.Time, rate float64, burst int) (over time.Duration, wi, wj int) {
	over = time.Duration(-1 << 62)
	for i := range times {
		for j := i + 1; j < len(times); j++ {
			allowed := time.Duration(float64(j-i+1-burst) / rate * float64(time.Second))
			if d := allowed - times[j].Sub(times[i]); d > over {
				over, wi, wj = d, i, j
			}
		}
	}
	return over, wi, wj
}

// largestGap returns the longest time between consecutive creates and the
// index of the create before it.
func largestGap(times []time.Time) (gap time.Duration, at int) {
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, at = d, i-1
		}
	}
	return gap, at
}

// createMessage is postMessage for any goroutine: it returns the status or
// the error instead of failing the test.
func createMessage(t testing.TB, p *proc, key, body string) (int, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url("/api/v1/messages"), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// appendConfig appends text to the configuration file at path.
func appendConfig(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// statusCounter serves the simulator's API, counts its answers by status,
// and stamps when each create request arrived, by its From: what a
// provider metering its senders sees, before the simulator's own
// processing (its api_latency timer) adds jitter of its own.
type statusCounter struct {
	next http.Handler

	mu       sync.Mutex
	counts   map[int]int
	arrivals map[string][]time.Time
}

func (c *statusCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var from string
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Messages.json") {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		from = form.Get("From")
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	c.next.ServeHTTP(rec, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts, c.arrivals = map[int]int{}, map[string][]time.Time{}
	}
	c.counts[rec.status]++
	if from != "" && rec.status == http.StatusCreated {
		c.arrivals[from] = append(c.arrivals[from], arrived)
	}
}

// arrived returns the arrival times of the creates from each sender that
// the simulator accepted.
func (c *statusCounter) arrived() map[string][]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]time.Time{}
	for from, times := range c.arrivals {
		out[from] = slices.Clone(times)
	}
	return out
}

func (c *statusCounter) count(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[status]
}

func (c *statusCounter) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(c.counts)) {
		parts = append(parts, fmt.Sprintf("%d×%d", s, c.counts[s]))
	}
	return strings.Join(parts, ", ")
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
