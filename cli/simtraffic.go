package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/sim/traffic"
)

// trafficRun is what one sim traffic command asks for.
type trafficRun struct {
	opts        traffic.Options
	reference   bool          // first measure the static-TwiML reference handler
	sinkListen  string        // run the sink app there, if set
	sinkTimeout time.Duration // how long to wait for deliveries to it
}

func (c *CLI) simTrafficCmd() *cobra.Command {
	var (
		run   trafficRun
		route string
	)
	cmd := &cobra.Command{
		Use:   "traffic",
		Short: "Send signed Twilio webhooks to a local endpoint and report what Twilio would have seen",
		Long: `Traffic sends realistic, correctly signed Twilio webhooks to a loopback URL,
at --rate requests per second or as fast as --concurrency allows, for
--duration. Each answer is judged the way Twilio judges it; the report counts
the answers Twilio would accept, the error code its debugger would log for
every other request (11200, 11205, 11206, 11750, 12100, 12300, 13807), the
answers by HTTP status, latency percentiles and accepted answers per second.

With --route, the target, the signed URL and the account's credentials come
from the configuration file, unless given as flags. With --reference, the
same load is first sent to a trivial handler answering static TwiML, and the
target is compared with it. With --sink-listen, traffic also runs the app
the route delivers to, and reports how fast events arrive there.

It exits non-zero for bad flags or an interrupted run, never for what the
target answered.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if route != "" {
				if err := c.trafficFromConfig(cmd.Flags(), &run.opts, route); err != nil {
					return err
				}
			}
			if run.opts.Seed == 0 {
				// Bodies carry their identities (MessageSid…), and
				// Switchboard deduplicates on them: a fresh seed keeps a
				// second run from being all duplicates of the first.
				run.opts.Seed = time.Now().UnixNano()
			}
			if run.opts.Target == "" || run.opts.AuthToken == "" {
				return errors.New("need --target and --auth-token, or --route with --config")
			}
			if err := run.opts.Validate(); err != nil {
				return err
			}
			return c.runTraffic(cmd.Context(), run)
		},
	}
	f := cmd.Flags()
	f.StringVar(&route, "route", "", "a route path from the configuration: sets --target, --signed-url, --account-sid and --auth-token unless given")
	f.StringVar(&run.opts.Target, "target", "", "URL to send webhooks to (loopback only)")
	f.StringVar(&run.opts.SignedURL, "signed-url", "", "public URL the signature covers (default: --target)")
	f.StringVar(&run.opts.AccountSID, "account-sid", "", "AccountSid in the webhooks (default: one derived from --seed); Switchboard refuses a webhook naming another account than its route's")
	f.StringVar(&run.opts.AuthToken, "auth-token", "", "auth token that signs the webhooks")
	f.StringVar(&run.opts.Kind, "kind", traffic.KindSMS, "kind of webhook: "+strings.Join(traffic.Kinds(), ", "))
	f.Float64Var(&run.opts.Rate, "rate", 0, "requests per second; 0 sends as fast as --concurrency allows")
	f.IntVar(&run.opts.Concurrency, "concurrency", traffic.DefaultConcurrency, "requests in flight at most")
	f.DurationVar(&run.opts.Duration, "duration", 10*time.Second, "how long to send (at most 10m)")
	f.IntVar(&run.opts.MaxRequests, "max-requests", 0, "stop after this many requests (0: no cap)")
	f.Int64Var(&run.opts.Seed, "seed", 0, "seed for the webhooks' contents: the same seed sends the same bodies (0: a fresh seed each run)")
	f.BoolVar(&run.reference, "reference", false, "first send the same load to a static-TwiML handler and compare")
	f.StringVar(&run.sinkListen, "sink-listen", "", "run the app on this loopback address and measure delivery to it")
	f.DurationVar(&run.sinkTimeout, "sink-timeout", 2*time.Minute, "how long to wait for every acknowledged event to reach the sink")
	return cmd
}

// trafficFromConfig fills the options that flags did not set from route in
// the configuration: where Switchboard listens for it, the public URL
// Twilio signs, and its account's SID and first auth token.
func (c *CLI) trafficFromConfig(flags *pflag.FlagSet, opts *traffic.Options, route string) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cfg.Routes, func(r config.Route) bool { return r.Path == route })
	if i < 0 {
		return fmt.Errorf("route %q is not in the configuration", route)
	}
	r := cfg.Routes[i]
	acct, ok := cfg.Account(r.Account)
	if !ok || len(acct.AuthTokens) == 0 {
		return fmt.Errorf("route %q: account %q has no auth token in the configuration", route, r.Account)
	}
	set := func(flag string, field *string, value string) {
		if !flags.Changed(flag) {
			*field = value
		}
	}
	set("target", &opts.Target, "http://"+loopbackAddr(cfg.Listen)+r.Path)
	if cfg.PublicURL != "" {
		set("signed-url", &opts.SignedURL, strings.TrimSuffix(cfg.PublicURL, "/")+r.Path)
	}
	set("account-sid", &opts.AccountSID, acct.SID)
	set("auth-token", &opts.AuthToken, acct.AuthTokens[0])
	return nil
}

// loopbackAddr returns the loopback address to reach a server listening on
// listen: listen itself, or 127.0.0.1 on its port when it listens on every
// interface.
func loopbackAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // the run refuses it with a clear error
	}
	if addr, err := netip.ParseAddr(host); host == "" || (err == nil && addr.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// runTraffic runs the reference, if asked, then the target, printing each
// report, then waits for the sink, if any, to receive what the target
// acknowledged. It fails only when ctx ends or a server cannot start.
func (c *CLI) runTraffic(ctx context.Context, run trafficRun) error {
	var sink *traffic.Sink
	if run.sinkListen != "" {
		var err error
		if sink, err = traffic.StartSinkAt(ctx, run.sinkListen); err != nil {
			return err
		}
		defer sink.Close()
	}
	var ref *traffic.Report
	if run.reference {
		url, stop, err := traffic.StartReference(ctx)
		if err != nil {
			return err
		}
		refOpts := run.opts
		refOpts.Target = url + "/reference"
		endLive := c.live(&refOpts)
		ref, err = traffic.Run(ctx, refOpts)
		endLive()
		stop()
		if ref != nil {
			c.printReport("reference (static TwiML handler)", ref)
		}
		if err != nil {
			return fmt.Errorf("reference run: %w", err)
		}
	}
	started := time.Now()
	endLive := c.live(&run.opts)
	rep, err := traffic.Run(ctx, run.opts)
	endLive()
	if rep != nil {
		c.printReport(fmt.Sprintf("%s webhooks to %s (signed for %s)", run.opts.Kind, run.opts.Target, run.opts.SignedURL), rep)
	}
	if err != nil {
		return fmt.Errorf("traffic run: %w", err)
	}
	if ref != nil {
		fmt.Fprint(c.Stdout, traffic.Compare(ref, rep))
	}
	if sink == nil {
		return nil
	}
	return c.waitForSink(ctx, sink, rep.Acknowledged(), started, run.sinkTimeout)
}

// live shows the progress of the run of opts, each second, on one line
// of the terminal, until the returned function ends it and clears the
// line for the report. When stdout is not a terminal (a file, a pipe, a
// CI log) it shows nothing: only the report is printed.
func (c *CLI) live(opts *traffic.Options) (end func()) {
	if !isTerminal(c.Stdout) {
		return func() {}
	}
	opts.Meter = new(traffic.Meter)
	ticker := time.NewTicker(time.Second)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		showProgress(c.Stdout, opts.Meter, time.Now(), ticker.C, done)
	}()
	return func() {
		ticker.Stop()
		close(done)
		<-exited
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// tallier is what the live view reads of a run: its traffic.Meter.
type tallier interface{ Tally() traffic.Tally }

// showProgress redraws one line of w at every tick, the run having
// started at start, until done is closed; it then clears the line. The
// ticks' times are its clock.
func showProgress(w io.Writer, m tallier, start time.Time, ticks <-chan time.Time, done <-chan struct{}) {
	prev, prevAt, drawn := traffic.Tally{}, start, false
	for {
		select {
		case at := <-ticks:
			t := m.Tally()
			fmt.Fprint(w, "\r\x1b[K"+progressLine(at.Sub(start), t, t.Since(prev, at.Sub(prevAt))))
			prev, prevAt, drawn = t, at, true
		case <-done:
			if drawn {
				fmt.Fprint(w, "\r\x1b[K")
			}
			return
		}
	}
}

// progressLine is the live view of a run elapsed long: the rate and
// latencies of the last interval, the counts so far.
func progressLine(elapsed time.Duration, t traffic.Tally, iv traffic.Interval) string {
	latency := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return round(d).String()
	}
	return fmt.Sprintf("%s  %.0f req/s  accepted %d  errors %d  p50 %s  p99 %s",
		elapsed.Round(time.Second), iv.Rate, t.Accepted, t.Errors, latency(iv.P50), latency(iv.P99))
}

// round shortens a latency for the live view.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// printReport prints a report under a title, followed by what each Twilio
// error code in it means.
func (c *CLI) printReport(title string, r *traffic.Report) {
	fmt.Fprintf(c.Stdout, "%s:\n  %s\n", title, strings.ReplaceAll(r.String(), "\n", "\n  "))
	for _, code := range slices.Sorted(maps.Keys(r.Codes)) {
		fmt.Fprintf(c.Stdout, "  %d: %s, %s\n", int(code), code, code.MoreInfo())
	}
}

// waitForSink waits up to timeout for want distinct events to reach the
// sink and prints how many did. Only the end of ctx is an error: events
// that never arrive are part of the report.
func (c *CLI) waitForSink(ctx context.Context, sink *traffic.Sink, want int, started time.Time, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	werr := sink.WaitFor(wctx, want)
	fmt.Fprintf(c.Stdout, "delivery: %d of %d acknowledged events reached the app (%d duplicate deliveries) in %s; %.0f events/s while arriving\n",
		sink.Delivered(), want, sink.Duplicates(), time.Since(started).Round(time.Millisecond), sink.Rate())
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting for deliveries: %w", err)
	}
	if werr != nil {
		fmt.Fprintf(c.Stdout, "delivery: gave up after --sink-timeout %v\n", timeout)
	}
	return nil
}
