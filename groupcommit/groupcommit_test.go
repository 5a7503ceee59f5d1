package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a flush function that records its batches and can be made to
// block or fail.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	gate    chan struct{} // when non-nil, each flush waits for a receive
	entered chan struct{} // when non-nil, signalled at the start of each flush
	fail    func(batch []int) error
}

func (r *recorder) flush(_ context.Context, batch []int) error {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), batch...))
	r.mu.Unlock()
	if r.fail != nil {
		return r.fail(batch)
	}
	return nil
}

func TestLoneItemIsFlushedAtOnce(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	c := New(r.flush, Options{})
	defer c.Close()
	if err := c.Submit(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if len(r.batches) != 1 || len(r.batches[0]) != 1 || r.batches[0][0] != 7 {
		t.Fatalf("batches = %v, want [[7]]", r.batches)
	}
}

func TestConcurrentItemsShareAFlush(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		c := New(r.flush, Options{MaxBatch: 100})
		defer c.Close()

		// The first item occupies the single flusher; the next 50 queue behind it
		// and must all go into the second flush.
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := c.Submit(context.Background(), 0); err != nil {
				t.Error(err)
			}
		})
		<-r.entered
		for i := 1; i <= 50; i++ {
			wg.Go(func() {
				if err := c.Submit(context.Background(), i); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()      // every submitter is queued and blocked
		r.gate <- struct{}{} // release the first flush
		<-r.entered
		r.gate <- struct{}{} // release the second
		wg.Wait()

		if len(r.batches) != 2 || len(r.batches[1]) != 50 {
			t.Fatalf("batch sizes = %v, want [1 50]", sizes(r.batches))
		}
	})
}

func TestMaxBatchCapsAFlush(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		c := New(r.flush, Options{MaxBatch: 10})
		defer c.Close()
		var wg sync.WaitGroup
		wg.Go(func() { _ = c.Submit(context.Background(), 0) })
		<-r.entered
		for i := 1; i <= 25; i++ {
			wg.Go(func() { _ = c.Submit(context.Background(), i) })
		}
		synctest.Wait() // every submitter is queued and blocked
		r.gate <- struct{}{}
		for range 3 {
			<-r.entered
			r.gate <- struct{}{}
		}
		wg.Wait()
		if got := sizes(r.batches); len(got) != 4 || got[1] != 10 || got[2] != 10 || got[3] != 5 {
			t.Fatalf("batch sizes = %v, want [1 10 10 5]", got)
		}
	})
}

func TestFailedBatchRetriesItemsAlone(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		bad := errors.New("constraint")
		r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		r.fail = func(batch []int) error {
			for _, v := range batch {
				if v == 3 {
					return bad
				}
			}
			return nil
		}
		c := New(r.flush, Options{})
		defer c.Close()

		var wg sync.WaitGroup
		errs := make([]error, 6)
		wg.Go(func() { errs[0] = c.Submit(context.Background(), 0) })
		<-r.entered
		for i := 1; i < 6; i++ {
			wg.Go(func() { errs[i] = c.Submit(context.Background(), i) })
		}
		synctest.Wait() // every submitter is queued and blocked
		go func() {
			for range r.entered {
				r.gate <- struct{}{}
			}
		}()
		r.gate <- struct{}{}
		wg.Wait()
		close(r.entered)

		for i, err := range errs {
			if want := i == 3; (err != nil) != want {
				t.Errorf("item %d: err = %v, want failure %v", i, err, want)
			}
			if i == 3 && !errors.Is(err, bad) {
				t.Errorf("item 3: err = %v, want %v", err, bad)
			}
		}
	})
}

func TestSubmitGivesUpWhenQueueStaysFull(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		c := New(r.flush, Options{QueueSize: 1})
		go func() { _ = c.Submit(context.Background(), 1) }()
		<-r.entered                                           // the flusher is busy with item 1
		go func() { _ = c.Submit(context.Background(), 2) }() // fills the queue
		synctest.Wait()                                       // every submitter is queued and blocked

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Submit(ctx, 3); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("err = %v, want ErrQueueFull", err)
		}
		go func() {
			for range r.entered {
				r.gate <- struct{}{}
			}
		}()
		r.gate <- struct{}{}
		c.Close()
		close(r.entered)
	})
}

func TestCloseFlushesQueuedItemsAndRefusesNew(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	c := New(r.flush, Options{})
	for i := range 5 {
		if err := c.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if err := c.Submit(context.Background(), 9); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	total := 0
	for _, b := range r.batches {
		total += len(b)
	}
	if total != 5 {
		t.Fatalf("flushed %d items, want 5", total)
	}
}

func sizes(b [][]int) []int {
	out := make([]int, len(b))
	for i, x := range b {
		out[i] = len(x)
	}
	return out
}

func TestLingerGathersItemsArrivingSoonAfter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		c := New(r.flush, Options{Linger: 10 * time.Millisecond})
		defer c.Close()
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 3 * time.Millisecond) // fake time: 0, 3 and 6 ms
				_ = c.Submit(context.Background(), i)
			})
		}
		wg.Wait()
		if got := sizes(r.batches); len(got) != 1 || got[0] != 3 {
			t.Fatalf("batch sizes = %v, want one batch of 3 within the linger", got)
		}
		wg.Go(func() { _ = c.Submit(context.Background(), 9) })
		wg.Wait()
		if got := sizes(r.batches); len(got) != 2 {
			t.Fatalf("batch sizes = %v, want a second batch after the first flushed", got)
		}
	})
}

func TestFatalErrorIsNotRetriedItemByItem(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fsync := errors.New("fsync: input/output error")
		r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		r.fail = func(batch []int) error {
			if batch[0] == 0 {
				return nil
			}
			return fsync // every later flush fails, retries included
		}
		c := New(r.flush, Options{Fatal: func(err error) bool { return errors.Is(err, fsync) }})
		defer c.Close()

		var wg sync.WaitGroup
		errs := make([]error, 6)
		wg.Go(func() { errs[0] = c.Submit(context.Background(), 0) })
		<-r.entered
		for i := 1; i < 6; i++ {
			wg.Go(func() { errs[i] = c.Submit(context.Background(), i) })
		}
		synctest.Wait() // every submitter is queued and blocked
		go func() {
			for range r.entered {
				r.gate <- struct{}{}
			}
		}()
		r.gate <- struct{}{}
		wg.Wait()
		close(r.entered)

		if got := sizes(r.batches); len(got) != 2 || got[1] != 5 {
			t.Errorf("flushes = %v, want [1 5]: no item retried alone after a fatal error", got)
		}
		for i, err := range errs {
			if want := i > 0; (err != nil) != want || (want && !errors.Is(err, fsync)) {
				t.Errorf("item %d: err = %v, want failure %v", i, err, want)
			}
		}
	})
}

func TestRiders(t *testing.T) {
	t.Parallel()
	t.Run("LoneRiderWaitsRiderWaitThenFlushes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			c := New(r.flush, Options{RiderWait: 20 * time.Millisecond})
			defer c.Close()
			start := time.Now()
			if err := c.SubmitRider(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited != 20*time.Millisecond {
				t.Errorf("a lone rider was flushed after %v, want the rider wait (20ms)", waited)
			}
		})
	})
	t.Run("RidersJoinTheNextFlushWithoutWaiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			c := New(r.flush, Options{RiderWait: time.Hour})
			defer c.Close()
			var wg sync.WaitGroup
			for i := range 3 {
				wg.Go(func() { _ = c.SubmitRider(context.Background(), 10+i) })
			}
			synctest.Wait() // the riders wait
			start := time.Now()
			if err := c.Submit(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if time.Since(start) != 0 || len(r.batches) != 1 || len(r.batches[0]) != 4 {
				t.Errorf("batches %v after %v, want the three riders in the submitted item's flush at once", r.batches, time.Since(start))
			}
		})
	})
	t.Run("RiderBatchFlushesAtOnce", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			c := New(r.flush, Options{RiderWait: time.Hour, RiderBatch: 4})
			defer c.Close()
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() { _ = c.SubmitRider(context.Background(), i) })
			}
			wg.Wait() // would block for an hour of fake time otherwise
			if got := sizes(r.batches); len(got) != 1 || got[0] != 4 {
				t.Errorf("batch sizes = %v, want one batch of the 4 riders", got)
			}
		})
	})
	t.Run("CloseFlushesWaitingRiders", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			c := New(r.flush, Options{RiderWait: time.Hour})
			var wg sync.WaitGroup
			var err error
			wg.Go(func() { err = c.SubmitRider(context.Background(), 5) })
			synctest.Wait()
			c.Close()
			wg.Wait()
			if err != nil || len(r.batches) != 1 {
				t.Errorf("rider got %v, batches %v; want it flushed by Close", err, r.batches)
			}
		})
	})
}
