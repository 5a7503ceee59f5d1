package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
)

func TestPublishOnlyAfterASuccessfulFlush(t *testing.T) {
	t.Parallel()
	fail := errors.New("disk full")
	var published int
	var failing bool
	w := newWriter(func(_ context.Context, ops []*op) error {
		for _, op := range ops {
			op.Publish = func() { published++ }
		}
		if failing {
			return fail
		}
		return nil
	}, groupcommit.Options{}, false)
	defer w.Close()

	if err := w.Ingest(context.Background(), []*switchboard.Ingest{{}}); err != nil {
		t.Fatal(err)
	}
	if published != 1 {
		t.Fatalf("published %d times after a committed ingest, want 1", published)
	}
	failing = true
	if err := w.Ingest(context.Background(), []*switchboard.Ingest{{}}); !errors.Is(err, fail) {
		t.Fatalf("err = %v, want the flush's error", err)
	}
	if published != 1 {
		t.Errorf("a failed flush published its results")
	}
}

func TestAttemptRecordsShareACommit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var flushed []int // attempt records per flush
		w := newWriter(func(_ context.Context, ops []*op) error {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, op := range ops {
				n += len(op.Attempts)
			}
			flushed = append(flushed, n)
			return nil
		}, groupcommit.Options{}, false)
		defer w.Close()

		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				r := []*switchboard.AttemptResult{{}, {}}
				if err := w.RecordAttempts(context.Background(), r); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(flushed) != 1 || flushed[0] != 10 {
			t.Errorf("attempt records per flush = %v, want one flush of the 10 records of 5 callers", flushed)
		}

		// Riding along: records wait for a webhook's commit, which takes
		// them at once.
		wg.Go(func() { _ = w.RecordAttempts(context.Background(), []*switchboard.AttemptResult{{}}) })
		synctest.Wait()
		start := time.Now()
		if err := w.Ingest(context.Background(), []*switchboard.Ingest{{}}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if len(flushed) != 2 || flushed[1] != 1 || time.Since(start) != 0 {
			t.Errorf("attempt records per flush = %v after %v, want the record in the webhook's commit", flushed, time.Since(start))
		}
	})
}

func TestAttemptRecordsApartNeverJoinAWebhooksCommit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var mixed, flushes int
		w := newWriter(func(_ context.Context, ops []*op) error {
			mu.Lock()
			defer mu.Unlock()
			flushes++
			var ingests, attempts int
			for _, op := range ops {
				ingests += len(op.Ingests)
				attempts += len(op.Attempts)
			}
			if ingests > 0 && attempts > 0 {
				mixed++
			}
			return nil
		}, groupcommit.Options{Flushers: 2}, true)
		defer w.Close()
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() { _ = w.RecordAttempts(context.Background(), []*switchboard.AttemptResult{{}}) })
			wg.Go(func() { _ = w.Ingest(context.Background(), []*switchboard.Ingest{{}}) })
		}
		wg.Wait()
		if mixed != 0 || flushes < 2 {
			t.Errorf("%d of %d flushes mixed attempt records with webhooks, want none", mixed, flushes)
		}
	})
}
