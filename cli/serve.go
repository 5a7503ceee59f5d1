package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/server"
)

func (c *CLI) serveCmd() *cobra.Command {
	var (
		grace      time.Duration
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive webhooks and deliver them to the app",
		Long: `Serve applies migrations, then receives Twilio webhooks on the configured
routes, stores each one durably before answering, and delivers it to the
route's target. SIGINT or SIGTERM stops it gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			logger := c.logger(cfg)
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			srv, err := server.New(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context(), grace)
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 20*time.Second, "how long shutdown waits for in-flight work")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until shutdown")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}

func (c *CLI) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the store's tables, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			store, err := server.OpenStore(cmd.Context(), cfg.Storage, c.logger(cfg), groupcommit.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			_, err = c.Stdout.Write([]byte("migrations applied\n"))
			return err
		},
	}
}

// startCPUProfile profiles the process until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
