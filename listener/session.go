package listener

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard"
)

// Session tuning.
const (
	pageSize = 100
	// maxScheduled bounds a session's retry schedule.
	maxScheduled = 10000
	// pingInterval and pingTimeout: a listener that does not answer a ping
	// in time is gone, and its in-flight request with it.
	pingInterval = 20 * time.Second
	pingTimeout  = 15 * time.Second
	// closeReplaced is the close code of a connection a newer one of the
	// same listener replaced (private range 4000–4999).
	closeReplaced websocket.StatusCode = 4000
)

// session is one connected listener's delivery of its waiting events.
type session struct {
	h      *Hub
	name   string
	routes []string
	kinds  []switchboard.Kind
	tun    *tunnel
	wake   chan struct{} // buffered 1: a pending wake-up
	// stopped is closed once the session delivers no more, so that the
	// session replacing it starts only then.
	stopped chan struct{}
}

func newSession(h *Hub, name string, routes []string, kinds []switchboard.Kind, tun *tunnel) *session {
	return &session{h: h, name: name, routes: routes, kinds: kinds, tun: tun,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

func (s *session) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop ends the session for cause: its connection counts as gone at once.
func (s *session) stop(cause error) { s.tun.fail(cause) }

// run says hello, waits for prev (the session it replaces) to stop, and
// delivers until the connection ends or the Hub closes; then it closes
// the connection and returns why it ended.
func (s *session) run(prev *session) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.tun.readLoop(context.Background()) }()
	go func() { defer wg.Done(); s.keepAlive() }()

	err := s.hello()
	if err == nil {
		s.tun.markReady()
	}
	if err == nil && prev != nil {
		select {
		case <-prev.stopped:
		case <-s.tun.gone:
		}
	}
	if err == nil {
		err = s.deliverLoop(s.h.ctx)
	}
	close(s.stopped)
	s.tun.fail(err)
	err = s.tun.goneErr
	code, reason := closeCode(err)
	if code == 0 {
		_ = s.tun.conn.CloseNow()
	} else {
		_ = s.tun.conn.Close(code, reason)
	}
	wg.Wait()
	s.h.o.Logger.Info("listener disconnected", "listener", s.name, "why", err)
	return err
}

// closeCode is how a session ending for err closes its connection: 0
// without a close handshake, when the connection already failed.
func closeCode(err error) (websocket.StatusCode, string) {
	switch {
	case errors.Is(err, errReplaced):
		return closeReplaced, "replaced by a newer connection"
	case errors.Is(err, errHubClosed), errors.Is(err, context.Canceled):
		return websocket.StatusGoingAway, "server shutting down"
	case errors.Is(err, errProtocol):
		return websocket.StatusPolicyViolation, "protocol violation"
	default:
		return 0, ""
	}
}

func (s *session) hello() error {
	data, err := json.Marshal(Frame{Type: TypeHello, Listener: s.name, Routes: s.routes})
	if err != nil {
		return fmt.Errorf("encode hello: %w", err)
	}
	ctx, cancel := context.WithTimeout(s.h.ctx, writeTimeout)
	defer cancel()
	if err := s.tun.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	s.h.o.Logger.Info("listener connected", "listener", s.name, "routes", s.routes)
	return nil
}

// keepAlive pings the listener until the connection ends; a ping not
// answered in time ends it.
func (s *session) keepAlive() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.tun.gone:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := s.tun.conn.Ping(ctx)
		cancel()
		if err != nil {
			s.tun.fail(fmt.Errorf("ping: %w", err))
			return
		}
	}
}

// deliverLoop makes passes over the waiting events until the connection
// ends or ctx does, waiting between passes for a wake-up, the next retry
// due or the poll interval.
func (s *session) deliverLoop(ctx context.Context) error {
	sched := newSchedule(maxScheduled)
	for {
		if err := s.pass(ctx, sched); err != nil {
			return err
		}
		wait := s.h.o.PollInterval
		now := s.h.o.Now()
		if due, ok := sched.earliest(now); ok {
			wait = min(wait, due.Sub(now))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return errHubClosed
		case <-s.tun.gone:
			timer.Stop()
			return s.tun.goneErr
		case <-s.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// pass delivers the waiting events once over, oldest first, one at a
// time, skipping those this session tried that are not due again yet. It
// returns an error only when the session is to end; a store failure ends
// the pass, and the next one tries again.
func (s *session) pass(ctx context.Context, sched *schedule) error {
	sched.startPass()
	after := ""
	for {
		evs, err := s.h.o.Store.WaitingEvents(ctx, switchboard.WaitingFilter{
			Routes: s.routes, Kinds: s.kinds, After: after, Limit: pageSize})
		if err != nil {
			if ctx.Err() != nil {
				return errHubClosed
			}
			s.h.o.Logger.Error("listener: read waiting events", "listener", s.name, "err", err)
			return nil
		}
		for _, ev := range evs {
			after = ev.ID
			if due, ok := sched.seen(ev.ID); ok && s.h.o.Now().Before(due) {
				continue
			}
			if beingProxied(ev, s.h.o.Now()) {
				continue
			}
			res, err := s.h.o.Deliverer.DeliverThrough(ctx, ev, s.tun)
			if s.tun.isGone() {
				return s.tun.goneErr
			}
			if ctx.Err() != nil {
				return errHubClosed
			}
			if err != nil {
				s.h.o.Logger.Error("listener: deliver", "listener", s.name, "event", ev.ID, "err", err)
				return nil
			}
			if res != nil && (res.State == switchboard.StatePending || res.State == switchboard.StateRetrying) {
				sched.set(ev.ID, res.NextAttemptAt)
			} else {
				sched.remove(ev.ID)
			}
		}
		if len(evs) < pageSize {
			sched.endPass()
			return nil
		}
	}
}

// beingProxied reports whether ev is a proxy route's event whose live
// request may still be under way: stored with its first delivery delayed
// past the proxy's budget, and untouched since (no attempt, no park). The
// live request is its delivery until then; delivering it here too would
// make the app take the webhook twice. Past that time a worker parks it or
// the session delivers it, so it is not lost.
func beingProxied(ev *switchboard.Event, now time.Time) bool {
	return ev.Attempts == 0 && ev.State == switchboard.StatePending &&
		ev.NextAttemptAt.After(now) && !ev.UpdatedAt.After(ev.CreatedAt)
}

// schedule is when each event a session tried and failed to deliver is
// due again: the session skips it until then, as the delivery workers
// would have waited. It forgets an event no longer waiting at the end of
// a full pass, and the oldest entry past its bound (that event is then
// tried early, which at-least-once allows).
type schedule struct {
	max   int
	pass  uint64
	order *list.List // of *scheduled, oldest first
	byID  map[string]*list.Element
}

type scheduled struct {
	id   string
	due  time.Time
	pass uint64 // the last pass that saw it waiting
}

func newSchedule(max int) *schedule {
	return &schedule{max: max, order: list.New(), byID: make(map[string]*list.Element)}
}

func (s *schedule) startPass() { s.pass++ }

// seen returns when id is due, if it is scheduled, and notes it still
// waiting.
func (s *schedule) seen(id string) (time.Time, bool) {
	e, ok := s.byID[id]
	if !ok {
		return time.Time{}, false
	}
	sc := e.Value.(*scheduled)
	sc.pass = s.pass
	return sc.due, true
}

func (s *schedule) set(id string, due time.Time) {
	if e, ok := s.byID[id]; ok {
		sc := e.Value.(*scheduled)
		sc.due, sc.pass = due, s.pass
		return
	}
	if s.order.Len() >= s.max {
		oldest := s.order.Front()
		delete(s.byID, oldest.Value.(*scheduled).id)
		s.order.Remove(oldest)
	}
	s.byID[id] = s.order.PushBack(&scheduled{id: id, due: due, pass: s.pass})
}

func (s *schedule) remove(id string) {
	if e, ok := s.byID[id]; ok {
		delete(s.byID, id)
		s.order.Remove(e)
	}
}

// endPass forgets the events a full pass did not see waiting.
func (s *schedule) endPass() {
	for e := s.order.Front(); e != nil; {
		next := e.Next()
		if sc := e.Value.(*scheduled); sc.pass != s.pass {
			delete(s.byID, sc.id)
			s.order.Remove(e)
		}
		e = next
	}
}

// earliest is the soonest due time scheduled after now. (One already due
// is taken by the next pass, or, if that pass ends early, by the one
// after the poll interval: waiting for it would spin.)
func (s *schedule) earliest(now time.Time) (time.Time, bool) {
	var first time.Time
	for e := s.order.Front(); e != nil; e = e.Next() {
		due := e.Value.(*scheduled).due
		if due.After(now) && (first.IsZero() || due.Before(first)) {
			first = due
		}
	}
	return first, !first.IsZero()
}
