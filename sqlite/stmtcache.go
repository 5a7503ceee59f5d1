package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// database/sql prepares, runs and finalizes a statement for every query on
// modernc.org/sqlite, and River's SQLite driver runs its job bookkeeping one
// row at a time, so under load a third of the CPU went to parsing the same
// few SQL texts again. Neither database/sql nor the driver keeps prepared
// statements, so this connector does: each connection caches its statements
// by SQL text. The wrapped connection deliberately does not implement
// driver.QueryerContext or driver.ExecerContext, which makes database/sql
// route every query through PrepareContext, and so through the cache.
//
// The same wrapper is where storage faults are caught (see fault): every
// statement, step, commit and rollback of every connection passes the
// store's fault checks, River's included.

// stmtCacheSize bounds the statements one connection keeps; past it the idle
// ones are finalized. Switchboard's and River's queries are a few dozen.
const stmtCacheSize = 256

type cachingConnector struct {
	driver driver.Driver
	dsn    string
	fault  *fault
}

func (c *cachingConnector) Connect(context.Context) (driver.Conn, error) {
	if err := c.fault.before("open", ""); err != nil {
		return nil, err
	}
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, c.fault.after("open", "", err)
	}
	prep, ok1 := conn.(driver.ConnPrepareContext)
	begin, ok2 := conn.(driver.ConnBeginTx)
	if !ok1 || !ok2 {
		conn.Close()
		return nil, errors.New("sqlite driver lacks PrepareContext or BeginTx")
	}
	return &cachingConn{inner: conn, prep: prep, begin: begin, fault: c.fault, stmts: map[string]*cachedStmt{}}, nil
}

func (c *cachingConnector) Driver() driver.Driver { return c.driver }

// cachingConn is used by one goroutine at a time, as database/sql
// guarantees for a driver connection, so it needs no lock.
type cachingConn struct {
	inner driver.Conn
	prep  driver.ConnPrepareContext
	begin driver.ConnBeginTx
	fault *fault
	stmts map[string]*cachedStmt
}

// cachedStmt is a prepared statement kept across uses. busy is set while a
// caller holds it (from Prepare until Close, which for a query is when its
// rows are closed); a second use of the same SQL meanwhile gets a statement
// of its own.
type cachedStmt struct {
	driver.Stmt
	query string
	fault *fault
	busy  bool
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.fault.before("prepare", query); err != nil {
		return nil, err
	}
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			// A statement of its own, finalized by its own Close.
			st, err := c.prep.PrepareContext(ctx, query)
			if err != nil {
				return nil, c.fault.after("prepare", query, err)
			}
			return ownStmt{stmtHandle{&cachedStmt{Stmt: st, query: query, fault: c.fault}}}, nil
		}
		s.busy = true
		return stmtHandle{s}, nil
	}
	st, err := c.prep.PrepareContext(ctx, query)
	if err != nil {
		return nil, c.fault.after("prepare", query, err)
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evictIdle()
	}
	s := &cachedStmt{Stmt: st, query: query, fault: c.fault, busy: true}
	c.stmts[query] = s
	return stmtHandle{s}, nil
}

func (c *cachingConn) evictIdle() {
	for q, s := range c.stmts {
		if !s.busy {
			_ = s.Stmt.Close()
			delete(c.stmts, q)
		}
	}
}

func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.fault.before("begin", ""); err != nil {
		return nil, err
	}
	tx, err := c.begin.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.fault.after("begin", "", err)
	}
	return faultTx{inner: tx, f: c.fault}, nil
}

// Close closes the connection, unless the store has failed: then it stays
// open until the process exits (see fault.keep), and Close reports the
// failure.
func (c *cachingConn) Close() error {
	if err := c.fault.Err(); err != nil {
		c.fault.keep(c.inner)
		return err
	}
	var errs []error
	for q, s := range c.stmts {
		if err := s.Stmt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("finalize cached statement: %w", err))
		}
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.fault.after("close", "", c.inner.Close()))...)
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// stmtHandle is what database/sql holds; closing it returns the statement
// to the cache instead of finalizing it.
type stmtHandle struct{ s *cachedStmt }

func (h stmtHandle) Close() error {
	h.s.busy = false
	return nil
}

func (h stmtHandle) NumInput() int { return h.s.NumInput() }

func (h stmtHandle) Exec(args []driver.Value) (driver.Result, error) {
	if err := h.s.fault.before("exec", h.s.query); err != nil {
		return nil, err
	}
	res, err := h.s.Exec(args) //nolint:staticcheck // required by driver.Stmt
	if err != nil {
		return nil, h.s.fault.after("exec", h.s.query, err)
	}
	return res, nil
}

func (h stmtHandle) Query(args []driver.Value) (driver.Rows, error) {
	if err := h.s.fault.before("query", h.s.query); err != nil {
		return nil, err
	}
	rows, err := h.s.Query(args) //nolint:staticcheck // required by driver.Stmt
	return h.s.fault.wrapRows(h.s.query, rows, err)
}

func (h stmtHandle) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := h.s.Stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("sqlite statement lacks ExecContext")
	}
	if err := h.s.fault.before("exec", h.s.query); err != nil {
		return nil, err
	}
	res, err := e.ExecContext(ctx, args)
	if err != nil {
		return nil, h.s.fault.after("exec", h.s.query, err)
	}
	return res, nil
}

func (h stmtHandle) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := h.s.Stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("sqlite statement lacks QueryContext")
	}
	if err := h.s.fault.before("query", h.s.query); err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, args)
	return h.s.fault.wrapRows(h.s.query, rows, err)
}

// ownStmt is a statement prepared while the cached one of its SQL was in
// use: closing it finalizes it.
type ownStmt struct{ stmtHandle }

func (o ownStmt) Close() error { return o.s.Stmt.Close() }
