// Package pausewatch notices the time this process was not running: a
// SIGSTOP, a frozen virtual machine, a long stop-the-world pause. A
// goroutine ticks at a short interval on the monotonic clock; a tick that
// comes much later than due says the process was stalled for the
// difference. Deliveries ask it how much of an attempt's time the process
// itself lost, so that a stall is not taken for the app's timeout.
package pausewatch

import (
	"sync"
	"time"
)

// DefaultTick is how often a Watcher ticks: pauses shorter than two ticks
// go unnoticed, which is well below any delivery timeout.
const DefaultTick = 50 * time.Millisecond

// maxGaps bounds the pauses remembered; the oldest go first. Deliveries
// ask about their last minute or so, in which a handful of pauses is
// already pathological.
const maxGaps = 64

// gap is a span in which the process did not run.
type gap struct{ from, to time.Time }

// Watcher measures the pauses of this process. Its zero value is not
// usable; use New.
type Watcher struct {
	tick time.Duration

	mu      sync.Mutex
	last    time.Time // the last tick seen
	gaps    []gap     // oldest first, at most maxGaps
	stop    chan struct{}
	done    chan struct{}
	started bool
	now     func() time.Time
}

// New returns a Watcher that will tick every tick (DefaultTick when not
// positive) once started.
func New(tick time.Duration) *Watcher {
	if tick <= 0 {
		tick = DefaultTick
	}
	return newWatcher(tick, time.Now())
}

func newWatcher(tick time.Duration, now time.Time) *Watcher {
	return &Watcher{tick: tick, last: now, now: time.Now}
}

// Start begins ticking, until Stop; a second Start does nothing.
func (w *Watcher) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started, w.last = true, time.Now()
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.run(w.stop, w.done)
}

func (w *Watcher) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			// time.Now, not the ticker's time: the ticker's is when the
			// tick was due, and the point is how late it came.
			w.observe(time.Now())
		}
	}
}

// Stop ends the ticking and waits for it; it does nothing on a Watcher
// not ticking.
func (w *Watcher) Stop() {
	w.mu.Lock()
	if !w.started {
		w.mu.Unlock()
		return
	}
	w.started = false
	stop, done := w.stop, w.done
	w.mu.Unlock()
	close(stop)
	<-done
}

// observe records a tick seen at now: if it came more than two ticks after
// the last, the process was not running for the time beyond one tick.
func (w *Watcher) observe(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.last) > 2*w.tick {
		w.gaps = append(w.gaps, gap{from: w.last.Add(w.tick), to: now})
		if len(w.gaps) > maxGaps {
			w.gaps = w.gaps[len(w.gaps)-maxGaps:]
		}
	}
	w.last = now
}

// PausedBetween returns how long the process was seen not running between
// from and to. A pause the ticking goroutine has not yet seen end (the
// caller woke first after a SIGCONT) counts too: its tick is already more
// than two ticks late. A nil Watcher saw no pause.
func (w *Watcher) PausedBetween(from, to time.Time) time.Duration {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	gaps := w.gaps
	if now := w.now(); w.started && now.Sub(w.last) > 2*w.tick {
		gaps = append(gaps[:len(gaps):len(gaps)], gap{from: w.last.Add(w.tick), to: now})
	}
	var paused time.Duration
	for _, g := range gaps {
		start, end := g.from, g.to
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		if end.After(start) {
			paused += end.Sub(start)
		}
	}
	return paused
}
