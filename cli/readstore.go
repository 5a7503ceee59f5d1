package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/web"
)

// readStore is what the commands that work on a store (events, replay,
// messages) use of it: the store's use cases, and the dry run of a replay.
type readStore interface {
	switchboard.Store
	PreviewReplay(ctx context.Context, f switchboard.ReplayFilter, sample int) (store.ReplayPreview, error)
}

var (
	_ readStore = (*sqlite.Store)(nil)
	_ readStore = (*postgres.Store)(nil)
)

// openStore opens the configured store for events, replay and messages,
// and returns the renderer the admin API would use. Unlike serve and
// migrate it never creates a store: a missing SQLite file, or a database
// never migrated, is an error naming where it looked, since an empty store
// made for the occasion would only hide a wrong --config.
//
// It skips the SQLite integrity check, which reads the whole file (seconds
// to a minute on a large store): these commands acknowledge nothing, and
// damage they touch still fails them (see sqlite.ErrStoreFailed). serve
// and migrate run it.
func (c *CLI) openStore(cmd *cobra.Command) (readStore, web.Renderer, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, web.Renderer{}, err
	}
	rd := web.Renderer{Redact: cfg.Admin.Redact}
	s, err := c.openExisting(cmd.Context(), cfg)
	return s, rd, err
}

func (c *CLI) openExisting(ctx context.Context, cfg *config.Config) (readStore, error) {
	logger := c.logger(cfg)
	if cfg.Storage.IsPostgres() {
		// The URL may carry a password: the errors name the schema, not it.
		if err := postgres.CheckExisting(ctx, cfg.Storage.URL); err != nil {
			return nil, fmt.Errorf("open postgres store: %w%s", err, c.storeHint(err, postgres.ErrNoStore))
		}
		s, err := postgres.Open(ctx, cfg.Storage.URL, logger)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return s, nil
	}
	path := cfg.Storage.URL
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	s, err := sqlite.Open(ctx, path, logger, sqlite.WithExisting(), sqlite.WithIntegrityCheck(sqlite.CheckOff))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w%s", err, c.storeHint(err, sqlite.ErrNoStore))
	}
	return s, nil
}

// storeHint says, after an error wrapping noStore, where the store comes
// from and how to name another.
func (c *CLI) storeHint(err, noStore error) string {
	if !errors.Is(err, noStore) {
		return ""
	}
	if c.configPath == "" {
		return " (no --config given, so this is the default storage; pass --config FILE or set SWITCHBOARD_CONFIG to read yours)"
	}
	return fmt.Sprintf(" (storage.url of %s; switchboard serve or migrate creates the store, or pass --config FILE to read another)", c.configPath)
}
