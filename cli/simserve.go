package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/sim"
)

func (c *CLI) simServeCmd() *cobra.Command {
	var (
		listen string
		seed   int64
	)
	cmd := &cobra.Command{
		Use:   "serve [SIM-CONFIG.toml]",
		Short: "Serve a simulated Twilio: REST API, carriers, webhooks and a debugger log",
		Long: `Serve runs the Twilio simulator on a local address until SIGINT or SIGTERM.

Without a configuration file it has one account, whose SID and auth token it
prints, owning a long code, a toll-free number and a short code. With one
(see sim.example.toml and docs/simulator.md) it has the accounts, numbers,
webhooks, carrier outcomes and callback knobs the file describes.

Point a Twilio client at it by sending api.twilio.com and monitor.twilio.com
requests to the printed URL.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := sim.DemoConfig(seed)
			if len(args) == 1 {
				var err error
				if cfg, err = sim.LoadConfig(args[0]); err != nil {
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
			fmt.Fprintf(c.Stdout, "sim listening on %s (seed %d)\n", srv.URL, cfg.Seed)
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

// simLogger writes the simulator's JSON logs (its debugger alerts) to
// stderr.
func (c *CLI) simLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(c.Stderr, nil))
}
