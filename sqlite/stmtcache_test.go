package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"
)

func openCachingConn(t *testing.T) *cachingConn {
	t.Helper()
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		t.Fatal(err)
	}
	drv := probe.Driver()
	probe.Close()
	path := filepath.Join(t.TempDir(), "c.db")
	c := &cachingConnector{driver: drv, dsn: dsn(path, false), fault: newFault(path)}
	conn, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.(*cachingConn)
}

func TestConnRoutesQueriesThroughPrepare(t *testing.T) {
	t.Parallel()
	var conn driver.Conn = openCachingConn(t)
	// database/sql only prepares (and so reaches the cache) when the
	// connection cannot run queries directly.
	if _, ok := conn.(driver.QueryerContext); ok {
		t.Error("cachingConn implements QueryerContext: queries would bypass the cache")
	}
	if _, ok := conn.(driver.ExecerContext); ok {
		t.Error("cachingConn implements ExecerContext: statements would bypass the cache")
	}
}

func TestStatementIsReusedOnceReleased(t *testing.T) {
	t.Parallel()
	c := openCachingConn(t)
	ctx := context.Background()
	a, err := c.PrepareContext(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	busy, err := c.PrepareContext(ctx, "SELECT 1") // a still held: a statement of its own
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := busy.(stmtHandle); ok && h.s == a.(stmtHandle).s {
		t.Fatal("a statement in use was handed out twice")
	}
	busy.Close()
	a.Close()
	b, err := c.PrepareContext(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.(stmtHandle).s != a.(stmtHandle).s {
		t.Error("a released statement was prepared again instead of reused")
	}
}

func TestCachedStatementsGiveCorrectResults(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := s.write.ExecContext(ctx, `INSERT INTO t (n) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	// The same query run again while its first rows are still open, inside
	// one transaction (one connection): the second run gets a statement of
	// its own, and neither disturbs the other.
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT n FROM t WHERE n < ? ORDER BY n`
	rows, err := tx.QueryContext(ctx, q, 3)
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, n)
		var m int
		if err := tx.QueryRowContext(ctx, q, 2).Scan(&m); err != nil {
			t.Fatal(err)
		}
		inner = append(inner, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if fmt.Sprint(outer) != "[0 1 2]" || fmt.Sprint(inner) != "[0 0 0]" {
		t.Errorf("outer rows = %v, inner = %v", outer, inner)
	}
	tx.Rollback()
	var sum int
	for i := range 50 {
		var n int
		if err := s.write.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE n >= ?`, i).Scan(&n); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	if sum != 100*50-49*50/2 {
		t.Errorf("sum of counts = %d, want %d", sum, 100*50-49*50/2)
	}
}

func TestCacheEvictsIdleStatementsWhenFull(t *testing.T) {
	t.Parallel()
	c := openCachingConn(t)
	ctx := context.Background()
	held, err := c.PrepareContext(ctx, "SELECT 0")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= stmtCacheSize+10; i++ {
		st, err := c.PrepareContext(ctx, fmt.Sprintf("SELECT %d", i))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	if len(c.stmts) > stmtCacheSize {
		t.Errorf("cache holds %d statements, more than %d", len(c.stmts), stmtCacheSize)
	}
	if _, ok := c.stmts["SELECT 0"]; !ok {
		t.Error("a statement in use was evicted")
	}
	held.Close()
}
