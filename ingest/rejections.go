package ingest

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-dev/switchboard"
)

// A refused request is recorded, so that an operator can see what was
// refused and why; but whoever sends it may be an attacker, so what is
// recorded, and how often, is bounded: a rejected request is stored as
// metadata with a short excerpt, and at most so many per second from one
// source and in all. Past that, rejections are only counted
// (switchboard_unrecorded_total) and logged in summary. Duplicates are
// recorded the same way, within limits of their own (receive).

// Defaults of the recording limits (Options).
const (
	DefaultRecordPerSecond = 20 // recorded per second in all
	DefaultRecordPerSource = 1  // recorded per second from one source, after a burst
	recordSourceBurst      = 5
	recordSources          = 4096 // sources remembered; past it the memory starts over
)

// recordLimiter decides which rejected requests (or duplicates) are recorded: a token
// bucket per source address (the connection's, not a header a client can
// set) and one for all of them. It remembers a bounded number of sources;
// when that is reached it forgets them all, which at worst lets each one
// burst again, still under the global bucket.
type recordLimiter struct {
	mu        sync.Mutex
	global    *rate.Limiter
	perSource rate.Limit
	sources   map[string]*rate.Limiter
}

func newRecordLimiter(global, perSource float64) *recordLimiter {
	return &recordLimiter{
		global:    rate.NewLimiter(rate.Limit(global), max(int(2*global), 1)),
		perSource: rate.Limit(perSource),
		sources:   map[string]*rate.Limiter{},
	}
}

// allow reports whether a request from remoteAddr may be recorded at now.
func (l *recordLimiter) allow(remoteAddr string, now time.Time) bool {
	source, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		source = remoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.sources[source]
	if !ok {
		if len(l.sources) >= recordSources {
			clear(l.sources)
		}
		lim = rate.NewLimiter(l.perSource, recordSourceBurst)
		l.sources[source] = lim
	}
	// The source's token is spent first: a flooding source runs dry on its
	// own bucket and leaves the global one to the others.
	return lim.AllowN(now, 1) && l.global.AllowN(now, 1)
}

// recordRejection stores a refused request as metadata (Request.Metadata), unless
// its source or all sources together are over their limits. The answer
// does not wait on it succeeding: the request is refused either way.
func (h *Handler) recordRejection(ctx context.Context, req switchboard.Request, reason string, status int) {
	if now := h.now(); !h.rejections.allow(req.RemoteAddr, now) {
		h.metrics.Unrecorded.WithLabelValues(string(switchboard.OutcomeRejected)).Inc()
		h.samples.Unrecorded(now, switchboard.OutcomeRejected)
		h.rejectLog.note(now, func(suppressed int) {
			h.logger.Warn("webhooks rejected and not recorded: over the rejection recording limit",
				"count", suppressed, "last_remote", req.RemoteAddr, "last_reason", reason)
		})
		return
	}
	h.logger.Warn("webhook rejected", "route", req.Route, "status", status, "reason", reason, "remote", req.RemoteAddr)
	ctx, cancel := context.WithTimeout(ctx, h.ackWait)
	defer cancel()
	req.Outcome, req.Reason = switchboard.OutcomeRejected, reason
	if err := h.store.Ingest(ctx, []*switchboard.Ingest{{Request: req.Metadata()}}); err != nil {
		h.logger.Error("record rejected request", "request", req.ID, "err", err)
	}
}

// summaryLog logs one line per interval for a flood of like events,
// with how many there were, instead of one line each.
type summaryLog struct {
	mu       sync.Mutex
	interval time.Duration
	last     time.Time
	count    int
}

// note counts an event and, at most once per interval, calls log with the
// number counted since the last call.
func (s *summaryLog) note(now time.Time, log func(count int)) {
	s.mu.Lock()
	s.count++
	if now.Sub(s.last) < s.interval {
		s.mu.Unlock()
		return
	}
	n := s.count
	s.count, s.last = 0, now
	s.mu.Unlock()
	log(n)
}
