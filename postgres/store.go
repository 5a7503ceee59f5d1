// Package postgres implements switchboard.Store on PostgreSQL (pgx v5), for
// deployments that run several Switchboard replicas on one database. The
// use cases are store.Store's; this package is its driver: SQL, scanning,
// row locks and pipelined round trips.
//
// Durability: a write returns only after its transaction has committed, so
// it is as durable as the server's synchronous_commit setting makes a
// commit. Replicas share everything through the database: the unique
// idempotency key makes a retried webhook a duplicate whichever replica
// receives it, and River hands each delivery job to one worker at a time.
//
// Every table, River's included, is created in the connection's current
// schema (the first existing schema on its search_path), so one database
// can hold several independent installations.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL switchboard.Store. It is safe for concurrent use,
// and any number of Stores, in any number of processes, may share one
// database and schema.
type Store struct {
	pool  *pgxpool.Pool
	queue *jobs.Queue[pgx.Tx]
	// Store provides the use cases, over this package's driver.
	*store.Store
	logger *slog.Logger
}

// Option adjusts how a Store is opened.
type Option func(*groupcommit.Options)

// WithCommit sets the group committer's limits, flusher count and batch
// observer.
func WithCommit(o groupcommit.Options) Option {
	return func(dst *groupcommit.Options) { *dst = o }
}

var _ switchboard.Store = (*Store)(nil)

// Open connects to the database at url (a PostgreSQL URL or keyword/value
// string, which may carry pgxpool settings such as pool_max_conns and
// runtime parameters such as search_path) and brings its schema, River's
// included, up to date. Replicas may call Open on the same database at
// once: migrations are serialised per schema, and every replica but the
// first finds nothing left to do.
func Open(ctx context.Context, url string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var commit groupcommit.Options
	for _, o := range opts {
		o(&commit)
	}
	if commit.Flushers == 0 {
		commit.Flushers = 4 // PostgreSQL commits several batches at once
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create connection pool: %w", err)
	}
	if err := migrate(ctx, pool, logger); err != nil {
		pool.Close()
		return nil, err
	}
	queue, err := jobs.New(riverpgxv5.New(pool), logger)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, queue: queue, logger: logger}
	s.Store = store.New(&engine{pool: pool, queue: queue}, store.Options{Commit: commit, Status: statusCommit, AttemptsApart: true})
	return s, nil
}

// migrate applies Switchboard's migrations, then River's, while holding an
// advisory lock keyed on the current schema.
//
// The one lock covers both migrators: goose's own session locker would only
// serialise goose (River's migrator takes no lock at all), and its lock id
// is the same for every schema of the database, so unrelated schemas would
// wait on each other.
func migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	// The lock lives on a connection of its own, outside the pool, so that
	// the migrators can use the pool whatever its size.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	// Ending the session releases the lock, whatever happened before.
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&schema); err != nil {
		return fmt.Errorf("find current schema: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey(schema)); err != nil {
		return fmt.Errorf("take migration lock of schema %q: %w", schema, err)
	}

	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close() // leaves the pool open
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return jobs.Migrate(ctx, riverpgxv5.New(pool), logger)
}

// migrationLockKey is the advisory lock id that serialises migrations of
// one schema. Advisory locks are per database, so the schema is all it
// needs to tell apart.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("switchboard migrations\x00" + schema))
	return int64(h.Sum64())
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// StartDelivery starts River workers that call d. Workers of every Store on
// the same schema share the jobs; each job runs on one worker at a time.
func (s *Store) StartDelivery(ctx context.Context, d switchboard.Deliverer, cfg switchboard.DeliveryConfig) error {
	return s.queue.Start(ctx, d, s.Store, cfg)
}

// StopDelivery stops the River workers, letting running deliveries finish
// until ctx is done.
func (s *Store) StopDelivery(ctx context.Context) error {
	return s.queue.Stop(ctx)
}

// Close flushes queued writes (status updates included) and closes the
// connection pool, waiting for connections in use to be released; call
// StopDelivery first.
func (s *Store) Close() error {
	s.Store.Close()
	s.pool.Close()
	return nil
}

// statusCommit tunes the committer of status updates. A batch holds all
// its messages in one statement, in id order, before changing any (see
// store.Store's flushStatuses), so batches that share messages, from
// concurrent flushes or other replicas, wait for each other instead of
// deadlocking. One flusher nonetheless: it applies one process's updates
// of a message in the order they were submitted (with several, a later
// batch could lock the message first), and lets the batches grow while one
// commits, so that a burst of callbacks costs a few commits. No linger: a
// lone update commits at once.
var statusCommit = groupcommit.Options{Flushers: 1}
