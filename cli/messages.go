package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/web"
)

func (c *CLI) messagesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "messages", Short: "Inspect and replay outbound messages"}
	cmd.AddCommand(c.messagesListCmd(), c.messagesShowCmd(), c.messagesReplayCmd())
	return cmd
}

func (c *CLI) messagesListCmd() *cobra.Command {
	var (
		f       switchboard.OutboundFilter
		state   string
		purpose string
		times   timeFlags
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List outbound messages, newest first",
		Long: `List prints a page of outbound messages, newest first, as a table; --json
prints exactly what GET /api/v1/messages answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.State, f.Purpose = switchboard.MessageState(state), switchboard.Purpose(purpose)
			if f.State != "" && !f.State.Valid() {
				return fmt.Errorf("--state %q: want one of %v", state, switchboard.MessageStates)
			}
			if f.Purpose != "" && !f.Purpose.Valid() {
				return fmt.Errorf("--purpose %q: want one of %v", purpose, switchboard.Purposes)
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
			page, err := store.ListOutboundMessages(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.Stdout, rd.Messages(page))
			}
			return writeMessageList(c.Stdout, rd.Messages(page))
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "queued, sending, sent, delivered, undelivered, failed, canceled or read")
	cmd.Flags().StringVar(&f.Pool, "pool", "", "sender pool")
	cmd.Flags().StringVar(&purpose, "purpose", "", "otp, transactional or marketing")
	cmd.Flags().StringVar(&f.To, "to", "", "recipient (E.164)")
	cmd.Flags().StringVar(&f.Template, "template", "", "template name")
	cmd.Flags().StringVar(&f.Cursor, "cursor", "", "continue after this message (from a previous page)")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "messages per page (at most 500)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, as GET /api/v1/messages answers")
	times.register(cmd, "messages")
	return cmd
}

func (c *CLI) messagesShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show MESSAGE_ID",
		Short: "Show an outbound message and its status history",
		Long: `Show prints an outbound message and every status update recorded for it,
oldest first; --json prints exactly what GET /api/v1/messages/{id} answers.
Under admin.redact it hides the recipient and the text, as the API does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, rd, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			m, err := store.OutboundMessage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			hist, err := store.MessageHistory(cmd.Context(), m.ID)
			if err != nil {
				return fmt.Errorf("message history: %w", err)
			}
			if asJSON {
				return printJSON(c.Stdout, rd.MessageDetail(m, hist))
			}
			return writeMessageDetail(c.Stdout, rd.MessageDetail(m, hist))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, as GET /api/v1/messages/{id} answers")
	return cmd
}

func (c *CLI) messagesReplayCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replay MESSAGE_ID",
		Short: "Send a failed message again",
		Long: `Replay queues a failed message that Twilio never accepted for a fresh run of
send attempts, as POST /api/v1/messages/{id}/replay does; a running serve
with the message's pool sends it. Any other message is refused: one Twilio
accepted may have reached its recipient, and one still queued or sending
has its attempts ahead of it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, rd, err := c.openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			// The store's error says why a message is not replayable.
			m, err := outbound.NewService(store, outbound.ServiceOptions{}).Replay(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.Stdout, rd.Message(m))
			}
			_, err = fmt.Fprintf(c.Stdout, "replayed message %s: %s, sent again by a running serve\n", m.ID, m.State)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the message as JSON, as POST /api/v1/messages/{id}/replay answers")
	return cmd
}

// writeMessageList writes a page of messages as a table.
func writeMessageList(w io.Writer, page web.Page[web.MessageJSON]) error {
	if len(page.Items) == 0 {
		_, err := fmt.Fprintln(w, "no messages")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tCREATED\tPOOL\tTO\tSTATE\tATTEMPTS\tTWILIO SID\tERROR")
	for _, m := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(m.ID, 0), when(m.CreatedAt), cell(m.Pool, 30), cell(m.To, 0),
			m.State, m.Attempts, cell(m.TwilioSID, 0), cell(messageError(m.ErrorCode, m.LastError), 60))
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

// messageError joins a message's Twilio error code and last error.
func messageError(code int, last string) string {
	switch {
	case code != 0 && last != "":
		return fmt.Sprintf("%d: %s", code, last)
	case code != 0:
		return fmt.Sprint(code)
	}
	return last
}

// writeMessageDetail writes a message and its status history for reading.
func writeMessageDetail(w io.Writer, d web.MessageDetailJSON) error {
	m := d.Message
	fmt.Fprintf(w, "Message %s\n", clean(m.ID))
	writeFields(w, []field{
		{"state", m.State}, {"pool", m.Pool}, {"purpose", m.Purpose}, {"template", m.Template},
		{"from", m.From}, {"to", m.To},
		{"attempts", fmt.Sprint(m.Attempts)},
		{"twilio sid", m.TwilioSID}, {"twilio status", m.TwilioStatus}, {"error code", orEmpty(m.ErrorCode)},
		{"last error", m.LastError},
		{"idempotency key", m.IdempotencyKey}, {"account", m.AccountSID}, {"status webhook", m.StatusWebhook},
		{"created", when(m.CreatedAt)}, {"updated", when(m.UpdatedAt)}, {"next attempt", when(m.NextAttemptAt)},
		{"sent", when(m.SentAt)}, {"delivered", when(m.DeliveredAt)}, {"replayed", when(m.ReplayedAt)},
	})
	if m.Body != "" {
		fmt.Fprintln(w, "\nBody")
		writeBody(w, strings.Split(m.Body, "\n"))
	}
	if len(m.MediaURLs) > 0 {
		fmt.Fprintln(w, "\nMedia")
		writeBody(w, m.MediaURLs)
	}
	fmt.Fprintln(w, "\nHistory")
	if len(d.History) == 0 {
		_, err := fmt.Fprintln(w, "  none yet")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "  AT\tSTATUS\tERROR CODE\tSOURCE\tAPPLIED")
	for _, h := range d.History {
		applied := "yes"
		if !h.Applied {
			applied = "no (older or repeated)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", when(h.At), cell(h.Status, 20), orDash(h.ErrorCode), cell(h.Source, 20), applied)
	}
	return tw.Flush()
}
