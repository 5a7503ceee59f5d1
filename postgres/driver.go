package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/store"
)

// engine is the PostgreSQL store.Driver. Several statements of one
// primitive go in one pipelined round trip (pgx.Batch).
type engine struct {
	pool  *pgxpool.Pool
	queue *jobs.Queue[pgx.Tx]
}

func (d *engine) Read() store.Reader { return &conn{q: d.pool} }

func (d *engine) InTx(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&conn{q: tx, tx: tx, queue: d.queue}); err != nil {
		// A failed rollback closes the connection, which rolls back too.
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// conn runs the primitives on the pool, or in a transaction (tx set).
type conn struct {
	q     querier
	tx    pgx.Tx
	queue *jobs.Queue[pgx.Tx]
	// indexOnly is set once the transaction has turned sequential scans
	// off (see useIndexes).
	indexOnly bool
}

// dialect spells store queries for PostgreSQL: numbered parameters, lists
// as arrays, and row locks.
var dialect = store.Dialect{
	Param: func(n int) string { return "$" + strconv.Itoa(n) },
	In: func(column, param string, values []string) (string, any) {
		return column + " = ANY(" + param + ")", values
	},
	Lock: func(l store.Lock) string {
		if l == store.KeyShare {
			return " FOR KEY SHARE"
		}
		return " FOR UPDATE"
	},
}

type rowScanner interface{ Scan(dest ...any) error }

// collect runs a query and scans each of its rows.
func collect[T any](ctx context.Context, q querier, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// sendBatch runs b's statements in one round trip and reports the first
// failure, naming the statement's item with what.
func sendBatch(ctx context.Context, q querier, b *pgx.Batch, what func(i int) string) error {
	if b.Len() == 0 {
		return nil
	}
	br := q.SendBatch(ctx, b)
	for i := range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", what(i), err)
		}
	}
	return br.Close()
}

func (c *conn) Exists(ctx context.Context, table string, q store.Query) (bool, error) {
	query, args := dialect.Select(`SELECT 1 FROM `+table, store.Query{Where: q.Where, Limit: 1, Lock: q.Lock})
	var found bool
	return found, c.q.QueryRow(ctx, `SELECT EXISTS (`+query+`)`, args...).Scan(&found)
}

func (c *conn) Counts(ctx context.Context, table, column string, where []store.Cond) (map[string]int64, error) {
	clause, args := dialect.Where(where)
	rows, err := c.q.Query(ctx, `SELECT `+column+`, count(*) FROM `+table+clause+` GROUP BY `+column, args...)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var (
		key string
		n   int64
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &n}, func() error {
		out[key] = n
		return nil
	})
	return out, err
}

func (c *conn) Count(ctx context.Context, table string, where []store.Cond) (int64, error) {
	clause, args := dialect.Where(where)
	var n int64
	return n, c.q.QueryRow(ctx, `SELECT count(*) FROM `+table+clause, args...).Scan(&n)
}

func (c *conn) CountUpTo(ctx context.Context, table string, where []store.Cond, most int) (int64, error) {
	clause, args := dialect.Where(where)
	args = append(args, most)
	var n int64
	return n, c.q.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+table+clause+` LIMIT `+dialect.Param(len(args))+`) AS t`,
		args...).Scan(&n)
}

func (c *conn) InsertJobs(ctx context.Context, js []jobs.Scheduled) error {
	return c.queue.InsertTx(ctx, c.tx, js)
}

func (c *conn) InsertSendJob(ctx context.Context, args jobs.SendArgs, at time.Time) error {
	return c.queue.InsertSendTx(ctx, c.tx, args, at)
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nonNil keeps NOT NULL bytea columns from receiving NULL for empty bodies:
// pgx sends a nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// encodeHeader returns h as JSON text for a jsonb column (pgx passes a
// string through as JSON as is); a nil header is stored as {}.
func encodeHeader(h http.Header) (string, error) {
	if h == nil {
		return "{}", nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode headers: %w", err)
	}
	return string(b), nil
}

func decodeHeader(b []byte) (http.Header, error) {
	h := http.Header{}
	if len(b) == 0 || string(b) == "null" {
		return h, nil
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	return h, nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
