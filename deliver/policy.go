package deliver

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Policy decides when a failed delivery is tried again.
//
// Retries here span processes and restarts (each is a durable job), so the
// delay is computed from the attempt number rather than kept in an
// in-process backoff object such as cenkalti/backoff's, which would forget
// its state at every restart.
type Policy struct {
	Base time.Duration // delay after the first failure, before jitter
	Max  time.Duration // cap on any backoff delay
	// MaxRetryAfter caps a Retry-After header, so an app cannot park an
	// event for days with one answer.
	MaxRetryAfter time.Duration
	// Rand returns a float in [0, 1); injected so tests are deterministic.
	Rand func() float64
}

// Backoff returns the delay after the attempt-th failed attempt (1-based):
// capped exponential growth with "equal jitter" — half the delay fixed, half
// random — so retries of many events spread out without any retrying at once.
func (p Policy) Backoff(attempt int) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	half := d / 2
	return half + time.Duration(p.random()*float64(d-half))
}

func (p Policy) random() float64 {
	if p.Rand == nil {
		return rand.Float64()
	}
	return p.Rand()
}

// RetryAfter parses a Retry-After header (delta seconds or an HTTP date)
// relative to now, capped at MaxRetryAfter. ok is false when the header is
// absent or unusable.
func (p Policy) RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		d = time.Duration(math.MaxInt64) // a value too large to multiply waits as long as allowed
		if secs < int(math.MaxInt64/int64(time.Second)) {
			d = time.Duration(secs) * time.Second
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	if p.MaxRetryAfter > 0 {
		d = min(d, p.MaxRetryAfter)
	}
	return d, true
}
