package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/storetest"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	pgtest.BaseURL(t) // skip once here rather than in every subtest
	storetest.Run(t, func(t *testing.T) storetest.Opened {
		url := pgtest.URL(t)
		return storetest.Opened{
			Store:     open(t, url),
			Replica:   func(t *testing.T) switchboard.Store { return open(t, url) },
			SendJobs:  sendJobs(url),
			StaleJobs: true, // River's delivery jobs
		}
	})
}

// sendJobs reads the send jobs of the schema at url on a pool of its own.
func sendJobs(url string) func(t *testing.T) []storetest.SendJob {
	return func(t *testing.T) []storetest.SendJob {
		t.Helper()
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		js, err := storetest.ListSendJobs(ctx, riverpgxv5.New(pool))
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
}

// TestConcurrentOpen opens several stores on one empty schema at once, as
// replicas starting together do: migrations must run once and every Open
// must succeed.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const n = 6
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stores []*postgres.Store
	)
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	for range n {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url, nil)
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			mu.Lock()
			stores = append(stores, s)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	conn := connect(t, url)
	var applied int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Errorf("migration 1 recorded %d times, want 1", applied)
	}
	it := storetest.NewItem("/sms", "concurrent-open", time.Now())
	if err := stores[n-1].Ingest(context.Background(), []*switchboard.Ingest{it}); err != nil {
		t.Fatalf("Ingest after concurrent opens: %v", err)
	}
}

// TestSchemasAreIsolated checks that River follows the search_path: its
// tables land in each store's schema, and workers of one schema never see
// the jobs of another.
func TestSchemasAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	urlA, urlB := pgtest.URL(t), pgtest.URL(t)
	a, b := open(t, urlA), open(t, urlB)

	// The same idempotency keys in both schemas: no duplicates across them.
	var itemsA, itemsB []*switchboard.Ingest
	for i := range 3 {
		itemsA = append(itemsA, storetest.NewItem("/sms", fmt.Sprintf("iso%d", i), time.Now()))
	}
	for i := range 2 {
		itemsB = append(itemsB, storetest.NewItem("/sms", fmt.Sprintf("iso%d", i), time.Now()))
	}
	if err := a.Ingest(ctx, itemsA); err != nil {
		t.Fatal(err)
	}
	if err := b.Ingest(ctx, itemsB); err != nil {
		t.Fatal(err)
	}
	for _, it := range itemsB {
		if it.Duplicate {
			t.Errorf("event %s of schema B was taken for a duplicate of schema A's", it.Event.ID)
		}
	}

	conn := connect(t, pgtest.BaseURL(t))
	// jobs counts the events scheduled in delivery jobs (a job may carry
	// several).
	jobs := func(url, state string) int {
		t.Helper()
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		table := pgx.Identifier{cfg.RuntimeParams["search_path"], "river_job"}.Sanitize()
		var n int
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(jsonb_array_length(args->'events')), 0) FROM `+table+`
            WHERE kind = 'switchboard_deliver' AND ($1 = '' OR state::text = $1)`, state).Scan(&n); err != nil {
			t.Fatalf("count jobs in %s: %v", table, err)
		}
		return n
	}
	if na, nb := jobs(urlA, ""), jobs(urlB, ""); na != 3 || nb != 2 {
		t.Fatalf("jobs in schema A: %d, in schema B: %d; want 3 and 2", na, nb)
	}

	d := make(chanDeliverer, 10)
	if err := a.StartDelivery(ctx, d, switchboard.DeliveryConfig{Workers: 4, PollInterval: 20 * time.Millisecond, JobTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.StopDelivery(ctx); err != nil {
			t.Errorf("StopDelivery: %v", err)
		}
	})
	want := map[string]bool{}
	for _, it := range itemsA {
		want[it.Event.ID] = true
	}
	timeout := time.After(30 * time.Second)
	for range itemsA {
		select {
		case id := <-d:
			if !want[id] {
				t.Errorf("schema A's workers delivered %s, not one of its events", id)
			}
		case <-timeout:
			t.Fatal("schema A's events were not delivered")
		}
	}
	// Give a wrongly shared worker time to pick up schema B's jobs.
	select {
	case id := <-d:
		t.Errorf("schema A's workers delivered %s, which is not theirs", id)
	case <-time.After(500 * time.Millisecond):
	}
	if n := jobs(urlB, "available"); n != 2 {
		t.Errorf("%d of schema B's jobs are still available, want 2", n)
	}
}

// TestConcurrentDuplicates ingests batches sharing idempotency keys, in
// opposite orders, through two replicas at once: every key must end up with
// one event, every other item a duplicate of it, and no batch may fail (in
// particular on a deadlock between the batches).
func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	stores := []*postgres.Store{open(t, url), open(t, url)}
	const (
		keys    = 20
		batches = 8
	)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		items []*switchboard.Ingest
	)
	for n := range batches {
		var batch []*switchboard.Ingest
		for k := range keys {
			if n%2 == 1 {
				k = keys - 1 - k
			}
			batch = append(batch, storetest.NewItem("/sms", fmt.Sprintf("cd%02d", k), time.Now()))
		}
		items = append(items, batch...)
		wg.Go(func() {
			if err := stores[n%2].Ingest(ctx, batch); err != nil {
				mu.Lock()
				defer mu.Unlock()
				t.Errorf("batch %d: %v", n, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	original := map[string]string{} // key → event id
	for _, it := range items {
		if !it.Duplicate {
			if prev, ok := original[it.Event.IdempotencyKey]; ok {
				t.Errorf("key %s has two events: %s and %s", it.Event.IdempotencyKey, prev, it.Event.ID)
			}
			original[it.Event.IdempotencyKey] = it.Event.ID
		}
	}
	for _, it := range items {
		if want := original[it.Event.IdempotencyKey]; it.Event.ID != want || it.Request.EventID != want {
			t.Errorf("item of key %s points at event %s, want %s", it.Event.IdempotencyKey, it.Event.ID, want)
		}
	}
	page, err := stores[0].ListEvents(ctx, switchboard.EventFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != keys || len(original) != keys {
		t.Errorf("%d events stored, %d reported new; want %d", len(page.Items), len(original), keys)
	}
	dups, err := stores[1].ListRequests(ctx, switchboard.RequestFilter{Outcome: switchboard.OutcomeDuplicate, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if want := keys * (batches - 1); len(dups.Items) != want {
		t.Errorf("%d duplicate requests stored, want %d", len(dups.Items), want)
	}
}

type chanDeliverer chan string

func (d chanDeliverer) Deliver(ctx context.Context, eventID string, _ int) error {
	d <- eventID
	return nil
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Migration 0005 moves the idempotency keys of messages stored before it
// into their API's and account's key space: a schema at migration 0004
// with messages in it, opened, finds each by its new key.
func TestOldIdempotencyKeysAreMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	for _, k := range storetest.OldKeys {
		m := storetest.OldKeyMessage(k)
		if _, err := db.ExecContext(ctx, `INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, to_number,
            body, media_urls, payload_hash, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '{}', $8, 'queued', $9, $9)`,
			m.ID, m.IdempotencyKey, m.AccountSID, m.Pool, string(m.Purpose), m.To, m.Body, m.PayloadHash, m.CreatedAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckOldKeys(t, open(t, url))
}
