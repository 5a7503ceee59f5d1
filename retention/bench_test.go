package retention_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/retention"
	"github.com/switchboard-dev/switchboard/twilio"
)

var (
	benchSeed   = flag.Int("retention.seed", 200_000, "BenchmarkRetentionAck: old delivered events stored before the load")
	benchRate   = flag.Int("retention.rate", 250, "BenchmarkRetentionAck: webhooks per second, open loop")
	benchPhase  = flag.Duration("retention.phase", 4*time.Second, "BenchmarkRetentionAck: length of each phase")
	benchRounds = flag.Int("retention.rounds", 5, "BenchmarkRetentionAck: pairs of phases, pruner off then on")
	benchBatch  = flag.Int("retention.batch", retention.DefaultBatchSize, "BenchmarkRetentionAck: the pruner's batch size")
	benchTime   = flag.Duration("retention.batchtime", 0, "BenchmarkRetentionAck: the pruner's batch time (default: serve's pacing of the engine)")
	benchPause  = flag.Int("retention.pause", 0, "BenchmarkRetentionAck: the pruner's pause factor (default: serve's pacing of the engine)")
	benchLog    = flag.Bool("retention.log", false, "BenchmarkRetentionAck: log every batch the pruner makes")
)

const (
	benchPublic  = "https://hooks.example.com"
	benchAccount = "ACbench0000000000000000000000000000"
	benchToken   = "bench-auth-token"
)

// BenchmarkRetentionAck measures what pruning costs intake: a store holding
// -retention.seed delivered events, each as intake stored it (request,
// headers and body) with one attempt, all delivered 60 days ago, takes
// signed inbound-message webhooks at a steady -retention.rate (open loop,
// in process, like BenchmarkAck; no deliveries are worked) while the
// pruner is off, then on (Interval 10 ms, so that it prunes batch after
// batch for the whole phase), alternately, -retention.rounds times each,
// in one process on one store. Latency is from when a webhook was due to
// its answer, so a stall counts in full.
//
// It reports ack p50 and p99 with the pruner off and on, their ratios
// (on/off), the events pruned per second while on, and the store's size
// per seeded event before pruning. PostgreSQL runs when
// SWITCHBOARD_TEST_POSTGRES_URL is set.
//
//	go test ./retention -run XXX -bench RetentionAck -benchtime 1x -timeout 90m
func BenchmarkRetentionAck(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			st, url := openStore(b, engine)
			size := func() int64 { return sqliteSize(b, url) }
			if engine == "postgres" {
				size = func() int64 { return postgresSize(b, url) }
			}
			pacing := retention.SharedWriter // as serve paces each engine
			if engine == "postgres" {
				pacing = retention.Concurrent
			}
			if *benchTime > 0 {
				pacing.BatchTime = *benchTime
			}
			if *benchPause > 0 {
				pacing.PauseFactor = *benchPause
			}
			runRetentionAck(b, st, size, pacing)
		})
	}
}

func runRetentionAck(b *testing.B, st switchboard.Store, size func() int64, pacing retention.Pacing) {
	h := ingest.New(ingest.Options{
		Store: st, PublicURL: benchPublic, MaxBodyBytes: 1 << 20, AckTimeout: 30 * time.Second,
		Routes: []ingest.Route{{Path: "/sms", AccountSID: benchAccount, Tokens: []string{benchToken}, TwiML: []byte("<Response/>")}},
		Logger: slog.New(slog.DiscardHandler),
	})
	var seq atomic.Int64
	send := func() (time.Duration, error) {
		n := seq.Add(1)
		body := fmt.Sprintf("ToCountry=US&ToState=CA&SmsMessageSid=SM%032d&NumMedia=0&ToCity=&FromZip=94105&SmsSid=SM%032d"+
			"&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO&Body=Hello+there%%2C+message+%d&FromCountry=US"+
			"&To=%%2B15550100&MessagingServiceSid=&ToZip=&NumSegments=1&MessageSid=SM%032d&AccountSid=%s"+
			"&From=%%2B15550199&ApiVersion=2010-04-01", n, n, n, n, benchAccount)
		_, sig, _ := twilio.SignRequest(benchToken, benchPublic+"/sms", "application/x-www-form-urlencoded", []byte(body))
		req := httptest.NewRequest(http.MethodPost, "/sms", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		req.Header.Set("I-Twilio-Idempotency-Token", fmt.Sprintf("%036d", n))
		req.Header.Set("User-Agent", "TwilioProxy/1.1")
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return 0, fmt.Errorf("status %d: %s", rec.Code, rec.Body)
		}
		return time.Since(start), nil
	}

	// Seed: webhooks through intake, as fast as it takes them, then each
	// event delivered 60 days ago.
	seedStart := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Go(func() {
			for seq.Load() < int64(*benchSeed) {
				if _, err := send(); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	seeded := markDelivered(b, st, time.Now().Add(-60*24*time.Hour))
	bytes := size()
	b.Logf("seeded %d delivered events in %v: %d bytes stored, %d per event", seeded, time.Since(seedStart).Round(time.Second),
		bytes, bytes/int64(seeded))

	m := metrics.New()
	pruned := func() float64 {
		return metricstest.Sample(b, m, "switchboard_retention_pruned_total", "kind", "delivered").GetCounter().GetValue()
	}
	var off, on []time.Duration
	var prunedOn float64
	var onTime time.Duration
	b.ResetTimer()
	for round := range *benchRounds {
		for _, pruning := range []bool{false, true} {
			p := retention.New(st, retention.Options{
				Retention: switchboard.Retention{Delivered: 30 * 24 * time.Hour},
				Interval:  10 * time.Millisecond, BatchSize: *benchBatch, Pacing: pacing, Metrics: m, Logger: benchLogger(),
			})
			before := pruned()
			if pruning {
				p.Start()
			}
			lat, err := steadyLoad(send, *benchRate, *benchPhase)
			p.Stop()
			if err != nil {
				b.Fatal(err)
			}
			name := "off"
			if pruning {
				on, prunedOn, onTime = append(on, lat...), prunedOn+pruned()-before, onTime+*benchPhase
				name = "on"
			} else {
				off = append(off, lat...)
			}
			b.Logf("round %d, pruner %s: %d webhooks, ack p50 %v p99 %v; %v events pruned", round+1, name, len(lat),
				percentile(lat, 50), percentile(lat, 99), pruned()-before)
		}
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(percentile(off, 50)), "off-p50-µs")
	b.ReportMetric(us(percentile(off, 99)), "off-p99-µs")
	b.ReportMetric(us(percentile(on, 50)), "on-p50-µs")
	b.ReportMetric(us(percentile(on, 99)), "on-p99-µs")
	b.ReportMetric(float64(percentile(on, 50))/float64(percentile(off, 50)), "p50-on/off")
	b.ReportMetric(float64(percentile(on, 99))/float64(percentile(off, 99)), "p99-on/off")
	b.ReportMetric(prunedOn/onTime.Seconds(), "pruned/s")
	b.ReportMetric(float64(bytes)/float64(seeded), "bytes/event")
	if left := float64(seeded) - pruned(); left <= 0 {
		b.Logf("every seeded event was pruned: the last phases with the pruner on had nothing left to prune; seed more")
	}
}

// benchLogger is the pruner's logger: every batch on stderr with
// -retention.log, nothing otherwise.
func benchLogger() *slog.Logger {
	if *benchLog {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// steadyLoad calls send rate times a second for d, each call in its own
// goroutine at the time it is due, and returns every call's latency from
// when it was due.
func steadyLoad(send func() (time.Duration, error), rate int, d time.Duration) ([]time.Duration, error) {
	period := time.Second / time.Duration(rate)
	n := int(d / period)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * period)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			if _, err := send(); err != nil {
				failed.CompareAndSwap(nil, err)
			}
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, err
	}
	return lat, nil
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// markDelivered records one delivered attempt at at for every pending
// event, in batches, and returns how many.
func markDelivered(b *testing.B, st switchboard.Store, at time.Time) int {
	ctx := context.Background()
	total := 0
	cursor := ""
	for {
		page, err := st.ListEvents(ctx, switchboard.EventFilter{State: switchboard.StatePending, Cursor: cursor, Limit: 500})
		if err != nil {
			b.Fatal(err)
		}
		results := make([]*switchboard.AttemptResult, len(page.Items))
		for i, ev := range page.Items {
			results[i] = &switchboard.AttemptResult{Attempt: switchboard.Attempt{EventID: ev.ID, Number: 1, StartedAt: at,
				TargetURL: "http://app.example.com/sms", StatusCode: 200, Latency: 12 * time.Millisecond,
				ResponseHeader: http.Header{"Content-Type": {"application/xml"}}, ResponseExcerpt: []byte("<Response/>")},
				State: switchboard.StateDelivered, Attempts: 1}
		}
		if err := st.RecordAttempts(ctx, results); err != nil {
			b.Fatal(err)
		}
		total += len(results)
		if page.Next == "" {
			return total
		}
		cursor = page.Next
	}
}

// sqliteSize returns the bytes of the pages that Switchboard's own tables
// and indexes take in the database at path (River's job tables left out:
// their completed jobs are deleted after an hour in a running server).
func sqliteSize(b *testing.B, path string) int64 {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name NOT LIKE 'river%'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// postgresSize returns the size of Switchboard's own tables in the schema
// url uses, with their indexes and TOAST (River's left out, as above).
func postgresSize(b *testing.B, url string) int64 {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
        FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
        WHERE s.nspname = current_schema() AND c.relkind = 'r' AND c.relname NOT LIKE 'river%'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
