package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

func TestCheckExisting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fresh := pgtest.URL(t)
	if err := postgres.CheckExisting(ctx, fresh); !errors.Is(err, postgres.ErrNoStore) {
		t.Errorf("CheckExisting of an empty schema: %v; want ErrNoStore", err)
	}
	// Checking changed nothing: the schema is still empty.
	if err := postgres.CheckExisting(ctx, fresh); !errors.Is(err, postgres.ErrNoStore) {
		t.Errorf("CheckExisting again: %v; want ErrNoStore", err)
	}
	open(t, fresh) // migrates
	if err := postgres.CheckExisting(ctx, fresh); err != nil {
		t.Errorf("CheckExisting of a migrated schema: %v", err)
	}
	u, err := url.Parse(pgtest.BaseURL(t))
	if err != nil {
		t.Skip("the test database is not given as a URL")
	}
	q := u.Query()
	q.Set("search_path", "no_such_schema_here")
	u.RawQuery = q.Encode()
	missing := u.String()
	if err := postgres.CheckExisting(ctx, missing); !errors.Is(err, postgres.ErrNoStore) {
		t.Errorf("CheckExisting with a search_path naming no schema: %v; want ErrNoStore", err)
	}
}
