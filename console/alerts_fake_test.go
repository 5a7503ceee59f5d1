package console_test

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard"
)

// fakeAlerts keeps alert states in memory with the compare-and-set
// Store.PutAlertState promises.
type fakeAlerts struct {
	mu      sync.Mutex
	states  []switchboard.AlertState
	history []switchboard.AlertEvent
}

func (s *fakeAlerts) AlertStates(context.Context) ([]switchboard.AlertState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.states)
	slices.SortFunc(out, func(a, b switchboard.AlertState) int {
		return strings.Compare(a.Rule+"\x00"+a.Key, b.Rule+"\x00"+b.Key)
	})
	return out, nil
}

func (s *fakeAlerts) PutAlertState(_ context.Context, st *switchboard.AlertState, ev *switchboard.AlertEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.states, func(x switchboard.AlertState) bool { return x.Rule == st.Rule && x.Key == st.Key })
	var stored int64
	if i >= 0 {
		stored = s.states[i].Version
	}
	if stored != st.Version {
		return switchboard.ErrConflict
	}
	c := *st
	c.Version++
	if i >= 0 {
		s.states[i] = c
	} else {
		s.states = append(s.states, c)
	}
	if ev != nil {
		e := *ev
		e.ID = int64(len(s.history) + 1)
		s.history = append(s.history, e)
	}
	return nil
}

func (s *fakeAlerts) AlertHistory(_ context.Context, rule, key string, limit int) ([]switchboard.AlertEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []switchboard.AlertEvent
	for i := len(s.history) - 1; i >= 0 && len(out) < limit; i-- {
		if e := s.history[i]; e.Rule == rule && (key == "" || e.Key == key) {
			out = append(out, e)
		}
	}
	return out, nil
}

// seedAlert stores st as an evaluation that saw it fire or resolve would.
func (s *fakeAlerts) seedAlert(st switchboard.AlertState) {
	st.Version = 0
	what := "resolved"
	if st.Status == switchboard.AlertFiring {
		what = "firing"
	}
	ev := &switchboard.AlertEvent{Rule: st.Rule, Key: st.Key, Seq: st.Seq, What: what, Value: st.Value, At: st.UpdatedAt, Notified: true, Note: st.Summary}
	if err := s.PutAlertState(context.Background(), &st, ev); err != nil {
		panic(err)
	}
}

// alertState is the stored state of rule and key.
func (s *fakeAlerts) alertState(rule, key string) (switchboard.AlertState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.states, func(x switchboard.AlertState) bool { return x.Rule == rule && x.Key == key })
	if i < 0 {
		return switchboard.AlertState{}, false
	}
	return s.states[i], true
}

// lastAlertEvent is the history entry stored last.
func (s *fakeAlerts) lastAlertEvent() switchboard.AlertEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.history[len(s.history)-1]
}
