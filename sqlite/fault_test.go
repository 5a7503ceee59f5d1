package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/storetest"
)

// codedError stands for an error of the SQLite driver with a result code.
type codedError int

func (e codedError) Error() string { return fmt.Sprintf("sqlite error (%d)", int(e)) }
func (e codedError) Code() int     { return int(e) }

func TestFatalClassifiesStorageFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"context canceled", context.Canceled, false},
		{"IOERR", codedError(sqlite3.SQLITE_IOERR), true},
		{"IOERR_FSYNC", codedError(sqlite3.SQLITE_IOERR_FSYNC), true},
		{"IOERR_WRITE", codedError(sqlite3.SQLITE_IOERR_WRITE), true},
		{"IOERR_SHORT_READ", codedError(sqlite3.SQLITE_IOERR_SHORT_READ), true},
		{"IOERR_DIR_FSYNC", codedError(sqlite3.SQLITE_IOERR_DIR_FSYNC), true},
		{"IOERR_TRUNCATE", codedError(sqlite3.SQLITE_IOERR_TRUNCATE), true},
		{"CORRUPT", codedError(sqlite3.SQLITE_CORRUPT), true},
		{"CORRUPT_INDEX", codedError(sqlite3.SQLITE_CORRUPT_INDEX), true},
		{"NOTADB", codedError(sqlite3.SQLITE_NOTADB), true},
		{"wrapped IOERR_FSYNC", fmt.Errorf("commit: %w", codedError(sqlite3.SQLITE_IOERR_FSYNC)), true},
		{"ErrStoreFailed", fmt.Errorf("ingest: %w", ErrStoreFailed), true},
		// Recoverable: the transaction is rolled back and nothing was
		// fsynced, so the next one may succeed.
		{"FULL (ENOSPC on write)", codedError(sqlite3.SQLITE_FULL), false},
		{"BUSY", codedError(sqlite3.SQLITE_BUSY), false},
		{"BUSY_SNAPSHOT", codedError(sqlite3.SQLITE_BUSY_SNAPSHOT), false},
		{"INTERRUPT", codedError(sqlite3.SQLITE_INTERRUPT), false},
		{"CONSTRAINT_UNIQUE", codedError(sqlite3.SQLITE_CONSTRAINT_UNIQUE), false},
		{"CANTOPEN", codedError(sqlite3.SQLITE_CANTOPEN), false},
	} {
		if got := fatal(tc.err); got != tc.want {
			t.Errorf("fatal(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// injector makes chosen driver operations fail, and counts those that
// reach it.
type injector struct {
	fail    atomic.Pointer[func(op, query string) error]
	reached atomic.Int64
}

func (in *injector) hook(op, query string) error {
	in.reached.Add(1)
	if f := in.fail.Load(); f != nil {
		return (*f)(op, query)
	}
	return nil
}

func (in *injector) set(f func(op, query string) error) { in.fail.Store(&f) }

// openInjected opens a store at path whose driver operations pass
// through in. Background checkpoints run every checkpointEvery.
func openInjected(t *testing.T, path string, in *injector, checkpointEvery time.Duration) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, nil, func(o *options) {
		o.inject = in.hook
		o.checkpointEvery = checkpointEvery
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// files returns the contents of the database and of its -wal and -shm
// files, by name; a missing file is absent.
func files(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(path+suffix)] = b
	}
	return out
}

func sameFiles(t *testing.T, when string, before, after map[string][]byte) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s: %s was removed", when, name)
		case !bytes.Equal(a, b):
			t.Errorf("%s: %s changed (%d bytes, then %d)", when, name, len(b), len(a))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s: %s appeared", when, name)
		}
	}
}

func TestFailedCommitFailsTheStoreClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	in := &injector{}
	// No background checkpoint during the test: the files must change
	// only as the test makes them.
	s := openInjected(t, path, in, time.Hour)
	now := time.Now()
	if err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", "before", now)}); err != nil {
		t.Fatal(err)
	}

	// The next commit fails as a failed fsync does.
	in.set(func(op, _ string) error {
		if op == "commit" {
			return codedError(sqlite3.SQLITE_IOERR_FSYNC)
		}
		return nil
	})
	err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", "lost", now)})
	if !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("Ingest with a failing fsync: err = %v, want ErrStoreFailed", err)
	}
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed() not closed after the fault")
	}
	if err := s.Err(); !errors.Is(err, ErrStoreFailed) || !strings.Contains(err.Error(), path) {
		t.Errorf("Err() = %v, want ErrStoreFailed naming %s", err, path)
	}
	in.set(func(string, string) error { return nil }) // the device works again: no matter
	in.reached.Store(0)
	snapshot := files(t, path)

	// Everything fails fast, and nothing reaches SQLite any more.
	if err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", "after", now)}); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Ingest after the fault: err = %v, want ErrStoreFailed", err)
	}
	if _, err := s.ListEvents(ctx, switchboard.EventFilter{Limit: 10}); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("ListEvents after the fault: err = %v, want ErrStoreFailed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Ping after the fault: err = %v, want ErrStoreFailed", err)
	}
	if err := s.StartDelivery(ctx, nopDeliverer{}, switchboard.DeliveryConfig{Workers: 1, PollInterval: time.Millisecond, JobTimeout: time.Minute}); err == nil {
		t.Error("StartDelivery after the fault succeeded")
		_ = s.StopDelivery(ctx)
	}
	if err := s.Close(); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Close after the fault: err = %v, want ErrStoreFailed", err)
	}
	if n := in.reached.Load(); n != 0 {
		t.Errorf("%d driver operations reached SQLite after the fault, want none", n)
	}
	// No checkpoint, no deleted log: the files are as the fault left them.
	sameFiles(t, "after Close", snapshot, files(t, path))
	if _, ok := snapshot["switchboard.db-wal"]; !ok {
		t.Error("no write-ahead log at the fault: the test shows nothing")
	}
}

type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, string, int) error { return nil }

func TestFailedCheckpointFailsTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	in := &injector{}
	s := openInjected(t, path, in, time.Millisecond)
	in.set(func(_, query string) error {
		if strings.Contains(query, "wal_checkpoint") {
			return codedError(sqlite3.SQLITE_IOERR_FSYNC)
		}
		return nil
	})
	select {
	case <-s.Failed():
	case <-time.After(30 * time.Second):
		t.Fatal("a failed checkpoint did not fail the store")
	}
	if err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", "after", time.Now())}); !errors.Is(err, ErrStoreFailed) {
		t.Errorf("Ingest after a failed checkpoint: err = %v, want ErrStoreFailed", err)
	}
	if err := s.Err(); !strings.Contains(err.Error(), "wal_checkpoint") {
		t.Errorf("Err() = %v, want it to say what failed", err)
	}
}

func TestFullDiskIsNotAFault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := openInjected(t, path, &injector{}, time.Hour)
	// A real SQLITE_FULL: the database may not grow past its current
	// size. The writer pool has one connection, which keeps the limit.
	var pages int
	if err := s.write.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	big := storetest.NewItem("/sms", "big", time.Now())
	big.Request.Body = bytes.Repeat([]byte("x"), 256<<10)
	err := s.Ingest(ctx, []*switchboard.Ingest{big})
	var coded interface{ Code() int }
	if !errors.As(err, &coded) || coded.Code() != sqlite3.SQLITE_FULL {
		t.Fatalf("Ingest past max_page_count: err = %v, want SQLITE_FULL", err)
	}
	if errors.Is(err, ErrStoreFailed) || s.Err() != nil {
		t.Fatalf("SQLITE_FULL failed the store: %v", s.Err())
	}
	// Space is freed: the next write succeeds.
	if _, err := s.write.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ingest(ctx, []*switchboard.Ingest{big}); err != nil {
		t.Fatalf("Ingest once space is free: %v", err)
	}
}
