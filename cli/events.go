package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/server"
	"github.com/switchboard-dev/switchboard/sqlite"
)

// timeFlags are the --since/--until flags shared by events and replay.
type timeFlags struct{ since, until string }

func (f *timeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.since, "since", "", "only events created at or after this time (RFC 3339, or a duration like 2h meaning that long ago)")
	cmd.Flags().StringVar(&f.until, "until", "", "only events created before this time (RFC 3339 or a duration ago)")
}

func (f *timeFlags) parse(now time.Time) (since, until time.Time, err error) {
	if since, err = parseWhen(f.since, now); err != nil {
		return since, until, fmt.Errorf("--since: %w", err)
	}
	if until, err = parseWhen(f.until, now); err != nil {
		return since, until, fmt.Errorf("--until: %w", err)
	}
	return since, until, nil
}

func parseWhen(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

func (c *CLI) eventsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Inspect stored events"}
	var (
		f      switchboard.EventFilter
		kind   string
		state  string
		times  timeFlags
		asJSON bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Kind, f.State = switchboard.Kind(kind), switchboard.State(state)
			var err error
			if f.Since, f.Until, err = times.parse(time.Now()); err != nil {
				return err
			}
			store, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			page, err := store.ListEvents(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printJSON(page)
			}
			tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tROUTE\tKIND\tSTATE\tATTEMPTS\tSID\tLAST ERROR")
			for _, e := range page.Items {
				sid := e.MessageSID
				if sid == "" {
					sid = e.CallSID
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.CreatedAt.Format(time.RFC3339), e.Route,
					e.Kind, e.State, e.Attempts, sid, e.LastError)
			}
			if page.Next != "" {
				fmt.Fprintf(tw, "\nmore: --cursor %s\n", page.Next)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&f.Route, "route", "", "route path")
	list.Flags().StringVar(&kind, "kind", "", "event kind (message, message-status, voice, call-status, ...)")
	list.Flags().StringVar(&state, "state", "", "pending, retrying, delivered or dead")
	list.Flags().StringVar(&f.SID, "sid", "", "a MessageSid or CallSid")
	list.Flags().StringVar(&f.Cursor, "cursor", "", "continue after this event (from a previous page)")
	list.Flags().IntVar(&f.Limit, "limit", 50, "events per page (at most 500)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	times.register(list)

	show := &cobra.Command{
		Use:   "show EVENT_ID",
		Short: "Show an event, its request and every delivery attempt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			ev, err := store.Event(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			req, err := store.Request(cmd.Context(), ev.RequestID)
			if err != nil {
				return err
			}
			atts, err := store.Attempts(cmd.Context(), ev.ID)
			if err != nil {
				return err
			}
			return c.printJSON(struct {
				Event    *switchboard.Event
				Request  *switchboard.Request
				Attempts []*switchboard.Attempt
			}{ev, req, atts})
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func (c *CLI) replayCmd() *cobra.Command {
	var (
		f     switchboard.ReplayFilter
		state string
		times timeFlags
	)
	cmd := &cobra.Command{
		Use:   "replay [EVENT_ID]",
		Short: "Deliver delivered or dead events again",
		Long: `Replay schedules a new delivery of one event, or of every delivered or dead
event matching --route, --state, --since and --until. Events still pending or
retrying already have a delivery scheduled and are left alone. A running
serve process picks the deliveries up.`,
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
			store, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
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
	times.register(cmd)
	return cmd
}

// openStore opens the store for events and replay. They skip the SQLite
// integrity check, which reads the whole file (seconds to a minute on a
// large store): they acknowledge nothing, and damage they touch still
// fails them (see sqlite.ErrStoreFailed). serve and migrate run it.
func (c *CLI) openStore(cmd *cobra.Command) (switchboard.Store, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	storage := cfg.Storage
	storage.IntegrityCheck = string(sqlite.CheckOff)
	return server.OpenStore(cmd.Context(), storage, c.logger(cfg), groupcommit.Options{})
}

func (c *CLI) printJSON(v any) error {
	enc := json.NewEncoder(c.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
