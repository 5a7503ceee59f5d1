package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/sim"
)

// BenchmarkOutbound100Pools measures sustained outbound sending: switchboard
// serve (the real binary) with 100 pools, alternately of one and two
// senders (150 senders), each sender at rate messages/s, sends a backlog
// of benchBacklog worth per pool, posted through the native API, to the
// simulator (in this process, over loopback), whose numbers have the same
// throughput. The backlog is posted first, while the provider is paused,
// to a first serve process with one send worker, whose one create the
// paused provider holds until that process, stopped with a short grace,
// gives it up; a second process on the same store sends the backlog,
// starting with all of it waiting, as after an outage. (The message whose
// create was held is left out of the figures: it is sent only after its
// job's retry and a lookup.) It reports, from the simulator's stamps of
// the creates:
//
//   - sends/s: creates per second from the first to the last, less one
//     per sender (the bursts: a bucket per sender allows senders +
//     ceiling × span creates in a span);
//   - ceiling-%: that against the ceiling, the sum of the pools' rates;
//   - ref-creates/s and reference-%: the reference, the simulator's own
//     create throughput, measured right after on a fresh simulator with
//     plain HTTP creates from as many goroutines as Switchboard had creates
//     in flight at most (peak-in-flight), and the sends against it;
//   - pool-min-%, pool-median-%, pool-max-%: each pool's achieved rate
//     over its backlog, (creates-senders)/(last-first), against its
//     configured rate × senders;
//   - overshoot: the most creates any sender had in a 1-second window
//     beyond what its bucket allows (rate + 1, the burst); 0 or less is
//     none; arrival-overshoot: the same by when the creates arrived at
//     the simulator's HTTP handler, before it took them (its stamps carry
//     its own queueing when it falls behind);
//   - idle-s: the longest time no create was made at all while messages
//     waited;
//   - posted/s: how fast the native API took the backlog (while nothing
//     was being sent), and 429s: creates the simulator refused for its
//     concurrency limit (Twilio's 100);
//   - send-jobs/msg: the send jobs the store holds once the run ends, per
//     message posted: one for each message's first send, and one more for
//     each send rescheduled (a wait past MaxWait) or retried.
//
// Every run is bounded: it stops waiting benchDeadline after the sending
// process starts and reports what was sent by then (sent-%). PostgreSQL
// runs when SWITCHBOARD_TEST_POSTGRES_URL is set. At rate=20 the ceiling
// (3,000/s) is far above what the store sustains, so sends/s is the
// store's limit, not the pools'; its backlog (36,000 messages) takes about
// a minute to post.
//
// With SWITCHBOARD_BENCH_CPUPROFILE set to a directory, the sending
// process writes a CPU profile of its run there (serve's --cpuprofile).
//
//	go test ./e2e -run XXX -bench Outbound100Pools -benchtime 1x -count 3 -timeout 40m
func BenchmarkOutbound100Pools(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, rate := range []float64{1, 2, 4, 20} {
			b.Run(fmt.Sprintf("%s/rate=%v", engine, rate), func(b *testing.B) {
				for range b.N {
					runOutbound100Pools(b, engine, rate)
				}
			})
		}
	}
}

const (
	benchPools    = 100
	benchBacklog  = 12 * time.Second // of each pool's rate: longer than MaxWait
	benchDeadline = 90 * time.Second // after the sending process starts
	benchMaxWait  = 10 * time.Second // outbound.Policy.MaxWait's default
	benchPosters  = 16               // goroutines posting the backlog
	benchRefFor   = 3 * time.Second  // how long the reference runs
	// benchMaxWorkers is River's most workers for a queue
	// (river.QueueNumWorkersMax).
	benchMaxWorkers = 10_000
)

// benchPool is one of the benchmark's pools.
type benchPool struct {
	name    string
	senders []string
}

func runOutbound100Pools(b *testing.B, engine string, rate float64) {
	b.StopTimer()
	var storage string
	switch engine {
	case "sqlite":
		storage = filepath.Join(b.TempDir(), "data", "switchboard.db")
	case "postgres":
		storage = pgtest.URL(b) // skips without the variable
	}

	var (
		pools   []benchPool
		numbers []sim.Number
		senders int
	)
	for i := range benchPools {
		p := benchPool{name: fmt.Sprintf("pool%03d", i)}
		for range 1 + i%2 {
			n := fmt.Sprintf("+1555600%04d", senders)
			senders++
			p.senders = append(p.senders, n)
			numbers = append(numbers, sim.Number{Number: n, Throughput: rate})
		}
		pools = append(pools, p)
	}
	ceiling := rate * float64(senders)
	simCfg := sim.Config{
		Seed:      simSeeds.Add(1),
		Accounts:  []sim.Account{{SID: accountSID, AuthTokens: []string{authToken}, Numbers: numbers}},
		Transport: callbackSink{}, // no status route: nothing calls back
	}
	tw, err := sim.New(simCfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tw.Close()
	api := &inFlightCounter{next: tw.Handler()}
	gate := &pausingGate{next: api}
	gate.hold()
	srv := httptest.NewServer(gate) // loopback
	defer srv.Close()
	defer gate.pass() // before srv.Close, which waits for held handlers

	// The backlog, round-robin over the pools, so that every pool's share
	// is due from the start.
	var order []string // request bodies
	perPool := make([]int, len(pools))
	most := 0
	for i, pl := range pools {
		perPool[i] = int(rate * float64(len(pl.senders)) * benchBacklog.Seconds())
		most = max(most, perPool[i])
	}
	for r := range most {
		for i, pl := range pools {
			if r < perPool[i] {
				order = append(order, fmt.Sprintf(`{"to": "+1555900%04d", "body": "benchmark %s %d", "pool": %q}`, len(order), pl.name, r, pl.name))
			}
		}
	}
	total := len(order)

	// Posted to a process with one send worker, whose one create the
	// paused provider holds.
	p := startServeTB(b, writeBenchConfig(b, storage, srv.URL, pools, rate, 1), "--grace", "1s")
	postStart := time.Now()
	var (
		wg       sync.WaitGroup
		cursor   atomic.Int64
		postErrs atomic.Int64
	)
	for range benchPosters {
		wg.Go(func() {
			for {
				i := int(cursor.Add(1)) - 1
				if i >= total {
					return
				}
				status, err := postBench(p, fmt.Sprintf("bench-%d", i), order[i])
				if err != nil || status != http.StatusAccepted {
					postErrs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	postTook := time.Since(postStart)
	if n := postErrs.Load(); n > 0 {
		b.Fatalf("%d of %d posts failed", n, total)
	}
	p.stopTB(b)
	held := gate.heldTo()
	gate.pass()

	// Sent by a process with send workers enough to hold every pool's turns
	// for MaxWait, as outbound.Policy documents, and some over, up to what
	// River allows a queue (at rate=20, 3.3 s of the ceiling's turns: more
	// than the store sustains).
	workers := min(int(math.Ceil(ceiling*benchMaxWait.Seconds()))+16, benchMaxWorkers)
	var args []string
	if dir := os.Getenv("SWITCHBOARD_BENCH_CPUPROFILE"); dir != "" {
		args = append(args, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("outbound-%s-rate%v-%d.pprof", engine, rate, time.Now().UnixNano())))
	}
	b.StartTimer()
	sendStart := time.Now()
	p = startServeTB(b, writeBenchConfig(b, storage, srv.URL, pools, rate, workers), args...)
	deadline := time.NewTimer(benchDeadline)
	tick := time.NewTicker(100 * time.Millisecond)
	// Creates are counted as answered, not by a snapshot of the
	// simulator's messages, which holds its lock, and so its API, for as
	// long as it copies them all.
wait:
	for api.status(http.StatusCreated) < total-len(held) {
		select {
		case <-tick.C:
		case <-deadline.C:
			break wait
		}
	}
	deadline.Stop()
	tick.Stop()
	b.StopTimer()
	p.stopTB(b)

	// What the simulator saw.
	var msgs []sim.Message
	for _, m := range tw.Messages(accountSID) {
		if !held[m.To] {
			msgs = append(msgs, m)
		}
	}
	byFrom := map[string][]time.Time{}
	var all []time.Time
	for _, m := range msgs {
		byFrom[m.From] = append(byFrom[m.From], m.Created)
		all = append(all, m.Created)
	}
	sortTimes(all)
	if len(all) <= senders {
		b.Fatalf("%d of %d messages reached the simulator", len(all), total)
	}
	// A bucket per sender with a burst of one allows senders + ceiling ×
	// span creates in a span: so the rates below leave the bursts out.
	sendsPerSec := float64(len(all)-senders) / all[len(all)-1].Sub(all[0]).Seconds()

	var poolPct []float64
	overshoot := math.Inf(-1)
	var worst string // the sender with the most overshoot, and when
	for _, pl := range pools {
		var times []time.Time
		for _, n := range pl.senders {
			st := byFrom[n]
			sortTimes(st)
			times = append(times, st...)
			if o := windowOvershoot(st, time.Second, rate); o > overshoot {
				overshoot, worst = o, fmt.Sprintf("%s at %v", n, windowStart(st, time.Second).Sub(all[0]).Round(time.Millisecond))
			}
		}
		sortTimes(times)
		if len(times) < 2 {
			poolPct = append(poolPct, 0)
			continue
		}
		achieved := float64(len(times)-len(pl.senders)) / times[len(times)-1].Sub(times[0]).Seconds()
		poolPct = append(poolPct, 100*achieved/(rate*float64(len(pl.senders))))
	}
	slices.Sort(poolPct)
	arrivalOvershoot := math.Inf(-1)
	for _, times := range api.arrivedFrom(held) {
		sortTimes(times)
		arrivalOvershoot = max(arrivalOvershoot, windowOvershoot(times, time.Second, rate))
	}
	idle, idleAt := largestGap(all)

	jobs := countSendJobs(b, engine, storage)
	peak := max(int(api.peak.Load()), 1)
	ref := referenceCreates(b, simCfg, peak, benchRefFor)

	b.ReportMetric(sendsPerSec, "sends/s")
	b.ReportMetric(100*sendsPerSec/ceiling, "ceiling-%")
	b.ReportMetric(ref, "ref-creates/s")
	b.ReportMetric(100*sendsPerSec/ref, "reference-%")
	b.ReportMetric(poolPct[0], "pool-min-%")
	b.ReportMetric(poolPct[len(poolPct)/2], "pool-median-%")
	b.ReportMetric(poolPct[len(poolPct)-1], "pool-max-%")
	b.ReportMetric(overshoot, "overshoot")
	b.ReportMetric(arrivalOvershoot, "arrival-overshoot")
	b.ReportMetric(idle.Seconds(), "idle-s")
	b.ReportMetric(float64(total)/postTook.Seconds(), "posted/s")
	b.ReportMetric(float64(api.status(http.StatusTooManyRequests)), "429s")
	b.ReportMetric(float64(peak), "peak-in-flight")
	b.ReportMetric(100*float64(len(msgs))/float64(total-len(held)), "sent-%")
	b.ReportMetric(float64(jobs)/float64(total), "send-jobs/msg")
	b.Logf("%s, %v/s per sender: %d messages posted in %v (%d create held while paused, left out); %d sent in %v at %.1f/s of a %v/s ceiling; %d send workers; "+
		"first create %v after the start; longest idle %v at %v; most overshoot %v, %s",
		engine, rate, total, postTook.Round(time.Millisecond), len(held), len(msgs), all[len(all)-1].Sub(all[0]).Round(time.Millisecond),
		sendsPerSec, ceiling, workers, all[0].Sub(sendStart).Round(time.Millisecond), idle.Round(time.Millisecond), all[idleAt].Sub(all[0]).Round(time.Millisecond), overshoot, worst)
}

// countSendJobs counts the send jobs in the store at storage, which no
// process is using any more.
func countSendJobs(tb testing.TB, engine, storage string) int {
	tb.Helper()
	driver, dsn := "pgx", storage
	if engine == "sqlite" {
		driver, dsn = "sqlite", "file:"+storage+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'switchboard_send'`).Scan(&n); err != nil {
		tb.Fatalf("count send jobs: %v", err)
	}
	return n
}

// windowOvershoot returns the most creates of times (sorted) in any window
// of length w, less what a bucket of rate with a burst of one allows in it.
func windowOvershoot(times []time.Time, w time.Duration, rate float64) float64 {
	most := 0
	j := 0
	for i := range times {
		for j < len(times) && times[j].Sub(times[i]) < w {
			j++
		}
		most = max(most, j-i)
	}
	return float64(most) - (rate*w.Seconds() + 1)
}

// windowStart returns the start of the first window of length w holding
// the most of times (sorted).
func windowStart(times []time.Time, w time.Duration) time.Time {
	most, at, j := 0, time.Time{}, 0
	for i := range times {
		for j < len(times) && times[j].Sub(times[i]) < w {
			j++
		}
		if j-i > most {
			most, at = j-i, times[i]
		}
	}
	return at
}

func sortTimes(ts []time.Time) {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}

// referenceCreates measures the simulator's own create throughput: a fresh
// simulator of cfg on loopback, plain HTTP creates (Twilio's form, Basic
// auth) from concurrency goroutines for d, counting the 201s.
func referenceCreates(b *testing.B, cfg sim.Config, concurrency int, d time.Duration) float64 {
	b.Helper()
	cfg.Seed = simSeeds.Add(1)
	tw, err := sim.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tw.Close()
	srv := httptest.NewServer(tw.Handler())
	defer srv.Close()
	froms := cfg.Accounts[0].Numbers
	endpoint := srv.URL + "/2010-04-01/Accounts/" + accountSID + "/Messages.json"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer hc.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		created atomic.Int64
		seq     atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := seq.Add(1)
				form := url.Values{"To": {fmt.Sprintf("+1555910%04d", i%10000)}, "From": {froms[int(i)%len(froms)].Number},
					"Body": {fmt.Sprintf("reference %d", i)}}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(accountSID, authToken)
				resp, err := hc.Do(req)
				if err != nil {
					continue // cut short at the end
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					created.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(created.Load()) / time.Since(start).Seconds()
}

// pausingGate is the provider as the benchmark sees it: paused while the
// backlog is posted, holding every create (and noting its recipient) until
// its client goes away, then passing everything to the simulator.
type pausingGate struct {
	next http.Handler

	mu      sync.Mutex
	paused  bool
	resumed chan struct{} // closed by pass
	held    map[string]bool
}

func (g *pausingGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.paused, g.resumed, g.held = true, make(chan struct{}), map[string]bool{}
}

func (g *pausingGate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.resumed)
	}
}

// heldTo returns the recipients of the creates held so far.
func (g *pausingGate) heldTo() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.held)
}

func (g *pausingGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	paused, resumed := g.paused, g.resumed
	g.mu.Unlock()
	if paused && r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		form, _ := url.ParseQuery(string(body))
		g.mu.Lock()
		g.held[form.Get("To")] = true
		g.mu.Unlock()
		select {
		case <-r.Context().Done():
			return // never created
		case <-resumed:
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
	}
	g.next.ServeHTTP(w, r)
}

// inFlightCounter serves the simulator's API, counting answers by status
// and the most creates in flight at once, and noting when each create that
// was answered 201 arrived, before the simulator took it.
type inFlightCounter struct {
	next     http.Handler
	inFlight atomic.Int64
	peak     atomic.Int64

	mu       sync.Mutex
	counts   map[int]int
	arrivals []arrival
}

// arrival is a create as it arrived.
type arrival struct {
	from, to string
	at       time.Time
}

func (c *inFlightCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a arrival
	if r.Method == http.MethodPost {
		a.at = time.Now()
		n := c.inFlight.Add(1)
		defer c.inFlight.Add(-1)
		for {
			p := c.peak.Load()
			if n <= p || c.peak.CompareAndSwap(p, n) {
				break
			}
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		form, _ := url.ParseQuery(string(body))
		a.from, a.to = form.Get("From"), form.Get("To")
		r.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	c.next.ServeHTTP(rec, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[int]int{}
	}
	c.counts[rec.status]++
	if rec.status == http.StatusCreated && a.from != "" {
		c.arrivals = append(c.arrivals, a)
	}
}

// arrivedFrom returns when the creates answered 201 arrived, by sender,
// but for those to recipients in skip.
func (c *inFlightCounter) arrivedFrom(skip map[string]bool) map[string][]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]time.Time{}
	for _, a := range c.arrivals {
		if !skip[a.to] {
			out[a.from] = append(out[a.from], a.at)
		}
	}
	return out
}

func (c *inFlightCounter) status(code int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[code]
}

// writeBenchConfig writes the benchmark's configuration: the product's
// defaults but for the pools, the provider (the simulator) and the send
// workers.
func writeBenchConfig(tb testing.TB, storage, provider string, pools []benchPool, rate float64, workers int) string {
	tb.Helper()
	var s strings.Builder
	fmt.Fprintf(&s, "listen = %q\npublic_url = %q\n\n[log]\nlevel = \"info\"\n\n[storage]\nurl = %q\n\n[admin]\ntoken = %q\n\n",
		"127.0.0.1:0", publicURL, storage, adminToken)
	fmt.Fprintf(&s, "[[accounts]]\nsid = %q\nauth_tokens = [%q]\n\n", accountSID, authToken)
	fmt.Fprintf(&s, "[[routes]]\npath = \"/status\"\naccount = %q\nmode = \"static\"\n\n", accountSID)
	fmt.Fprintf(&s, "[[providers]]\nname = \"sim\"\nbase_url = %q\naccount = %q\n\n", provider, accountSID)
	for _, p := range pools {
		fmt.Fprintf(&s, "[[pools]]\nname = %q\nprovider = \"sim\"\nrate = %v\nsenders = [\"%s\"]\n\n", p.name, rate, strings.Join(p.senders, `", "`))
	}
	fmt.Fprintf(&s, "[outbound]\nsend_workers = %d\n", workers)
	path := filepath.Join(tb.TempDir(), "switchboard.toml")
	if err := os.WriteFile(path, []byte(s.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// startServeTB is startServe for any testing.TB: switchboard serve with the
// configuration at cfgPath, once it listens; killed when tb ends.
func startServeTB(tb testing.TB, cfgPath string, args ...string) *proc {
	tb.Helper()
	out := newLogBuffer(switchboardListening)
	cmd := exec.Command(binary, append([]string{"serve", "--config", cfgPath}, args...)...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start switchboard serve: %v", err)
	}
	p := &proc{name: "switchboard serve", cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.exited
		if tb.Failed() {
			tb.Logf("switchboard serve output:\n%s", out.tail(16<<10))
		}
	})
	select {
	case p.addr = <-out.listening:
	case <-p.exited:
		tb.Fatalf("switchboard serve exited before listening (%v):\n%s", p.waitErr, out.tail(16<<10))
	case <-time.After(startTimeout):
		tb.Fatalf("switchboard serve not listening after %v:\n%s", startTimeout, out.tail(16<<10))
	}
	return p
}

// stopTB stops the process with SIGTERM, and kills it if it is still
// running after stopTimeout.
func (p *proc) stopTB(tb testing.TB) {
	tb.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.signal(syscall.SIGKILL)
		<-p.exited
		tb.Errorf("switchboard serve still running %v after SIGTERM; killed it", stopTimeout)
	}
}

// postBench posts one message through the native API.
func postBench(p *proc, key, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, p.url("/api/v1/messages"), strings.NewReader(body))
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
