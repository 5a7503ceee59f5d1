// Package sqlite implements switchboard.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go): Switchboard's zero-setup default. The use
// cases are store.Store's; this package is its driver (SQL, scanning, the
// connections) and what only SQLite needs: the single writer, the
// checkpointer, the statement cache and the storage-fault checks.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so a
// committed transaction has been fsynced and survives a crash or power cut.
// SQLite allows one writer at a time, so all writes share one connection:
// Switchboard's own go through a group committer that puts concurrent
// ingests and attempt records in one transaction, and through another that
// does the same for outbound status updates; River's job bookkeeping takes
// its turns between them. Reads use a separate read-only
// pool that WAL lets run beside the writer.
//
// Storage faults: the first I/O error (a failed write, fsync or
// checkpoint) or sign of a damaged database fails the store for good (see
// ErrStoreFailed and Store.Failed); Open refuses a database that fails its
// integrity check (see IntegrityCheck).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/dispatch"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// foreignWorkPoll is the shortest interval between the dispatcher's polls
// for deliveries other processes scheduled.
const foreignWorkPoll = time.Second

// readConns is the size of the read pool: reads run beside the writer
// (WAL) and beside each other.
const readConns = 4

// Store is the SQLite switchboard.Store.
type Store struct {
	path  string
	write *sql.DB // exactly one connection: SQLite's single writer
	read  *sql.DB
	queue *jobs.Queue[*sql.Tx]
	eng   *engine
	// Store provides the use cases, over this package's driver.
	*store.Store
	logger *slog.Logger
	fault  *fault

	mu         sync.Mutex
	release    func() // drops the delivery lock; nil when not delivering
	dispatcher *dispatch.Dispatcher

	checkpointer     *sql.DB
	stopCheckpoints  chan struct{}
	checkpointerDone chan struct{}
}

var _ switchboard.Store = (*Store)(nil)

// Option adjusts how a Store is opened.
type Option func(*options)

type options struct {
	commit          groupcommit.Options
	check           IntegrityCheck
	checkpointEvery time.Duration
	existing        bool
	// inject, for tests, stands in for driver operations; see fault.inject.
	inject func(op, query string) error
}

// WithCommit sets the group committer's limits and batch observer. Flushers
// is ignored: SQLite has one writer; so is Fatal: the store sets its own.
func WithCommit(o groupcommit.Options) Option {
	return func(dst *options) { dst.commit = o }
}

// WithIntegrityCheck sets the check Open runs before using the database;
// the default is CheckQuick.
func WithIntegrityCheck(c IntegrityCheck) Option {
	return func(dst *options) { dst.check = c }
}

// WithExisting opens only a store that exists: a missing file is an error
// wrapping ErrNoStore and fs.ErrNotExist, and is never created, nor is its
// directory; a database without Switchboard's tables (never migrated) is
// refused with ErrNoStore before any migration runs. For commands
// that read a store: a mistyped path or a forgotten --config must fail
// them, not show an empty store made for the occasion.
func WithExisting() Option {
	return func(dst *options) { dst.existing = true }
}

// ErrNoStore refuses to open, under WithExisting, a path holding no
// Switchboard store.
var ErrNoStore = errors.New("no switchboard store")

// Open opens (creating if needed, unless WithExisting) the database file
// at path, checks it (see WithIntegrityCheck; a damaged database is
// refused with ErrDamaged) and applies migrations.
func Open(ctx context.Context, path string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	o := options{check: CheckQuick, checkpointEvery: checkpointInterval}
	for _, opt := range opts {
		opt(&o)
	}
	commit := o.commit
	commit.Flushers = 1
	// A batch that failed on a storage fault is not retried item by item:
	// after a failed fsync a retry could report success for data that
	// never reached the disk.
	commit.Fatal = fatal
	if o.existing {
		if err := checkExists(path); err != nil {
			return nil, err
		}
	} else if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	f := newFault(path)
	f.inject = o.inject
	write, err := openDB(path, false, o.existing, f)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := checkIntegrity(ctx, write, path, o.check, f); err != nil {
		write.Close() // keeps the connection open if the check failed the store
		return nil, err
	}
	if o.existing {
		if err := checkMigrated(ctx, write, path); err != nil {
			write.Close()
			return nil, err
		}
	}
	if err := migrate(ctx, write, logger); err != nil {
		write.Close()
		return nil, err
	}
	read, err := openDB(path, true, o.existing, f)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	// Every read connection stays open: database/sql keeps only two idle
	// by default, and a connection opened afresh pays for its pragmas and
	// for parsing the schema, which under load cost more than the reads.
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	read.SetConnMaxIdleTime(0)
	read.SetConnMaxLifetime(0)
	queue, err := jobs.New(riversqlite.New(write), logger, jobs.PollOnly())
	if err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	checkpointer, err := openDB(path, false, o.existing, f)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open %s for checkpoints: %w", path, err)
	}
	checkpointer.SetMaxOpenConns(1)
	s := &Store{path: path, write: write, read: read, queue: queue, logger: logger, fault: f, checkpointer: checkpointer,
		stopCheckpoints: make(chan struct{}), checkpointerDone: make(chan struct{})}
	// One flusher for status updates too: SQLite has one writer anyway,
	// and a single flusher applies one process's updates in the order they
	// were submitted. No linger: a lone update commits at once, and under
	// load the batches grow by themselves while the writer is busy.
	s.eng = &engine{read: read, write: write, queue: queue}
	s.Store = store.New(s.eng,
		store.Options{Commit: commit, Status: groupcommit.Options{Flushers: 1, Fatal: fatal}})
	go s.runCheckpointer(checkpointer, o.checkpointEvery, s.stopCheckpoints, s.checkpointerDone)
	return s, nil
}

// openDB opens a pool whose connections cache their prepared statements
// and report storage faults to f. With mustExist, a connection fails
// rather than create a missing file.
func openDB(path string, readOnly, mustExist bool, f *fault) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	name := dsn(path, readOnly)
	if mustExist {
		name += "&mode=rw"
	}
	return sql.OpenDB(&cachingConnector{driver: drv, dsn: name, fault: f}), nil
}

// checkExists refuses a path that is not a file, naming it.
func checkExists(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: %w", ErrNoStore, path, fs.ErrNotExist)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrNoStore, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a file", ErrNoStore, path)
	}
	return nil
}

// checkMigrated refuses a database Switchboard's migrations never ran on:
// without their version table it is someone else's, or empty.
func checkMigrated(ctx context.Context, db *sql.DB, path string) error {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('goose_db_version', 'events')`).Scan(&n)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if n < 2 {
		return fmt.Errorf("%w: %s has no switchboard tables (never migrated)", ErrNoStore, path)
	}
	return nil
}

// dsn builds a modernc.org/sqlite data source name. Every connection gets
// the pragmas, so a reconnect cannot silently lose synchronous=FULL.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "wal_autocheckpoint(0)") // see runCheckpointer
	q.Add("_pragma", "cache_size(-32768)")    // 32 MiB of pages per connection
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return jobs.Migrate(ctx, riversqlite.New(db), logger)
}

// Ping checks that the database answers. It fails at once, with
// ErrStoreFailed, once the store has failed.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.fault.Err(); err != nil {
		return err
	}
	return s.read.PingContext(ctx)
}

// Failed is closed when the store meets a storage fault: an I/O error from
// any statement, commit or checkpoint, or a damaged database. From then on
// every operation fails with Err's error, nothing more is written and the
// database stays open until the process exits; the process should stop
// and be restarted, which recovers what was committed from the files.
func (s *Store) Failed() <-chan struct{} { return s.fault.failed }

// Err returns the fault that failed the store, wrapping ErrStoreFailed,
// or nil while it has none.
func (s *Store) Err() error { return s.fault.Err() }

// StartDelivery starts delivering with d: a dispatcher working the due
// events straight from the events table (see package dispatch), and,
// when cfg has a Sender, River workers for the send jobs. Only one
// process at a time delivers from a SQLite database; another gets
// ErrDeliveryLocked.
func (s *Store) StartDelivery(ctx context.Context, d switchboard.Deliverer, cfg switchboard.DeliveryConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.release != nil {
		return errors.New("delivery already started")
	}
	release, err := s.claimDelivery(ctx)
	if err != nil {
		return err
	}
	if cfg.Sender != nil {
		if err := s.queue.Start(ctx, nil, nil, cfg); err != nil {
			release()
			return err
		}
	}
	s.dispatcher = dispatch.New(dueEvents{s.read}, d, dispatch.Options{
		// The poll finds only what other processes scheduled (a replay
		// from the CLI): this process's own work is handed over at once.
		// So it runs seldom, and an idle server stays idle.
		Workers: cfg.Workers, PollInterval: max(cfg.PollInterval, foreignWorkPoll), Timeout: cfg.JobTimeout, Logger: s.logger,
		Halt: s.fault.failed,
	})
	s.eng.dispatcher.Store(s.dispatcher)
	s.dispatcher.Start()
	s.release = release
	return nil
}

// StopDelivery stops the deliveries and send workers and drops the
// delivery lock.
func (s *Store) StopDelivery(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.dispatcher != nil {
		s.eng.dispatcher.Store(nil)
		errs = append(errs, s.dispatcher.Stop(ctx))
		s.dispatcher = nil
	}
	errs = append(errs, s.queue.Stop(ctx))
	if s.release != nil {
		s.release()
		s.release = nil
	}
	return errors.Join(errs...)
}

// Close flushes queued writes and closes the pools. Call StopDelivery
// first. On a failed store it closes no connection (see Failed) and
// returns the failure.
func (s *Store) Close() error {
	s.Store.Close()
	s.mu.Lock()
	if s.stopCheckpoints != nil {
		close(s.stopCheckpoints)
		s.stopCheckpoints = nil
		s.mu.Unlock()
		<-s.checkpointerDone
	} else {
		s.mu.Unlock()
	}
	if err := s.fault.Err(); err != nil {
		return err
	}
	return errors.Join(s.write.Close(), s.read.Close(), s.checkpointer.Close())
}
