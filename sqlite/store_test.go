package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
)

func openAt(t *testing.T, path string) switchboard.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Opened {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		// No Replica: one process delivers from a SQLite database (see
		// TestSecondDelivererIsRefused); replicas use PostgreSQL.
		return storetest.Opened{Store: openAt(t, path), SendJobs: sendJobs(path)}
	})
}

// sendJobs reads the send jobs of the database at path on a connection of
// its own.
func sendJobs(path string) func(t *testing.T) []storetest.SendJob {
	return func(t *testing.T) []storetest.SendJob {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		js, err := storetest.ListSendJobs(context.Background(), riversqlite.New(db))
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
}

type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, string, int) error { return nil }

var testDelivery = switchboard.DeliveryConfig{Workers: 2, PollInterval: 20 * time.Millisecond, JobTimeout: time.Minute}

func TestSecondDelivererIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	first, second := openAt(t, path), openAt(t, path)
	if err := first.StartDelivery(ctx, nopDeliverer{}, testDelivery); err != nil {
		t.Fatal(err)
	}
	if err := second.StartDelivery(ctx, nopDeliverer{}, testDelivery); !errors.Is(err, sqlite.ErrDeliveryLocked) {
		t.Fatalf("second StartDelivery: %v, want ErrDeliveryLocked", err)
	}
	if err := first.StopDelivery(ctx); err != nil {
		t.Fatal(err)
	}
	// Once the first stops, the lock is free again.
	if err := second.StartDelivery(ctx, nopDeliverer{}, testDelivery); err != nil {
		t.Fatalf("StartDelivery after the first stopped: %v", err)
	}
	if err := second.StopDelivery(ctx); err != nil {
		t.Fatal(err)
	}
}

// recorder signals each delivery.
type recorder chan string

func (r recorder) Deliver(_ context.Context, id string, _ int) error {
	r <- id
	return nil
}

func TestJobsLeftRunningByADeadProcessAreReleasedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := openAt(t, path)
	it := storetest.NewItem("/sms", "orphan", time.Now())
	if err := s.Ingest(ctx, []*switchboard.Ingest{it}); err != nil {
		t.Fatal(err)
	}
	// What a SIGKILL mid-delivery leaves: the job marked running by a
	// process that no longer exists.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = CURRENT_TIMESTAMP`); err != nil {
		t.Fatal(err)
	}
	got := make(recorder, 1)
	if err := s.StartDelivery(ctx, got, testDelivery); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.StopDelivery(context.Background()) })
	select {
	case id := <-got:
		if id != it.Event.ID {
			t.Errorf("delivered %s, want %s", id, it.Event.ID)
		}
	case <-time.After(30 * time.Second): // River's own rescue would take over an hour by default
		t.Fatal("the orphaned job was not released at start")
	}
}

// Migration 0005 moves the idempotency keys of messages stored before it
// into their API's and account's key space: a database at migration 0004
// with messages in it, opened, finds each by its new key.
func TestOldIdempotencyKeysAreMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	for _, k := range storetest.OldKeys {
		m := storetest.OldKeyMessage(k)
		at := m.CreatedAt.UnixMicro()
		if _, err := db.ExecContext(ctx, `INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, to_number,
            body, media_urls, payload_hash, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?, 'queued', ?, ?)`,
			m.ID, m.IdempotencyKey, m.AccountSID, m.Pool, string(m.Purpose), m.To, m.Body, m.PayloadHash, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckOldKeys(t, openAt(t, path))
}
