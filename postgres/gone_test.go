package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/storetest"
)

// cutProxy stands between the store and PostgreSQL, so that a test can take
// the database away (every connection dropped, new ones refused) and bring
// it back, as a failover or a network partition would.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.drop() })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// track registers a pair of connections, unless the database is cut.
func (p *cutProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

// drop closes every connection through the proxy.
func (p *cutProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	p.mu.Unlock()
	if cut {
		p.drop()
	}
}

// throughProxy returns the address of the database raw names, and raw
// with the proxy's address, addr, in its place.
func throughProxy(t *testing.T, raw string, p func(target string) (addr string)) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Skip("the test database's URL is not a postgres:// URL with a host; the proxy needs one")
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	u.Host = p(target)
	return u.String()
}

// TestDatabaseGoneFailsClosedAndRecovers takes the database away under a
// running store. While it is gone, every write fails (intake answers 503
// and Twilio retries; an API caller gets an error) and no call hangs past
// its context; nothing is reported stored that is not. When it is back,
// the store works again without a restart, what was acknowledged before is
// there, and a retry of what failed is stored exactly once.
func TestDatabaseGoneFailsClosedAndRecovers(t *testing.T) {
	t.Parallel()
	var p *cutProxy
	s := open(t, throughProxy(t, pgtest.URL(t), func(target string) string {
		p = newCutProxy(t, target)
		return p.ln.Addr().String()
	}))
	ctx := context.Background()

	acked := storetest.NewItem("/sms", "gone-acked", time.Now())
	if err := s.Ingest(ctx, []*switchboard.Ingest{acked}); err != nil {
		t.Fatal(err)
	}

	p.setCut(true)
	gone, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	failed := storetest.NewItem("/sms", "gone-failed", time.Now())
	if err := s.Ingest(gone, []*switchboard.Ingest{failed}); err == nil {
		t.Fatal("Ingest reported success with the database gone")
	}
	if _, err := s.CreateMessage(gone, storetest.NewMessage("gone-m", "+15550100", time.Now())); err == nil {
		t.Error("CreateMessage reported success with the database gone")
	}
	if _, err := s.UpdateMessageStatus(gone, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SM1", Status: "sent"}); err == nil || errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("UpdateMessageStatus with the database gone = %v, want a failure that is not ErrNotFound", err)
	}
	if _, err := s.Event(gone, acked.Event.ID); err == nil || errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Event with the database gone = %v, want a failure that is not ErrNotFound", err)
	}
	if err := s.Ping(gone); err == nil {
		t.Error("Ping succeeded with the database gone")
	}
	if gone.Err() != nil {
		t.Fatal("the calls above took until their deadline: one of them hung")
	}

	p.setCut(false)
	// The pool finds its dropped connections as it uses them; a caller
	// retries as Twilio does, each try failing fast rather than hanging.
	back, cancelBack := context.WithTimeout(ctx, 30*time.Second)
	defer cancelBack()
	retry := func(what string, fn func() error) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			err := fn()
			if err == nil {
				return
			}
			select {
			case <-tick.C: // the next try, without spinning on a refused connection
			case <-back.Done():
				t.Fatalf("%s after the database came back: %v", what, err)
			}
		}
	}
	retry("Ping", func() error { return s.Ping(back) })
	retry("Event", func() error {
		ev, err := s.Event(back, acked.Event.ID)
		if err == nil && ev.IdempotencyKey != "gone-acked" {
			t.Fatalf("acknowledged event came back as %+v", ev)
		}
		return err
	})
	// Twilio's retry of the failed webhook: the same key, a new request.
	retry("Ingest of the retry", func() error {
		again := storetest.NewItem("/sms", "gone-failed", time.Now())
		return s.Ingest(back, []*switchboard.Ingest{again})
	})
	events, err := s.ListEvents(ctx, switchboard.EventFilter{SID: "SMgone-failed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 {
		t.Errorf("events of the retried webhook: %d, want exactly 1", len(events.Items))
	}
}
