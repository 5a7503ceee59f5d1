package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/switchboard-dev/switchboard/storetest"
)

// Migration 0007 rebuilds the messages table to allow canceled messages: a
// database at migration 0006 with a message and its history in it, opened,
// keeps both, still refers the history to its message, and cancels.
func TestCancelMigrationKeepsMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	m := storetest.MigratedMessage()
	at := m.CreatedAt.UnixMicro()
	if _, err := db.ExecContext(ctx, `INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, to_number,
        body, media_urls, payload_hash, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?, 'queued', ?, ?)`,
		m.ID, m.IdempotencyKey, m.AccountSID, m.Pool, string(m.Purpose), m.To, m.Body, m.PayloadHash, at, at); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO message_status (message_id, status, error_code, at, source, applied)
        VALUES (?, 'queued', 0, ?, 'test', 1)`, m.ID, at); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigratedMessage(t, openAt(t, path))

	// The history still refers to the rebuilt table: a row naming no
	// message is refused, and no row is left dangling.
	db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO message_status (message_id, status, error_code, at, source, applied)
        VALUES ('no-such-message', 'queued', 0, 0, 'test', 1)`); err == nil {
		t.Error("history of an unknown message accepted: the foreign key is gone")
	}
	rows, err := db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Error("PRAGMA foreign_key_check found violations after the migration")
	}
}

// Migration 0008 adds what the console finds events by: an event stored
// before it has no numbers and no code, and is still listed; the
// migration goes down and up again.
func TestConsoleMigrationKeepsEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO events (id, request_id, route, account_sid, kind, idempotency_key,
        response_status, response_content_type, response_body, state, created_at, updated_at)
        VALUES ('e1', 'r1', '/sms', 'AC1', 'message', 'k1', 200, '', X'', 'dead', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	storetest.CheckConsoleMigration(t, openAt(t, path), "e1")
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("migration 0008 down: %v", err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatalf("migration 0008 up again: %v", err)
	}
}
