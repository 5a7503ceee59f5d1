package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
)

func openAt(t *testing.T, path string) switchboard.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Opened {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		return storetest.Opened{
			Store:   openAt(t, path),
			Replica: func(t *testing.T) switchboard.Store { return openAt(t, path) },
		}
	})
}
