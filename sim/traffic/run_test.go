package traffic

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestFeedPaced checks the open-loop schedule where it is decided, on
// testing/synctest's fake clock, exactly: request n is handed out at
// start + n/rate when a worker is free, never before; a request that is
// late because every worker was busy goes as soon as one is free, and
// those after it follow at once until the schedule is caught up; the run
// offers rate × duration requests, or MaxRequests. (TestRunRate checks the
// same end to end, but a busy machine may not keep up with the rate.)
func TestFeedPaced(t *testing.T) {
	const rate = 200.0
	interval := time.Duration(float64(time.Second) / rate) // 5 ms
	tests := []struct {
		name        string
		maxRequests int
		// busy is how long the one worker takes with request n.
		busy func(n int) time.Duration
		// want is when request n is handed out, after start.
		want func(n int) time.Duration
		n    int // requests handed out
	}{
		{"workers always free", 0,
			func(int) time.Duration { return 0 },
			func(n int) time.Duration { return time.Duration(n) * interval }, 200},
		{"capped by MaxRequests", 50,
			func(int) time.Duration { return 0 },
			func(n int) time.Duration { return time.Duration(n) * interval }, 50},
		{"one stall, then caught up", 0,
			// Request 10 holds the worker 52 ms: requests 11 to 20, due
			// meanwhile, go one after another as soon as it is free.
			func(n int) time.Duration {
				if n == 10 {
					return 52 * time.Millisecond
				}
				return 0
			},
			func(n int) time.Duration {
				if n > 10 && n <= 20 {
					return 102 * time.Millisecond // 10 × 5 ms + 52 ms
				}
				return time.Duration(n) * interval
			}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				work := make(chan int)
				var got []time.Duration
				done := make(chan struct{})
				go func() {
					defer close(done)
					for n := range work {
						if n != len(got) {
							t.Errorf("request %d handed out after %d others", n, len(got))
						}
						got = append(got, time.Since(start))
						time.Sleep(tt.busy(n))
					}
				}()
				feedPaced(context.Background(), work, start, start.Add(time.Second), rate, tt.maxRequests)
				close(work)
				<-done
				if len(got) != tt.n {
					t.Errorf("%d requests handed out, want %d", len(got), tt.n)
				}
				for n, at := range got {
					if want := tt.want(n); at != want {
						t.Errorf("request %d handed out at %v, want %v", n, at, want)
					}
				}
			})
		})
	}
}
