package traffic

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestBucketsBoundTheError(t *testing.T) {
	t.Parallel()
	prev := -1
	for us := int64(0); us < 1<<22; us = us*17/16 + 1 {
		i := bucket(us)
		if i < prev {
			t.Fatalf("bucket(%d) = %d, below bucket %d of a smaller latency", us, i, prev)
		}
		prev = i
		if mid := bucketMid(i); math.Abs(mid-float64(us)) > float64(us)/16+0.5 {
			t.Errorf("latency %dµs is shown as %.1fµs: off by more than 1/16th", us, mid)
		}
	}
	if i := bucket(math.MaxInt64); i != latencyBuckets-1 {
		t.Errorf("bucket(MaxInt64) = %d; want the last, %d", i, latencyBuckets-1)
	}
	if i := bucket(-5); i != 0 {
		t.Errorf("bucket(-5) = %d; want 0", i)
	}
}

func TestTallySince(t *testing.T) {
	t.Parallel()
	var m Meter
	start := m.Tally()
	for range 98 {
		m.Answer(time.Millisecond, true)
	}
	m.Answer(100*time.Millisecond, false) // an answer Twilio refuses
	m.Answer(100*time.Millisecond, true)
	m.NoAnswer()
	m.NoAnswer()
	first := m.Tally()
	if first.Accepted != 99 || first.Errors != 3 {
		t.Errorf("tally: accepted %d, errors %d; want 99, 3", first.Accepted, first.Errors)
	}
	iv := first.Since(start, 2*time.Second)
	near := func(got, want time.Duration) bool { return math.Abs(float64(got-want)) <= float64(want)/16 }
	if iv.Rate != 51 || !near(iv.P50, time.Millisecond) || !near(iv.P99, 100*time.Millisecond) {
		t.Errorf("first interval: %+v; want 51/s, p50 ~1ms, p99 ~100ms", iv)
	}

	// The next interval counts only what ended in it.
	for range 10 {
		m.Answer(5*time.Millisecond, true)
	}
	iv = m.Tally().Since(first, time.Second)
	if iv.Rate != 10 || !near(iv.P50, 5*time.Millisecond) || !near(iv.P99, 5*time.Millisecond) {
		t.Errorf("second interval: %+v; want 10/s, p50 and p99 ~5ms", iv)
	}

	// With nothing ended, there is no latency to show.
	now := m.Tally()
	if iv := now.Since(now, time.Second); iv != (Interval{}) {
		t.Errorf("empty interval: %+v; want zero", iv)
	}
}

// A run feeds its Meter every request it reports on, once.
func TestRunFeedsMeter(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			answer(http.StatusInternalServerError, "text/plain", "no")(w, r)
			return
		}
		answer(http.StatusOK, "text/xml", "<Response/>")(w, r)
	}))
	t.Cleanup(srv.Close)
	var m Meter
	r, err := Run(t.Context(), Options{Target: srv.URL + "/sms", AuthToken: testToken, Concurrency: 4,
		Duration: time.Minute, MaxRequests: 40, Meter: &m})
	if err != nil {
		t.Fatal(err)
	}
	tally := m.Tally()
	if int(tally.Accepted) != r.Accepted || int(tally.Errors) != r.Sent-r.Accepted || r.Sent != 40 {
		t.Errorf("meter: accepted %d, errors %d; report: %v", tally.Accepted, tally.Errors, r)
	}
	if iv := tally.Since(Tally{}, time.Second); iv.P50 <= 0 || iv.P99 < iv.P50 {
		t.Errorf("meter latencies: %+v", iv)
	}
}
