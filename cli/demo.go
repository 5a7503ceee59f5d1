package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/server"
	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/web"
)

// demoOptions are what switchboard demo is asked for.
type demoOptions struct {
	listen   string
	dir      string
	duration time.Duration
	rate     float64
	every    time.Duration
}

func (c *CLI) demoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--duration 1m] [--dir DIR] [--listen ADDR]",
		Short: "Run Switchboard with a simulated Twilio, a sample app and steady traffic",
		Long: `Demo runs the whole product in one process: the gateway on SQLite (in --dir,
or a temporary folder removed at the end) with the console, a simulated
Twilio that sends the gateway its webhooks and takes its outbound messages,
a sample app the gateway delivers to, and steady traffic: inbound messages
from simulated handsets through Twilio and the gateway to the app, and
outbound messages sent through the gateway's API, their status callbacks
coming back the same way.

It prints the console's URL and the admin token that signs in to it, then a
summary every few seconds. With --duration it stops by itself, prints a
final summary and exits 0 if at least one event reached the app and one
message was sent, non-zero otherwise; without, it runs until SIGINT or
SIGTERM. Everything listens on 127.0.0.1; the configuration is built for the
demo, and --config is not read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.duration < 0 || !(o.rate > 0) || o.rate > 100 || o.every <= 0 {
				return errors.New("demo: --duration must not be negative, --rate must be above 0 and at most 100, --summary-every positive")
			}
			return c.runDemo(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address the gateway listens on (port 0: a free one)")
	f.StringVar(&o.dir, "dir", "", "folder for the SQLite database, kept afterwards (default: a temporary folder, removed)")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long and check that events were delivered and messages sent (0: run until interrupted)")
	f.Float64Var(&o.rate, "rate", 5, "messages per second, inbound and outbound alternately")
	f.DurationVar(&o.every, "summary-every", 5*time.Second, "how often to print a summary")
	return cmd
}

// demoAccountSeed seeds the simulated account, its numbers and SIDs.
const demoAccountSeed = 1

// runDemo starts the parts, runs the traffic until ctx ends or the
// duration passes, and shuts everything down in the order that lets work
// in flight finish: traffic, gateway, simulator, app.
func (c *CLI) runDemo(ctx context.Context, o demoOptions) (err error) {
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "switchboard-demo-"); err != nil {
			return fmt.Errorf("demo: temporary folder: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: --dir: %w", err)
	}
	gatewayAddr, err := freeAddr("demo: --listen", o.listen)
	if err != nil {
		return err
	}
	gatewayURL := "http://" + gatewayAddr

	// The simulated Twilio: its long code sends inbound messages to the
	// gateway's /sms route, and its API takes the gateway's sends.
	simCfg := sim.DemoConfig(demoAccountSeed)
	acct := &simCfg.Accounts[0]
	number := acct.Numbers[0].Number
	acct.Numbers[0].SMSURL = gatewayURL + "/sms"
	acct.Numbers[0].Throughput = 2 * o.rate // no backlog at the sender
	// Logs go to stderr, only what went wrong: stdout is the demo's.
	quiet := slog.New(slog.NewJSONHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gwLog := slog.New(slog.NewJSONHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	tw, err := sim.New(simCfg, quiet)
	if err != nil {
		return err
	}
	defer tw.Close()
	twSrv, err := tw.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer twSrv.Close()

	// The sample app checks every delivery's signature, as an app should.
	counter := &demoCounter{}
	app := &sim.App{AuthToken: acct.AuthTokens[0]}
	appSrv, err := serveDemoApp(ctx, app, counter)
	if err != nil {
		return err
	}
	defer appSrv.close()

	token, err := newAdminToken()
	if err != nil {
		return err
	}
	cfg, err := demoConfig(gatewayAddr, filepath.Join(dir, "switchboard.db"), token, *acct, number, twSrv.URL, appSrv.url, 2*o.rate)
	if err != nil {
		return err
	}
	gw, err := startGateway(ctx, cfg, gwLog)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = gw.Shutdown(context.Background())
		}
	}()

	fmt.Fprintf(c.Stdout, "switchboard demo: gateway on %s, data in %s\n", gatewayURL, dir)
	fmt.Fprintf(c.Stdout, "console   %s/console/\n", gatewayURL)
	fmt.Fprintf(c.Stdout, "token     %s\n", token)
	fmt.Fprintf(c.Stdout, "twilio    %s (simulated; account %s, number %s)\n", twSrv.URL, acct.SID, number)
	fmt.Fprintf(c.Stdout, "app       %s (sample app, checking signatures)\n", appSrv.url)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if o.duration > 0 {
		runCtx, stop = context.WithTimeout(ctx, o.duration)
		defer stop()
	}
	started := time.Now()
	summary := func() demoSummary { return summarize(counter, tw, acct.SID) }
	traffic := &demoTraffic{
		sim: tw, number: number, gateway: gatewayURL, token: token, counter: counter,
		client: &http.Client{},
		rng:    mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 0)),
	}
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		traffic.run(runCtx, o.rate)
	}()
	ticker := time.NewTicker(o.every)
	defer ticker.Stop()
wait:
	for {
		select {
		case <-runCtx.Done():
			break wait
		case <-ticker.C:
			fmt.Fprintf(c.Stdout, "%s  %s\n", time.Since(started).Round(time.Second), summary())
		}
	}
	<-trafficDone

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	stopped = true
	shutdownErr := gw.Shutdown(sctx)
	final := summary()
	fmt.Fprintf(c.Stdout, "final  %s (after %s)\n", final, time.Since(started).Round(time.Second))
	if shutdownErr != nil {
		return fmt.Errorf("demo: shutdown: %w", shutdownErr)
	}
	if o.duration == 0 {
		return nil // interrupted: what ran is what the user saw
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demo: interrupted before --duration %s", o.duration)
	}
	return final.verdict()
}

// freeAddr is the gateway's address: listen, or, for port 0, a free port
// on its host; errors start with what, the flag's name. The gateway's public URL must be known before it starts (it
// is in the simulator's webhook URL and the status callback URL), so the
// port is found by listening once; another process taking it in between
// makes the start fail with a clear error rather than misroute anything.
func freeAddr(what, listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", what, listen, err)
	}
	if port != "0" {
		return loopbackAddr(listen), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", what, listen, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return loopbackAddr(addr), nil
}

// newAdminToken is a fresh random admin token: the demo's console is
// signed in to with it.
func newAdminToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("demo: admin token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// demoConfig is the gateway's configuration: the simulated account, an
// ack route for inbound messages and one for status callbacks, both to the
// app, and a pool of the simulated long code sending through the
// simulator. It fills in what config.Load would, then validates.
func demoConfig(addr, db, token string, acct sim.Account, number, simURL, appURL string, rate float64) (*config.Config, error) {
	cfg := config.Default()
	cfg.Listen = addr
	cfg.PublicURL = "http://" + addr
	cfg.Log.Level = "warn"
	cfg.Storage.URL = db
	cfg.Admin.Token = token
	cfg.Admin.DashboardInterval = 10 * time.Second // the console's charts move while one watches
	cfg.Delivery.BackoffBase = 200 * time.Millisecond
	cfg.Delivery.BackoffMax = 5 * time.Second
	cfg.Accounts = []config.Account{{SID: acct.SID, AuthTokens: acct.AuthTokens}}
	for _, p := range []string{"/sms", "/status"} {
		cfg.Routes = append(cfg.Routes, config.Route{
			Path: p, Account: acct.SID, Mode: config.ModeAck, Target: appURL + p, Kind: "auto", TwiML: "<Response/>",
			MaxAttempts: cfg.Delivery.MaxAttempts, MaxAge: cfg.Delivery.MaxAge, RedeliverOn: config.DefaultRedeliverOn, MaxInFlight: 64,
		})
	}
	cfg.Outbound.StatusRoute = "/status"
	cfg.Providers = []config.Provider{{Name: "sim", BaseURL: simURL, Account: acct.SID,
		ConnectTimeout: config.DefaultProviderConnect, ResponseTimeout: config.DefaultProviderResponse}}
	cfg.Pools = []config.Pool{{Name: "demo", Provider: "sim", Senders: []string{number}, Rate: rate,
		Purposes: []string{"otp", "transactional", "marketing"}}}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo: configuration: %w", err)
	}
	return &cfg, nil
}

// demoCounter counts what the demo sees happen.
type demoCounter struct {
	delivered atomic.Int64 // deliveries the app answered 2xx
	inbound   atomic.Int64 // inbound messages the gateway acknowledged to the simulator
	created   atomic.Int64 // outbound messages the gateway's API took
	failures  atomic.Int64 // traffic requests that failed
}

// demoSummary is one summary line's figures.
type demoSummary struct {
	delivered, inbound, created, sent, deliveredMessages, failures int64
}

func (s demoSummary) String() string {
	return fmt.Sprintf("events delivered %d · inbound messages %d · messages created %d, sent %d, delivered %d · traffic errors %d",
		s.delivered, s.inbound, s.created, s.sent, s.deliveredMessages, s.failures)
}

// verdict is nil when the demo showed the product working: at least one
// event reached the app and one message was sent; otherwise it says what
// did not happen.
func (s demoSummary) verdict() error {
	var problems []error
	if s.delivered == 0 {
		problems = append(problems, errors.New("no event was delivered to the app"))
	}
	if s.sent == 0 {
		problems = append(problems, errors.New("no message was sent"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo failed: %w", errors.Join(problems...))
	}
	return nil
}

// summarize reads the counters and the simulator's outbound messages:
// sent once they left the sender, delivered once the carrier said so.
func summarize(c *demoCounter, tw *sim.Sim, accountSID string) demoSummary {
	s := demoSummary{delivered: c.delivered.Load(), inbound: c.inbound.Load(), created: c.created.Load(), failures: c.failures.Load()}
	for _, m := range tw.Messages(accountSID) {
		if m.Direction != "outbound-api" {
			continue
		}
		if !m.Sent.IsZero() {
			s.sent++
		}
		if m.Status == sim.StatusDelivered {
			s.deliveredMessages++
		}
	}
	return s
}

// demoApp is the sample app served with a count of the deliveries it
// answered 2xx.
type demoApp struct {
	url    string
	srv    *http.Server
	served chan struct{}
}

func serveDemoApp(ctx context.Context, app *sim.App, counter *demoCounter) (*demoApp, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: sample app: %w", err)
	}
	a := &demoApp{url: "http://" + ln.Addr().String(), served: make(chan struct{})}
	app.PublicURL = a.url
	a.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			app.ServeHTTP(sw, r)
			if sw.status/100 == 2 && r.Header.Get("X-Switchboard-Event-Id") != "" {
				counter.delivered.Add(1)
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(a.served)
		_ = a.srv.Serve(ln)
	}()
	return a, nil
}

func (a *demoApp) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if a.srv.Shutdown(ctx) != nil {
		a.srv.Close()
	}
	<-a.served
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// demoTraffic makes the demo's traffic: inbound messages through the
// simulator, and outbound messages through the gateway's native API.
type demoTraffic struct {
	sim     *sim.Sim
	number  string // the simulator's number the gateway sends from and receives on
	gateway string
	token   string
	counter *demoCounter
	client  *http.Client
	rng     *mrand.Rand // used by run's goroutine only
}

// demoBodies are the messages handsets send and the app sends back.
var demoBodies = []string{"Is my order on its way?", "Your code is 482913", "Reminder: your appointment is tomorrow at 10:00",
	"Thanks!", "Can I change my delivery address?", "Your table is ready"}

// maxDemoInFlight bounds the traffic's requests in flight: a slow gateway
// makes the demo skip ticks rather than pile up requests.
const maxDemoInFlight = 16

// demoRequestTimeout bounds one message of the traffic: Twilio's own
// limit on a webhook.
const demoRequestTimeout = 15 * time.Second

// run sends one message at each tick of rate per second until ctx ends,
// inbound and outbound in turn, and waits for those in flight.
func (t *demoTraffic) run(ctx context.Context, rate float64) {
	ticker := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer ticker.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, maxDemoInFlight)
	for n := 0; ; n++ {
		handset := fmt.Sprintf("+1206555%04d", t.rng.IntN(10000))
		body := demoBodies[t.rng.IntN(len(demoBodies))]
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-slots }()
			// A message under way when the demo ends is finished, not
			// cut off: cancelling it would count as a failed webhook.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), demoRequestTimeout)
			defer cancel()
			var err error
			if n%2 == 0 {
				err = t.inbound(rctx, handset, body)
			} else {
				err = t.outbound(rctx, handset, body, n)
			}
			if err != nil {
				t.counter.failures.Add(1)
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// inbound has a handset text the simulator's number, which sends the
// webhook to the gateway.
func (t *demoTraffic) inbound(ctx context.Context, handset, body string) error {
	res, err := t.sim.ReceiveMessage(ctx, sim.InboundMessage{From: handset, To: t.number, Body: body})
	if err != nil {
		return err
	}
	if res.Webhook == nil || res.Webhook.Final().Error != nil {
		return errors.New("the gateway did not accept the webhook")
	}
	t.counter.inbound.Add(1)
	return nil
}

// outbound sends a message through the gateway's native API.
func (t *demoTraffic) outbound(ctx context.Context, handset, body string, n int) error {
	payload, err := json.Marshal(web.MessageRequestJSON{To: handset, Body: body, Pool: "demo"})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.gateway+"/api/v1/messages", bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("demo-%d-%d", time.Now().UnixNano(), n))
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("send: %s", resp.Status)
	}
	t.counter.created.Add(1)
	return nil
}

// startGateway builds and starts a gateway of cfg in this process, as
// demo and dev run one; on failure nothing is left open.
func startGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*server.Server, error) {
	gw, err := server.New(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := gw.Start(ctx); err != nil {
		gw.Store().Close()
		return nil, err
	}
	return gw, nil
}
