package cli

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/server"
)

func (c *CLI) serveCmd() *cobra.Command {
	var (
		grace      time.Duration
		delay      time.Duration
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive webhooks and deliver them to the app",
		Long: `Serve applies migrations, then receives Twilio webhooks on the configured
routes, stores each one durably before answering, and delivers it to the
route's target. SIGINT or SIGTERM stops it gracefully: after --shutdown-delay
(with /readyz answering 503 meanwhile), it stops accepting connections and
taking jobs, lets what is in flight finish within --grace, and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			logger := c.logger(cfg)
			// The admin API is reachable where it listens: its own
			// address when admin.listen is set.
			adminAddr := cfg.Listen
			if cfg.Admin.Listen != "" {
				adminAddr = cfg.Admin.Listen
			}
			warning, err := checkAdminToken(adminAddr, cfg.Admin.Token)
			if err != nil {
				return err
			}
			if warning != "" {
				logger.Warn(warning)
			}
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
			return srv.Run(cmd.Context(), server.Stopping{Delay: delay, Grace: grace})
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 20*time.Second, "how long shutdown waits for in-flight work")
	cmd.Flags().DurationVar(&delay, "shutdown-delay", 0,
		"on SIGTERM, keep serving this long with /readyz answering 503 before shutting down, for a load balancer to stop sending")
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

// checkAdminToken refuses an admin token that anyone could guess, empty
// or the example's, on a listener reachable beyond this machine, and
// warns about the example's on loopback. It fails closed: a listen host
// that is neither a loopback address nor "localhost" (a name, 0.0.0.0, an
// empty host) counts as reachable.
//
// An empty token disables the admin API rather than opening it, but a
// server exposed that way has no admin API its operator can use, which is
// never what a first run means to do; the example's is a published secret.
func checkAdminToken(listen, token string) (warning string, err error) {
	example := token == config.ExampleAdminToken
	if isLoopback(listen) {
		if example {
			return fmt.Sprintf("admin.token is the example's (switchboard.example.toml): fine on loopback (%s), but set a secret of your own before listening anywhere else", listen), nil
		}
		return "", nil
	}
	if token != "" && !example {
		return "", nil
	}
	why := "is empty, which leaves no usable admin API"
	if example {
		why = "is the example's (switchboard.example.toml), which anyone can read"
	}
	return "", fmt.Errorf("refusing to serve: listen %q is reachable beyond this machine and admin.token %s. "+
		"Set admin.token (or SWITCHBOARD_ADMIN_TOKEN) to a secret of your own, e.g. `openssl rand -hex 32`, "+
		"or listen on loopback (listen = \"127.0.0.1:8080\")", listen, why)
}

// isLoopback reports whether a listen address accepts connections from
// this machine only: a host in 127.0.0.0/8, ::1 or "localhost".
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
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
