package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/sim"
)

// devOptions are what switchboard dev is asked for.
type devOptions struct {
	app, dir, listen, simListen string
	duration                    time.Duration
}

// defaultSimListen is where sim sms and sim call look for the simulator when
// not told: dev's simulator listens there by default so they need no flag.
const defaultSimListen = "127.0.0.1:3901"

// devFallbackTwiML answers a call when the app cannot: said, so that the
// caller hears why the call ends.
const devFallbackTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Sorry, the app did not answer in time. Please try again later.</Say></Response>`

func (c *CLI) devCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev [--app URL] [--dir DIR] [--listen ADDR] [--sim-listen ADDR]",
		Short: "Run Switchboard and a simulated Twilio in front of your own app, for local work",
		Long: `Dev runs, in one process, what a Twilio app needs around it on a developer's
machine: the gateway (SQLite in --dir, the console on) and a simulated Twilio
whose number sends its webhooks to the gateway, which delivers them to the app
at --app:

  /sms     ack:   stored, answered at once, delivered to APP/sms with retries
  /voice   proxy: APP/voice's TwiML answers the call live; fallback TwiML when
                  the app is slow, down or wrong
  /status  ack:   status callbacks, delivered to APP/status

Every request the app gets is signed for its own URL with the simulated
account's auth token, which dev prints, so the app's Twilio signature
validation works as in production.

The admin token is made once and kept in DIR/admin-token, so the console's
sign-in survives restarts; the database (DIR/switchboard.db) keeps events
across them too. The simulator listens where sim sms and sim call look by
default, so a text or a call needs no flags:

  switchboard sim sms --from +15550001111 "hello"
  switchboard sim call --from +15550001111

Dev runs until SIGINT or SIGTERM, or for --duration. --config is not read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.duration < 0 {
				return errors.New("dev: --duration must not be negative")
			}
			if u, err := url.Parse(o.app); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("dev: --app %q: want the app's base http(s) URL, such as http://127.0.0.1:3000", o.app)
			}
			return c.runDev(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.app, "app", "http://127.0.0.1:3000", "base URL of your app: /sms, /voice and /status are delivered under it")
	f.StringVar(&o.dir, "dir", ".switchboard", "folder for the database and the admin token, kept across runs")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address the gateway listens on (port 0: a free one)")
	f.StringVar(&o.simListen, "sim-listen", defaultSimListen, "address the simulated Twilio listens on")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	return cmd
}

// runDev starts the simulator, then the gateway, prints how to use them,
// and waits for ctx or the duration; the deferred calls stop the gateway
// before the simulator, so that work in flight finishes.
func (c *CLI) runDev(ctx context.Context, o devOptions) error {
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("dev: --dir: %w", err)
	}
	token, made, err := devAdminToken(o.dir)
	if err != nil {
		return err
	}
	gatewayAddr, err := freeAddr("dev: --listen", o.listen)
	if err != nil {
		return err
	}
	gatewayURL := "http://" + gatewayAddr
	app := strings.TrimSuffix(o.app, "/")

	// The simulated Twilio, with the account sim sms and sim call assume
	// when given no credentials (see phoneDefaults).
	simCfg := devSimConfig(gatewayURL)
	acct := simCfg.Accounts[0]
	number := acct.Numbers[0].Number
	quiet := slog.New(slog.NewJSONHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tw, err := sim.New(simCfg, quiet)
	if err != nil {
		return err
	}
	defer tw.Close()
	twSrv, err := tw.Serve(ctx, o.simListen)
	if err != nil {
		return fmt.Errorf("dev: --sim-listen: %w (is sim serve or another dev running?)", err)
	}
	defer twSrv.Close()
	// The URL others reach it at: 0.0.0.0 is no address to connect to.
	simURL := "http://" + loopbackAddr(strings.TrimPrefix(twSrv.URL, "http://"))

	cfg, err := devConfig(gatewayAddr, filepath.Join(o.dir, "switchboard.db"), token, acct, number, simURL, app)
	if err != nil {
		return err
	}
	gw, err := startGateway(ctx, cfg, slog.New(slog.NewJSONHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = gw.Shutdown(context.Background())
		}
	}()
	c.printDev(o, gatewayURL, token, made, simURL, acct, number, app)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if o.duration > 0 {
		runCtx, stop = context.WithTimeout(ctx, o.duration)
		defer stop()
	}
	<-runCtx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	stopped = true
	if err := gw.Shutdown(sctx); err != nil {
		return fmt.Errorf("dev: shutdown: %w", err)
	}
	return nil
}

// devSimConfig is the simulator's configuration: the default account of
// sim serve, its long code sending SMS to the gateway's /sms and calls to
// /voice, its messaging service's status callbacks to /status.
func devSimConfig(gatewayURL string) sim.Config {
	cfg := sim.DemoConfig(demoAccountSeed)
	acct := &cfg.Accounts[0]
	acct.Numbers[0].SMSURL = gatewayURL + "/sms"
	acct.Numbers[0].VoiceURL = gatewayURL + "/voice"
	for i := range acct.Services {
		acct.Services[i].StatusCallback = gatewayURL + "/status"
	}
	return cfg
}

// devConfig is demo's configuration (the /sms and /status ack routes, a
// pool sending through the simulator) with a /voice proxy route, the
// database in the project's folder and the console's phone on the
// simulator.
func devConfig(addr, db, token string, acct sim.Account, number, simURL, app string) (*config.Config, error) {
	cfg, err := demoConfig(addr, db, token, acct, number, simURL, app, 10)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	cfg.Pools[0].Name = "dev"
	cfg.Admin.SimulatorURL = simURL
	cfg.Routes = append(cfg.Routes, config.Route{
		Path: "/voice", Account: acct.SID, Mode: config.ModeProxy, Target: app + "/voice", Kind: "auto", TwiML: devFallbackTwiML,
		MaxAttempts: cfg.Delivery.MaxAttempts, MaxAge: cfg.Delivery.MaxAge, RedeliverOn: config.DefaultRedeliverOn, MaxInFlight: 64,
	})
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev: configuration: %w", err)
	}
	return cfg, nil
}

// devAdminToken is the project's admin token, kept in DIR/admin-token
// (0600): read when there, made once otherwise. made reports a new one.
// A file that is there but unreadable or too short fails rather than
// being replaced, which would sign everyone out for no visible reason.
func devAdminToken(dir string) (token string, made bool, err error) {
	path := filepath.Join(dir, "admin-token")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		token = strings.TrimSpace(string(b))
		if len(token) < 32 {
			return "", false, fmt.Errorf("dev: %s: the admin token is shorter than 32 characters; delete the file to make a new one", path)
		}
		return token, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("dev: admin token: %w", err)
	}
	if token, err = newAdminToken(); err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("dev: admin token: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("dev: admin token: %w", err)
	}
	return token, true, nil
}

// printDev says where everything is and what to try.
func (c *CLI) printDev(o devOptions, gatewayURL, token string, made bool, simURL string, acct sim.Account, number, app string) {
	w := c.Stdout
	kept := "kept in"
	if made {
		kept = "made, and kept in"
	}
	fmt.Fprintf(w, "switchboard dev: gateway on %s, data in %s\n", gatewayURL, o.dir)
	fmt.Fprintf(w, "console   %s/console/\n", gatewayURL)
	fmt.Fprintf(w, "token     %s (%s %s)\n", token, kept, filepath.Join(o.dir, "admin-token"))
	fmt.Fprintf(w, "twilio    %s (simulated; account %s, auth token %s, number %s)\n", simURL, acct.SID, acct.AuthTokens[0], number)
	fmt.Fprintf(w, "app       /sms    → %s/sms (ack: stored, answered at once, delivered with retries)\n", app)
	fmt.Fprintf(w, "          /voice  → %s/voice (proxy: the app's TwiML answers the call live)\n", app)
	fmt.Fprintf(w, "          /status → %s/status (ack: status callbacks)\n", app)
	fmt.Fprintf(w, "          signed with the auth token above for these URLs, as Twilio signs them\n")
	simFlag := ""
	if simURL != "http://"+defaultSimListen {
		simFlag = " --sim " + simURL // sim sms looks at the default address only
	}
	fmt.Fprintf(w, "try       switchboard sim sms%s --from +15550001111 --to %s \"hello\"\n", simFlag, number)
	fmt.Fprintf(w, "          switchboard sim call%s --from +15550001111 --to %s\n", simFlag, number)
}
