package sqlite

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/storetest"
)

// gatedDeliverer holds its first delivery until gate is closed, and tells
// calls of every later one.
type gatedDeliverer struct {
	first chan string // the first delivery's event, once it started
	gate  chan struct{}
	later chan string // the events of later deliveries
}

func (g *gatedDeliverer) Deliver(_ context.Context, id string, _ int) error {
	select {
	case g.first <- id:
		<-g.gate
	default:
		g.later <- id
	}
	return nil
}

func (g *gatedDeliverer) DeliverLoaded(ctx context.Context, ev *switchboard.Event, _ *switchboard.Request) error {
	return g.Deliver(ctx, ev.ID, ev.Attempts)
}

// signalHandler is a log handler that signals each record whose message
// contains match.
type signalHandler struct {
	match string
	seen  chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// Once the store has failed, events handed over in memory before the
// fault are not delivered any more: their attempts can no longer be
// recorded, so the restarted process delivers them again, and the app
// would get each twice. (A delivery that reads the store fails at the
// read; one handed over in memory reads nothing.)
func TestNoDeliveryAfterTheStoreFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	in := &injector{}
	halted := make(chan struct{}, 1)
	logger := slog.New(signalHandler{match: "halted", seen: halted})
	s, err := Open(ctx, path, logger, func(o *options) { o.inject = in.hook; o.checkpointEvery = time.Hour })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := &gatedDeliverer{first: make(chan string, 1), gate: make(chan struct{}), later: make(chan string, 16)}
	if err := s.StartDelivery(ctx, g, switchboard.DeliveryConfig{Workers: 1, PollInterval: time.Hour, JobTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", "in-flight", now)}); err != nil {
		t.Fatal(err)
	}
	<-g.first // the one worker is busy with it
	for _, key := range []string{"queued1", "queued2", "queued3"} {
		if err := s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", key, now)}); err != nil {
			t.Fatal(err)
		}
	}
	in.set(func(op, _ string) error {
		if op == "commit" {
			return codedError(sqlite3.SQLITE_IOERR_FSYNC)
		}
		return nil
	})
	_ = s.Ingest(ctx, []*switchboard.Ingest{storetest.NewItem("/sms", "fails", now)})
	if s.Err() == nil {
		t.Fatal("the store did not fail")
	}
	close(g.gate) // the delivery in flight ends; the worker is free
	select {
	case id := <-g.later:
		t.Fatalf("event %s was delivered after the store failed", id)
	case <-halted:
	}
	if err := s.StopDelivery(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-g.later:
		t.Errorf("event %s was delivered after the store failed", id)
	default:
	}
}

// loadedRecorder records the requests events are handed over with.
type loadedRecorder struct {
	got chan [2]string // event id, request id
}

func (r loadedRecorder) Deliver(_ context.Context, id string, _ int) error {
	r.got <- [2]string{id, ""}
	return nil
}

func (r loadedRecorder) DeliverLoaded(_ context.Context, ev *switchboard.Event, req *switchboard.Request) error {
	r.got <- [2]string{ev.ID, req.ID}
	return nil
}

// A fan-out event is delivered from the request it was stored with,
// Ingest.Request, whatever RequestID its caller left in it (Store.Ingest
// sets it): handed over in memory with another item's request, it would
// deliver that one's body, perhaps another account's.
func TestFanoutHandedOverWithItsOwnRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "switchboard.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := loadedRecorder{got: make(chan [2]string, 8)}
	if err := s.StartDelivery(ctx, rec, switchboard.DeliveryConfig{Workers: 4, PollInterval: time.Hour, JobTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	defer s.StopDelivery(ctx)
	now := time.Now()
	a, b := storetest.NewItem("/sms", "a", now), storetest.NewItem("/sms", "b", now)
	f := &switchboard.Event{ID: "fanout-of-b", RequestID: a.Request.ID, Route: "/sms", AccountSID: b.Event.AccountSID,
		Kind: b.Event.Kind, IdempotencyKey: b.Event.IdempotencyKey + "#f", Target: "http://127.0.0.1:1/hook",
		State: switchboard.StatePending, CreatedAt: now}
	b.Fanout = []*switchboard.Event{f}
	if err := s.Ingest(ctx, []*switchboard.Ingest{a, b}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got := <-rec.got
		stored, err := s.Event(ctx, got[0])
		if err != nil {
			t.Fatal(err)
		}
		if got[1] != "" && got[1] != stored.RequestID {
			t.Errorf("event %s handed over with request %s, stored with request %s", got[0], got[1], stored.RequestID)
		}
	}
}
