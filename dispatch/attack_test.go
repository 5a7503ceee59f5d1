package dispatch_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard/dispatch"
	"github.com/switchboard-dev/switchboard/jobs"
)

// An event whose delivery keeps failing inside Switchboard (the attempt
// cannot be recorded: a full disk) is tried again less and less often.
// Each try may have reached the app before its record failed, so a
// constant pause would send it the same event every RetryAfter for as
// long as the fault lasts.
func TestInternalFailuresBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable()
		tb.fail["full"] = 1 << 20 // for good
		tb.add("full", time.Now())
		start(t, tb, dispatch.Options{PollInterval: time.Second, RetryAfter: time.Second})
		advance(10 * time.Minute)
		// Doubling pauses from 1 s, at most 5 minutes each: 1+2+…+256 s
		// and one 5-minute pause fill the 10 minutes with about 11 tries.
		if got := len(tb.started); got > 12 {
			t.Errorf("tried %d times in 10 minutes of internal failures, want the pauses to grow (about 11)", got)
		}
	})
}

// A success ends the back-off: the next failure of the event pauses
// RetryAfter again.
func TestInternalFailureBackOffEndsWithASuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable()
		tb.fail["e"] = 5
		tb.retry["e"] = 0 // delivered, then due again at once (a replay)
		tb.add("e", time.Now())
		d := start(t, tb, dispatch.Options{PollInterval: time.Hour, RetryAfter: time.Second})
		advance((1 + 2 + 4 + 8 + 16) * time.Second)
		if n := tb.delivered("e"); n != 1 {
			t.Fatalf("delivered %d times after five failures, want 1", n)
		}
		tb.mu.Lock()
		tb.fail["e"] = 1
		tb.mu.Unlock()
		d.Notify([]jobs.Scheduled{{Events: []jobs.Due{{EventID: "e", Attempts: 1}}}})
		synctest.Wait()
		advance(time.Second)
		if n := tb.delivered("e"); n != 2 {
			t.Errorf("delivered %d times, want 2: a failure after a success pauses RetryAfter, not the grown pause", n)
		}
	})
}

// Under a flood of hand-overs that the workers cannot keep up with,
// events that went to the store (the queue overflowed, or a retry came
// due) are delivered in their turn, not only once the flood ends: new
// hand-overs must not keep taking every place a worker frees.
func TestOverflowedEventsAreNotStarvedByAFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable()
		tb.block = make(chan struct{})
		d := start(t, tb, dispatch.Options{Workers: 1, MaxQueued: 4, PollInterval: time.Second})
		synctest.Wait()
		var all []jobs.Due
		for i := range 10 {
			all = append(all, tb.add(fmt.Sprintf("old%d", i), time.Now()))
			advance(time.Millisecond) // due in this order
		}
		d.Notify([]jobs.Scheduled{{Events: all}}) // 4 queued, 6 overflow
		synctest.Wait()
		// The flood: each time a delivery ends, a new event is handed over.
		n := 0
		for tb.delivered("old9") == 0 && n < 200 {
			tb.block <- struct{}{}
			due := tb.add(fmt.Sprintf("new%d", n), time.Now())
			n++
			d.Notify([]jobs.Scheduled{{Events: []jobs.Due{due}}})
			synctest.Wait()
			if n%50 == 0 {
				advance(time.Second) // polls come and go
			}
		}
		close(tb.block)
		if n >= 200 {
			t.Errorf("an overflowed event waited through %d newer deliveries", n)
		}
	})
}
