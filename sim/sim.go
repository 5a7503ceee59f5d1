// Package sim is a stateful stand-in for Twilio and the carriers behind
// it, for tests, benchmarks and demos.
//
// A Sim has accounts with auth tokens and owned numbers. Its REST API
// creates, fetches and lists messages in Twilio's shapes and with Twilio's
// errors; each sender drains its queue at its throughput, carriers deliver
// or fail messages by destination prefix, and status callbacks are sent,
// signed, to each message's StatusCallback, late, reordered or doubled if
// so configured. Inbound messages, calls and client notifications are
// sent to the numbers' webhooks by a client that behaves like Twilio's:
// connection overrides, one retry on connect failures, the fallback URL,
// the same checks of the answer, and a debugger log of every failure with
// the code Twilio would give.
//
// Everything random is drawn from a source seeded with Config.Seed, and
// all timing uses the time package, so tests can run a Sim inside a
// testing/synctest bubble with Config.Transport keeping its webhooks in
// process.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ErrClosed is returned for work asked of a closed Sim.
var ErrClosed = errors.New("sim: closed")

// Sim is a simulated Twilio. It is safe for concurrent use.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	client *webhookClient

	ctx    context.Context // ends on Close: cancels webhooks in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // webhooks and timers' work in flight

	mu       sync.Mutex
	closed   bool
	timers   map[*time.Timer]struct{} // pending work, stopped by Close
	rng      *rand.Rand
	accounts map[string]*account // by SID
	numbers  map[string]*ownedNumber
	messages map[string]*Message // by SID
	alerts   []*Alert
	// debugger holds the alerts waiting to be POSTed to their accounts'
	// Debugger webhook URLs (Account.DebuggerURL); nil when none has one.
	debugger chan debuggerPost
}

// account is an account's state.
type account struct {
	Account
	services map[string]*service
	optOuts  map[string]bool
	messages []*Message // in creation order
	inFlight int        // REST requests being processed
}

// ownedNumber is a number's state: its sender queue.
type ownedNumber struct {
	Number
	account  *account
	nextFree time.Time // when the sender's queue is next empty
}

type service struct {
	Service
	numbers []*ownedNumber
	sticky  map[string]*ownedNumber // recipient → sender
}

// New returns a Sim for cfg, which it copies. Its webhooks log to log, or
// nowhere when log is nil.
func New(cfg Config, log *slog.Logger) (*Sim, error) {
	cfg = cfg.clone() // the caller's config stays as it was, now and later
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		cfg:      cfg,
		log:      log,
		ctx:      ctx,
		cancel:   cancel,
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7477696c696f)),
		accounts: map[string]*account{},
		numbers:  map[string]*ownedNumber{},
		messages: map[string]*Message{},
		timers:   map[*time.Timer]struct{}{},
	}
	s.client = newWebhookClient(cfg.Transport, cfg.Tunnels, cfg.HomeRegion)
	for _, a := range cfg.Accounts {
		acct := &account{Account: a, services: map[string]*service{}, optOuts: map[string]bool{}}
		for _, n := range a.OptOuts {
			acct.optOuts[n] = true
		}
		for _, n := range a.Numbers {
			s.numbers[n.Number] = &ownedNumber{Number: n, account: acct}
		}
		for _, sv := range a.Services {
			svc := &service{Service: sv, sticky: map[string]*ownedNumber{}}
			for _, n := range sv.Numbers {
				svc.numbers = append(svc.numbers, s.numbers[n])
			}
			acct.services[sv.SID] = svc
		}
		s.accounts[a.SID] = acct
		if a.DebuggerURL != "" && s.debugger == nil {
			s.debugger = make(chan debuggerPost, debuggerQueue)
			s.wg.Go(s.postDebugger)
		}
	}
	return s, nil
}

// Config returns a copy of the Sim's configuration, with its defaults
// filled in.
func (s *Sim) Config() Config { return s.cfg.clone() }

// Close stops the Sim: pending status changes and callbacks are dropped,
// webhooks in flight are cancelled and waited for. It may be called more
// than once.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closed = true
	for t := range s.timers {
		if t.Stop() {
			s.wg.Done() // its function will never run
		}
	}
	clear(s.timers)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.client.close()
}

// after runs f in d, in a goroutine of its own, unless the Sim is closed
// by then. s.mu must be held; f runs without it.
func (s *Sim) after(d time.Duration, f func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	var t *time.Timer
	// The function takes s.mu before reading t, so it cannot run before
	// the assignment below, made while the caller holds s.mu.
	t = time.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.timers, t)
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			f()
		}
	})
	s.timers[t] = struct{}{}
}

// newSID returns a new SID with the given two-letter prefix, drawn from
// the seeded source. s.mu must be held.
func (s *Sim) newSID(prefix string) string {
	return fmt.Sprintf("%s%016x%016x", prefix, s.rng.Uint64(), s.rng.Uint64())
}

// Server is a Sim served over HTTP.
type Server struct {
	URL string // base URL, such as http://127.0.0.1:41234

	srv    *http.Server
	served chan struct{}
}

// Serve serves s's Handler on addr (such as 127.0.0.1:0) until Close.
func (s *Sim) Serve(ctx context.Context, addr string) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: listen on %s: %w", addr, err)
	}
	srv := &Server{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(srv.served)
		_ = srv.srv.Serve(ln) // ErrServerClosed once closed
	}()
	return srv, nil
}

// Close stops the server, giving requests in flight a few seconds.
func (srv *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.srv.Close())
	}
	<-srv.served
	return err
}

func itoa(n int) string { return strconv.Itoa(n) }
