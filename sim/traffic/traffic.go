// Package load generates Twilio-like webhook traffic for Switchboard's
// benchmarks, and provides the two servers a benchmark needs around it: a
// reference endpoint that answers TwiML without storing anything, the
// ceiling durable intake is compared against, and a sink application that
// counts what Switchboard delivers.
//
// Everything here talks to loopback only. Run refuses a target whose host
// is not a loopback IP or localhost, and its dialer refuses to connect
// anywhere else, so a benchmark can never be pointed at someone else's
// server. Every run is bounded by Options.Duration and stops by itself.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Kinds of traffic Run generates.
const (
	KindSMS    = "sms"    // inbound SMS, answered with TwiML
	KindStatus = "status" // message status callbacks
)

// Limits and defaults of Options.
const (
	// DefaultConcurrency is the requests in flight when
	// Options.Concurrency is zero.
	DefaultConcurrency = 64
	// MaxDuration is the longest run Options.Duration may ask for.
	MaxDuration = 10 * time.Minute

	// MaxSamples bounds the latencies kept for percentiles. Past it, each
	// worker keeps a uniform sample of its latencies, so the percentiles
	// stay representative of the whole run rather than of its start.
	MaxSamples = 2_000_000

	// requestTimeout is Twilio's own limit on a whole webhook request: an
	// answer slower than this would have failed at Twilio anyway.
	requestTimeout = 15 * time.Second
)

// ErrNotLoopback is returned for a target, or a connection, whose host is
// not a loopback address.
var ErrNotLoopback = errors.New("not a loopback address")

// Options configure a run.
type Options struct {
	// Target is the URL requests are POSTed to, such as
	// http://127.0.0.1:8080/sms. Its host must be a loopback IP or
	// localhost.
	Target string
	// SignedURL is the public URL Twilio would have requested, which the
	// signature is computed over, such as https://hooks.example.com/sms.
	// Default Target.
	SignedURL string
	// AccountSID is sent as AccountSid. Default an AC SID derived from
	// Seed.
	AccountSID string
	// AuthToken signs each request. Required.
	AuthToken string
	// Kind is KindSMS (the default) or KindStatus.
	Kind string
	// Rate is the requests per second to offer, on a fixed schedule
	// whatever the target's latency (open loop). A request that cannot
	// start on time because Concurrency requests are in flight starts as
	// soon as one finishes. Zero sends as fast as Concurrency allows
	// (closed loop).
	Rate float64
	// Concurrency caps the requests in flight. Default
	// DefaultConcurrency.
	Concurrency int
	// Duration is how long requests are sent for. Required, at most
	// MaxDuration. Requests in flight when it ends are waited for, up to
	// Twilio's 15 s timeout.
	Duration time.Duration
	// MaxRequests, if positive, caps the requests sent.
	MaxRequests int
	// Seed makes request bodies reproducible: the nth request of every run
	// with the same options has the same body, whichever worker sends it.
	// Only the I-Twilio-Idempotency-Token headers are fresh each time.
	Seed int64
}

// Report is the outcome of a run.
type Report struct {
	Sent       int           // requests sent
	OK         int           // answered 2xx
	Non2xx     map[int]int   // other answers, by status code
	Errors     int           // requests that got no complete answer
	Elapsed    time.Duration // from the first request to the last answer
	Throughput float64       // OK answers per second of Elapsed

	// Latencies from sending a request to reading its whole answer, over
	// the requests that got one (2xx or not). Percentiles are exact up to
	// MaxSamples answers and estimated from a uniform sample beyond; Max
	// is always exact.
	P50, P95, P99, Max time.Duration
}

// String returns a one-line summary of the report.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d, ok %d", r.Sent, r.OK)
	if len(r.Non2xx) > 0 {
		b.WriteString(", non-2xx")
		for _, code := range slices.Sorted(maps.Keys(r.Non2xx)) {
			fmt.Fprintf(&b, " %d×%d", code, r.Non2xx[code])
		}
	}
	fmt.Fprintf(&b, ", errors %d in %v: %.1f ok/s; latency p50 %v p95 %v p99 %v max %v",
		r.Errors, round(r.Elapsed), r.Throughput, round(r.P50), round(r.P95), round(r.P99), round(r.Max))
	return b.String()
}

// Compare returns a few lines setting the report of a run against the
// target beside that of the same load against the reference server: both
// throughputs and latencies, and the target's throughput as a percentage of
// the reference's.
func Compare(ref, target *Report) string {
	var b strings.Builder
	line := func(name string, r *Report) {
		fmt.Fprintf(&b, "%-9s %10.1f ok/s  p50 %-10v p99 %v\n", name, r.Throughput, round(r.P50), round(r.P99))
	}
	line("reference", ref)
	line("target", target)
	if ref.Throughput > 0 {
		fmt.Fprintf(&b, "target/reference throughput: %.1f%%\n", 100*target.Throughput/ref.Throughput)
	} else {
		b.WriteString("target/reference throughput: n/a (reference had no throughput)\n")
	}
	return b.String()
}

// round shortens a duration for display without hiding sub-millisecond
// latencies.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// validate checks opts and fills in their defaults.
func (opts *Options) validate() error {
	if err := checkLoopback(opts.Target); err != nil {
		return err
	}
	if opts.SignedURL == "" {
		opts.SignedURL = opts.Target
	}
	if u, err := url.Parse(opts.SignedURL); err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("signed URL %q: not an absolute URL", opts.SignedURL)
	}
	if opts.AuthToken == "" {
		return errors.New("auth token required: requests must be signed")
	}
	switch opts.Kind {
	case "":
		opts.Kind = KindSMS
	case KindSMS, KindStatus:
	default:
		return fmt.Errorf("kind %q: want %q or %q", opts.Kind, KindSMS, KindStatus)
	}
	if opts.Rate < 0 || math.IsNaN(opts.Rate) || math.IsInf(opts.Rate, 0) {
		return fmt.Errorf("rate %v: must be zero or a positive number", opts.Rate)
	}
	if opts.Concurrency < 0 {
		return fmt.Errorf("concurrency %d: must be zero or positive", opts.Concurrency)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Duration <= 0 || opts.Duration > MaxDuration {
		return fmt.Errorf("duration %v: must be positive and at most %v", opts.Duration, MaxDuration)
	}
	if opts.MaxRequests < 0 {
		return fmt.Errorf("max requests %d: must be zero or positive", opts.MaxRequests)
	}
	return nil
}

// checkLoopback returns an error wrapping ErrNotLoopback unless target is an
// http or https URL whose host is localhost or a loopback IP. Other names
// are refused without being resolved.
func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("target %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target %q: scheme must be http or https", target)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil && addr.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q: host %q: %w", target, host, ErrNotLoopback)
}

// dialLoopbackOnly refuses any connection to a non-loopback address. It
// backs up checkLoopback for names, such as localhost, that are resolved at
// dial time.
func dialLoopbackOnly(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", network, address, err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("dial %s %s: %w", network, address, ErrNotLoopback)
	}
	return nil
}

// newClient returns the client shared by a run's workers: keep-alive
// connections, enough of them idle for every worker, and no redirects
// (Switchboard never answers with one; a 3xx is reported as non-2xx).
func newClient(concurrency int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: dialLoopbackOnly}
	tr := &http.Transport{
		Proxy:               nil, // loopback traffic must not leave through a proxy
		DialContext:         dialer.DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // Twilio sends no Accept-Encoding
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Run sends webhook requests to opts.Target until opts.Duration has passed,
// opts.MaxRequests have been sent or ctx ends, waits for those in flight and
// reports on them.
//
// If ctx ends first, Run returns the report so far together with an error
// wrapping ctx's; requests it cut short count as errors.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	gen := newGenerator(opts)
	client := newClient(opts.Concurrency)
	defer client.CloseIdleConnections()

	// Workers take request numbers from work; whoever feeds it decides the
	// pacing, and an unbuffered channel makes it wait for a free worker.
	work := make(chan int)
	sampleCap := max(1, MaxSamples/opts.Concurrency)
	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{
			gen:       gen,
			client:    client,
			opts:      &opts,
			non2xx:    make(map[int]int),
			sampleCap: sampleCap,
			rng:       rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i))),
		}
		workers[i] = w
		wg.Go(func() { w.run(ctx, work) })
	}

	end := start.Add(opts.Duration)
	if opts.Rate > 0 {
		feedPaced(ctx, work, start, end, opts.Rate, opts.MaxRequests)
	} else {
		feedClosed(ctx, work, end, opts.MaxRequests)
	}
	close(work)
	wg.Wait()

	r := report(workers, time.Since(start))
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("load: run interrupted: %w", err)
	}
	return r, nil
}

// feedClosed hands out request numbers as fast as workers take them.
func feedClosed(ctx context.Context, work chan<- int, end time.Time, maxRequests int) {
	deadline := time.NewTimer(time.Until(end))
	defer deadline.Stop()
	for n := 0; maxRequests == 0 || n < maxRequests; n++ {
		select {
		case work <- n:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
		if !time.Now().Before(end) {
			return
		}
	}
}

// feedPaced hands out request n at start + n/rate. A request that is late,
// because every worker was busy, goes out as soon as one is free, and those
// after it follow at once until the schedule is caught up: the run offers
// the load it was asked for as long as the target keeps up on average.
func feedPaced(ctx context.Context, work chan<- int, start, end time.Time, rate float64, maxRequests int) {
	timer := time.NewTimer(time.Hour) // reset before every wait
	defer timer.Stop()
	for n := 0; maxRequests == 0 || n < maxRequests; n++ {
		due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
		if !due.Before(end) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if !time.Now().Before(end) {
			return
		}
		select {
		case work <- n:
		case <-ctx.Done():
			return
		}
	}
}

// worker sends requests one at a time and keeps its own tallies, merged
// once the run is over, so that workers never contend on shared counters.
type worker struct {
	gen    *generator
	client *http.Client
	opts   *Options

	ok, failed int
	non2xx     map[int]int
	max        time.Duration
	seen       int             // latencies measured, kept or not
	samples    []time.Duration // at most sampleCap, a uniform sample of seen
	sampleCap  int
	rng        *rand.Rand
}

func (w *worker) run(ctx context.Context, work <-chan int) {
	for n := range work {
		req, err := w.newRequest(ctx, n)
		if err != nil {
			// Only a bug in the generator can get here; count it rather
			// than abort a benchmark over it.
			w.failed++
			continue
		}
		began := time.Now()
		status, err := w.do(req)
		took := time.Since(began)
		if err != nil {
			w.failed++
			continue
		}
		if status >= 200 && status < 300 {
			w.ok++
		} else {
			w.non2xx[status]++
		}
		w.record(took)
	}
}

// newRequest builds request n, signed as Twilio would sign it.
func (w *worker) newRequest(ctx context.Context, n int) (*http.Request, error) {
	const contentType = "application/x-www-form-urlencoded"
	body := w.gen.body(n)
	_, sig, err := twilio.SignRequest(w.opts.AuthToken, w.opts.SignedURL, contentType, body)
	if err != nil {
		return nil, fmt.Errorf("sign request %d: %w", n, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.Target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request %d: %w", n, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Home-Region", "us1")
	req.Header.Set("I-Twilio-Idempotency-Token", uuid.NewString())
	req.Header.Set("X-Twilio-Signature", sig)
	return req, nil
}

// do sends req and reads the whole answer, which is part of the latency.
func (w *worker) do(req *http.Request) (status int, err error) {
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, nil
}

// record keeps d in the worker's sample by reservoir sampling.
func (w *worker) record(d time.Duration) {
	w.max = max(w.max, d)
	w.seen++
	if len(w.samples) < w.sampleCap {
		w.samples = append(w.samples, d)
		return
	}
	if i := w.rng.IntN(w.seen); i < w.sampleCap {
		w.samples[i] = d
	}
}

// report merges the workers' tallies.
func report(workers []*worker, elapsed time.Duration) *Report {
	r := &Report{Non2xx: make(map[int]int), Elapsed: elapsed}
	var samples []time.Duration
	for _, w := range workers {
		r.OK += w.ok
		r.Errors += w.failed
		for code, n := range w.non2xx {
			r.Non2xx[code] += n
			r.Sent += n
		}
		r.Max = max(r.Max, w.max)
		samples = append(samples, w.samples...)
	}
	r.Sent += r.OK + r.Errors
	if elapsed > 0 {
		r.Throughput = float64(r.OK) / elapsed.Seconds()
	}
	slices.Sort(samples)
	r.P50 = percentile(samples, 0.50)
	r.P95 = percentile(samples, 0.95)
	r.P99 = percentile(samples, 0.99)
	return r
}

// percentile returns the nearest-rank p-quantile of sorted, or zero if it
// is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
