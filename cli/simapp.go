package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/sim"
)

func (c *CLI) simAppCmd() *cobra.Command {
	var (
		listen string
		app    sim.App
	)
	cmd := &cobra.Command{
		Use:   "app [--listen ADDR] [--auth-token TOKEN [--public-url URL]]",
		Short: "Run a sample app that receives the webhooks Switchboard delivers",
		Long: `App runs a small application on --listen (default 127.0.0.1:3000, where the
routes of switchboard.example.toml deliver) until SIGINT or SIGTERM. It takes
a POST on any path, answers messages and calls with <Response/> and anything
else with an empty 200, and prints one line per request: path, kind, the
message's or call's SID, the status a callback reports, Switchboard's event
id and whether the signature held; never bodies or phone numbers.

With --auth-token (the account's first auth token, which Switchboard re-signs
deliveries with) it checks X-Twilio-Signature as an app should, and answers
403 to a request whose signature does not hold. Switchboard signs each
delivery for the route's target URL; --public-url is that URL's scheme, host
and path prefix when it is not the app's own http://LISTEN (behind a proxy).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app.PublicURL != "" {
				if u, err := url.Parse(app.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
					u.RawQuery != "" || u.Fragment != "" {
					return fmt.Errorf("--public-url %q: want an absolute http(s) URL without query", app.PublicURL)
				}
				if app.AuthToken == "" {
					return fmt.Errorf("--public-url is the URL signatures are checked for: it needs --auth-token")
				}
			}
			app.Log = c.Stdout
			srv, err := app.Serve(cmd.Context(), listen)
			if err != nil {
				return err
			}
			if app.AuthToken == "" {
				fmt.Fprintf(c.Stdout, "app listening on %s; signatures not checked (no --auth-token)\n", srv.URL)
			} else {
				fmt.Fprintf(c.Stdout, "app listening on %s; checking X-Twilio-Signature as signed for %s/...\n", srv.URL, app.PublicURL)
			}
			<-cmd.Context().Done()
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", sim.DefaultAppListen, "address to serve on")
	f.StringVar(&app.AuthToken, "auth-token", "", "check X-Twilio-Signature with this auth token (default: not checked)")
	f.StringVar(&app.PublicURL, "public-url", "", "base URL deliveries are signed for (default: http:// and the listen address)")
	return cmd
}
