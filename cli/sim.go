package cli

import "github.com/spf13/cobra"

// simCmd is the parent of the Twilio simulator's commands. Alone, it prints
// their help.
func (c *CLI) simCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Twilio simulator: serve a stand-in for Twilio, send traffic, run a sample app",
		Long: `The Twilio simulator stands in for Twilio on a local machine, for tests,
benchmarks and demos. See docs/simulator.md.`,
		Args: cobra.NoArgs,
	}

	// Serve: the simulated Twilio itself.
	cmd.AddCommand(c.simServeCmd())

	// App: a sample app receiving what Switchboard delivers.
	cmd.AddCommand(c.simAppCmd())

	// Traffic: webhooks sent to a local endpoint as Twilio sends them.
	cmd.AddCommand(c.simTrafficCmd())

	// Sms and call: a handset texting or calling one of its numbers.
	cmd.AddCommand(c.simSMSCmd(), c.simCallCmd())

	return cmd
}
