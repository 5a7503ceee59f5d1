package cli

import (
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/web"
)

// timeFlags are the --since/--until flags shared by events, replay and
// messages.
type timeFlags struct{ since, until string }

func (f *timeFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&f.since, "since", "", "only "+what+" created at or after this time (RFC 3339, or a duration like 2h meaning that long ago)")
	cmd.Flags().StringVar(&f.until, "until", "", "only "+what+" created before this time (RFC 3339 or a duration ago)")
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
		Long: `List prints a page of events, newest first, as a table; --json prints
exactly what GET /api/v1/events answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Kind, f.State = switchboard.Kind(kind), switchboard.State(state)
			if f.Kind != "" && !f.Kind.Valid() {
				return fmt.Errorf("--kind %q: want one of %v", kind, switchboard.Kinds)
			}
			if f.State != "" && !f.State.Valid() {
				return fmt.Errorf("--state %q: want one of %v", state, switchboard.States)
			}
			var err error
			if f.Since, f.Until, err = times.parse(time.Now()); err != nil {
				return err
			}
			store, rd, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			page, err := store.ListEvents(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.Stdout, rd.Events(page))
			}
			return writeEventList(c.Stdout, rd.Events(page))
		},
	}
	list.Flags().StringVar(&f.Route, "route", "", "route path")
	list.Flags().StringVar(&kind, "kind", "", "event kind (message, message-status, voice, call-status, ...)")
	list.Flags().StringVar(&state, "state", "", "pending, retrying, delivered or dead")
	list.Flags().StringVar(&f.SID, "sid", "", "a MessageSid or CallSid")
	list.Flags().StringVar(&f.Cursor, "cursor", "", "continue after this event (from a previous page)")
	list.Flags().IntVar(&f.Limit, "limit", 50, "events per page (at most 500)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON, as GET /api/v1/events answers")
	times.register(list, "events")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show EVENT_ID",
		Short: "Show an event, its request and every delivery attempt",
		Long: `Show prints an event, the request it came from (headers, then the body:
a form one parameter per line, decoded; JSON indented) and its delivery
attempts; --json prints exactly what GET /api/v1/events/{id} answers. Under
admin.redact it hides what the API hides.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, rd, err := c.openStore(cmd)
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
			detail := rd.EventDetail(ev, req, atts)
			if showJSON {
				return printJSON(c.Stdout, detail)
			}
			return writeEventDetail(c.Stdout, detail, rd.Redact)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON, as GET /api/v1/events/{id} answers")
	cmd.AddCommand(list, show)
	return cmd
}

// writeEventList writes a page of events as a table.
func writeEventList(w io.Writer, page web.Page[web.EventJSON]) error {
	if len(page.Items) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tCREATED\tROUTE\tKIND\tSTATE\tATTEMPTS\tSID\tLAST ERROR")
	for _, e := range page.Items {
		sid := e.MessageSID
		if sid == "" {
			sid = e.CallSID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(e.ID, 0), when(e.CreatedAt), cell(e.Route, 40),
			e.Kind, e.State, e.Attempts, cell(sid, 0), cell(e.LastError, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		_, err := fmt.Fprintf(w, "\nmore: --cursor %s\n", page.Next)
		return err
	}
	return nil
}

// writeEventDetail writes an event, its request and its attempts for
// reading.
func writeEventDetail(w io.Writer, d web.EventDetailJSON, redacted bool) error {
	e, r := d.Event, d.Request
	fmt.Fprintf(w, "Event %s\n", clean(e.ID))
	writeFields(w, []field{
		{"route", e.Route}, {"kind", e.Kind}, {"state", e.State},
		{"attempts", fmt.Sprint(e.Attempts)},
		{"account", e.AccountSID}, {"message sid", e.MessageSID}, {"call sid", e.CallSID},
		{"target", e.Target}, {"idempotency key", e.IdempotencyKey},
		{"answered twilio", orEmpty(e.ResponseStatus)},
		{"created", when(e.CreatedAt)}, {"updated", when(e.UpdatedAt)},
		{"next attempt", when(e.NextAttemptAt)}, {"delivered", when(e.DeliveredAt)},
		{"last error", e.LastError},
	})

	fmt.Fprintf(w, "\nRequest %s\n", clean(r.ID))
	writeFields(w, []field{
		{"received", when(r.ReceivedAt)}, {"method", r.Method}, {"url", r.URL},
		{"from", r.RemoteAddr}, {"outcome", r.Outcome}, {"reason", r.Reason},
	})
	fmt.Fprintln(w, "\nHeaders")
	writeHeader(w, r.Header)

	fmt.Fprintln(w, "\nBody")
	switch {
	case redacted || r.Body == nil && r.BodyBase64 == "":
		if r.Body != nil {
			writeBody(w, []string{*r.Body})
		}
	case r.Body != nil:
		writeBody(w, bodyLines(r.Header.Get("Content-Type"), *r.Body))
	default:
		raw, _ := base64.StdEncoding.DecodeString(r.BodyBase64)
		fmt.Fprintf(w, "  (%d bytes, not UTF-8; base64:)\n", len(raw))
		writeBody(w, wrap(r.BodyBase64, 76))
	}

	fmt.Fprintln(w, "\nAttempts")
	if len(d.Attempts) == 0 {
		_, err := fmt.Fprintln(w, "  none yet")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "  #\tSTARTED\tSTATUS\tLATENCY\tTWILIO\tERROR")
	for _, a := range d.Attempts {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", a.Number, when(a.StartedAt), orDash(a.StatusCode), ms(a.LatencyMS),
			orDash(a.TwilioCode), cell(a.Error, 80))
	}
	return tw.Flush()
}

// orEmpty is v as text, or empty for zero (a field left out).
func orEmpty(v int) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

// wrap cuts s into lines of n bytes.
func wrap(s string, n int) []string {
	var lines []string
	for len(s) > n {
		lines = append(lines, s[:n])
		s = s[n:]
	}
	return append(lines, s)
}
