package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
)

// dryRunSample is how many of the events a dry run matches it names.
const dryRunSample = 5

func (c *CLI) replayCmd() *cobra.Command {
	var (
		f      switchboard.ReplayFilter
		state  string
		times  timeFlags
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "replay [EVENT_ID]",
		Short: "Deliver delivered or dead events again",
		Long: `Replay schedules a new delivery of one event, or of every delivered or dead
event matching --route, --state, --since and --until. Events still pending or
retrying already have a delivery scheduled and are left alone. A running
serve process picks the deliveries up.

With --dry-run it schedules nothing: it prints how many events the replay
would schedule, and the ids of the newest few.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				f.EventID = args[0]
			}
			f.State = switchboard.State(state)
			var err error
			if f.Since, f.Until, err = times.parse(time.Now()); err != nil {
				return err
			}
			// Refused before the store is opened: a bare replay never
			// touches anything.
			if err := f.Validate(); err != nil {
				return err
			}
			store, _, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			if dryRun {
				p, err := store.PreviewReplay(cmd.Context(), f, dryRunSample)
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(c.Stdout, dryRunText(p.Matched, p.Sample))
				return err
			}
			n, err := store.Replay(cmd.Context(), f)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.Stdout, "scheduled %d deliveries\n", n)
			return err
		},
	}
	cmd.Flags().StringVar(&f.Route, "route", "", "route path")
	cmd.Flags().StringVar(&state, "state", "", "delivered or dead (default both)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "schedule nothing: print how many events would be replayed, and a few of their ids")
	times.register(cmd, "events")
	return cmd
}

// dryRunText says what a replay would schedule: the count, then the
// sample of ids, noting when it is not all of them.
func dryRunText(matched int, sample []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dry run: would schedule %d deliveries (nothing scheduled)\n", matched)
	for _, id := range sample {
		fmt.Fprintf(&b, "  %s\n", clean(id))
	}
	if rest := matched - len(sample); rest > 0 && len(sample) > 0 {
		fmt.Fprintf(&b, "  ... and %d more\n", rest)
	}
	return b.String()
}
