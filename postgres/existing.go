package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoStore reports a database whose current schema holds no Switchboard
// store: its migrations never ran there.
var ErrNoStore = errors.New("no switchboard store")

// CheckExisting connects to the database at url (as Open takes it) and
// returns an error wrapping ErrNoStore unless its current schema holds
// Switchboard's tables. It changes nothing. Commands that only read a store
// call it before Open, which would otherwise migrate a schema that was
// never meant to hold one: a wrong search_path or database then fails them
// instead of showing an empty store.
func CheckExisting(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	var tables int
	err = conn.QueryRow(ctx, `SELECT coalesce(current_schema(), ''), (SELECT count(*) FROM pg_catalog.pg_tables
		WHERE schemaname = current_schema() AND tablename IN ('goose_db_version', 'events'))`).Scan(&schema, &tables)
	if err != nil {
		return fmt.Errorf("look for switchboard's tables: %w", err)
	}
	switch {
	case schema == "":
		return fmt.Errorf("%w: no schema on the search_path exists", ErrNoStore)
	case tables < 2:
		return fmt.Errorf("%w: schema %q has no switchboard tables (never migrated)", ErrNoStore, schema)
	}
	return nil
}
