package retention_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/retention"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
)

// openStore opens an empty store of engine, closed when tb ends, and
// returns it with its storage URL (a file path for SQLite); the PostgreSQL
// one is skipped without SWITCHBOARD_TEST_POSTGRES_URL.
func openStore(tb testing.TB, engine string) (switchboard.Store, string) {
	tb.Helper()
	var (
		st  switchboard.Store
		url string
		err error
	)
	switch engine {
	case "sqlite":
		url = filepath.Join(tb.TempDir(), "sb.db")
		st, err = sqlite.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	case "postgres":
		url = pgtest.URL(tb)
		st, err = postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st, url
}

// seedDelivered stores n events delivered at at, with a request and an
// attempt each, in batches, and returns them.
func seedDelivered(tb testing.TB, st switchboard.Store, n int, at time.Time) []*switchboard.Ingest {
	tb.Helper()
	ctx := context.Background()
	items := make([]*switchboard.Ingest, n)
	for i := range items {
		items[i] = storetest.NewItem("/sms", fmt.Sprintf("aged-%d", i), at)
	}
	const batch = 500
	for i := 0; i < n; i += batch {
		part := items[i:min(i+batch, n)]
		if err := st.Ingest(ctx, part); err != nil {
			tb.Fatal(err)
		}
		results := make([]*switchboard.AttemptResult, len(part))
		for j, it := range part {
			results[j] = &switchboard.AttemptResult{Attempt: switchboard.Attempt{EventID: it.Event.ID, Number: 1,
				StartedAt: at, TargetURL: "http://app/sms", StatusCode: 200, ResponseHeader: http.Header{}},
				State: switchboard.StateDelivered, Attempts: 1}
		}
		if err := st.RecordAttempts(ctx, results); err != nil {
			tb.Fatal(err)
		}
	}
	return items
}

// The pruner, started as serve starts it, prunes every aged event while
// webhooks keep being ingested on both engines; every ingest succeeds and
// nothing fresh is pruned.
func TestPrunerWhileIngesting(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st, _ := openStore(t, engine)
			const aged = 600
			items := seedDelivered(t, st, aged, time.Now().Add(-48*time.Hour))
			m := metrics.New()
			pacing := retention.SharedWriter // as serve paces each engine
			if engine == "postgres" {
				pacing = retention.Concurrent
			}
			p := retention.New(st, retention.Options{
				Retention: switchboard.Retention{Delivered: 24 * time.Hour, Rejected: time.Hour},
				Interval:  10 * time.Millisecond, BatchSize: 100, Pacing: pacing, Metrics: m, Logger: slog.New(slog.DiscardHandler),
			})

			ctx := context.Background()
			var (
				wg       sync.WaitGroup
				stop     = make(chan struct{})
				failed   atomic.Value
				mu       sync.Mutex
				ingested []*switchboard.Ingest
			)
			for w := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						it := storetest.NewItem("/sms", fmt.Sprintf("fresh-%d-%d", w, i), time.Now())
						if err := st.Ingest(ctx, []*switchboard.Ingest{it}); err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
						mu.Lock()
						ingested = append(ingested, it)
						mu.Unlock()
					}
				})
			}
			p.Start()
			deadline := time.Now().Add(3 * time.Minute)
			for metricstest.Sample(t, m, "switchboard_retention_pruned_total", "kind", "delivered").GetCounter().GetValue() < aged {
				if err, _ := failed.Load().(error); err != nil || time.Now().After(deadline) {
					break
				}
				// Poll at the pruner's own pace.
				time.Sleep(10 * time.Millisecond)
			}
			p.Stop()
			close(stop)
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				t.Fatalf("an ingest failed while pruning: %v", err)
			}
			if got := metricstest.Sample(t, m, "switchboard_retention_pruned_total", "kind", "delivered").GetCounter().GetValue(); got != aged {
				t.Fatalf("pruned %v events, want the %d aged ones", got, aged)
			}
			for _, it := range items {
				if _, err := st.Event(ctx, it.Event.ID); !errors.Is(err, switchboard.ErrNotFound) {
					t.Fatalf("aged event %s: %v, want it pruned", it.Event.ID, err)
				}
			}
			if len(ingested) == 0 {
				t.Fatal("nothing was ingested while pruning")
			}
			for _, it := range ingested {
				if _, err := st.Event(ctx, it.Event.ID); err != nil {
					t.Fatalf("fresh event %s: %v", it.Event.ID, err)
				}
			}
		})
	}
}
