package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/config"
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
			if key == "" {
				return errors.New("--key is required: the idempotency key that makes sending again safe")
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			if cfg.Admin.Token == "" {
				return c.noAdminToken()
			}
			server := sendServer{url: serverURL, from: "--server"}
			if serverURL == "" {
				server = sendServer{url: listenURL(cfg.Listen), from: c.listenSource(cfg.Listen)}
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			hreq, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost,
				strings.TrimSuffix(server.url, "/")+"/api/v1/messages", bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("--server %q: %w", server.url, err)
			}
			hreq.Header.Set("Content-Type", "application/json")
			hreq.Header.Set("Authorization", "Bearer "+cfg.Admin.Token)
			hreq.Header.Set("Idempotency-Key", key)
			resp, err := (&http.Client{Timeout: sendTimeout}).Do(hreq)
			if err != nil {
				return c.unreachable(server, err)
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
				switch resp.StatusCode {
				case http.StatusUnauthorized:
					return fmt.Errorf("send: %s refused the admin token (%s: %s): admin.token%s (or SWITCHBOARD_ADMIN_TOKEN) must be the token that serve runs with",
						server.url, resp.Status, e.Error, c.inConfig())
				case http.StatusNotFound:
					return fmt.Errorf("send: %s (from %s) answered %s to POST /api/v1/messages: is it a switchboard serve? Pass its URL with --server",
						server.url, server.from, resp.Status)
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

// sendServer is the serve that send talks to, and where its URL came from.
type sendServer struct {
	url  string
	from string // "--server", "listen in FILE"…
}

// noAdminToken says which setting send is missing: a configuration at all,
// or the admin token in it.
func (c *CLI) noAdminToken() error {
	if c.configPath == "" {
		return errors.New("send: no configuration, so no admin token to call serve with: " +
			"pass --config FILE (the file serve runs with) or set SWITCHBOARD_CONFIG, or set SWITCHBOARD_ADMIN_TOKEN " +
			"(and --server URL unless serve listens on 127.0.0.1:8080)")
	}
	return fmt.Errorf("send: admin.token is empty in %s: set it (or SWITCHBOARD_ADMIN_TOKEN) to the token serve runs with; "+
		"with an empty token serve answers every API call 401", c.configPath)
}

// listenSource says where the listen address send derives serve's URL
// from came from.
func (c *CLI) listenSource(listen string) string {
	switch {
	case c.getenv(config.EnvPrefix+"LISTEN") != "":
		return "SWITCHBOARD_LISTEN"
	case c.configPath == "":
		return fmt.Sprintf("the default listen address %s: no --config given", listen)
	}
	return fmt.Sprintf("listen %q in %s", listen, c.configPath)
}

// inConfig is " in FILE" for the configuration file in use, or "".
func (c *CLI) inConfig() string {
	if c.configPath == "" {
		return ""
	}
	return " in " + c.configPath
}

// unreachable explains a request that got no answer: which URL was tried,
// where it came from, and what to do about it.
func (c *CLI) unreachable(server sendServer, err error) error {
	start := "switchboard serve"
	if c.configPath != "" {
		start += " --config " + c.configPath
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("send: nothing listens at %s (from %s): start the server with `%s`, or pass its URL with --server",
			server.url, server.from, start)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("send: cannot resolve the host of %s (from %s): %v", server.url, server.from, dnsErr)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Errorf("send: no answer from %s (from %s) within %v: the message may or may not be stored; "+
			"sending again with the same --key is safe", server.url, server.from, sendTimeout)
	}
	return fmt.Errorf("send: cannot reach switchboard serve at %s (from %s): %w", server.url, server.from, err)
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
