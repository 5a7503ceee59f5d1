// Package pgtest gives tests a PostgreSQL schema of their own, so that tests
// of every package can share one database and run in parallel.
//
// Tests that use it run only when the environment variable named by EnvVar
// holds a PostgreSQL URL, for example
//
//	SWITCHBOARD_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...
//
// and are skipped otherwise.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable holding the test database's URL.
const EnvVar = "SWITCHBOARD_TEST_POSTGRES_URL"

// BaseURL returns the test database's URL as configured, or skips the test
// when EnvVar is unset.
func BaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL to run PostgreSQL tests", EnvVar)
	}
	return u
}

// URL creates an empty schema in the test database and returns a URL whose
// connections use it as their search_path, so that everything created
// through the URL, River's tables included, lands in it. The schema and
// everything in it is dropped when the test and its subtests end; close
// anything connected to it in an earlier-registered cleanup or in the test
// itself. URL skips the test when EnvVar is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	schema := "sbtest_" + randomHex(8)
	withSchema, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvVar, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return withSchema
}

// exec runs one statement on a connection of its own.
func exec(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// withSearchPath sets search_path in a connection string, which may be a URL
// or keyword/value pairs; pgx sends it to the server as a runtime parameter.
func withSearchPath(connString, schema string) (string, error) {
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		return connString + " search_path=" + schema, nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		// Not err itself: it would repeat the URL, password and all.
		return "", errors.New("not a valid URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
