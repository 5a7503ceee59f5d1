package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/storetest"
)

// Migration 0007 widens the state constraint to allow canceled messages: a
// schema at migration 0006 with a message and its history in it, opened,
// keeps both and cancels.
func TestCancelMigrationKeepsMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	m := storetest.MigratedMessage()
	if _, err := db.ExecContext(ctx, `INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, to_number,
        body, media_urls, payload_hash, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '{}', $8, 'queued', $9, $9)`,
		m.ID, m.IdempotencyKey, m.AccountSID, m.Pool, string(m.Purpose), m.To, m.Body, m.PayloadHash, m.CreatedAt); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO message_status (message_id, status, error_code, at, source, applied)
        VALUES ($1, 'queued', 0, $2, 'test', true)`, m.ID, m.CreatedAt); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigratedMessage(t, open(t, url))
	db, err = sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A state outside the domain is still refused.
	if _, err := db.ExecContext(ctx, `UPDATE messages SET state = 'bogus'`); err == nil {
		t.Error("a state outside the domain was stored: the constraint is gone")
	}
}

// Migration 0008 adds what the console finds events by: an event stored
// before it has no numbers and no code, and is still listed; the
// migration goes down and up again.
func TestConsoleMigrationKeepsEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO events (id, request_id, route, account_sid, kind, idempotency_key,
        response_status, response_content_type, response_body, state, created_at, updated_at)
        VALUES ('e1', 'r1', '/sms', 'AC1', 'message', 'k1', 200, '', '', 'dead', now(), now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	storetest.CheckConsoleMigration(t, open(t, url), "e1")
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("migration 0008 down: %v", err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatalf("migration 0008 up again: %v", err)
	}
}
