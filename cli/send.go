package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/web"
)

// sendTimeout bounds the one request send makes.
const sendTimeout = 30 * time.Second

func (c *CLI) sendCmd() *cobra.Command {
	var (
		req       web.MessageRequestJSON
		key       string
		serverURL string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "send --to NUMBER --body TEXT --key KEY [--pool P | --from SENDER | --purpose otp|transactional|marketing]",
		Short: "Send a message through a running switchboard serve",
		Long: `Send stores an outbound message through the native API of a running
switchboard serve (POST /api/v1/messages, with the configured admin token),
which sends it. --key is the idempotency key: sending again with the same
key and the same message answers the stored message and sends nothing; the
same key with another message is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			if key == "" {
				return errors.New("--key is required: the idempotency key that makes sending again safe")
			}
			if serverURL == "" {
				serverURL = listenURL(cfg.Listen)
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			hreq, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost,
				strings.TrimSuffix(serverURL, "/")+"/api/v1/messages", bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("--server: %w", err)
			}
			hreq.Header.Set("Content-Type", "application/json")
			hreq.Header.Set("Authorization", "Bearer "+cfg.Admin.Token)
			hreq.Header.Set("Idempotency-Key", key)
			resp, err := (&http.Client{Timeout: sendTimeout}).Do(hreq)
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			defer resp.Body.Close()
			answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return fmt.Errorf("send: read the answer: %w", err)
			}
			if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(answer, &e) != nil || e.Error == "" {
					e.Error = strings.TrimSpace(string(answer))
				}
				return fmt.Errorf("send: %s: %s", resp.Status, e.Error)
			}
			if asJSON {
				_, err = c.Stdout.Write(answer)
				return err
			}
			var m web.MessageJSON
			if err := json.Unmarshal(answer, &m); err != nil {
				return fmt.Errorf("send: decode the answer: %w", err)
			}
			what := "accepted"
			if resp.StatusCode == http.StatusOK {
				what = "already stored under this key, not sent again"
			}
			_, err = fmt.Fprintf(c.Stdout, "%s: message %s, pool %s, %s\n", what, m.ID, m.Pool, m.State)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "recipient, E.164 (+15551234567)")
	f.StringVar(&req.Body, "body", "", "message text")
	f.StringArrayVar(&req.MediaURLs, "media-url", nil, "media URL (repeatable)")
	f.StringVar(&req.Pool, "pool", "", "pool to send from")
	f.StringVar(&req.From, "from", "", "sender, one of a pool's")
	f.StringVar(&req.Purpose, "purpose", "", "otp, transactional (default) or marketing; picks the pool when none is given")
	f.StringVar(&req.StatusWebhook, "status-webhook", "", "URL that gets this message's status callbacks")
	f.StringVar(&req.Template, "template", "", "name of the message's content, for the latency and error-code breakdowns")
	f.StringVar(&key, "key", "", "idempotency key (required)")
	f.StringVar(&serverURL, "server", "", "base URL of the running serve (default http:// and the configured listen address)")
	f.BoolVar(&asJSON, "json", false, "print the message as JSON")
	return cmd
}

// listenURL is the loopback URL of a listen address: an unspecified host
// (":8080", "0.0.0.0:8080") is reached on 127.0.0.1.
func listenURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
