package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/sim"
)

func (c *CLI) simServeCmd() *cobra.Command {
	var (
		listen string
		seed   int64
	)
	cmd := &cobra.Command{
		Use:   "serve [--config SIM-CONFIG.toml]",
		Short: "Serve a simulated Twilio: REST API, carriers, webhooks and a debugger log",
		Long: `Serve runs the Twilio simulator on a local address until SIGINT or SIGTERM.

Without a configuration file it has one account, whose SID and auth token it
prints, owning a long code, a toll-free number and a short code. With one
(see sim.example.toml and docs/simulator.md) it has the accounts, numbers,
webhooks, carrier outcomes and callback knobs the file describes. The file
is given with --config or as the one argument (not both, unless they name
the same file); $SWITCHBOARD_CONFIG, which names Switchboard's own
configuration, is not read.

Point a Twilio client at it by sending api.twilio.com and monitor.twilio.com
requests to the printed URL.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := c.simConfigPath(cmd, args)
			if err != nil {
				return err
			}
			cfg := sim.DemoConfig(seed)
			if path != "" {
				if cfg, err = sim.LoadConfig(path); err != nil {
					return err
				}
				if cmd.Flags().Changed("seed") || cfg.Seed == 0 {
					cfg.Seed = seed
				}
			}
			s, err := sim.New(cfg, c.simLogger())
			if err != nil {
				return err
			}
			defer s.Close()
			srv, err := s.Serve(cmd.Context(), listen)
			if err != nil {
				return err
			}
			cfg = s.Config() // with the defaults, such as each number's type
			from := "the demo configuration"
			if path != "" {
				from = path
			}
			fmt.Fprintf(c.Stdout, "sim listening on %s (seed %d, from %s)\n", srv.URL, cfg.Seed, from)
			for _, a := range cfg.Accounts {
				fmt.Fprintf(c.Stdout, "account %s auth token %s\n", a.SID, a.AuthTokens[0])
				for _, n := range a.Numbers {
					fmt.Fprintf(c.Stdout, "  number %s (%s)\n", n.Number, n.Type)
				}
				for _, sv := range a.Services {
					fmt.Fprintf(c.Stdout, "  messaging service %s %v\n", sv.SID, sv.Numbers)
				}
			}
			<-cmd.Context().Done()
			return srv.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:3901", "address to serve on")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed for SIDs, outcomes and latencies (overrides the file's)")
	return cmd
}

// simConfigPath is the simulator's configuration file: the argument or
// --config, given on the command line. Only a --config flag given there
// counts: its default, $SWITCHBOARD_CONFIG, names Switchboard's own
// configuration, which is no simulator's. Two different files are refused
// rather than one of them silently ignored.
func (c *CLI) simConfigPath(cmd *cobra.Command, args []string) (string, error) {
	var arg string
	if len(args) == 1 {
		arg = args[0]
	}
	if !cmd.Flags().Changed("config") {
		return arg, nil
	}
	if arg != "" && !samePath(arg, c.configPath) {
		return "", fmt.Errorf("sim serve: two configuration files, %q (argument) and %q (--config): give one", arg, c.configPath)
	}
	return c.configPath, nil
}

// samePath reports whether two paths name the same file: the same file
// on disk, or, when either cannot be read, the same absolute path.
func samePath(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// simLogger writes the simulator's JSON logs (its debugger alerts) to
// stderr.
func (c *CLI) simLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(c.Stderr, nil))
}
