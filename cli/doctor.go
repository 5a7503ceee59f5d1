package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/doctor"
)

// errTwilioWouldFail makes doctor exit non-zero when Twilio would log an
// error for the URL.
var errTwilioWouldFail = errors.New("Twilio would log an error for this URL")

func (c *CLI) doctorCmd() *cobra.Command {
	var (
		o      doctor.Options
		kind   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "doctor URL",
		Short: "Probe a webhook URL the way Twilio does and name every cause of 11200",
		Long: `Doctor sends the request Twilio would send (realistic parameters, Twilio's
headers and timeouts, the URL's connection-override fragment, signed when an
auth token is given) and reports each check with the Twilio error code it leads
to and a one-line fix. It exits non-zero when Twilio would log an error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.URL, o.Kind = args[0], doctor.Kind(kind)
			report, err := doctor.Probe(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				fmt.Fprint(c.Stdout, report.Text())
			}
			if report.Failed() {
				return errTwilioWouldFail
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "sms", "sms, voice, status or client-notification")
	f.StringVar(&o.Method, "method", "POST", "POST or GET")
	f.StringVar(&o.AccountSID, "account-sid", "", "AccountSid to send")
	f.StringVar(&o.AuthToken, "auth-token", "", "auth token to sign the request with (as Twilio would)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
