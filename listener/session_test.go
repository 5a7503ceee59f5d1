package listener

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSchedule(2)
	s.startPass()
	s.set("a", t0.Add(time.Minute))
	s.set("b", t0.Add(2*time.Minute))
	if due, ok := s.earliest(t0); !ok || !due.Equal(t0.Add(time.Minute)) {
		t.Fatalf("earliest = %v, %v", due, ok)
	}
	if _, ok := s.earliest(t0.Add(3 * time.Minute)); ok {
		t.Fatal("a due time in the past is waited for")
	}
	s.set("c", t0.Add(3*time.Minute)) // over the bound: "a" goes
	if _, ok := s.seen("a"); ok {
		t.Fatal("the oldest entry was kept past the bound")
	}
	s.endPass()
	// A full pass that sees only "c" waiting forgets "b".
	s.startPass()
	if _, ok := s.seen("c"); !ok {
		t.Fatal("c not scheduled")
	}
	s.endPass()
	if _, ok := s.seen("b"); ok {
		t.Fatal("b, no longer waiting, is still scheduled")
	}
	s.remove("c")
	if _, ok := s.earliest(t0); ok {
		t.Fatal("schedule not empty")
	}
}
