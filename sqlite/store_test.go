package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
		s := openAt(t, path)
		return storetest.Opened{Store: s, SendJobs: sendJobs(path), Reopen: func(t *testing.T) switchboard.Store {
			s.Close()
			return openAt(t, path)
		}}
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

func TestWithExistingNeverCreatesAStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	migrated := filepath.Join(dir, "migrated.db")
	if s, err := sqlite.Open(ctx, migrated, nil); err != nil {
		t.Fatal(err)
	} else if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db") // a SQLite database of someone else's
	db, err := sql.Open("sqlite", "file:"+other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE notes (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, tc := range []struct {
		name, path string
		notExist   bool // the error wraps fs.ErrNotExist
	}{
		{"missing file", filepath.Join(dir, "missing.db"), true},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "switchboard.db"), true},
		{"a directory", dir, false},
		{"empty file", empty, false},
		{"another application's database", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(ctx, tc.path, nil, sqlite.WithExisting(), sqlite.WithIntegrityCheck(sqlite.CheckOff))
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s, WithExisting) succeeded; want ErrNoStore", tc.path)
			}
			if !errors.Is(err, sqlite.ErrNoStore) || errors.Is(err, os.ErrNotExist) != tc.notExist {
				t.Errorf("Open(%s, WithExisting): %v; want ErrNoStore (not exist: %v)", tc.path, err, tc.notExist)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open: %q does not name the path %s", err, tc.path)
			}
			if tc.notExist {
				if _, err := os.Stat(tc.path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after Open(WithExisting): stat %s: %v; want it still missing", tc.path, err)
				}
				if _, err := os.Stat(filepath.Dir(tc.path)); tc.name == "missing directory" && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after Open(WithExisting): the directory was created")
				}
			}
		})
	}
	t.Run("another application's database is left as it was", func(t *testing.T) {
		db, err := sql.Open("sqlite", "file:"+other+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables []string
		rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		if fmt.Sprint(tables) != "[notes]" {
			t.Errorf("tables after a refused Open: %v; want [notes]", tables)
		}
	})

	s, err := sqlite.Open(ctx, migrated, nil, sqlite.WithExisting())
	if err != nil {
		t.Fatalf("Open(WithExisting) of a migrated store: %v", err)
	}
	if _, err := s.ListEvents(ctx, switchboard.EventFilter{}); err != nil {
		t.Errorf("ListEvents: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
