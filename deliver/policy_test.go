package deliver_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/deliver"
)

func fixedRand(v float64) func() float64 { return func() float64 { return v } }

func TestPolicyBackoff(t *testing.T) {
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

			p := deliver.Policy{Base: base, Max: maxDelay, Rand: fixedRand(tt.rand)}
			for i, want := range tt.want {
				if got := p.Backoff(i + 1); got != want {
					t.Errorf("Backoff(%d) = %s, want %s", i+1, got, want)
				}
			}
			for _, attempt := range []int{10, 64, 100, 1 << 20} {
				if got, want := p.Backoff(attempt), tt.want[len(tt.want)-1]; got != want {
					t.Errorf("Backoff(%d) = %s, want the capped %s", attempt, got, want)
				}
			}
		})
	}
}

func TestPolicyBackoffJitterRange(t *testing.T) {
	t.Parallel()

	// Undelayed delays for Base 1s and Max 10s.
	full := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for _, r := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.999, 0.999999} {
		p := deliver.Policy{Base: time.Second, Max: 10 * time.Second, Rand: fixedRand(r)}
		for i, d := range full {
			got := p.Backoff(i + 1)
			if got < d/2 || got > d {
				t.Errorf("rand %v: Backoff(%d) = %s, outside [%s, %s]", r, i+1, got, d/2, d)
			}
		}
	}

	// A larger rand never gives a shorter delay, and 0.999 is close to the
	// top of the range.
	p := func(r float64) deliver.Policy {
		return deliver.Policy{Base: time.Second, Max: 10 * time.Second, Rand: fixedRand(r)}
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
	random := deliver.Policy{Base: time.Second, Max: 10 * time.Second}
	for range 200 {
		if got := random.Backoff(3); got < 2*time.Second || got > 4*time.Second {
			t.Fatalf("Backoff(3) with random jitter = %s, outside [2s, 4s]", got)
		}
	}
}

func TestPolicyRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		max    time.Duration // MaxRetryAfter
		want   time.Duration
		wantOK bool
	}{
		{name: "Missing", header: http.Header{}, max: time.Hour},
		{name: "Empty", header: http.Header{"Retry-After": {""}}, max: time.Hour},
		{name: "Seconds", header: http.Header{"Retry-After": {"7"}}, max: time.Hour, want: 7 * time.Second, wantOK: true},
		{name: "Zero", header: http.Header{"Retry-After": {"0"}}, max: time.Hour, want: 0, wantOK: true},
		{name: "Negative", header: http.Header{"Retry-After": {"-5"}}, max: time.Hour},
		{name: "Fraction", header: http.Header{"Retry-After": {"1.5"}}, max: time.Hour},
		{name: "Garbage", header: http.Header{"Retry-After": {"soon"}}, max: time.Hour},
		{name: "SecondsCapped", header: http.Header{"Retry-After": {"7200"}}, max: time.Hour, want: time.Hour, wantOK: true},
		{name: "SecondsUncapped", header: http.Header{"Retry-After": {"7200"}}, want: 2 * time.Hour, wantOK: true},
		{
			name:   "HTTPDateFuture",
			header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}},
			max:    time.Hour, want: 90 * time.Second, wantOK: true,
		},
		{
			name:   "RFC850DateFuture",
			header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(time.RFC850)}},
			max:    time.Hour, want: 90 * time.Second, wantOK: true,
		},
		{
			name:   "ANSICDateFuture",
			header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(time.ANSIC)}},
			max:    time.Hour, want: 90 * time.Second, wantOK: true,
		},
		{
			name:   "HTTPDatePast",
			header: http.Header{"Retry-After": {now.Add(-90 * time.Second).Format(http.TimeFormat)}},
			max:    time.Hour, want: 0, wantOK: true,
		},
		{
			name:   "HTTPDateCapped",
			header: http.Header{"Retry-After": {now.Add(48 * time.Hour).Format(http.TimeFormat)}},
			max:    time.Hour, want: time.Hour, wantOK: true,
		},
		{
			name:   "HugeSecondsCapped",
			header: http.Header{"Retry-After": {"9223372037"}},
			max:    time.Hour, want: time.Hour, wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			p := deliver.Policy{Base: time.Second, Max: 10 * time.Second, MaxRetryAfter: tt.max}
			got, ok := p.RetryAfter(tt.header, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfter(%q) = %s, %v; want %s, %v", tt.header.Get("Retry-After"), got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
