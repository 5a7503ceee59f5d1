package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/load"
)

func (c *CLI) loadCmd() *cobra.Command {
	var (
		opts        load.Options
		route       string
		reference   bool
		sinkListen  string
		sinkTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Drive signed webhooks at a running Switchboard and measure it",
		Long: `Load sends correctly signed Twilio webhooks to a running Switchboard (loopback
addresses only) and prints throughput and latency percentiles. In the same run
it measures a trivial Go handler answering static TwiML, the reference the
durable intake is compared against.

With --route, the target, the signed URL and the account's credentials come
from the configuration file. With --sink-listen, load also runs the app the
route delivers to, and reports how fast events arrive there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if route != "" {
				if err := c.fillFromConfig(&opts, route); err != nil {
					return err
				}
			}
			if opts.Target == "" || opts.AuthToken == "" {
				return errors.New("need --target and --auth-token, or --route with --config")
			}
			return c.runLoad(cmd.Context(), opts, reference, sinkListen, sinkTimeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&route, "route", "", "a route path from the configuration: sets --target, --signed-url and credentials")
	f.StringVar(&opts.Target, "target", "", "URL to send webhooks to (loopback only)")
	f.StringVar(&opts.SignedURL, "signed-url", "", "public URL the signature covers (default: --target)")
	f.StringVar(&opts.AccountSID, "account-sid", "", "AccountSid in the webhooks")
	f.StringVar(&opts.AuthToken, "auth-token", "", "auth token that signs the webhooks")
	f.StringVar(&opts.Kind, "kind", load.KindSMS, "sms (inbound messages) or status (status callbacks)")
	f.Float64Var(&opts.Rate, "rate", 0, "requests per second; 0 sends as fast as --concurrency allows")
	f.IntVar(&opts.Concurrency, "concurrency", load.DefaultConcurrency, "requests in flight")
	f.DurationVar(&opts.Duration, "duration", 10*time.Second, "how long to send (at most 10m)")
	f.IntVar(&opts.MaxRequests, "max-requests", 0, "stop after this many requests (0: no cap)")
	f.Int64Var(&opts.Seed, "seed", 1, "seed for the generated webhooks")
	f.BoolVar(&reference, "reference", true, "also measure the static-TwiML reference handler")
	f.StringVar(&sinkListen, "sink-listen", "", "run the app on this loopback address and measure delivery to it")
	f.DurationVar(&sinkTimeout, "sink-timeout", 2*time.Minute, "how long to wait for every accepted event to reach the sink")
	return cmd
}

func (c *CLI) fillFromConfig(opts *load.Options, route string) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	for _, r := range cfg.Routes {
		if r.Path != route {
			continue
		}
		acct, _ := cfg.Account(r.Account)
		opts.Target = "http://" + cfg.Listen + r.Path
		opts.SignedURL = cfg.PublicURL + r.Path
		opts.AccountSID, opts.AuthToken = acct.SID, acct.AuthTokens[0]
		return nil
	}
	return fmt.Errorf("route %q is not in the configuration", route)
}

func (c *CLI) runLoad(ctx context.Context, opts load.Options, reference bool, sinkListen string, sinkTimeout time.Duration) error {
	var sink *load.Sink
	if sinkListen != "" {
		var err error
		if sink, err = load.StartSinkAt(ctx, sinkListen); err != nil {
			return err
		}
		defer sink.Close()
	}
	var ref *load.Report
	if reference {
		url, stop, err := load.StartReference(ctx)
		if err != nil {
			return err
		}
		refOpts := opts
		refOpts.Target = url + "/reference"
		ref, err = load.Run(ctx, refOpts)
		stop()
		if err != nil {
			return fmt.Errorf("reference run: %w", err)
		}
		fmt.Fprintf(c.Stdout, "reference (static TwiML handler): %s\n", ref)
	}
	started := time.Now()
	rep, err := load.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("load run: %w", err)
	}
	fmt.Fprintf(c.Stdout, "switchboard: %s\n", rep)
	if ref != nil {
		fmt.Fprintln(c.Stdout, load.Compare(ref, rep))
	}
	if sink == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, sinkTimeout)
	defer cancel()
	werr := sink.WaitFor(wctx, rep.OK)
	fmt.Fprintf(c.Stdout, "delivery: %d of %d accepted events reached the app (%d duplicate deliveries) in %s; %.0f events/s while arriving\n",
		sink.Delivered(), rep.OK, sink.Duplicates(), time.Since(started).Round(time.Millisecond), sink.Rate())
	if werr != nil {
		return fmt.Errorf("waiting for deliveries: %w", werr)
	}
	return nil
}
