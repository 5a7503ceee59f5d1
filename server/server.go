// Package server assembles Switchboard from its configuration: the store,
// webhook intake, delivery workers and the admin API behind one listener.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/alerting"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/groupcommit"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/listener"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/notify"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/pausewatch"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/retention"
	"github.com/switchboard-dev/switchboard/rollup"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
	"github.com/switchboard-dev/switchboard/web"
)

// OpenStore opens the store the configuration names, applying migrations.
func OpenStore(ctx context.Context, s config.Storage, logger *slog.Logger, commit groupcommit.Options) (switchboard.Store, error) {
	if s.IsPostgres() {
		st, err := postgres.Open(ctx, s.URL, logger, postgres.WithCommit(commit))
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return st, nil
	}
	st, err := sqlite.Open(ctx, s.URL, logger, sqlite.WithCommit(commit), sqlite.WithIntegrityCheck(sqlite.IntegrityCheck(s.IntegrityCheck)))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", s.URL, err)
	}
	return st, nil
}

// failingStore is a store that can fail for good while running: SQLite
// after an I/O error or on finding its database damaged (see
// sqlite.Store.Failed). PostgreSQL does not: a failed commit there is one
// request's 503, and the server itself handles a failed fsync (it stops
// and recovers from its write-ahead log), so the next commit that
// succeeds is durable.
type failingStore interface {
	// Failed is closed once the store has failed; Err then says why.
	Failed() <-chan struct{}
	Err() error
}

// Server is a running Switchboard.
type Server struct {
	draining  atomic.Bool // shutting down: /readyz answers 503
	cfg       *config.Config
	logger    *slog.Logger
	store     switchboard.Store
	metrics   *metrics.Metrics
	ingest    *ingest.Handler
	deliverer *deliver.Deliverer
	doctor    *routeDoctor
	sender    *outbound.Sender // nil without pools: nothing is sent
	stopBeat  func()           // ends the sender's heartbeat
	pruner    *retention.Pruner
	rollups   *rollup.Worker      // the dashboard's aggregates and samples
	alerts    *alerting.Evaluator // nil when alerting.enabled is off
	ls        listeners           // see listen.go
	listeners *listener.Hub       // the connected listeners (switchboard listen); see listeners.go
	node      string              // this process among replicas: its heartbeats and its jobs' worker
	liveness  *liveness           // PostgreSQL: heartbeats, rescue of stopped replicas' jobs, the lease; see liveness.go
	pauses    *pausewatch.Watcher // this process's stalls, for deliveries
	served    chan error
}

// New opens the store and builds every component; Start begins serving.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Server, error) {
	m := metrics.New()
	store, err := OpenStore(ctx, cfg.Storage, logger, groupcommit.Options{
		MaxBatch:  cfg.Ingest.MaxBatch,
		QueueSize: cfg.Ingest.QueueSize,
		Flushers:  4, // PostgreSQL commits several batches at once; SQLite ignores this
		Observe: func(n int, took time.Duration) {
			m.CommitBatch.Observe(float64(n))
			m.CommitSeconds.Observe(took.Seconds())
		},
	})
	if err != nil {
		return nil, err
	}
	pools := make([]string, len(cfg.Pools))
	for i, p := range cfg.Pools {
		pools[i] = p.Name
	}
	m.WatchStore(store, logger, pools...)

	var inRoutes []ingest.Route
	var outRoutes []deliver.Route
	for _, r := range cfg.Routes {
		acct, _ := cfg.Account(r.Account) // Validate guarantees it exists
		kind := switchboard.Kind(r.Kind)
		if r.Kind == "auto" {
			kind = ""
		}
		inRoutes = append(inRoutes, ingest.Route{Path: r.Path, AccountSID: acct.SID, Tokens: acct.AuthTokens, Kind: kind,
			Mode: ingest.Mode(r.Mode), TwiML: []byte(r.TwiML), Budget: r.Budget})
		outRoutes = append(outRoutes, deliver.Route{Path: r.Path, Target: r.Target, SignToken: acct.AuthTokens[0],
			MaxAttempts: r.MaxAttempts, MaxAge: r.MaxAge, RedeliverOn: r.RedeliverOn, MaxInFlight: r.MaxInFlight,
			Listener: r.Listener})
	}
	notifiers, err := notifierRoutes(cfg, notify.Options{ConnectTimeout: cfg.Delivery.ConnectTimeout})
	if err != nil {
		store.Close()
		return nil, err
	}
	outRoutes = append(outRoutes, notifiers...)
	s := &Server{cfg: cfg, logger: logger, store: store, metrics: m, served: make(chan error, 2),
		rollups: rollup.New(store, rollup.Options{Interval: cfg.Admin.DashboardInterval, Logger: logger})}
	// Where URLs API callers choose may connect; Validate guarantees the
	// allowlist parses.
	callers, err := egress.Parse(cfg.Egress.Allow)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("egress.allow: %w", err)
	}
	s.node = uuid.NewString()
	var lease deliver.Lease // nil: one process delivers (SQLite)
	if ls, ok := store.(livenessStore); ok && cfg.Storage.IsPostgres() {
		s.liveness = newLiveness(ls, s.node, logger)
		if lw, ok := store.(leaderStore); ok {
			s.liveness.leader = newLeaderWatch(lw, s.node, logger, m)
		}
		lease = s.liveness
	}
	s.listeners = newListenerHub(cfg, store, &s.deliverer, m, logger)
	// A stall of this process (SIGSTOP, a frozen VM) is not the app's
	// timeout: deliveries ask the watcher how long the process was away.
	s.pauses = pausewatch.New(pausewatch.DefaultTick)
	d := cfg.Delivery
	s.deliverer = deliver.New(store, deliver.Options{
		Routes: outRoutes, ConnectTimeout: d.ConnectTimeout, Timeout: d.Timeout,
		Policy:          switchboard.RetryPolicy{Base: d.BackoffBase, Max: d.BackoffMax, MaxRetryAfter: max(d.BackoffMax, time.Hour)},
		BreakerFailures: d.BreakerFailures, BreakerOpenFor: d.BreakerOpenFor, Workers: d.Workers, Metrics: m, Logger: logger,
		Egress: callers, Listeners: s.listeners, Pauses: s.pauses, Lease: lease,
	})
	if cfg.Alerting.Enabled {
		s.alerts = newAlerts(cfg, store, s.deliverer, m, logger)
	}
	m.WatchBreakers(s.deliverer.Breakers)
	var routes []outbound.PoolRoute
	if len(cfg.Pools) > 0 {
		var sendLease outbound.Lease // nil: one process sends (SQLite)
		if s.liveness != nil {
			sendLease = s.liveness
		}
		if s.sender, routes, err = newSender(cfg, store, logger, m, s.rollups.Sampler(), s.node, sendLease); err != nil {
			store.Close()
			return nil, err
		}
		m.Registry.MustRegister(s.sender.Collector())
	}
	// One service creates messages for both send APIs and applies what
	// status callbacks and keywords say of them.
	messages := outbound.NewService(store, outbound.ServiceOptions{Pools: routes, Metrics: m, DedupWindow: cfg.Outbound.DedupWindow})
	s.ingest = ingest.New(ingest.Options{
		Store: store, Routes: inRoutes, PublicURL: cfg.PublicURL, TrustForwarded: cfg.Ingest.TrustForwarded,
		MaxBodyBytes: cfg.Ingest.MaxBodyBytes, MaxBodyMemory: cfg.Ingest.MaxBodyMemory, BodyReadTimeout: cfg.Ingest.BodyReadTimeout,
		RecordPerSecond: cfg.Ingest.RecordPerSecond, RecordPerSource: cfg.Ingest.RecordPerSource,
		AckTimeout: cfg.Ingest.AckTimeout, Metrics: m, Logger: logger,
		Proxy: s.deliverer,
		// With pools, status callbacks track the messages sent and
		// inbound STOP/START keywords maintain the suppression lists.
		Outbound: len(cfg.Pools) > 0, Messages: messages, Samples: s.rollups.Sampler(),
	})
	s.doctor = &routeDoctor{cfg: cfg, logger: logger, egress: callers}
	pacing := retention.SharedWriter
	if cfg.Storage.IsPostgres() {
		pacing = retention.Concurrent
	}
	s.pruner = retention.New(store, retention.Options{Retention: cfg.Retention.Policy(), Interval: cfg.Retention.Interval,
		BatchSize: cfg.Retention.BatchSize, Pacing: pacing, Metrics: m, Logger: logger})
	adminOpts := []web.Option{web.WithDoctor(s.doctor), web.WithTwilioAccounts(twilioAccounts(cfg.Accounts)), web.WithEgress(callers),
		web.WithMessages(messages), web.WithPassThrough(passThrough(cfg, m)), web.WithAlerts(cfg.AlertRules()),
		web.WithListeners(s.listeners, listenerKeys(cfg)), web.WithDraining(s.draining.Load)}
	if cfg.Admin.Redact {
		adminOpts = append(adminOpts, web.WithRedaction())
	}
	admin := web.New(store, cfg.Admin.Token, m.Handler(), logger, adminOpts...)
	var consoleHandler http.Handler = http.NotFoundHandler()
	if c := s.newConsole(cfg, messages); c != nil {
		consoleHandler = c
	}
	if err := s.setupHTTP(admin, consoleHandler); err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

// newAlerts builds the evaluator of the configured alert rules; their
// notifications go to every [[notifiers]] entry a rule names (all when
// it names none).
func newAlerts(cfg *config.Config, store switchboard.Store, d *deliver.Deliverer, m *metrics.Metrics, logger *slog.Logger) *alerting.Evaluator {
	notifiers := make([]string, len(cfg.Notifiers))
	for i, n := range cfg.Notifiers {
		notifiers[i] = n.Name
	}
	return alerting.New(alerting.Options{Store: store, Rules: cfg.AlertRules(), Notifiers: notifiers, Breakers: d.BreakersOpen,
		Interval: cfg.Alerting.Interval, PublicURL: cfg.PublicURL, RunbookBase: cfg.Alerting.RunbookBase, Metrics: m, Logger: logger})
}

// writeTimeout bounds writing an answer, from the end of the request's
// headers: a pass-through's whole exchange fits in it.
const writeTimeout = 30 * time.Second

// twilioAccounts are the configured accounts as the Twilio-compatible API
// authenticates them.
func twilioAccounts(accounts []config.Account) []web.TwilioAccount {
	out := make([]web.TwilioAccount, len(accounts))
	for i, a := range accounts {
		keys := make([]web.TwilioAPIKey, len(a.APIKeys))
		for j, k := range a.APIKeys {
			keys[j] = web.TwilioAPIKey{SID: k.SID, Secret: k.Secret}
		}
		out[i] = web.TwilioAccount{SID: a.SID, Tokens: a.AuthTokens, APIKeys: keys}
	}
	return out
}

// passThrough is how the Twilio-compatible API passes on what it does not
// serve: each account's requests go to the first [[providers]] entry of
// that account, through a transport of its own with the provider's
// connect and response timeouts, and no longer than the server's write
// timeout allows.
func passThrough(cfg *config.Config, m *metrics.Metrics) web.PassThrough {
	pt := web.PassThrough{Timeout: writeTimeout, Metrics: m}
	for _, p := range cfg.Providers {
		acct, _ := cfg.Account(p.Account) // Validate guarantees it exists
		base, err := url.Parse(p.BaseURL)
		if err != nil {
			continue // Validate refuses it
		}
		pt.Providers = append(pt.Providers, web.PassThroughProvider{
			Account: acct.SID, BaseURL: base, Transport: providerHTTPClient(p).Transport,
		})
	}
	return pt
}

// routeRequest sends Switchboard's own endpoints (the admin API, the
// Twilio-compatible API under /2010-04-01/, the pass-through to Twilio's
// other hosts under /{host}.twilio.com/ and the operational endpoints) to
// the admin server, the console's paths to the console, and everything
// else to webhook intake, which answers 404 for unknown paths. Config
// validation keeps webhook routes off these paths.
func (s *Server) routeRequest(admin, console http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/console" {
			http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
			return
		}
		if strings.HasPrefix(p, "/console/") {
			console.ServeHTTP(w, r)
			return
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, web.TwilioPrefix) || web.IsTwilioHostPrefix(first) ||
			p == "/healthz" || p == "/readyz" || p == "/metrics" {
			admin.ServeHTTP(w, r)
			return
		}
		s.ingest.ServeHTTP(w, r)
	})
}

// Store is the server's store.
func (s *Server) Store() switchboard.Store { return s.store }

// Start listens on the configured address and starts the delivery workers.
func (s *Server) Start(ctx context.Context) error {
	if err := s.listen(); err != nil {
		return err
	}
	d := s.cfg.Delivery
	// Workers outlive ctx: Shutdown stops them gracefully instead.
	// A job's deliveries run in parallel, so one normally lasts about one
	// attempt. Past JobTimeout the job is cancelled: attempts in flight are
	// recorded as interrupted and due again, the rest wait for the job's
	// retry, and the attempt counts keep any of them from being delivered
	// twice. Only past RescueAfter does another process take over a job whose
	// own process died (on SQLite a restart takes them back at once).
	jobTimeout := d.Timeout + 15*time.Second
	dc := switchboard.DeliveryConfig{
		Workers: d.Workers, PollInterval: d.PollInterval, JobTimeout: jobTimeout, RescueAfter: jobTimeout + 15*time.Second,
		Rescued: func(kind string) {
			s.metrics.Rescued.WithLabelValues(kind).Inc()
			s.logger.Info("took over a job of a process that stopped while running it", "kind", kind)
		},
	}
	s.stopBeat = func() {}
	s.pauses.Start()
	if !d.Enabled {
		s.logger.Warn("delivery disabled (delivery.enabled = false): webhooks are stored and messages taken, but nothing is delivered or sent by this process")
	} else if err := s.startDelivery(ctx, dc); err != nil {
		s.ls.publicLn.Close()
		if s.ls.adminLn != nil {
			s.ls.adminLn.Close()
		}
		return err
	}
	// Status callbacks a crash kept from their messages are applied again.
	s.ingest.StartRecovery(context.WithoutCancel(ctx))
	s.pruner.Start()
	s.rollups.Start()
	if s.alerts != nil {
		s.alerts.Start()
		s.logAlerting()
	}
	s.serve()
	if s.cfg.Doctor.CheckAtStartup {
		go s.doctor.logRouteChecks(context.WithoutCancel(ctx))
	}
	s.logger.Info("switchboard listening", "addr", s.Addr(), "admin_addr", s.AdminAddr(), "scheme", s.Scheme(), "routes", len(s.cfg.Routes),
		"pools", len(s.cfg.Pools), "store", storeKind(s.cfg.Storage), "node", s.node, "version", switchboard.Version)
	return nil
}

// startDelivery starts the delivery and send workers, and the sender's
// heartbeat.
func (s *Server) startDelivery(ctx context.Context, dc switchboard.DeliveryConfig) error {
	dc.Node = s.node
	if s.liveness != nil {
		// The lease is held before the first job is fetched.
		s.liveness.start(context.WithoutCancel(ctx))
	}
	if s.sender != nil {
		dc.Sender, dc.SendWorkers = s.sender, s.cfg.Outbound.SendWorkers
		s.stopBeat = s.sender.StartHeartbeat(context.WithoutCancel(ctx))
	}
	if err := s.store.StartDelivery(context.WithoutCancel(ctx), s.deliverer, dc); err != nil {
		s.stopBeat()
		if s.liveness != nil {
			s.liveness.end(context.WithoutCancel(ctx))
		}
		return fmt.Errorf("start delivery: %w", err)
	}
	return nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string { return s.ls.publicLn.Addr().String() }

// Shutdown stops gracefully, within ctx: it stops accepting connections
// and finishes the acks in flight (each is stored before it is answered),
// flushes intake, and meanwhile drains delivery (see drain); then it gives
// up the process's lease and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	drained := make(chan error, 1)
	go func() { drained <- s.drain(ctx) }()
	var errs []error
	if err := s.shutdownHTTP(ctx); err != nil {
		errs = append(errs, err)
	}
	// Listeners' connections are hijacked, so the HTTP shutdown neither
	// waits for nor ends them; their sessions record attempts, so they
	// end before the store closes.
	s.listeners.Close()
	// Proxy outcomes answered but not yet recorded, and outbound
	// follow-ups; status callbacks still retrying for an SID not yet
	// recorded give up when ctx ends.
	if err := s.ingest.WaitContext(ctx); err != nil {
		errs = append(errs, err)
	}
	s.pruner.Stop()
	if s.alerts != nil {
		s.alerts.Stop()
	}
	if err := s.rollups.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := <-drained; err != nil {
		errs = append(errs, err)
	}
	// Only now, with no job and no request of this process left running:
	// the others take at once anything a drain cut short left running.
	if s.liveness != nil {
		s.liveness.end(context.WithoutCancel(ctx))
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	s.pauses.Stop()
	s.logger.Info("switchboard stopped")
	return errors.Join(errs...)
}

// handBackTime is the most of the grace kept for handing back the jobs a
// drain cut short.
const handBackTime = time.Second

// drain stops taking delivery and send jobs and lets the running ones
// finish until ctx ends; those still running then are cancelled: their
// deliveries in flight are recorded as interrupted, and their jobs run
// again in another process (or in this one's successor). The process's
// lease is held meanwhile, so that what finishes is delivered.
func (s *Server) drain(ctx context.Context) error {
	start := time.Now()
	finish := ctx
	if deadline, ok := ctx.Deadline(); ok {
		// Jobs finish until shortly before the grace ends, leaving time to
		// cancel what is left, record it, give the lease up and close the
		// store, so that the process exits within its grace.
		left := time.Until(deadline)
		var cancel context.CancelFunc
		finish, cancel = context.WithDeadline(ctx, deadline.Add(-min(left/4, handBackTime)))
		defer cancel()
		s.logger.Info("draining: no new jobs are taken; running ones finish until the grace ends",
			"grace_left", left.Round(time.Millisecond))
	}
	err := s.store.StopDelivery(finish)
	if s.stopBeat != nil {
		s.stopBeat()
	}
	if err != nil {
		return fmt.Errorf("stop delivery: %w", err)
	}
	s.logger.Info("drained", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Stopping is how Run stops once its context is done.
type Stopping struct {
	// Delay is how long it goes on serving, with /readyz answering 503,
	// before it shuts down: time for a load balancer to stop sending it
	// requests, which it would otherwise refuse. Zero shuts down at once.
	Delay time.Duration
	// Grace bounds the shutdown itself (see Shutdown).
	Grace time.Duration
}

// Run starts the server and serves until ctx is done, then stops as stop
// says. If the store fails meanwhile (see failingStore), Run stops at once
// and returns the failure, leaving the store as it is: see abandon.
func (s *Server) Run(ctx context.Context, stop Stopping) error {
	if err := s.Start(ctx); err != nil {
		s.store.Close()
		return err
	}
	var failed <-chan struct{} // nil: never
	if f, ok := s.store.(failingStore); ok {
		failed = f.Failed()
	}
	var serveErr error
	select {
	case <-ctx.Done():
		if stop.Delay > 0 {
			s.draining.Store(true)
			s.logger.Info("shutting down after a delay: /readyz answers 503 meanwhile", "delay", stop.Delay)
			t := time.NewTimer(stop.Delay)
			select {
			case <-t.C:
			case serveErr = <-s.served:
			case <-failed:
				t.Stop()
				return s.abandon(ctx, stop.Grace, s.store.(failingStore).Err())
			}
			t.Stop()
		}
	case serveErr = <-s.served:
	case <-failed:
		return s.abandon(ctx, stop.Grace, s.store.(failingStore).Err())
	}
	s.draining.Store(true)
	s.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stop.Grace)
	defer cancel()
	err := s.Shutdown(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("serve: %w", serveErr), err)
	}
	return err
}

// abandon stops serving after the store failed with err: the listener
// closes, requests in flight get their answers (503: the store refuses
// them) within grace, and err comes back for the process to exit non-zero
// and its supervisor to restart it. It does not stop delivery or close the
// store: both would write, and the store's files must stay as the failure
// left them for the next process to recover.
func (s *Server) abandon(ctx context.Context, grace time.Duration, err error) error {
	s.logger.Error("store failed: no longer acknowledging webhooks; exiting without closing it, restart to recover",
		"err", err)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	_ = s.shutdownHTTP(sctx)
	return fmt.Errorf("store failed: %w", err)
}

// newSender builds the send path of the configured pools: a Messages REST
// client per provider and the outbound.Sender over them, with the pools as
// the send APIs route to them, its outcomes and 429s counted in m and its
// 429s in samples, fenced by lease (nil for none).
// Validate guarantees every reference exists and that a sender belongs to
// one pool.
func newSender(cfg *config.Config, store switchboard.Store, logger *slog.Logger, m *metrics.Metrics, samples outbound.Samples, node string, lease outbound.Lease) (*outbound.Sender, []outbound.PoolRoute, error) {
	// Replicas share a PostgreSQL store, and each sender's turns with it;
	// one SQLite file has one process.
	var heartbeat time.Duration
	if cfg.Storage.IsPostgres() {
		heartbeat = outbound.DefaultHeartbeat
	}
	clients := map[string]*twilio.MessagesClient{} // by provider name
	accounts := map[string]string{}                // provider name → account SID
	for _, p := range cfg.Providers {
		acct, _ := cfg.Account(p.Account)
		c := twilio.NewMessagesClient(p.BaseURL, acct.SID, acct.AuthTokens[0])
		c.HTTPClient = providerHTTPClient(p)
		clients[p.Name], accounts[p.Name] = c, acct.SID
	}
	var pools []outbound.Pool
	var routes []outbound.PoolRoute
	for _, p := range cfg.Pools {
		purposes := make([]switchboard.Purpose, len(p.Purposes))
		for i, pu := range p.Purposes {
			purposes[i] = switchboard.Purpose(pu)
		}
		pools = append(pools, outbound.Pool{Name: p.Name, Senders: p.Senders, Rate: p.Rate, BrownoutDelay: p.BrownoutDelay,
			Client: clients[p.Provider]})
		routes = append(routes, outbound.PoolRoute{Name: p.Name, AccountSID: accounts[p.Provider], Senders: p.Senders, Purposes: purposes})
	}
	sender, err := outbound.New(store, outbound.Options{
		Pools: pools, StatusCallback: cfg.StatusCallbackURL(), Logger: logger, Metrics: m, Samples: samples,
		Policy:    outbound.Policy{MaxAttempts: cfg.Outbound.MaxAttempts, MaxAge: cfg.Outbound.MaxAge},
		Heartbeat: heartbeat, Node: node, Lease: lease,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("outbound: %w", err)
	}
	return sender, routes, nil
}

// providerHTTPClient is twilio.NewHTTPClient with the provider's connect
// and response timeouts.
func providerHTTPClient(p config.Provider) *http.Client {
	c := twilio.NewHTTPClient()
	t := c.Transport.(*http.Transport)
	dialer := &net.Dialer{Timeout: p.ConnectTimeout, KeepAlive: 30 * time.Second}
	t.DialContext, t.TLSHandshakeTimeout, t.ResponseHeaderTimeout = dialer.DialContext, p.ConnectTimeout, p.ResponseTimeout
	c.Timeout = max(c.Timeout, 2*p.ConnectTimeout+p.ResponseTimeout)
	return c
}

func storeKind(s config.Storage) string {
	if s.IsPostgres() {
		return "postgres"
	}
	return "sqlite"
}

// logAlerting says at start what is watched and who is told: the default
// rules ship enabled, and without [[notifiers]] their alerts reach only
// the console, the API and the metrics.
func (s *Server) logAlerting() {
	rules := s.cfg.AlertRules()
	enabled := 0
	for _, r := range rules {
		if !r.Disabled {
			enabled++
		}
	}
	s.logger.Info("alerting", "rules", enabled, "defaults", s.cfg.Alerting.Defaults, "notifiers", len(s.cfg.Notifiers),
		"interval", s.cfg.Alerting.Interval)
	if len(s.cfg.Notifiers) == 0 && enabled > 0 {
		s.logger.Warn("alerts are evaluated but nobody is notified: add [[notifiers]] (see docs/notifiers.md); meanwhile they show in the console and at /api/v1/alerts")
	}
}
