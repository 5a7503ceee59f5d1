package outbound

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-dev/switchboard"
)

// Priority and brownout.
//
// Every pool has a scheduler that hands out its senders' turns (taken from
// the per-sender rate limiters) to the sends waiting in this process, in
// priority order: each turn of a sender goes to the first-come waiting OTP
// send that may use that sender, else the first-come transactional one,
// else the first-come marketing one. A send may use only its sticky (or
// app-chosen) sender, or any sender of the pool when it has none. So while
// an OTP send waits for a turn it could use, no transactional or
// marketing send of this process gets that turn; within a purpose, sends
// get turns in the order they started waiting.
//
// The order is within one process: each process has its own limiters,
// waiting lines, queue delay and brownout state. Replicas sharing a store
// share the rate itself (share.go): each runs its limiters at the pool's
// full rate, takes a turn of the sender in the store's bucket right before
// each request, and, when other replicas' requests put that turn later
// than its own would, holds the sender's local turns back until it
// (hold), so that its sends wait here, in priority order, rather than
// after their claims. Sends not yet taken from the job queue are not
// waiting in any line; the job queue itself runs due jobs in due order,
// whatever their purpose.
//
// A send that would wait longer than Policy.MaxWait, by an estimate when it
// starts waiting, or because its wait reached MaxWait, leaves the line and
// is rescheduled for Policy.RescheduleLead before its turn is estimated to
// come, so that it is back in line, despite the job queue's lag, in time.
//
// Brownout: with Pool.BrownoutDelay set, a pool's queue delay is how late
// its OTP and transactional sends are: the longest any of them now waiting
// has been due, or, if greater, how late the last of them was when it
// started waiting, for BrownoutDelay after it did. A send is due when it
// was created (first attempt) or when its retry was scheduled. Marketing
// does not count toward it: a backlog of marketing alone is paced, not
// paused. When the queue delay passes BrownoutDelay the pool enters
// brownout: marketing sends, waiting or arriving, are rescheduled
// BrownoutDelay later (not failed, and no attempt is counted) until the
// queue delay falls to half of BrownoutDelay or less. Entering and leaving
// are logged once each; Sender.Brownout reports the state.

// priority is a purpose's rank: 0 is served first.
func priority(p switchboard.Purpose) int {
	switch p {
	case switchboard.PurposeOTP:
		return 0
	case switchboard.PurposeMarketing:
		return 2
	}
	return 1 // transactional, and anything unknown
}

// turns is where a pool's sender turns come from: its rate limiters, or
// fake ones in tests.
type turns interface {
	// next is the earliest time, at or after now, when sender has a turn.
	next(sender string, now time.Time) time.Time
	// take uses sender's turn at now, when next returned now, for a send
	// of cost segments: the turn after it comes cost turns later.
	take(sender string, now time.Time, cost int)
}

// limiterTurns are the turns of per-sender token buckets with a burst of
// one, each token a segment. A sender outside the pool (one an app chose)
// gets a limiter at the pool's rate too. A send of several segments takes
// one token and reserves the rest: the bucket goes into debt, and the
// sender's next turn comes when it is paid off, so a sender never sends
// more segments than its rate allows, as Twilio counts them.
type limiterTurns struct {
	rate     float64
	limiters map[string]*rate.Limiter
}

func newLimiterTurns(senders []string, perSecond float64) *limiterTurns {
	t := &limiterTurns{rate: perSecond, limiters: map[string]*rate.Limiter{}}
	for _, n := range senders {
		t.limiter(n)
	}
	return t
}

func (t *limiterTurns) limiter(sender string) *rate.Limiter {
	lim := t.limiters[sender]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(t.rate), 1)
		t.limiters[sender] = lim
	}
	return lim
}

func (t *limiterTurns) next(sender string, now time.Time) time.Time {
	tokens := t.limiter(sender).TokensAt(now)
	if tokens >= 1 {
		return now
	}
	// Rounded up, so that at the time returned the token is there.
	return now.Add(time.Duration((1-tokens)/t.rate*float64(time.Second)) + time.Microsecond)
}

func (t *limiterTurns) take(sender string, now time.Time, cost int) {
	lim := t.limiter(sender)
	// One token at a time: ReserveN refuses more than the burst at once.
	for range max(cost, 1) {
		lim.ReserveN(now, 1)
	}
}

// waiter is one send waiting for a turn of a pool.
type waiter struct {
	purpose switchboard.Purpose
	sender  string    // the sender it must use; empty for any of the pool's
	due     time.Time // when its attempt became due, for the queue delay
	cost    int       // segments: turns it uses; 0 counts as 1
	done    chan outcome
}

// outcome ends a wait: a turn of from, or paused by brownout.
type outcome struct {
	from   string
	paused bool
}

// scheduler hands out one pool's turns to its waiting sends by priority,
// and keeps its brownout state. Its methods take the time, so that tests
// drive it with a fake clock and fake turns.
type scheduler struct {
	name      string
	senders   []string
	rate      float64 // turns per second per sender, for estimates
	threshold time.Duration
	log       *slog.Logger

	mu       sync.Mutex
	turns    turns
	lines    [3][]*waiter // by priority, each first come first
	brownout bool
	lastLate time.Duration // how late the last OTP or transactional send was
	lastAt   time.Time     // when it started waiting
	// last[sender] is the sender's latest request in line (see reserve).
	last map[string]*request
	// due is the time of the next turn a waiting send could use, as the
	// last dispatch found it; zero when unknown. Turns only come with
	// time (turns.next), so before due a dispatch hands out nothing (see
	// poll).
	due time.Time
	// held[sender] is when the sender's turns resume, when later than its
	// turns would (see hold); past entries are dropped.
	held map[string]time.Time
}

func newScheduler(name string, senders []string, perSecond float64, threshold time.Duration, t turns, log *slog.Logger) *scheduler {
	return &scheduler{name: name, senders: senders, rate: perSecond, threshold: threshold, turns: t, log: log}
}

// join puts w in line at now and hands out the turns due. It returns
// whether w's wait is already over (its outcome is in w.done), the time of
// the next turn any waiting send could use (zero when none waits), and the
// estimated wait of w when it still waits.
func (s *scheduler) join(w *waiter, now time.Time) (over bool, next time.Time, estimate time.Duration) {
	w.done = make(chan outcome, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := priority(w.purpose)
	if p < 2 {
		s.lastLate, s.lastAt = max(now.Sub(w.due), 0), now
	}
	s.updateBrownout(now)
	if p == 2 && s.brownout {
		w.done <- outcome{paused: true}
		return true, time.Time{}, 0
	}
	s.lines[p] = append(s.lines[p], w)
	next = s.dispatch(now)
	if len(w.done) > 0 {
		return true, next, 0
	}
	return false, next, s.estimate(w, now)
}

// wake hands out the turns due at now and returns the time of the next
// turn any waiting send could use (zero when none waits).
func (s *scheduler) wake(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateBrownout(now)
	return s.dispatch(now)
}

// poll is wake for the sends waiting in line, which all wake for the same
// next turn: before the next turn any waiting send could use, it hands out
// nothing and returns that turn's time at once, without a dispatch, so
// that a pool's waiting sends waking together cost one dispatch, not one
// each. A turn may come without time passing only in tests' fake turns,
// which use wake.
func (s *scheduler) poll(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateBrownout(now)
	if !s.due.IsZero() && now.Before(s.due) {
		return s.due
	}
	return s.dispatch(now)
}

// leave takes w out of line at now, and reports false when it had no
// longer been waiting: its outcome is in w.done. It also returns w's
// estimated wait had it stayed.
func (s *scheduler) leave(w *waiter, now time.Time) (left bool, estimate time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := priority(w.purpose)
	i := slices.Index(s.lines[p], w)
	if i < 0 {
		return false, 0
	}
	estimate = s.estimate(w, now)
	s.lines[p] = slices.Delete(s.lines[p], i, i+1)
	s.updateBrownout(now)
	return true, estimate
}

// request is one request to Twilio of a sender, in line behind the
// sender's previous request of this process (see reserve).
type request struct {
	prev     *request      // nil for none; dropped once it went
	ready    time.Time     // when it was ready to go
	interval time.Duration // its cost at the rate: the least time before the next may go
	gone     chan struct{} // closed once it went, or was given up
	at       time.Time     // when it went; set before gone is closed
	once     sync.Once
}

// reserve puts a request of cost segments from sender, ready at now, in
// line behind the sender's previous request. A turn spaces sends as they
// start; the line spaces the requests themselves, after the store writes
// between the two, whose latency varies, and by when each request really
// went, so that one that went late (its goroutine woken late on a busy
// machine) pushes the next back instead of bunching with it.
func (s *scheduler) reserve(sender string, now time.Time, cost int) *request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]*request{}
	}
	r := &request{prev: s.last[sender], ready: now, gone: make(chan struct{}),
		interval: time.Duration(float64(max(cost, 1)) / s.rate * float64(time.Second))}
	s.last[sender] = r
	return r
}

// behind returns the channel closed once the request ahead of r went; nil
// when none is ahead.
func (r *request) behind() <-chan struct{} {
	if r.prev == nil {
		return nil
	}
	return r.prev.gone
}

// goAt is when r may go, once the request ahead of it went (behind is
// closed): when it is ready, and not before the request ahead went plus
// that request's interval.
func (r *request) goAt() time.Time {
	at := r.ready
	if r.prev != nil {
		if next := r.prev.at.Add(r.prev.interval); next.After(at) {
			at = next
		}
		r.prev = nil // for the collector: the line holds only what waits
	}
	return at
}

// went records that r went at now (or was given up then: the next request
// still waits its interval, erring slow); later calls do nothing.
func (r *request) went(now time.Time) {
	r.once.Do(func() {
		r.at = now
		close(r.gone)
	})
}

// hold gives sender no turn before until: a send of it found its turn in
// the bucket shared with other replicas there, later than this process's
// own requests would put it (share.go). A later hold extends it, an
// earlier one does not shorten it.
func (s *scheduler) hold(sender string, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.After(s.held[sender]) {
		if s.held == nil {
			s.held = map[string]time.Time{}
		}
		s.held[sender] = until
		s.due = time.Time{} // the turns have moved
	}
}

// next is the earliest time, at or after now, when sender has a turn: its
// turns' next, or the end of its hold if later. s.mu is held.
func (s *scheduler) next(sender string, now time.Time) time.Time {
	t := s.turns.next(sender, now)
	if until, ok := s.held[sender]; ok {
		if !until.After(now) {
			delete(s.held, sender)
		} else if until.After(t) {
			t = until
		}
	}
	return t
}

// inBrownout reports the pool's brownout state at now.
func (s *scheduler) inBrownout(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateBrownout(now)
	return s.brownout
}

// queueDelay is how late the pool's OTP and transactional sends are at now
// (see the package's notes on brownout). s.mu is held.
func (s *scheduler) queueDelay(now time.Time) time.Duration {
	var d time.Duration
	if !s.lastAt.IsZero() && now.Sub(s.lastAt) < s.threshold {
		d = s.lastLate
	}
	for _, line := range s.lines[:2] {
		for _, w := range line {
			d = max(d, now.Sub(w.due))
		}
	}
	return d
}

// updateBrownout enters or leaves brownout at now. Entering pauses the
// waiting marketing sends. s.mu is held.
func (s *scheduler) updateBrownout(now time.Time) {
	if s.threshold <= 0 {
		return
	}
	d := s.queueDelay(now)
	switch {
	case !s.brownout && d > s.threshold:
		s.brownout = true
		s.log.Warn("pool in brownout: marketing paused", "pool", s.name)
		for _, w := range s.lines[2] {
			w.done <- outcome{paused: true}
		}
		s.lines[2] = nil
	case s.brownout && d <= s.threshold/2:
		s.brownout = false
		s.log.Info("pool out of brownout: marketing resumed", "pool", s.name)
	}
}

// dispatch hands every turn due at now to the waiting send first in
// priority order that may use it, and returns the time of the next turn a
// waiting send could use (zero when none waits), which it keeps as s.due.
// s.mu is held.
func (s *scheduler) dispatch(now time.Time) time.Time {
	for s.grantOne(now) {
	}
	var next time.Time
	for _, line := range s.lines {
		for _, w := range line {
			for _, n := range s.candidates(w) {
				if t := s.next(n, now); next.IsZero() || t.Before(next) {
					next = t
				}
			}
		}
	}
	s.due = next
	return next
}

// grantOne gives one turn due at now to the first waiting send, in
// priority order, that may use it, and reports whether it did.
func (s *scheduler) grantOne(now time.Time) bool {
	for p, line := range s.lines {
		for i, w := range line {
			for _, n := range s.candidates(w) {
				if s.next(n, now).After(now) {
					continue
				}
				s.turns.take(n, now, w.cost)
				s.lines[p] = slices.Delete(line, i, i+1)
				w.done <- outcome{from: n}
				return true
			}
		}
	}
	return false
}

// candidates are the senders w may use, in the pool's order.
func (s *scheduler) candidates(w *waiter) []string {
	if w.sender != "" {
		return []string{w.sender}
	}
	return s.senders
}

// estimate is how long w, waiting at now, should wait for its turn: until
// the first turn it could use, plus a turn for each send ahead of it (in
// priority order) that may use one of the same senders, by its segments,
// at the rate of the senders it may use. s.mu is held.
func (s *scheduler) estimate(w *waiter, now time.Time) time.Duration {
	mine := s.candidates(w)
	var first time.Time
	for _, n := range mine {
		if t := s.next(n, now); first.IsZero() || t.Before(first) {
			first = t
		}
	}
	ahead := 0
	shares := func(o *waiter) bool {
		return o.sender == "" || w.sender == "" || o.sender == w.sender
	}
out:
	for _, line := range s.lines[:priority(w.purpose)+1] {
		for _, o := range line {
			if o == w {
				break out
			}
			if shares(o) {
				ahead += max(o.cost, 1)
			}
		}
	}
	return first.Sub(now) + time.Duration(float64(ahead)/(s.rate*float64(len(mine)))*float64(time.Second))
}
