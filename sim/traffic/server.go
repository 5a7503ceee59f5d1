package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// EventIDHeader is the header by which Switchboard names the event a
// delivery carries.
const EventIDHeader = "X-Switchboard-Event-Id"

// emptyTwiML is the "do nothing" answer to a messaging webhook.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// ErrSinkClosed is returned by Sink.WaitFor once the sink is closed, as no
// more events can arrive.
var ErrSinkClosed = errors.New("sink closed")

// server is an HTTP server on an ephemeral loopback port.
type server struct {
	srv      *http.Server
	url      string
	served   chan struct{} // closed when Serve has returned
	stopOnce sync.Once
}

// startServer serves h on addr, a loopback address, until stop is called.
// ctx is only for opening the listener; callers tie the server's life to it.
func startServer(ctx context.Context, addr string, h http.Handler) (*server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("listen address %q: %w", addr, ErrNotLoopback)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		url:    "http://" + ln.Addr().String(),
		served: make(chan struct{}),
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // always ErrServerClosed once stopped
	}()
	return s, nil
}

// stop shuts the server down, giving requests in flight a few seconds to
// finish, and waits until it has stopped. It may be called more than once.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close() // in-flight requests overran; cut them off
		}
		<-s.served
	})
}

// StartReference starts the reference server on an ephemeral loopback
// port. It answers every request, on any path, with empty TwiML after
// reading its body: the fastest a webhook endpoint can be, against which
// Switchboard's durable intake is measured.
//
// url has no path, so append the route: url + "/sms". The server runs until
// stop is called or ctx ends; stop waits for it to have stopped.
func StartReference(ctx context.Context) (url string, stop func(), err error) {
	s, err := startServer(ctx, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // a real endpoint reads the form
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, emptyTwiML)
	}))
	if err != nil {
		return "", nil, fmt.Errorf("start reference server: %w", err)
	}
	unhook := context.AfterFunc(ctx, s.stop)
	return s.url, func() {
		unhook()
		s.stop()
	}, nil
}

// Sink is an application that Switchboard delivers to. It answers 204 to
// every request after reading its body, and counts deliveries by the event
// they carry in EventIDHeader. A Sink is safe for concurrent use.
type Sink struct {
	srv *server

	mu          sync.Mutex
	unhook      func() bool // cancels closing the sink when its context ends
	deliveries  int
	seen        map[string]struct{}
	duplicates  int
	first, last time.Time // arrival of the first and latest new event
	waiters     []*waiter
	closed      bool
}

// waiter is a WaitFor call blocked until n distinct events have arrived.
type waiter struct {
	n    int
	done chan struct{}
}

// StartSink starts a Sink on an ephemeral loopback port. It runs until
// Close is called or ctx ends.
func StartSink(ctx context.Context) (*Sink, error) {
	return StartSinkAt(ctx, "127.0.0.1:0")
}

// StartSinkAt starts a Sink on addr, which must be a loopback address, so
// that a running Switchboard's route can target it.
func StartSinkAt(ctx context.Context, addr string) (*Sink, error) {
	s := &Sink{seen: make(map[string]struct{})}
	srv, err := startServer(ctx, addr, http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, fmt.Errorf("start sink: %w", err)
	}
	s.srv = srv
	// Under the lock: if ctx is already done, Close may run at once.
	s.mu.Lock()
	s.unhook = context.AfterFunc(ctx, s.Close)
	s.mu.Unlock()
	return s, nil
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		// Not a delivery Switchboard could have considered done.
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.record(r.Header.Get(EventIDHeader), time.Now())
	w.WriteHeader(http.StatusNoContent)
}

// record counts a delivery of event id, which may be empty, at t.
func (s *Sink) record(id string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries++
	if id == "" {
		return // not an event; counted only as a delivery
	}
	if _, ok := s.seen[id]; ok {
		s.duplicates++
		return
	}
	s.seen[id] = struct{}{}
	if s.first.IsZero() {
		s.first = t
	}
	s.last = t
	// Wake the waiters this event satisfies, keeping the others in place.
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if len(s.seen) >= w.n {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
}

// URL returns the sink's base URL, which has no path; the sink answers on
// any path.
func (s *Sink) URL() string { return s.srv.url }

// Delivered returns the number of distinct events delivered.
func (s *Sink) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Duplicates returns the number of deliveries of an event delivered before.
func (s *Sink) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

// Deliveries returns the number of requests received, including
// duplicates and requests without an EventIDHeader.
func (s *Sink) Deliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveries
}

// Rate returns the distinct events delivered per second between the
// arrivals of the first and the latest of them, or zero before two have
// arrived at distinct times.
func (s *Sink) Rate() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	span := s.last.Sub(s.first)
	if span <= 0 {
		return 0
	}
	return float64(len(s.seen)) / span.Seconds()
}

// WaitFor blocks until n distinct events have been delivered, and returns
// nil, or until ctx ends or the sink is closed, and returns an error.
func (s *Sink) WaitFor(ctx context.Context, n int) error {
	s.mu.Lock()
	if len(s.seen) >= n {
		s.mu.Unlock()
		return nil
	}
	if s.closed {
		got := len(s.seen)
		s.mu.Unlock()
		return fmt.Errorf("wait for %d events, got %d: %w", n, got, ErrSinkClosed)
	}
	w := &waiter{n: n, done: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	select {
	case <-w.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.seen) < n { // woken by Close
			return fmt.Errorf("wait for %d events, got %d: %w", n, len(s.seen), ErrSinkClosed)
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		s.removeWaiter(w)
		return fmt.Errorf("wait for %d events, got %d: %w", n, len(s.seen), context.Cause(ctx))
	}
}

// removeWaiter drops w, if it is still waiting. s.mu must be held.
func (s *Sink) removeWaiter(w *waiter) {
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// Close stops the sink and wakes every WaitFor call with ErrSinkClosed.
// Counts remain readable. It may be called more than once.
func (s *Sink) Close() {
	s.mu.Lock()
	unhook := s.unhook
	s.mu.Unlock()
	if unhook != nil {
		unhook()
	}
	s.srv.stop() // before taking the lock: requests in flight need it
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, w := range s.waiters {
		close(w.done)
	}
	s.waiters = nil
}
