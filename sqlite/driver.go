package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/dispatch"
	"github.com/switchboard-dev/switchboard/jobs"
	"github.com/switchboard-dev/switchboard/store"
)

// engine is the SQLite store.Driver: reads on the read-only pool, write
// transactions on the single write connection. SQLite has one writer, so
// nothing changes between a transaction's reads and its writes, and
// store.Lock needs no clause.
type engine struct {
	read, write *sql.DB
	queue       *jobs.Queue[*sql.Tx]
	// dispatcher, while this process delivers, is handed the deliveries
	// each commit makes due (see package dispatch). Without one they
	// wait in the events table for the process that delivers.
	dispatcher atomic.Pointer[dispatch.Dispatcher]
}

func (d *engine) Read() store.Reader { return &conn{q: d.read} }

func (d *engine) InTx(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	c := &conn{q: tx, tx: tx, queue: d.queue}
	if err := fn(c); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if dp := d.dispatcher.Load(); dp != nil {
		dp.Notify(c.scheduled)
	}
	return nil
}

// querier is what a pool and a transaction share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the primitives on a pool, or in a transaction (tx set). Every
// statement goes through the connections' statement cache (stmtcache.go),
// so running one per row costs no parsing.
type conn struct {
	q     querier
	tx    *sql.Tx
	queue *jobs.Queue[*sql.Tx]
	// scheduled gathers the deliveries a transaction makes due, handed
	// to the dispatcher once it commits. The event rows are the jobs:
	// nothing else is written for them.
	scheduled []jobs.Scheduled
}

// dialect spells store queries for SQLite: times are microseconds since
// the epoch, and a list goes in as one JSON array, so that a statement's
// text, and its cached statement, is the same whatever the list's length.
var dialect = store.Dialect{
	Param: func(int) string { return "?" },
	Value: func(v any) any {
		if t, ok := v.(time.Time); ok {
			return micros(t)
		}
		return v
	},
	In: func(column, param string, values []string) (string, any) {
		list, _ := json.Marshal(values) // strings always encode
		return column + " IN (SELECT value FROM json_each(" + param + "))", string(list)
	},
	// Without statistics, SQLite takes an equality on any index for more
	// selective than a time range: a listing of a common route over an
	// hour would read and sort every row of the route.
	Indexed: func(index string) string { return " INDEXED BY " + index },
}

type rowScanner interface{ Scan(dest ...any) error }

// collect runs a query and scans each of its rows.
func collect[T any](ctx context.Context, q querier, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, rows.Err()
}

func (c *conn) Exists(ctx context.Context, table string, q store.Query) (bool, error) {
	query, args := dialect.Select(`SELECT 1 FROM `+table, store.Query{Where: q.Where, Limit: 1, Lock: q.Lock})
	var found bool
	return found, c.q.QueryRowContext(ctx, `SELECT EXISTS (`+query+`)`, args...).Scan(&found)
}

func (c *conn) Counts(ctx context.Context, table, column string, where []store.Cond) (map[string]int64, error) {
	clause, args := dialect.Where(where)
	type count struct {
		key string
		n   int64
	}
	counts, err := collect(ctx, c.q, `SELECT `+column+`, count(*) FROM `+table+clause+` GROUP BY `+column, args,
		func(r rowScanner) (count, error) {
			var n count
			return n, r.Scan(&n.key, &n.n)
		})
	out := make(map[string]int64, len(counts))
	for _, n := range counts {
		out[n.key] = n.n
	}
	return out, err
}

func (c *conn) Count(ctx context.Context, table string, where []store.Cond) (int64, error) {
	clause, args := dialect.Where(where)
	var n int64
	return n, c.q.QueryRowContext(ctx, `SELECT count(*) FROM `+table+clause, args...).Scan(&n)
}

func (c *conn) CountUpTo(ctx context.Context, table string, where []store.Cond, most int) (int64, error) {
	clause, args := dialect.Where(where)
	var n int64
	return n, c.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+table+clause+` LIMIT ?)`,
		append(args, most)...).Scan(&n)
}

func (c *conn) InsertJobs(_ context.Context, js []jobs.Scheduled) error {
	c.scheduled = append(c.scheduled, js...)
	return nil
}

func (c *conn) InsertSendJob(ctx context.Context, args jobs.SendArgs, at time.Time) error {
	return c.queue.InsertSendTx(ctx, c.tx, args, at)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nonNil keeps NOT NULL blob columns from receiving NULL for empty bodies.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func encodeHeader(h http.Header) (string, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode headers: %w", err)
	}
	return string(b), nil
}

func decodeHeader(s string) (http.Header, error) {
	var h http.Header
	if s == "" || s == "null" {
		return http.Header{}, nil
	}
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	return h, nil
}

func nullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func nullMicrosOf(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}
