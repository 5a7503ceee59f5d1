package sqlite

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	sqlite3 "modernc.org/sqlite/lib"
)

// ErrStoreFailed is returned by every operation of a Store that has met a
// storage fault: an I/O error, or a database image found damaged. Wrapped
// with it is the fault itself. The store stays failed until the process
// restarts (see Store.Failed).
var ErrStoreFailed = errors.New("sqlite store failed")

// Once a write or fsync has failed, nothing the database file or its
// write-ahead log holds can be trusted to be on disk: Linux reports a
// writeback error to fsync once and then marks the pages clean, so a retried
// commit or a later checkpoint can report success for data the device never
// took. A checkpoint that then copies the log into the database and resets
// the log, or the checkpoint SQLite runs when its last connection closes,
// can turn a transaction already acknowledged into a lost one. So the first
// such error fails the store closed: every statement on every connection
// (the writer, River's work on it, the readers and the checkpointer) is
// refused from then on, and connections are never closed, so that the
// files stay as the failure left them for the next process to recover.
//
// A plain ENOSPC on write (SQLITE_FULL) is not a fault: SQLite rolls the
// transaction back having fsynced nothing, and the next one may succeed
// once space is freed. SQLite reports any failed fsync as
// SQLITE_IOERR_FSYNC, whatever its errno, ENOSPC included.

// fatal reports whether err, from the SQLite driver, is a storage fault:
// SQLITE_IOERR with any of its extended codes, SQLITE_CORRUPT or
// SQLITE_NOTADB. ErrStoreFailed is one too.
func fatal(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrStoreFailed) {
		return true
	}
	// The driver's *sqlite.Error carries the extended result code;
	// extended codes keep the primary one in their low byte.
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.Code() & 0xff {
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// fault is the failed state one Store's connections share.
type fault struct {
	path   string
	failed chan struct{} // closed once err is set
	once   sync.Once
	err    error

	// inject, when set (by tests), runs before each driver operation; an
	// error it returns stands for the operation's own.
	inject func(op, query string) error

	mu     sync.Mutex
	leaked []driver.Conn // connections kept open for good
}

func newFault(path string) *fault {
	return &fault{path: path, failed: make(chan struct{})}
}

// Err returns the failure, nil while there is none.
func (f *fault) Err() error {
	select {
	case <-f.failed:
		return f.err
	default:
		return nil
	}
}

// trip fails the store with cause, met during op (running query, if
// any); the first cause wins.
func (f *fault) trip(op, query string, cause error) {
	f.once.Do(func() {
		if query != "" {
			const limit = 60
			if len(query) > limit {
				query = query[:limit] + "..."
			}
			op += " " + strconv.Quote(strings.Join(strings.Fields(query), " "))
		}
		if errors.Is(cause, ErrStoreFailed) {
			f.err = cause
		} else {
			f.err = fmt.Errorf("%w: %s: %s: %w", ErrStoreFailed, f.path, op, cause)
		}
		close(f.failed)
	})
}

// before refuses op once the store has failed (fail closed), and otherwise
// runs the test hook.
func (f *fault) before(op, query string) error {
	if err := f.Err(); err != nil {
		return err
	}
	if f.inject != nil {
		if err := f.inject(op, query); err != nil {
			return f.after(op, query, err)
		}
	}
	return nil
}

// after inspects the result of op (running query, if any): a storage
// fault fails the store and comes back wrapped in ErrStoreFailed; any
// other error is returned as is.
func (f *fault) after(op, query string, err error) error {
	if !fatal(err) {
		return err
	}
	f.trip(op, query, err)
	return f.err
}

// keep holds c open until the process exits: closing the last connection
// to a database checkpoints it and deletes its write-ahead log, which after
// a fault may lose what was acknowledged.
func (f *fault) keep(c driver.Conn) {
	f.mu.Lock()
	f.leaked = append(f.leaked, c)
	f.mu.Unlock()
}

// faultTx checks a transaction's end.
type faultTx struct {
	inner driver.Tx
	f     *fault
}

func (t faultTx) Commit() error {
	if err := t.f.before("commit", ""); err != nil {
		return err
	}
	return t.f.after("commit", "", t.inner.Commit())
}

func (t faultTx) Rollback() error {
	if err := t.f.before("rollback", ""); err != nil {
		return err
	}
	return t.f.after("rollback", "", t.inner.Rollback())
}

// faultRows checks every step of a query: a statement's writes and its
// reads of the database happen while its rows are stepped.
type faultRows struct {
	driver.Rows
	f     *fault
	query string
}

func (r faultRows) Next(dest []driver.Value) error {
	if err := r.f.before("step", r.query); err != nil {
		return err
	}
	return r.f.after("step", r.query, r.Rows.Next(dest))
}

func (r faultRows) Close() error { return r.f.after("reset", r.query, r.Rows.Close()) }

// The column type methods pass through to the driver's rows, which
// implement them all; database/sql falls back to its defaults otherwise.

func (r faultRows) ColumnTypeDatabaseTypeName(i int) string {
	if c, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return c.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r faultRows) ColumnTypeScanType(i int) reflect.Type {
	if c, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return c.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r faultRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return c.ColumnTypeNullable(i)
	}
	return false, false
}

func (r faultRows) ColumnTypeLength(i int) (int64, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return c.ColumnTypeLength(i)
	}
	return 0, false
}

func (r faultRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return c.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// wrapRows checks the steps of rows, the result of query, or passes err on.
func (f *fault) wrapRows(query string, rows driver.Rows, err error) (driver.Rows, error) {
	if err != nil {
		return nil, f.after("query", query, err)
	}
	return faultRows{Rows: rows, f: f, query: query}, nil
}
