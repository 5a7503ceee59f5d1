package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

// phoneRun is what one sim sms or sim call asks for.
type phoneRun struct {
	simURL, account, token string
	from, to               string
	media                  []string
	printJSON              bool
	timeout                time.Duration
}

// simAnswer is the simulator's answer as sim.PhoneClient reads it.
type simAnswer = sim.PhoneAnswer

func (c *CLI) simSMSCmd() *cobra.Command {
	var run phoneRun
	cmd := &cobra.Command{
		Use:   "sms --from HANDSET --to NUMBER TEXT",
		Short: "Text one of the simulator's numbers as a phone would, and show what Twilio would do with the answer",
		Long: `Sms makes a handset text one of the running simulator's numbers (see sim
serve). The simulator calls the number's SMS URL as Twilio would (through
Switchboard, when the URL is Switchboard's), and sms prints what came back:
the HTTP status, how long the answer took, and what Twilio would do with it,
verb by verb (the reply SMS, ...). When Twilio would refuse the answer, it
says with which error code and how to fix it.

The account and auth token are --account and --token, else
$SWITCHBOARD_SIM_ACCOUNT and $SWITCHBOARD_SIM_TOKEN, else the first account
of the simulator configuration given with --config, else those sim serve
prints when run without one at its default seed. --to defaults to the
account's first number.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			form := url.Values{"Body": {args[0]}}
			for _, m := range run.media {
				form.Add("MediaUrl", m)
			}
			return c.simPhone(cmd, &run, "InboundMessages", "SMS", form)
		},
	}
	c.phoneFlags(cmd, &run)
	cmd.Flags().StringArrayVar(&run.media, "media", nil, "a media URL, making it an MMS (repeatable)")
	return cmd
}

func (c *CLI) simCallCmd() *cobra.Command {
	var run phoneRun
	cmd := &cobra.Command{
		Use:   "call --from HANDSET --to NUMBER",
		Short: "Call one of the simulator's numbers as a phone would, and show what Twilio would do with the answer",
		Long: `Call makes a handset call one of the running simulator's numbers (see sim
serve). The simulator asks the number's voice URL for TwiML as Twilio would,
and call prints what came back: the HTTP status, how long the answer took,
and what Twilio would do with it, verb by verb (say, gather, dial...). When
Twilio would refuse the answer, it says with which error code and how to fix
it. Credentials and defaults are as for sim sms.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.simPhone(cmd, &run, "InboundCalls", "call", url.Values{})
		},
	}
	c.phoneFlags(cmd, &run)
	return cmd
}

// phoneFlags are the flags sim sms and sim call share.
func (c *CLI) phoneFlags(cmd *cobra.Command, run *phoneRun) {
	f := cmd.Flags()
	f.StringVar(&run.simURL, "sim", "http://127.0.0.1:3901", "the simulator's URL")
	f.StringVar(&run.account, "account", "", "account SID (default $SWITCHBOARD_SIM_ACCOUNT)")
	f.StringVar(&run.token, "token", "", "auth token (default $SWITCHBOARD_SIM_TOKEN)")
	f.StringVar(&run.from, "from", "+15005550006", "the handset's number")
	f.StringVar(&run.to, "to", "", "the simulator's number to reach (default: the account's first)")
	f.BoolVar(&run.printJSON, "print-json", false, "print the simulator's answer as JSON")
	f.DurationVar(&run.timeout, "timeout", 2*time.Minute, "how long to wait for the simulator's answer")
}

// simPhone fills in run's credentials and number, posts form to the
// simulator's control endpoint and prints its answer.
func (c *CLI) simPhone(cmd *cobra.Command, run *phoneRun, endpoint, kind string, form url.Values) error {
	if err := c.phoneDefaults(cmd, run); err != nil {
		return err
	}
	form.Set("From", run.from)
	form.Set("To", run.to)
	ctx, cancel := context.WithTimeout(cmd.Context(), run.timeout)
	defer cancel()
	raw, err := postSim(ctx, run, endpoint, form)
	if err != nil {
		return err
	}
	if run.printJSON {
		var b bytes.Buffer
		if json.Indent(&b, raw, "", "  ") != nil {
			return errors.New("sim: the answer is not JSON")
		}
		b.WriteByte('\n')
		_, err := c.Stdout.Write(b.Bytes())
		return err
	}
	var ans simAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("sim: read the answer: %w", err)
	}
	writePhone(c.Stdout, newPainter(isTerminal(c.Stdout)), kind, run, &ans)
	return nil
}

// phoneDefaults fills in what was not given: credentials from the
// environment, the simulator configuration or the demo account, and the
// account's first number.
func (c *CLI) phoneDefaults(cmd *cobra.Command, run *phoneRun) error {
	if run.account == "" {
		run.account = c.getenv("SWITCHBOARD_SIM_ACCOUNT")
	}
	if run.token == "" {
		run.token = c.getenv("SWITCHBOARD_SIM_TOKEN")
	}
	if run.account != "" && run.token != "" && run.to != "" {
		return nil
	}
	// Only a --config given on the command line names a simulator
	// configuration: its default, $SWITCHBOARD_CONFIG, is Switchboard's.
	cfg := sim.DemoConfig(1)
	if cmd.Flags().Changed("config") {
		loaded, err := sim.LoadConfig(c.configPath)
		if err != nil {
			return err
		}
		cfg = loaded
	}
	var acct *sim.Account
	for i := range cfg.Accounts {
		if run.account == "" || cfg.Accounts[i].SID == run.account {
			acct = &cfg.Accounts[i]
			break
		}
	}
	if acct == nil {
		return fmt.Errorf("account %s: not in the simulator configuration: give --token and --to", run.account)
	}
	if run.account == "" {
		run.account = acct.SID
	}
	if run.token == "" && len(acct.AuthTokens) > 0 {
		run.token = acct.AuthTokens[0]
	}
	if run.to == "" && len(acct.Numbers) > 0 {
		run.to = acct.Numbers[0].Number
	}
	if run.token == "" || run.to == "" {
		return errors.New("need --token and --to")
	}
	return nil
}

// postSim posts form to the simulator's control endpoint for the account
// and returns the answer's JSON, or the simulator's error.
func postSim(ctx context.Context, run *phoneRun, endpoint string, form url.Values) ([]byte, error) {
	pc := &sim.PhoneClient{URL: run.simURL, Account: run.account, Token: run.token}
	return pc.Post(ctx, endpoint, form)
}

// writePhone prints one readable block: what was sent, each webhook try
// (the URL's, then its fallback's), and what Twilio would do with the
// answer it used.
func writePhone(w io.Writer, p painter, kind string, run *phoneRun, ans *simAnswer) {
	fmt.Fprintf(w, "%s %s from %s to %s\n", p.bold(kind), cell(ans.SID, 0), cell(run.from, 0), cell(run.to, 0))
	if ans.OptOut != "" {
		fmt.Fprintf(w, "  opt-out keyword %s: Twilio updates the handset's opt-out list\n", cell(ans.OptOut, 0))
	}
	if ans.Webhook == nil {
		fmt.Fprintln(w, "  the number has no webhook URL: nothing was called")
		return
	}
	used := ans.Webhook
	for wh, label := ans.Webhook, "webhook"; wh != nil; wh, label = wh.Fallback, "fallback" {
		status := "no answer"
		if wh.Status != 0 {
			status = fmt.Sprintf("%d %s", wh.Status, cell(wh.ContentType, 80))
		}
		tries := ""
		if wh.Tries > 1 {
			tries = fmt.Sprintf(", %d tries", wh.Tries)
		}
		fmt.Fprintf(w, "  %s %s %s → %s in %.1f ms%s\n", label, cell(wh.Method, 10), cell(wh.URL, 200), status, wh.LatencyMS, tries)
		if e := wh.Error; e != nil {
			fmt.Fprintf(w, "    %s %d %s: %s\n", p.red("Twilio refuses it:"), int(e.Code), e.Code, cell(e.Reason, 300))
			if fix := doctor.Fix("", e.Code); fix != "" {
				fmt.Fprintf(w, "    fix: %s\n", fix)
			}
		}
		used = wh
	}
	if used.Error != nil {
		fmt.Fprintln(w, p.red("Twilio does nothing with the answer"))
		return
	}
	verbs, err := twilio.DescribeTwiML([]byte(used.Body))
	switch {
	case err != nil:
		// Accepted yet not described: past the description's bounds.
		fmt.Fprintf(w, "Twilio would act on the answer, which is not shown: %s\n", cell(err.Error(), 200))
	case len(verbs) == 0 && kind == "SMS":
		fmt.Fprintln(w, p.green("Twilio would:")+" send no reply")
	case len(verbs) == 0:
		fmt.Fprintln(w, p.green("Twilio would:")+" end the call")
	default:
		fmt.Fprintln(w, p.green("Twilio would:"))
		for _, v := range verbs {
			lines := twilio.DescribeLines([]twilio.TwiMLVerb{v})
			if kind == "SMS" && v.Name != "Message" && v.Name != "Redirect" {
				// Messaging TwiML has only these two verbs.
				lines[0] += " — ignored: not a messaging verb"
			}
			for _, line := range lines {
				indent := len(line) - len(strings.TrimLeft(line, " "))
				fmt.Fprintf(w, "  %s%s\n", line[:indent], cell(line[indent:], 0))
			}
		}
	}
	if len(ans.Replies) > 0 {
		fmt.Fprintf(w, "  (reply messages created: %s)\n", cell(strings.Join(ans.Replies, ", "), 0))
	}
}

// painter colours headings on a terminal and leaves text plain elsewhere.
type painter bool

func newPainter(terminal bool) painter { return painter(terminal) }

func (p painter) paint(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p painter) bold(s string) string  { return p.paint("1", s) }
func (p painter) red(s string) string   { return p.paint("31", s) }
func (p painter) green(s string) string { return p.paint("32", s) }
