package web_test

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
)

// alertStore is a SQLite store whose alert states are kept in memory with
// the compare-and-set Store.PutAlertState promises, until the store keeps
// them itself.
type alertStore struct {
	*sqlite.Store
	mu      sync.Mutex
	states  []switchboard.AlertState
	history []switchboard.AlertEvent
}

func (s *alertStore) AlertStates(context.Context) ([]switchboard.AlertState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.states)
	slices.SortFunc(out, func(a, b switchboard.AlertState) int {
		return strings.Compare(a.Rule+"\x00"+a.Key, b.Rule+"\x00"+b.Key)
	})
	return out, nil
}

func (s *alertStore) PutAlertState(_ context.Context, st *switchboard.AlertState, ev *switchboard.AlertEvent) error {
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

func (s *alertStore) AlertHistory(_ context.Context, rule, key string, limit int) ([]switchboard.AlertEvent, error) {
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

// seed stores states as an evaluation would, with a history event each.
func (s *alertStore) seed(states ...switchboard.AlertState) {
	for _, st := range states {
		st.Version = 0
		ev := &switchboard.AlertEvent{Rule: st.Rule, Key: st.Key, Seq: st.Seq, What: string(st.Status), Value: st.Value, At: st.UpdatedAt,
			Notified: true, Note: st.Summary}
		if st.Status == switchboard.AlertFiring {
			ev.What = "firing"
		} else {
			ev.What = "resolved"
		}
		if err := s.PutAlertState(context.Background(), &st, ev); err != nil {
			panic(err)
		}
	}
}
