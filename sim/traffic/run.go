package traffic

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Run sends webhook requests to opts.Target until opts.Duration has passed,
// opts.MaxRequests have been sent or ctx ends, waits for those in flight and
// reports on them, judging each answer as Twilio would.
//
// If ctx ends first, Run returns the report so far together with an error
// wrapping ctx's; requests it cut short count as Report.Interrupted. Options
// that Options.Validate refuses give a nil report and its error. A request
// the generator could not build, which only a bug can cause, is not sent,
// and Run returns the report together with an error naming it.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("traffic: %w", err)
	}
	maker, err := newRequestMaker(&opts)
	if err != nil {
		return nil, fmt.Errorf("traffic: %w", err)
	}
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
			maker:     maker,
			client:    client,
			expect:    expectations[opts.Kind],
			codes:     make(map[twilio.Code]int),
			statuses:  make(map[int]int),
			sampleCap: sampleCap,
			rng:       rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i))),
			meter:     opts.Meter,
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
		return r, fmt.Errorf("traffic: run interrupted: %w", err)
	}
	for _, w := range workers {
		if w.err != nil {
			return r, fmt.Errorf("traffic: %w", w.err)
		}
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
	maker  *requestMaker
	client *http.Client
	expect twilio.Expectation
	meter  *Meter // nil: no live view

	accepted, noAnswer, interrupted int
	codes                           map[twilio.Code]int
	statuses                        map[int]int
	err                             error // the first request that could not be built

	max       time.Duration
	seen      int             // latencies measured, kept or not
	samples   []time.Duration // at most sampleCap, a uniform sample of seen
	sampleCap int
	rng       *rand.Rand

	// Reused from one request to the next.
	answer  bytes.Buffer     // the body being read, at most twilio.MaxTwiMLBytes+1
	limited io.LimitedReader // reads it
	last    verdict          // on the latest answer judged
}

// verdict is Twilio's judgement of one answer, kept so that the same
// answer again, as a trivial endpoint gives, is not parsed again.
type verdict struct {
	valid       bool // whether the rest is set
	status      int
	contentType string
	body        []byte
	code        twilio.Code // 0: accepted
}

func (w *worker) run(ctx context.Context, work <-chan int) {
	for n := range work {
		req, err := w.maker.request(ctx, n)
		if err != nil {
			// Only a bug in the generator can get here. Count nothing as
			// sent, and report the bug once the run is over.
			if w.err == nil {
				w.err = err
			}
			continue
		}
		began := time.Now()
		status, contentType, err := w.do(req)
		took := time.Since(began)
		switch {
		case err != nil && ctx.Err() != nil:
			w.interrupted++ // the run's end, not the target, cut it short
		case err != nil:
			w.noAnswer++
			w.codes[twilio.ClassifyError(err).Code()]++
			if w.meter != nil {
				w.meter.NoAnswer()
			}
		default:
			w.statuses[status]++
			w.record(took)
			code := w.judge(status, contentType)
			if code != 0 {
				w.codes[code]++
			} else {
				w.accepted++
			}
			if w.meter != nil {
				w.meter.Answer(took, code == 0)
			}
		}
	}
}

// do sends req and reads its answer into w.answer, up to one byte past the
// largest TwiML document Twilio reads. The whole exchange is bounded by the
// client's timeout and measured as the request's latency.
func (w *worker) do(req *http.Request) (status int, contentType string, err error) {
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	w.answer.Reset()
	w.limited = io.LimitedReader{R: resp.Body, N: twilio.MaxTwiMLBytes + 1}
	_, err = w.answer.ReadFrom(&w.limited)
	w.limited.R = nil
	if err != nil {
		return 0, "", fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), nil
}

// judge returns the error code Twilio would log for the answer in w.answer,
// or 0 if it would accept it.
func (w *worker) judge(status int, contentType string) twilio.Code {
	body := w.answer.Bytes()
	if w.last.valid && w.last.status == status && w.last.contentType == contentType && bytes.Equal(w.last.body, body) {
		return w.last.code
	}
	var code twilio.Code
	if aerr := twilio.CheckAnswer(w.expect, status, contentType, body); aerr != nil {
		code = aerr.Code
	}
	w.last = verdict{valid: true, status: status, contentType: contentType, body: append(w.last.body[:0], body...), code: code}
	return code
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
