package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
)

const pageSize = 4096

// filledStore creates a database at path with enough requests to span a
// few hundred pages, closed, so that the database file holds them all.
func filledStore(t *testing.T, path string) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		var items []*switchboard.Ingest
		for j := range 50 {
			it := storetest.NewItem("/sms", fmt.Sprintf("k%d-%d", i, j), time.Now())
			it.Request.Body = bytes.Repeat([]byte("Body=hello+"), 100)
			items = append(items, it)
		}
		if err := s.Ingest(context.Background(), items); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// garbage overwrites page (counted from 0) of the file at path with
// random bytes.
func garbage(t *testing.T, path string, page int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, pageSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(b, page*pageSize); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedStoreIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, pages int64)
		check  sqlite.IntegrityCheck
	}{
		{"page in the middle overwritten", func(t *testing.T, path string, pages int64) { garbage(t, path, pages/2) }, sqlite.CheckQuick},
		{"page in the middle overwritten, full check", func(t *testing.T, path string, pages int64) { garbage(t, path, pages/2) }, sqlite.CheckFull},
		{"truncated to half", func(t *testing.T, path string, pages int64) {
			if err := os.Truncate(path, pages/2*pageSize); err != nil {
				t.Fatal(err)
			}
		}, sqlite.CheckQuick},
		{"header overwritten", func(t *testing.T, path string, _ int64) { garbage(t, path, 0) }, sqlite.CheckQuick},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "switchboard.db")
			filledStore(t, path)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			pages := info.Size() / pageSize
			if pages < 100 {
				t.Fatalf("database of %d pages: too small to damage in the middle", pages)
			}
			tc.damage(t, path, pages)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			s, err := sqlite.Open(context.Background(), path, nil, sqlite.WithIntegrityCheck(tc.check))
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged database succeeded")
			}
			if !errors.Is(err, sqlite.ErrDamaged) {
				t.Fatalf("Open: %v, want ErrDamaged", err)
			}
			for _, want := range []string{path, "docs/operations.md", ".dump"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open: %v\nwant the message to name %q", err, want)
				}
			}
			t.Logf("Open: %v", err)
			// The refused file is left as it was found, for the recovery.
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, damaged) {
				t.Errorf("the damaged file changed when it was refused (%v)", err)
			}
		})
	}
}

func TestIntegrityCheckPassesAHealthyStore(t *testing.T) {
	t.Parallel()
	for _, check := range []sqlite.IntegrityCheck{sqlite.CheckQuick, sqlite.CheckFull, sqlite.CheckOff} {
		t.Run(string(check), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "switchboard.db")
			filledStore(t, path)
			s, err := sqlite.Open(context.Background(), path, nil, sqlite.WithIntegrityCheck(check))
			if err != nil {
				t.Fatalf("Open with the %s check: %v", check, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnknownIntegrityCheckIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	if s, err := sqlite.Open(context.Background(), path, nil, sqlite.WithIntegrityCheck("sometimes")); err == nil {
		s.Close()
		t.Fatal("Open with an unknown check succeeded")
	}
}
