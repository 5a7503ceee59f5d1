package store

import (
	"context"
	"testing"
	"time"
)

// countingReader answers Counts with n delivered events and counts how
// often it was asked for them.
type countingReader struct {
	Reader // nil: only Counts is called
	n      int64
	asked  int
}

func (r *countingReader) Counts(_ context.Context, _, _ string, _ []Cond) (map[string]int64, error) {
	r.asked++
	return map[string]int64{"delivered": r.n}, nil
}

func TestTerminalCountsAreReusedOnlyForABigStore(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		n         int64
		after     time.Duration // since the first count
		wantAsked int
	}{
		{"small store: counted every time", bigStore - 1, time.Second, 2},
		{"big store: reused within the recount interval", bigStore, terminalRecount - time.Second, 1},
		{"big store: counted again after it", bigStore, terminalRecount, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{n: tt.n}
			var c terminalCounts
			for _, at := range []time.Time{now, now.Add(tt.after)} {
				counts, err := c.get(context.Background(), r, at)
				if err != nil || counts["delivered"] != tt.n {
					t.Fatalf("counts %v, %v; want %d delivered", counts, err, tt.n)
				}
			}
			if r.asked != tt.wantAsked {
				t.Errorf("counted %d times, want %d", r.asked, tt.wantAsked)
			}
		})
	}
}
