// Package cli is Switchboard's command line: serve, migrate, events,
// replay, doctor, send, sim, version, healthcheck, demo, dev and listen.
// cmd/switchboard runs it; end-to-end tests can run it in-process.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/config"
)

// CLI runs Switchboard's commands with the given output and environment.
type CLI struct {
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string // SWITCHBOARD_* overrides and SWITCHBOARD_CONFIG

	configPath string
}

// Main runs the command line as a process does and returns the exit code.
func Main(ctx context.Context, args []string) int {
	c := &CLI{Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}
	if err := c.Run(ctx, args); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		return 1
	}
	return 0
}

// Run executes one command line (without the program name).
func (c *CLI) Run(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "A reliability gateway between Twilio and your app",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(c.Stdout)
	root.SetErr(c.Stderr)
	root.SetArgs(args)
	root.PersistentFlags().StringVarP(&c.configPath, "config", "c", c.getenv("SWITCHBOARD_CONFIG"),
		"TOML configuration file (default $SWITCHBOARD_CONFIG)")
	root.AddCommand(c.serveCmd(), c.migrateCmd(), c.eventsCmd(), c.replayCmd(), c.messagesCmd(), c.doctorCmd(), c.sendCmd(), c.simCmd(), c.versionCmd(), c.healthcheckCmd(), c.demoCmd(), c.listenCmd(), c.devCmd())
	return root.ExecuteContext(ctx)
}

func (c *CLI) getenv(name string) string {
	for _, kv := range c.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func (c *CLI) loadConfig() (*config.Config, error) {
	return config.Load(c.configPath, c.Environ)
}

// logger writes JSON logs to stderr at the configured level.
func (c *CLI) logger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(c.Stderr, &slog.HandlerOptions{Level: level}))
}
