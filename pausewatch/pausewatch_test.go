package pausewatch

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestPausedBetween(t *testing.T) {
	t.Parallel()
	w := newWatcher(50*time.Millisecond, at(0))
	for ms := 50; ms <= 1000; ms += 50 {
		w.observe(at(ms))
	}
	w.observe(at(6000)) // stopped from about 1.05 s to 6 s
	for ms := 6050; ms <= 7000; ms += 50 {
		w.observe(at(ms))
	}
	tests := []struct {
		name     string
		from, to int
		want     time.Duration
	}{
		{"before the pause", 0, 1000, 0},
		{"after the pause", 6000, 7000, 0},
		{"across the pause", 500, 6500, 4950 * time.Millisecond},
		{"from inside the pause", 3000, 6500, 3000 * time.Millisecond},
		{"to inside the pause", 500, 2050, 1000 * time.Millisecond},
		{"within the pause", 2000, 3000, time.Second},
	}
	for _, tc := range tests {
		if got := w.PausedBetween(at(tc.from), at(tc.to)); got != tc.want {
			t.Errorf("%s: PausedBetween = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Ticks a little late (scheduling on a busy machine) are no pause.
func TestLateTicksAreNoPause(t *testing.T) {
	t.Parallel()
	w := newWatcher(50*time.Millisecond, at(0))
	for ms := 90; ms <= 9000; ms += 90 {
		w.observe(at(ms))
	}
	if got := w.PausedBetween(at(0), at(9000)); got != 0 {
		t.Errorf("PausedBetween = %v, want 0", got)
	}
}

func TestGapsAreBounded(t *testing.T) {
	t.Parallel()
	w := newWatcher(50*time.Millisecond, at(0))
	for i := 1; i <= 10*maxGaps; i++ {
		w.observe(at(i * 1000))
	}
	if len(w.gaps) != maxGaps {
		t.Errorf("%d pauses kept, want %d", len(w.gaps), maxGaps)
	}
	if got := w.PausedBetween(at(0), at(1000)); got != 0 {
		t.Errorf("a forgotten pause still counts: %v", got)
	}
}

func TestNilWatcherSawNothing(t *testing.T) {
	t.Parallel()
	var w *Watcher
	if got := w.PausedBetween(at(0), at(1000)); got != 0 {
		t.Errorf("PausedBetween = %v", got)
	}
}

// A real Watcher ticks and stops.
func TestStartStop(t *testing.T) {
	t.Parallel()
	w := New(time.Millisecond)
	w.Stop() // not started: nothing to stop
	w.Start()
	w.Start()
	w.Stop()
	w.Stop()
}

// A pause the ticking goroutine has not seen end yet still counts: the
// delivery that asks may have woken first.
func TestPauseNotYetSeenByTheTicker(t *testing.T) {
	t.Parallel()
	w := newWatcher(50*time.Millisecond, at(0))
	w.started = true // as Start would, without its goroutine
	w.observe(at(50))
	w.now = func() time.Time { return at(4000) }
	if got := w.PausedBetween(at(0), at(4000)); got != 3900*time.Millisecond {
		t.Errorf("PausedBetween = %v, want 3.9s", got)
	}
	w.now = func() time.Time { return at(120) }
	if got := w.PausedBetween(at(0), at(120)); got != 0 {
		t.Errorf("a tick not yet two ticks late counted: %v", got)
	}
}
