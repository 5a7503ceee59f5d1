package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeLivenessStore takes beats unless down, and rescues nothing.
type fakeLivenessStore struct {
	mu        sync.Mutex
	down      bool
	beats     int
	withdrawn []string
}

func (f *fakeLivenessStore) SenderHeartbeat(context.Context, string, time.Time, time.Duration) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errors.New("database gone")
	}
	f.beats++
	return 1, nil
}

func (f *fakeLivenessStore) RescueOrphans(context.Context, time.Time, time.Time) (map[string]int, error) {
	return nil, nil
}

func (f *fakeLivenessStore) PromoteDue(context.Context, time.Time) (int, error) { return 0, nil }

func (f *fakeLivenessStore) WithdrawNode(_ context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("database gone")
	}
	f.withdrawn = append(f.withdrawn, node)
	return nil
}

// The lease is held while beats land; a lapse (a pause, a store that did
// not take beats) fences every delivery begun before it, even once beats
// land again.
func TestLeaseLapses(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	clock := t0
	st := &fakeLivenessStore{}
	l := newLiveness(st, "node", slog.New(slog.DiscardHandler))
	l.now = func() time.Time { return clock }
	ctx := context.Background()

	if l.HeldSince(t0) {
		t.Fatal("held before any beat")
	}
	l.beat(ctx)
	begun := clock
	clock = clock.Add(livenessBeat)
	l.beat(ctx)
	if !l.HeldSince(begun) {
		t.Fatal("not held with regular beats")
	}

	st.down = true
	clock = clock.Add(livenessBeat)
	l.beat(ctx)
	clock = clock.Add(livenessBeat)
	l.beat(ctx)
	if l.HeldSince(begun) {
		t.Error("held with no beat for two intervals")
	}

	st.down = false
	clock = clock.Add(livenessBeat)
	l.beat(ctx)
	if l.HeldSince(begun) {
		t.Error("a delivery begun before the lapse may go on: another replica may have its job")
	}
	if !l.HeldSince(clock) {
		t.Error("a delivery begun after the lapse is refused")
	}

	// A pause (SIGSTOP) longer than the lease: the first beat after it
	// finds the lapse.
	begun = clock
	clock = clock.Add(20 * time.Second)
	l.beat(ctx)
	if l.HeldSince(begun) {
		t.Error("held across a 20 s pause")
	}
}

// A process that stops gives its lease up before it withdraws its
// heartbeats, so that once the others may take its jobs, it delivers
// nothing begun before, even with its beats still fresh.
func TestLeaseEnds(t *testing.T) {
	t.Parallel()
	for _, down := range []bool{false, true} {
		st := &fakeLivenessStore{}
		l := newLiveness(st, "node", slog.New(slog.DiscardHandler))
		clock := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
		l.now = func() time.Time { return clock }
		l.start(context.Background())
		begun := clock
		if !l.HeldSince(begun) {
			t.Fatal("not held after the first beat")
		}
		st.mu.Lock()
		st.down = down
		st.mu.Unlock()
		l.end(context.Background())
		if l.HeldSince(begun) || l.HeldSince(clock) {
			t.Errorf("store down %v: the lease is still held after end", down)
		}
		if want := !down; (len(st.withdrawn) == 1 && st.withdrawn[0] == "node") != want {
			t.Errorf("store down %v: withdrawn %q", down, st.withdrawn)
		}
	}
}
