package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/listener"
)

// listenOptions are what switchboard listen is asked for.
type listenOptions struct {
	server, token, listener, forwardTo string
	kinds                              []string
	printJSON                          bool
	timeout                            time.Duration
	allowHTTP                          bool
}

// defaultListenServer is the Switchboard listen connects to when neither
// --server nor $SWITCHBOARD_SERVER says: serve's default address.
const defaultListenServer = "http://127.0.0.1:8080"

func (c *CLI) listenCmd() *cobra.Command {
	var o listenOptions
	cmd := &cobra.Command{
		Use:   "listen --forward-to URL [--server URL] [--listener NAME] [--token TOKEN]",
		Short: "Forward a running Switchboard's events to an app on this machine",
		Long: `Listen connects out to a running Switchboard (a WebSocket on its admin API)
as the listener --listener, and forwards the events of every route naming
that listener (listener = "NAME") to the app at --forward-to: a URL with a
path takes every event; one without (http://localhost:3000) gets each
route's events at the route's path. No inbound port is needed.

Events that arrived while no listener was connected are delivered first,
oldest first, then live ones. Each request is signed for the local URL, so
the app's own Twilio signature validation passes, and carries
X-Switchboard-Event-Id: an event may come again (at least once), with the
same id. Each answer of the app is recorded as a delivery attempt.

The token is the admin token or the listener's key ([[listeners]]):
--token, else $SWITCHBOARD_TOKEN, else $SWITCHBOARD_LISTENER_KEY. It is
never printed. Listen runs until SIGINT or SIGTERM, reconnecting when the
connection drops; it exits non-zero when the server refuses it.

It prints one line per request made to the app (time, route, kind, SID,
the attempt when not the first, "live" for a proxy route's request, the
app's status or the error, and the latency), or with --print-json one JSON
object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.listenClient(&o)
			if err != nil {
				return err
			}
			return c.runListen(cmd.Context(), client, &o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.allowHTTP, "allow-http", false, "allow a plain http --server beyond this machine (the token then crosses the network unencrypted)")
	f.StringVar(&o.server, "server", "", "base URL of the Switchboard's admin API (default $SWITCHBOARD_SERVER, else "+defaultListenServer+")")
	f.StringVar(&o.token, "token", "", "admin token or the listener's key (default $SWITCHBOARD_TOKEN, else $SWITCHBOARD_LISTENER_KEY)")
	f.StringVar(&o.listener, "listener", "dev", "the listener's name, as routes name it")
	f.StringVar(&o.forwardTo, "forward-to", "", "the local app's URL, such as http://localhost:3000 or http://localhost:3000/sms (required)")
	f.StringSliceVar(&o.kinds, "kind", nil, "take only events of this kind (repeatable, or a comma list; default all)")
	f.BoolVar(&o.printJSON, "print-json", false, "print one JSON object per request made to the app")
	f.DurationVar(&o.timeout, "timeout", 15*time.Second, "how long each request to the app may take")
	return cmd
}

// listenClient checks the options, fills in the defaults from the
// environment and builds the listener. A bad option fails here, before
// any connection, with what to give instead.
func (c *CLI) listenClient(o *listenOptions) (*listener.Client, error) {
	if o.server == "" {
		o.server = c.getenv("SWITCHBOARD_SERVER")
	}
	if o.server == "" {
		o.server = defaultListenServer
	}
	u, err := url.Parse(o.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("listen: --server %q: want the http(s) URL of the Switchboard, such as %s", o.server, defaultListenServer)
	}
	// Fails closed: the token would cross the network in the clear.
	if u.Scheme == "http" && !listener.LoopbackForward(o.server) && !o.allowHTTP {
		return nil, fmt.Errorf("listen: --server %q: plain http beyond this machine would send the token unencrypted; use https (or --allow-http on a network you trust)", o.server)
	}
	if o.token == "" {
		o.token = c.getenv("SWITCHBOARD_TOKEN")
	}
	if o.token == "" {
		o.token = c.getenv("SWITCHBOARD_LISTENER_KEY")
	}
	if o.token == "" {
		return nil, errors.New("listen: no token: give --token, or set SWITCHBOARD_TOKEN (the admin token) or SWITCHBOARD_LISTENER_KEY (the listener's key)")
	}
	if !switchboard.ValidListenerName(o.listener) {
		return nil, fmt.Errorf("listen: --listener %q: want 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit", o.listener)
	}
	if o.forwardTo == "" {
		return nil, errors.New("listen: --forward-to is required: the local app's URL, such as http://localhost:3000")
	}
	if _, err := listener.ForwardURL(o.forwardTo, "/x"); err != nil {
		return nil, fmt.Errorf("listen: --forward-to: %w", err)
	}
	var kinds []string
	for _, k := range o.kinds {
		k = strings.TrimSpace(k)
		if !switchboard.Kind(k).Valid() {
			return nil, fmt.Errorf("listen: --kind %q: want one of %v", k, switchboard.Kinds)
		}
		kinds = append(kinds, k)
	}
	if o.timeout <= 0 || o.timeout > time.Hour {
		return nil, fmt.Errorf("listen: --timeout %s: want above 0 and at most 1h", o.timeout)
	}
	return &listener.Client{
		Server: strings.TrimSuffix(o.server, "/"), Token: o.token, Listener: o.listener,
		ForwardTo: o.forwardTo, Kinds: kinds, Timeout: o.timeout,
		// Only what went wrong: stdout is the events'.
		Logger: slog.New(slog.NewJSONHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, nil
}

// runListen runs client until ctx ends, printing each connection to
// stderr and each request to stdout. A refusal ends it with the server's
// message and what is most likely wrong.
func (c *CLI) runListen(ctx context.Context, client *listener.Client, o *listenOptions) error {
	p := &listenPrinter{w: c.Stdout, paint: newPainter(isTerminal(c.Stdout)), json: o.printJSON, loc: time.Local}
	client.OnEvent = p.event
	client.OnConnect = func(routes []string) {
		p.setRoutes(routes)
		fmt.Fprintln(c.Stderr, readyLine(o.listener, o.forwardTo, routes))
	}
	client.OnDisconnect = func(err error) {
		if ctx.Err() == nil {
			fmt.Fprintf(c.Stderr, "Disconnected (%s); reconnecting…\n", clean(err.Error()))
		}
	}
	fmt.Fprintf(c.Stderr, "Connecting to %s as listener %s…\n", client.Server, o.listener)
	err := client.Run(ctx)
	if errors.Is(err, listener.ErrRefused) {
		return fmt.Errorf("listen: %w\nhint: is the token the admin token or the key of [[listeners]] name = %q, and does a route say listener = %q?",
			err, o.listener, o.listener)
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

// readyLine says where the events of routes go.
func readyLine(name, forwardTo string, routes []string) string {
	// The routes are the server's word: shown, never obeyed as escapes.
	routes = slices.Clone(routes)
	for i, r := range routes {
		routes[i] = clean(r)
	}
	if len(routes) == 0 {
		return fmt.Sprintf("Connected as listener %s, but no route names it: add listener = %q to a route in the server's configuration.", name, name)
	}
	targets := make([]string, 0, len(routes))
	same := true
	for _, r := range routes {
		u, err := listener.ForwardURL(forwardTo, r)
		if err != nil {
			u = forwardTo // checked before connecting; kept readable all the same
		}
		same = same && (len(targets) == 0 || u == targets[0])
		targets = append(targets, u)
	}
	var to string
	if same {
		to = targets[0]
	} else {
		pairs := make([]string, len(routes))
		for i, r := range routes {
			pairs[i] = r + " → " + targets[i]
		}
		to = strings.Join(pairs, ", ")
	}
	return fmt.Sprintf("Ready! Forwarding events of routes %s to %s (listener %s). Ctrl-C to stop.", strings.Join(routes, ", "), to, name)
}

// listenPrinter prints each request made to the app: an aligned line,
// coloured by outcome on a terminal, or a JSON object. Lines are whole:
// calls from several goroutines do not interleave.
type listenPrinter struct {
	w     io.Writer
	paint painter
	json  bool
	loc   *time.Location // of the line's time: the local zone

	mu         sync.Mutex
	routeWidth int
}

// Widths of the line's columns: the longest kind (client-notification),
// a Twilio SID (34), "attempt NN".
const (
	listenKindWidth    = 19
	listenSIDWidth     = 34
	listenAttemptWidth = 10
	listenMinRoute     = 6
)

// listenDeliveryJSON is --print-json's object; its field names are stable.
type listenDeliveryJSON struct {
	Time      string  `json:"time"` // RFC 3339 with nanoseconds, UTC
	EventID   string  `json:"event_id"`
	Route     string  `json:"route"`
	Kind      string  `json:"kind"`
	SID       string  `json:"sid"`
	Attempt   int     `json:"attempt"`
	Live      bool    `json:"live"`
	Status    int     `json:"status"` // 0: the app did not answer
	Error     string  `json:"error"`
	LatencyMS float64 `json:"latency_ms"`
}

func (p *listenPrinter) setRoutes(routes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range routes {
		p.routeWidth = max(p.routeWidth, len([]rune(cell(r, 0))))
	}
}

func (p *listenPrinter) event(d listener.Delivery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(listenDeliveryJSON{
			Time: d.At.UTC().Format(time.RFC3339Nano), EventID: d.EventID, Route: d.Route, Kind: d.Kind, SID: d.SID,
			Attempt: d.Attempt, Live: d.Live, Status: d.Status, Error: d.Error,
			LatencyMS: float64(d.Latency.Microseconds()) / 1000,
		})
		if err == nil {
			_, _ = p.w.Write(append(b, '\n'))
		}
		return
	}
	_, _ = io.WriteString(p.w, p.line(d)+"\n")
}

// line is one request as a line. Columns are padded before colouring, so
// escape codes do not move them.
func (p *listenPrinter) line(d listener.Delivery) string {
	attempt, live := "", ""
	if d.Attempt > 1 {
		attempt = fmt.Sprintf("attempt %d", d.Attempt)
	}
	if d.Live {
		live = "live"
	}
	var outcome string
	switch {
	case d.Error != "":
		outcome = p.paint.red("error: " + cell(d.Error, 120))
		if d.Status != 0 {
			outcome = p.paint.red(fmt.Sprintf("%d error: %s", d.Status, cell(d.Error, 120)))
		}
	case d.Status == 0:
		outcome = p.paint.red("no answer")
	case d.Status/100 == 2:
		outcome = p.paint.green(fmt.Sprint(d.Status))
	case d.Status/100 == 3 || d.Status/100 == 4:
		outcome = p.paint.yellow(fmt.Sprint(d.Status))
	default:
		outcome = p.paint.red(fmt.Sprint(d.Status))
	}
	return strings.TrimRight(fmt.Sprintf("%s  %-*s  %-*s  %-*s  %-*s  %-4s  %s  %s",
		d.At.In(p.loc).Format("15:04:05"),
		max(p.routeWidth, listenMinRoute), cell(d.Route, 0),
		listenKindWidth, cell(d.Kind, 0),
		listenSIDWidth, cell(d.SID, 0),
		listenAttemptWidth, attempt, live, outcome, listenLatency(d.Latency)), " ")
}

// listenLatency is a latency as people read it: ms below 10 s.
func listenLatency(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}

func (p painter) yellow(s string) string { return p.paint("33", s) }
