package switchboard

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func fixedRand(v float64) func() float64 { return func() float64 { return v } }

func TestRetryPolicyBackoff(t *testing.T) {
	t.Parallel()

	const (
		base     = time.Second
		maxDelay = 10 * time.Second
	)
	// Before jitter the delay is 1s, 2s, 4s, 8s, then the 10s cap; jitter
	// keeps half of it and adds rand times the other half.
	tests := []struct {
		name string
		rand float64
		want []time.Duration // for attempts 1, 2, ...
	}{
		{
			name: "Rand0",
			rand: 0,
			want: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second},
		},
		{
			name: "Rand0.5",
			rand: 0.5,
			want: []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 7500 * time.Millisecond, 7500 * time.Millisecond},
		},
		{
			name: "Rand0.75",
			rand: 0.75,
			want: []time.Duration{875 * time.Millisecond, 1750 * time.Millisecond, 3500 * time.Millisecond, 7 * time.Second, 8750 * time.Millisecond, 8750 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			p := RetryPolicy{Base: base, Max: maxDelay, Rand: fixedRand(tt.rand)}
			for i, want := range tt.want {
				if got := p.Backoff(i + 1); got != want {
					t.Errorf("Backoff(%d) = %s, want %s", i+1, got, want)
				}
			}
			for _, attempt := range []int{10, 64, 100, 1 << 20, math.MaxInt} {
				if got, want := p.Backoff(attempt), tt.want[len(tt.want)-1]; got != want {
					t.Errorf("Backoff(%d) = %s, want the capped %s", attempt, got, want)
				}
			}
		})
	}
}

func TestRetryPolicyBackoffJitterRange(t *testing.T) {
	t.Parallel()

	// Undelayed delays for Base 1s and Max 10s.
	full := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for _, r := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.999, 0.999999} {
		p := RetryPolicy{Base: time.Second, Max: 10 * time.Second, Rand: fixedRand(r)}
		for i, d := range full {
			got := p.Backoff(i + 1)
			if got < d/2 || got > d {
				t.Errorf("rand %v: Backoff(%d) = %s, outside [%s, %s]", r, i+1, got, d/2, d)
			}
		}
	}

	// A larger rand never gives a shorter delay, and 0.999 is close to the
	// top of the range.
	p := func(r float64) RetryPolicy {
		return RetryPolicy{Base: time.Second, Max: 10 * time.Second, Rand: fixedRand(r)}
	}
	for attempt := 1; attempt <= 6; attempt++ {
		lo, mid, hi := p(0).Backoff(attempt), p(0.5).Backoff(attempt), p(0.999).Backoff(attempt)
		if !(lo < mid && mid < hi) {
			t.Errorf("Backoff(%d) with rand 0, 0.5, 0.999 = %s, %s, %s: want increasing", attempt, lo, mid, hi)
		}
		if d := full[attempt-1]; hi < d-d/500 {
			t.Errorf("Backoff(%d) with rand 0.999 = %s, want at least %s", attempt, hi, d-d/500)
		}
	}

	// Without an injected Rand the jitter is random but stays in range.
	random := RetryPolicy{Base: time.Second, Max: 10 * time.Second}
	for range 200 {
		if got := random.Backoff(3); got < 2*time.Second || got > 4*time.Second {
			t.Fatalf("Backoff(3) with random jitter = %s, outside [2s, 4s]", got)
		}
	}
}

// The doubling never overflows into a short or negative delay, however
// large the durations or the attempt.
func TestRetryPolicyBackoffNoOverflow(t *testing.T) {
	t.Parallel()

	const longest = time.Duration(math.MaxInt64)
	tests := []struct {
		name      string
		base, max time.Duration
		attempt   int
		want      time.Duration // with rand 0.999999: just under the ceiling
	}{
		{name: "BaseNearMax", base: longest / 3 * 2, max: longest, attempt: 2, want: longest},
		{name: "LongestBoth", base: longest, max: longest, attempt: math.MaxInt, want: longest},
		{name: "BaseAboveMax", base: time.Hour, max: time.Minute, attempt: 1, want: time.Minute},
		{name: "ZeroBase", base: 0, max: time.Minute, attempt: math.MaxInt, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			p := RetryPolicy{Base: tt.base, Max: tt.max, Rand: fixedRand(0.999999)}
			got := p.Backoff(tt.attempt)
			if got < 0 || got > tt.want || float64(tt.want-got) > float64(tt.want)/1e5 {
				t.Errorf("Backoff(%d) = %s, want just under %s", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	t.Parallel()

	// Backoff with rand 0.5: 750ms after attempt 1, 6s after attempt 4.
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		max        time.Duration // MaxRetryAfter
		want       time.Duration
	}{
		{name: "NoneAsked", attempt: 1, max: time.Hour, want: 750 * time.Millisecond},
		{name: "AskedLonger", attempt: 1, retryAfter: 30 * time.Second, max: time.Hour, want: 30 * time.Second},
		{name: "AskedShorterIsAFloorOnly", attempt: 4, retryAfter: time.Second, max: time.Hour, want: 6 * time.Second},
		{name: "AskedCapped", attempt: 1, retryAfter: 48 * time.Hour, max: time.Hour, want: time.Hour},
		{name: "AskedLongestCapped", attempt: 1, retryAfter: math.MaxInt64, max: time.Hour, want: time.Hour},
		{name: "CapBelowBackoff", attempt: 4, retryAfter: time.Hour, max: time.Second, want: 6 * time.Second},
		{name: "Uncapped", attempt: 1, retryAfter: 48 * time.Hour, want: 48 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			p := RetryPolicy{Base: time.Second, Max: 10 * time.Second, MaxRetryAfter: tt.max, Rand: fixedRand(0.5)}
			if got := p.Delay(tt.attempt, tt.retryAfter); got != tt.want {
				t.Errorf("Delay(%d, %s) = %s, want %s", tt.attempt, tt.retryAfter, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
		wantOK bool
	}{
		{name: "Empty", header: ""},
		{name: "Blank", header: "  "},
		{name: "Seconds", header: "7", want: 7 * time.Second, wantOK: true},
		{name: "Zero", header: "0", want: 0, wantOK: true},
		{name: "Spaces", header: " 0 ", want: 0, wantOK: true},
		{name: "Negative", header: "-5"},
		{name: "NegativeHuge", header: "-99999999999999999999"},
		{name: "Fraction", header: "1.5"},
		{name: "Garbage", header: "soon"},
		{name: "Hours", header: "7200", want: 2 * time.Hour, wantOK: true},
		{name: "HTTPDateFuture", header: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, wantOK: true},
		{name: "RFC850DateFuture", header: now.Add(90 * time.Second).Format(time.RFC850), want: 90 * time.Second, wantOK: true},
		{name: "ANSICDateFuture", header: now.Add(90 * time.Second).Format(time.ANSIC), want: 90 * time.Second, wantOK: true},
		{name: "HTTPDatePast", header: now.Add(-90 * time.Second).Format(http.TimeFormat), want: 0, wantOK: true},
		{name: "HTTPDateFar", header: now.Add(48 * time.Hour).Format(http.TimeFormat), want: 48 * time.Hour, wantOK: true},
		// Past what a Duration holds in seconds, and past what an int64
		// holds at all: the longest Duration, for the caller to cap.
		{name: "HugeSeconds", header: "9223372037", want: math.MaxInt64, wantOK: true},
		{name: "TooManyDigits", header: "99999999999999999999", want: math.MaxInt64, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, ok := ParseRetryAfter(tt.header, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
