package web_test

import (
	"context"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
)

// alertStore is a SQLite store that a test seeds with alert states.
type alertStore struct {
	*sqlite.Store
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
