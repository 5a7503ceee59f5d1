// Package dispatch works deliveries straight from the events table: the
// event row is the job. It is for an engine where one process delivers at
// a time (SQLite holds a lock file for that), so a claim lives in memory
// and costs no write: the single writer spends its time on webhooks and
// attempt records, not on job bookkeeping.
//
// Work arrives two ways. The engine hands over, after each commit, the
// deliveries the commit made due (Notify): new events start at once,
// without a poll, and a retry arms a timer for its time. And a scan of the
// events waiting in the store (pending or retrying, due now, oldest due
// first) runs at start (what a killed predecessor left), when a timer
// fires, when the hand-over queue overflowed, and every poll interval as a
// safety net for what another process scheduled (a replay from the CLI).
//
// An event is claimed (queued or in flight) at most once in the process,
// and released only after its Deliver returned, which is after its attempt
// was committed: a scan meanwhile sees it still due and skips it. Deliver
// itself skips an event that moved on (its attempt count), so a stale
// hand-over costs a read, never a second delivery.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// Source is what a Dispatcher reads of the store.
type Source interface {
	// DueEvents returns up to limit waiting events (pending or retrying)
	// due at now, the earliest due first, with their attempt counts.
	DueEvents(ctx context.Context, now time.Time, limit int) ([]jobs.Due, error)
	// NextDue returns the earliest next-attempt time of the waiting
	// events later than after, or zero when none is.
	NextDue(ctx context.Context, after time.Time) (time.Time, error)
}

// Options tune a Dispatcher.
type Options struct {
	// Workers bounds the deliveries in flight. Default 64.
	Workers int
	// PollInterval is how often the store is scanned for due events
	// nothing handed over. Default 1 s.
	PollInterval time.Duration
	// Timeout bounds one delivery; past it its context is cancelled.
	// Default 1 min.
	Timeout time.Duration
	// MaxQueued bounds the hand-overs waiting for a worker; past it they
	// are dropped and found by the next scan instead. Default 8192.
	MaxQueued int
	// MaxPreloaded bounds the bytes of the events and requests handed
	// over in memory (jobs.Due.Event) that wait in the queue; past it
	// hand-overs keep only ids. Default 16 MiB.
	MaxPreloaded int64
	// RetryAfter is how long an event whose Deliver failed internally
	// waits before it is tried again; each further failure in a row
	// doubles the pause, up to MaxRetryAfter. Default 1 s.
	RetryAfter time.Duration
	// MaxRetryAfter caps the pause after repeated internal failures of
	// an event. Default 5 min.
	MaxRetryAfter time.Duration
	// Halt, when closed, stops the dispatcher from starting deliveries,
	// as Stop does, without waiting for Stop: the store failed. An event
	// handed over in memory needs no read, so without it one would still
	// go to the app, its attempt could not be recorded, and the restarted
	// process would deliver it again. What is queued stays due in the
	// store.
	Halt <-chan struct{}

	Logger *slog.Logger
	Now    func() time.Time
}

// Dispatcher runs deliveries of due events.
type Dispatcher struct {
	src     Source
	deliver switchboard.Deliverer
	o       Options

	mu        sync.Mutex
	claimed   map[string]struct{} // queued or in flight
	queue     []jobs.Due          // handed over, waiting for a worker
	preloaded int64               // bytes the queue's hand-overs hold (MaxPreloaded)
	rescan    bool                // a scan is due (start, overflow, failure)
	// behind is set while due events wait in the store that are older
	// than what is handed over (the queue overflowed, a retry came due):
	// hand-overs then wait there too, and scans take them all in due
	// order, until one reaches the end.
	behind bool
	// failures counts each event's internal failures in a row (see
	// RetryAfter), for at most MaxQueued events.
	failures map[string]int
	nextAt   time.Time // the earliest known future due time
	inFlight int
	wake     chan struct{} // capacity 1: something changed

	ctx     context.Context // ends deliveries at Stop's deadline
	cancel  context.CancelFunc
	stop    chan struct{}
	stopped chan struct{}
	running sync.WaitGroup
}

// New returns a Dispatcher that delivers with d the events src finds due
// or Notify hands over. It does nothing until Start.
func New(src Source, d switchboard.Deliverer, o Options) *Dispatcher {
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 8192
	}
	if o.MaxPreloaded <= 0 {
		o.MaxPreloaded = 16 << 20
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		src: src, deliver: d, o: o,
		claimed: map[string]struct{}{}, failures: map[string]int{},
		rescan: true, // what a predecessor left waiting
		wake:   make(chan struct{}, 1),
		ctx:    ctx, cancel: cancel,
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
}

// Start begins dispatching in a goroutine of its own.
func (d *Dispatcher) Start() { go d.run() }

// Stop stops taking work and waits for the deliveries in flight until ctx
// ends, then cancels them (their attempts are recorded as interrupted and
// the events stay due for the next process). It returns ctx's error when
// it had to cancel.
func (d *Dispatcher) Stop(ctx context.Context) error {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.stopped
	done := make(chan struct{})
	go func() { d.running.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-done
		return fmt.Errorf("stop deliveries: %w", ctx.Err())
	}
}

// Notify hands over deliveries a commit made due. Call it only after the
// commit: a worker may load the event at once. Jobs due later arm the
// timer for the earliest of them.
func (d *Dispatcher) Notify(scheduled []jobs.Scheduled) {
	if len(scheduled) == 0 {
		return
	}
	now := d.o.Now()
	d.mu.Lock()
	for _, s := range scheduled {
		if s.At.After(now) {
			if d.nextAt.IsZero() || s.At.Before(d.nextAt) {
				d.nextAt = s.At
			}
			continue
		}
		for _, due := range s.Events {
			if d.behind {
				// In the store behind older events: the scan takes it in
				// its turn. Another scan follows, in case the one running
				// read before this commit.
				d.rescan = true
				continue
			}
			d.enqueueLocked(due)
		}
	}
	d.mu.Unlock()
	d.poke()
}

// enqueueLocked claims due and queues it, unless it is claimed already or
// the queue is full, in which case a scan will find it.
func (d *Dispatcher) enqueueLocked(due jobs.Due) {
	if _, ok := d.claimed[due.EventID]; ok {
		return
	}
	if len(d.queue) >= d.o.MaxQueued {
		d.rescan, d.behind = true, true
		return
	}
	if due.Event != nil {
		// The event and request handed over stay in memory within
		// MaxPreloaded: past it a backlog's are read back when their turn
		// comes, so that it holds ids, not bodies.
		if size := preloadSize(due); d.preloaded+size <= d.o.MaxPreloaded {
			d.preloaded += size
		} else {
			due.Event, due.Request = nil, nil
		}
	}
	d.claimed[due.EventID] = struct{}{}
	d.queue = append(d.queue, due)
}

// preloadSize is about what a hand-over's event and request hold.
func preloadSize(due jobs.Due) int64 {
	const overhead = 1 << 10 // structs, ids, URL, headers
	n := int64(overhead + len(due.Event.Response.Body))
	if due.Request != nil {
		n += int64(len(due.Request.Body) + len(due.Request.URL))
	}
	return n
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) run() {
	defer close(d.stopped)
	poll := time.NewTicker(d.o.PollInterval)
	defer poll.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-d.o.Halt:
			d.o.Logger.Error("deliveries halted: the store failed")
			return
		default:
		}
		d.startWork()
		if d.takeRescan() {
			d.scan()
			d.startWork()
		}
		timer.Reset(d.untilNext())
		select {
		case <-d.stop:
			return
		case <-d.o.Halt:
			continue // said at the top
		case <-d.wake:
		case <-poll.C:
			d.pollTick()
		case <-timer.C:
			d.timerFired()
		}
	}
}

// startWork starts a delivery for each queued event a worker is free for.
func (d *Dispatcher) startWork() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.inFlight < d.o.Workers && len(d.queue) > 0 {
		due := d.queue[0]
		d.queue[0] = jobs.Due{}
		d.queue = d.queue[1:]
		if due.Event != nil {
			d.preloaded -= preloadSize(due) // in flight, bounded by Workers
		}
		d.inFlight++
		d.running.Add(1)
		go d.work(due)
	}
	if len(d.queue) == 0 {
		d.queue = nil // let a burst's backing array go
	}
}

func (d *Dispatcher) work(due jobs.Due) {
	defer d.running.Done()
	ctx, cancel := context.WithTimeout(d.ctx, d.o.Timeout)
	var err error
	if ld, ok := d.deliver.(jobs.LoadedDeliverer); ok && due.Event != nil && due.Request != nil {
		// Handed over by the commit that created the event, in this
		// process, which alone delivers: it is due as it stands.
		err = ld.DeliverLoaded(ctx, due.Event, due.Request)
	} else {
		err = d.deliver.Deliver(ctx, due.EventID, due.Attempts)
	}
	cancel()
	if err != nil {
		// Internal failure (the store): the event is still due in the
		// store. It stays claimed for a pause, so that a failing store is
		// not hammered by a hot loop, then a scan finds it again. The
		// pause grows with each failure in a row: the app may have had
		// the event before its record failed (a full disk), and gets it
		// again at each try.
		d.mu.Lock()
		pause := d.pauseLocked(due.EventID)
		d.inFlight--
		d.mu.Unlock()
		d.o.Logger.Warn("delivery failed; trying again", "event", due.EventID, "after", pause, "err", err)
		time.AfterFunc(pause, func() { d.release(due.EventID, true) })
		d.poke()
		return
	}
	d.mu.Lock()
	d.inFlight--
	delete(d.claimed, due.EventID)
	delete(d.failures, due.EventID)
	d.mu.Unlock()
	d.poke()
}

// pauseLocked counts an internal failure of the event and returns how
// long it waits before it is tried again. Past MaxQueued events counted,
// a new one gets the first pause: memory stays bounded, and the pause
// fails toward sooner tries.
func (d *Dispatcher) pauseLocked(id string) time.Duration {
	n, counted := d.failures[id]
	if counted || len(d.failures) < d.o.MaxQueued {
		n++
		d.failures[id] = n
	}
	pause := d.o.RetryAfter
	for i := 1; i < n && pause < d.o.MaxRetryAfter; i++ {
		pause *= 2
	}
	return min(pause, d.o.MaxRetryAfter)
}

func (d *Dispatcher) release(id string, rescan bool) {
	d.mu.Lock()
	delete(d.claimed, id)
	if rescan {
		d.rescan = true
	}
	d.mu.Unlock()
	d.poke()
}

func (d *Dispatcher) setRescan() {
	d.mu.Lock()
	d.rescan = true
	d.mu.Unlock()
}

// pollTick asks for a scan when the workers have room: under load the
// scans the queue's overflow and the timers ask for find everything this
// process scheduled, and what others did can wait for a quiet moment.
func (d *Dispatcher) pollTick() {
	d.mu.Lock()
	if len(d.queue) == 0 && d.inFlight < d.o.Workers {
		d.rescan = true
	}
	d.mu.Unlock()
}

// timerFired asks for a scan, which learns the next due time afresh: the
// one that fired is forgotten, so that it cannot fire again while the
// scan waits for the queue to drain.
func (d *Dispatcher) timerFired() {
	d.mu.Lock()
	d.rescan, d.behind = true, true
	d.nextAt = time.Time{}
	d.mu.Unlock()
}

// takeRescan reports whether a scan is due and worth running now: not
// while the queue still holds more than the workers can take, since a
// scan then would only find claimed events.
func (d *Dispatcher) takeRescan() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.rescan || len(d.queue) > d.o.Workers {
		return false
	}
	d.rescan = false
	return true
}

// untilNext is how long until the earliest known future due time; an hour
// when none is known (the poll covers the rest).
func (d *Dispatcher) untilNext() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nextAt.IsZero() {
		return time.Hour
	}
	return max(d.nextAt.Sub(d.o.Now()), 0)
}

// scan queues the due events the store holds that nothing claimed, in
// pages, and learns the next due time. A failed read is retried at the
// next poll: the events stay in the store.
func (d *Dispatcher) scan() {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	now := d.o.Now()
	for {
		d.mu.Lock()
		room := d.o.MaxQueued - len(d.queue)
		skip := len(d.claimed)
		d.mu.Unlock()
		if room <= 0 {
			d.setRescan()
			return
		}
		limit := min(room, 1024)
		found, err := d.src.DueEvents(ctx, now, limit+skip)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				d.o.Logger.Error("scan for due deliveries", "err", err)
			}
			// Hand-overs need no read: they go on while the poll tries
			// the scan again.
			d.mu.Lock()
			d.behind = false
			d.mu.Unlock()
			return
		}
		added := 0
		d.mu.Lock()
		for _, due := range found {
			if _, ok := d.claimed[due.EventID]; !ok && added < limit {
				d.enqueueLocked(due)
				added++
			}
		}
		if len(found) < limit+skip {
			d.behind = false // all that waited is queued
		}
		d.mu.Unlock()
		if len(found) < limit+skip || added == 0 {
			break
		}
	}
	next, err := d.src.NextDue(ctx, now)
	if err != nil {
		d.o.Logger.Error("look up the next due delivery", "err", err)
		return
	}
	d.mu.Lock()
	// The earlier of the two: a time handed over after the read began
	// may be missing from it. A stale one (its event delivered since)
	// costs one scan when it fires.
	if d.nextAt.IsZero() || !d.nextAt.After(now) || (!next.IsZero() && next.Before(d.nextAt)) {
		d.nextAt = next
	}
	d.mu.Unlock()
}
