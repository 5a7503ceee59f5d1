package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
)

// fakeLeaderStore answers Replicas with leader ("" for none), or fails
// with err.
type fakeLeaderStore struct {
	leader string
	err    error
	reads  int
}

func (f *fakeLeaderStore) Replicas(context.Context) (*switchboard.Replicas, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	r := &switchboard.Replicas{}
	if f.leader != "" {
		r.Leader = &switchboard.LeaderTerm{Node: f.leader, ElectedAt: leaderT0, ExpiresAt: leaderT0.Add(15 * time.Second)}
	}
	return r, nil
}

var leaderT0 = time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)

// logLines decodes the JSON log lines in buf, and empties it.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// Each change of leader is logged once, with the one before it, and
// counted; the gauge is 1 only while this process leads; a failed read
// keeps what was known and logs nothing.
func TestLeaderWatch(t *testing.T) {
	t.Parallel()
	const me = "node-b"
	st := &fakeLeaderStore{}
	var buf bytes.Buffer
	m := metrics.New()
	w := newLeaderWatch(st, me, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), m)
	ctx := context.Background()
	clock := leaderT0

	type want struct {
		msg      string // "" for no log line
		attrs    map[string]any
		changes  float64
		gauge    float64
		previous string
	}
	steps := []struct {
		name   string
		leader string
		err    error
		want   want
	}{
		{"no leader yet", "", nil, want{}},
		{"a leader", "node-a", nil, want{msg: "leader elected",
			attrs: map[string]any{"node": "node-a", "this_process": false, "previous": "none"}, changes: 1}},
		{"the same leader", "node-a", nil, want{changes: 1}},
		{"this process elected", me, nil, want{msg: "leader elected",
			attrs: map[string]any{"node": me, "this_process": true, "previous": "node-a"}, changes: 2, gauge: 1}},
		{"the store fails", "", errors.New("database gone"), want{changes: 2, gauge: 1}},
		{"the store is back", me, nil, want{changes: 2, gauge: 1}},
		{"the term expired", "", nil, want{msg: "no leader: the leader's term expired; River's maintenance (jobs scheduled for later falling due, cleanup) waits for the next election",
			attrs: map[string]any{"previous": me}, changes: 2}},
		{"still none", "", nil, want{changes: 2}},
		{"another elected", "node-c", nil, want{msg: "leader elected",
			attrs: map[string]any{"node": "node-c", "this_process": false, "previous": me, "without_leader_for": float64(2 * time.Second)}, changes: 3}},
	}
	for _, step := range steps {
		st.leader, st.err = step.leader, step.err
		w.check(ctx, clock)
		clock = clock.Add(livenessBeat)

		lines := logLines(t, &buf)
		switch {
		case step.want.msg == "" && len(lines) != 0:
			t.Errorf("%s: logged %v, want nothing", step.name, lines)
		case step.want.msg != "" && len(lines) != 1:
			t.Errorf("%s: logged %v, want one %q", step.name, lines, step.want.msg)
		case step.want.msg != "":
			if lines[0]["msg"] != step.want.msg {
				t.Errorf("%s: logged %q, want %q", step.name, lines[0]["msg"], step.want.msg)
			}
			for k, v := range step.want.attrs {
				if lines[0][k] != v {
					t.Errorf("%s: %s = %v, want %v", step.name, k, lines[0][k], v)
				}
			}
			if _, ok := lines[0]["without_leader_for"]; ok && step.want.attrs["without_leader_for"] == nil {
				t.Errorf("%s: without_leader_for without a gap", step.name)
			}
		}
		if got := metricstest.Sample(t, m, "switchboard_leader_changes_total").GetCounter().GetValue(); got != step.want.changes {
			t.Errorf("%s: %v changes, want %v", step.name, got, step.want.changes)
		}
		if got := metricstest.Sample(t, m, "switchboard_leader").GetGauge().GetValue(); got != step.want.gauge {
			t.Errorf("%s: leader gauge %v, want %v", step.name, got, step.want.gauge)
		}
	}
}

// livenessLeaderStore is a store that takes beats and names a leader.
type livenessLeaderStore struct {
	fakeLivenessStore
	fakeLeaderStore
}

// Each beat the store takes reads the leader; a beat it refuses does not.
func TestLeaderWatchedOnEachBeat(t *testing.T) {
	t.Parallel()
	st := &livenessLeaderStore{fakeLeaderStore: fakeLeaderStore{leader: "me"}}
	m := metrics.New()
	l := newLiveness(st, "me", slog.New(slog.DiscardHandler))
	l.leader = newLeaderWatch(st, "me", slog.New(slog.DiscardHandler), m)
	clock := leaderT0
	l.now = func() time.Time { return clock }

	l.beat(context.Background())
	if st.reads != 1 || metricstest.Sample(t, m, "switchboard_leader").GetGauge().GetValue() != 1 {
		t.Errorf("after a beat: %d reads, gauge %v; want 1 and 1", st.reads, metricstest.Sample(t, m, "switchboard_leader").GetGauge().GetValue())
	}
	st.down = true
	clock = clock.Add(livenessBeat)
	l.beat(context.Background())
	if st.reads != 1 {
		t.Errorf("a refused beat read the leader: %d reads", st.reads)
	}
}
