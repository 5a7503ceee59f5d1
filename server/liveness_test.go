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
	mu    sync.Mutex
	down  bool
	beats int
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
