package cli

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd probes a running Switchboard's /healthz (or any URL): for
// container healthchecks in images with no shell or curl.
func (c *CLI) healthcheckCmd() *cobra.Command {
	var (
		url      string
		timeout  time.Duration
		insecure bool
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if a running Switchboard answers its health check, 1 otherwise",
		Long: `Healthcheck requests --url (default the /healthz of serve's default listen
address) and succeeds when the answer is 2xx, for a container's HEALTHCHECK
in an image with neither shell nor curl. It reads no configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			}}
			if insecure {
				// For a probe of this host's own listener serving a
				// certificate for its public name: no secret is sent.
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
			}
			_, err = fmt.Fprintln(c.Stdout, "healthy")
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080/healthz", "the URL to check")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "accept any TLS certificate (for https://127.0.0.1 with a certificate for the public name)")
	return cmd
}
