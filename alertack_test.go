package switchboard

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var ackNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func firing() AlertState {
	return AlertState{Rule: "queue-lag", Key: "", Status: AlertFiring, Value: 420, Seq: 3, FiredAt: ackNow.Add(-time.Minute), Version: 7}
}

func TestAcknowledge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		adjust  func(*AlertState)
		want    error
		wantWho string
	}{
		{"firing", nil, nil, "alice"},
		{"never stored", func(s *AlertState) { *s = AlertState{Rule: s.Rule} }, ErrNotFound, ""},
		{"resolved", func(s *AlertState) { s.Status, s.ResolvedAt = AlertOK, ackNow }, ErrInvalid, ""},
		{"already acknowledged", func(s *AlertState) { s.AckedAt, s.AckedBy = ackNow.Add(-time.Second), "bob" }, ErrConflict, "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := firing()
			if tt.adjust != nil {
				tt.adjust(&st)
			}
			before := st
			ev, err := st.Acknowledge("alice", ackNow)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil {
				if ev != nil || st.AckedBy != before.AckedBy || st.AckedAt != before.AckedAt {
					t.Errorf("a refused acknowledgement changed the state: %+v, event %+v", st, ev)
				}
				return
			}
			if st.AckedBy != tt.wantWho || !st.AckedAt.Equal(ackNow) || st.Status != AlertFiring {
				t.Errorf("state %+v", st)
			}
			want := AlertEvent{Rule: "queue-lag", Seq: 3, What: "acknowledged", Value: 420, At: ackNow, Note: "alice"}
			if *ev != want {
				t.Errorf("event %+v, want %+v", *ev, want)
			}
		})
	}
}

func TestAlertByIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"  alice  ", "alice"},
		{"al\nice\x00\x1b[31m", "alice[31m"},
		{"", "someone"},
		{"\r\n\t", "someone"},
		{"bad\xffutf8", "badutf8"},
		{strings.Repeat("é", 500), strings.Repeat("é", maxAlertBy)},
	}
	for _, tt := range tests {
		if got := alertBy(tt.in); got != tt.want {
			t.Errorf("alertBy(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	st := firing()
	ev, err := st.Acknowledge("forged\nINFO admin=true"+strings.Repeat("x", 1000), ackNow)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(ev.Note, "\n\r") || len([]rune(ev.Note)) > maxAlertBy || st.AckedBy != ev.Note {
		t.Errorf("note %q", ev.Note)
	}
}

func TestSilence(t *testing.T) {
	t.Parallel()
	hour := ackNow.Add(time.Hour)
	tests := []struct {
		name      string
		state     AlertState
		until     time.Time
		want      error
		wantWhat  string // "" no event
		wantUntil time.Time
	}{
		{"firing", firing(), hour, nil, "silenced", hour},
		{"never stored", AlertState{Rule: "r", Key: "/sms"}, hour, nil, "silenced", hour},
		{"resolved", AlertState{Rule: "r", Status: AlertOK, Version: 2}, hour, nil, "silenced", hour},
		{"extended", AlertState{Rule: "r", Status: AlertOK, SilencedUntil: hour, Version: 2}, hour.Add(time.Hour), nil, "silenced", hour.Add(time.Hour)},
		{"exactly the most", firing(), ackNow.Add(MaxSilence), nil, "silenced", ackNow.Add(MaxSilence)},
		{"too far", firing(), ackNow.Add(MaxSilence + time.Second), ErrInvalid, "", time.Time{}},
		{"far future", firing(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ErrInvalid, "", time.Time{}},
		{"subsecond cut", firing(), hour.Add(time.Millisecond), nil, "silenced", hour},
		{"unsilence", AlertState{Rule: "r", Status: AlertFiring, SilencedUntil: hour, Version: 2}, time.Time{}, nil, "unsilenced", time.Time{}},
		{"until in the past unsilences", AlertState{Rule: "r", Status: AlertFiring, SilencedUntil: hour, Version: 2}, ackNow.Add(-time.Hour), nil, "unsilenced", time.Time{}},
		{"until now unsilences", AlertState{Rule: "r", Status: AlertFiring, SilencedUntil: hour, Version: 2}, ackNow, nil, "unsilenced", time.Time{}},
		{"unsilence of no silence", firing(), time.Time{}, nil, "", time.Time{}},
		{"unsilence of an ended silence", AlertState{Rule: "r", SilencedUntil: ackNow.Add(-time.Second)}, time.Time{}, nil, "", ackNow.Add(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := tt.state
			ev, err := st.Silence(tt.until, ackNow, "ops")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil {
				if ev != nil || st.SilencedUntil != tt.state.SilencedUntil {
					t.Errorf("a refused silence changed the state: %+v", st)
				}
				return
			}
			if (ev == nil) != (tt.wantWhat == "") || (ev != nil && ev.What != tt.wantWhat) {
				t.Fatalf("event %+v, want %q", ev, tt.wantWhat)
			}
			if !st.SilencedUntil.Equal(tt.wantUntil) {
				t.Errorf("silenced until %v, want %v", st.SilencedUntil, tt.wantUntil)
			}
			if ev == nil {
				return
			}
			if st.Status == "" {
				t.Error("a stored state without a status")
			}
			if ev.Rule != st.Rule || ev.Key != st.Key || !ev.At.Equal(ackNow) || !strings.Contains(ev.Note, "ops") {
				t.Errorf("event %+v", ev)
			}
			if ev.What == "silenced" && !strings.Contains(ev.Note, tt.wantUntil.Format(time.RFC3339)) {
				t.Errorf("note %q does not say until when", ev.Note)
			}
		})
	}
}

func TestSilencedUntil(t *testing.T) {
	t.Parallel()
	h := func(n int) time.Time { return ackNow.Add(time.Duration(n) * time.Hour) }
	states := []AlertState{
		{Rule: "a", Key: "/sms", SilencedUntil: h(1)},
		{Rule: "a", Key: AlertAllKeys, SilencedUntil: h(2)},
		{Rule: "b", Key: "/sms", SilencedUntil: h(3)},
		{Rule: "b", Key: AlertAllKeys, SilencedUntil: h(1)},
		{Rule: "c", Key: "/voice"},
	}
	tests := []struct {
		rule, key string
		want      time.Time
	}{
		{"a", "/sms", h(2)},    // the rule's is later
		{"a", "/voice", h(2)},  // never stored, silenced by its rule
		{"b", "/sms", h(3)},    // its own is later
		{"b", "/status", h(1)}, // the rule's
		{"c", "/voice", time.Time{}},
		{"d", "", time.Time{}},
	}
	for _, tt := range tests {
		if got := SilencedUntil(states, tt.rule, tt.key); !got.Equal(tt.want) {
			t.Errorf("SilencedUntil(%s, %s) = %v, want %v", tt.rule, tt.key, got, tt.want)
		}
	}
}

// casStore keeps alert states in memory with PutAlertState's
// compare-and-set; before runs before each Put, as another replica would.
type casStore struct {
	mu      sync.Mutex
	states  []AlertState
	history []AlertEvent
	puts    int
	before  func(*casStore)
	readErr error
}

func (s *casStore) AlertStates(context.Context) ([]AlertState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states), s.readErr
}

func (s *casStore) PutAlertState(_ context.Context, st *AlertState, ev *AlertEvent) error {
	if s.before != nil {
		s.before(s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	i := slices.IndexFunc(s.states, func(x AlertState) bool { return x.Rule == st.Rule && x.Key == st.Key })
	stored := int64(0)
	if i >= 0 {
		stored = s.states[i].Version
	}
	if stored != st.Version {
		return ErrConflict
	}
	c := *st
	c.Version++
	if i >= 0 {
		s.states[i] = c
	} else {
		s.states = append(s.states, c)
	}
	if ev != nil {
		s.history = append(s.history, *ev)
	}
	return nil
}

func TestActOnAlert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("acknowledge", func(t *testing.T) {
		t.Parallel()
		s := &casStore{states: []AlertState{firing()}}
		st, err := AcknowledgeAlert(ctx, s, "queue-lag", "", "alice", ackNow)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != 8 || st.AckedBy != "alice" || s.states[0].AckedBy != "alice" || len(s.history) != 1 {
			t.Errorf("state %+v, stored %+v, history %+v", st, s.states, s.history)
		}
		if _, err := AcknowledgeAlert(ctx, s, "queue-lag", "", "bob", ackNow); !errors.Is(err, ErrConflict) {
			t.Errorf("second acknowledgement: %v", err)
		}
		if _, err := AcknowledgeAlert(ctx, s, "queue-lag", "/nope", "bob", ackNow); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown alert: %v", err)
		}
		if s.states[0].AckedBy != "alice" || len(s.history) != 1 || s.puts != 1 {
			t.Errorf("refusals wrote: %+v %+v", s.states, s.history)
		}
	})
	t.Run("a replica moves it on in between", func(t *testing.T) {
		t.Parallel()
		// The first Put finds the alert resolved and fired again by
		// an evaluation: the acknowledgement is applied to the new
		// firing, not written over it.
		s := &casStore{states: []AlertState{firing()}}
		s.before = func(s *casStore) {
			s.before = nil
			s.mu.Lock()
			defer s.mu.Unlock()
			s.states[0].Seq, s.states[0].Value, s.states[0].Version = 4, 999, 9
		}
		st, err := AcknowledgeAlert(ctx, s, "queue-lag", "", "alice", ackNow)
		if err != nil {
			t.Fatal(err)
		}
		if st.Seq != 4 || st.Value != 999 || st.Version != 10 || s.puts != 2 || s.history[0].Seq != 4 {
			t.Errorf("state %+v after %d puts, history %+v", st, s.puts, s.history)
		}
	})
	t.Run("a replica resolves it in between", func(t *testing.T) {
		t.Parallel()
		s := &casStore{states: []AlertState{firing()}}
		s.before = func(s *casStore) {
			s.before = nil
			s.mu.Lock()
			defer s.mu.Unlock()
			s.states[0].Status, s.states[0].Version = AlertOK, 8
		}
		if _, err := AcknowledgeAlert(ctx, s, "queue-lag", "", "alice", ackNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("err %v, want ErrInvalid: it is no longer firing", err)
		}
		if s.states[0].AckedBy != "" || len(s.history) != 0 {
			t.Errorf("stored %+v", s.states[0])
		}
	})
	t.Run("it keeps changing", func(t *testing.T) {
		t.Parallel()
		s := &casStore{states: []AlertState{firing()}}
		s.before = func(s *casStore) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.states[0].Version++
		}
		if _, err := AcknowledgeAlert(ctx, s, "queue-lag", "", "alice", ackNow); !errors.Is(err, ErrConflict) {
			t.Errorf("err %v, want ErrConflict", err)
		}
		if s.puts != alertActTries {
			t.Errorf("%d puts, want %d", s.puts, alertActTries)
		}
	})
	t.Run("silence every key of a rule", func(t *testing.T) {
		t.Parallel()
		s := &casStore{}
		st, err := SilenceAlert(ctx, s, "webhook-dead-letters", "", ackNow.Add(2*time.Hour), "ops", ackNow)
		if err != nil {
			t.Fatal(err)
		}
		if st.Key != AlertAllKeys || st.Version != 1 || st.Status != AlertOK {
			t.Errorf("state %+v", st)
		}
		states, _ := s.AlertStates(ctx)
		if got := SilencedUntil(states, "webhook-dead-letters", "/sms"); !got.Equal(ackNow.Add(2 * time.Hour)) {
			t.Errorf("/sms silenced until %v", got)
		}
		// Unsilencing twice: the second is no change, and no write.
		for range 2 {
			if _, err := SilenceAlert(ctx, s, "webhook-dead-letters", AlertAllKeys, time.Time{}, "ops", ackNow); err != nil {
				t.Fatal(err)
			}
		}
		if s.puts != 2 || len(s.history) != 2 || s.history[1].What != "unsilenced" {
			t.Errorf("%d puts, history %+v", s.puts, s.history)
		}
	})
	t.Run("hostile key", func(t *testing.T) {
		t.Parallel()
		s := &casStore{}
		for _, key := range []string{strings.Repeat("k", MaxAlertKey+1), "a\x00b", "a\nb", "\xff"} {
			if _, err := SilenceAlert(ctx, s, "r", key, ackNow.Add(time.Hour), "ops", ackNow); !errors.Is(err, ErrInvalid) {
				t.Errorf("key %q: %v", key, err)
			}
		}
		if s.puts != 0 {
			t.Error("stored a hostile key")
		}
	})
	t.Run("store down", func(t *testing.T) {
		t.Parallel()
		down := errors.New("down")
		s := &casStore{readErr: down}
		if _, err := AcknowledgeAlert(ctx, s, "r", "", "ops", ackNow); !errors.Is(err, down) {
			t.Errorf("err %v", err)
		}
	})
}

func TestCompareAlertListing(t *testing.T) {
	type item struct {
		firing   bool
		severity string
		name     string
	}
	items := []item{{false, "warning", "a"}, {false, "critical", "z"}, {true, "warning", "b"}, {true, "critical", "c"}, {false, "critical", "m"}}
	slices.SortFunc(items, func(a, b item) int {
		return CompareAlertListing(a.firing, a.severity, a.name, b.firing, b.severity, b.name)
	})
	var got []string
	for _, it := range items {
		got = append(got, it.name)
	}
	if want := []string{"c", "b", "m", "z", "a"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v (firing, then critical, then name)", got, want)
	}
}
