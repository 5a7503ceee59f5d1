package switchboard

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy decides how long a failed attempt waits before the next:
// webhook deliveries to an app (deliver) and sends to Twilio (outbound)
// retry by this one rule. It lives in the root package because it is a
// rule of the domain both apply, not an adapter of its own, and both
// (and twilio, which parses the header) already depend on this package.
//
// Retries here span processes and restarts (each is a durable job), so the
// delay is computed from the attempt number rather than kept in an
// in-process backoff object such as cenkalti/backoff's, which would forget
// its state at every restart.
type RetryPolicy struct {
	Base time.Duration // delay after the first failure, before jitter
	Max  time.Duration // cap on any backoff delay
	// MaxRetryAfter caps a Retry-After the server asked for, so one
	// answer cannot park work for days; zero leaves it uncapped.
	MaxRetryAfter time.Duration
	// Rand returns a float in [0, 1); injected so tests are deterministic.
	// Nil uses math/rand/v2.
	Rand func() float64
}

// Backoff returns the delay after the attempt-th failed attempt (1-based):
// min(Max, Base × 2^(attempt-1)) with "equal jitter", half of it fixed and
// half random, so it always lies in [delay/2, delay].
//
// Equal rather than full jitter (random in [0, delay]): every retry spends
// one of a bounded number of attempts (a route's max_attempts, a pool's
// MaxAttempts), and full jitter can draw near-zero waits that spend them
// moments after an app went down or Twilio answered 429, so the attempts
// would cover less time than Base and Max promise. The random half still
// spreads a herd of retries apart; in AWS's analysis ("Exponential Backoff
// and Jitter") equal jitter costs little more work than full jitter and far
// less than none.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	d := p.ceiling(attempt)
	half := d / 2
	return half + time.Duration(p.random()*float64(d-half))
}

// ceiling is min(Max, Base × 2^(attempt-1)), without overflowing for any
// attempt.
func (p RetryPolicy) ceiling(attempt int) time.Duration {
	d := min(p.Base, p.Max)
	for i := 1; i < attempt && d > 0 && d < p.Max; i++ {
		if d > p.Max/2 {
			return p.Max
		}
		d *= 2
	}
	return max(d, 0)
}

// Delay returns the wait before the attempt after the attempt-th failed
// one, given the delay the server asked for (Retry-After; zero when it
// asked none): the server's delay, capped at MaxRetryAfter, is a floor
// under Backoff, never a way to retry sooner than the backoff would.
func (p RetryPolicy) Delay(attempt int, retryAfter time.Duration) time.Duration {
	if p.MaxRetryAfter > 0 {
		retryAfter = min(retryAfter, p.MaxRetryAfter)
	}
	return max(p.Backoff(attempt), retryAfter)
}

func (p RetryPolicy) random() float64 {
	if p.Rand == nil {
		return rand.Float64()
	}
	return p.Rand()
}

// ParseRetryAfter reads a Retry-After header value, delay-seconds or an
// HTTP date (any of the three formats of RFC 9110) relative to now. ok is
// false for an absent, negative or malformed value; a date in the past is
// a zero delay. A number of seconds too large for a time.Duration is the
// longest Duration, never a wrapped one: the caller caps it (see
// RetryPolicy.MaxRetryAfter).
func ParseRetryAfter(h string, now time.Time) (d time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	// ParseInt gives the nearest int64 with ErrRange for more digits than
	// an int64 holds: still a (negative or huge) number of seconds.
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}
