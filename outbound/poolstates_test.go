package outbound

import (
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

func TestPoolStatesSaysEachPoolsConfigurationAndState(t *testing.T) {
	t.Parallel()
	now := t0
	store := &memStore{msgs: map[string]*switchboard.OutboundMessage{}}
	s, err := New(store, Options{Client: &recordingClient{}, Now: func() time.Time { return now }, Pools: []Pool{
		{Name: "otp", Senders: []string{"A", "B"}, Rate: 3},
		{Name: "bulk", Senders: []string{"C"}, Rate: 1, BrownoutDelay: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := s.PoolStates()
	want := []switchboard.PoolState{
		{Pool: "bulk", Rate: 1, Senders: 1},
		{Pool: "otp", Rate: 3, Senders: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("PoolStates() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("PoolStates()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
