package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

// Replicas lists the beating processes and the leader whose term has not
// expired: one that is beating, one that stopped beating but still holds
// its term (a leader just killed), and none once its term expired.
func TestReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := open(t, url)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)

	r, err := s.Replicas(ctx)
	if err != nil || len(r.Nodes) != 0 || r.Leader != nil {
		t.Fatalf("an empty store: %+v, %v; want no replicas, no leader", r, err)
	}
	for i, node := range []string{"node-b", "node-a", "node-c"} {
		if _, err := s.SenderHeartbeat(ctx, node, now.Add(-time.Duration(i)*time.Second), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	lead := func(node, expires string) {
		t.Helper()
		if _, err := conn.Exec(ctx, `DELETE FROM river_leader`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO river_leader (leader_id, elected_at, expires_at)
            VALUES ($1, now() - interval '1 minute', now() + $2::interval)`, node, expires); err != nil {
			t.Fatal(err)
		}
	}

	lead("node-c", "15 seconds")
	r, err = s.Replicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodes(r); got != "node-c node-a node-b" {
		t.Errorf("nodes %q, want the leader's first, then by name", got)
	}
	if !r.IsLeader("node-c") || r.IsLeader("node-a") || r.Leader.ExpiresAt.Sub(r.Leader.ElectedAt) < time.Minute {
		t.Errorf("leader %+v, want node-c's term", r.Leader)
	}
	if !r.Nodes[1].SeenAt.Equal(now.Add(-time.Second)) {
		t.Errorf("node-a seen at %v, want %v", r.Nodes[1].SeenAt, now.Add(-time.Second))
	}

	// Killed: it beats no more and the others forget it, but its term
	// runs until it expires.
	if _, err := conn.Exec(ctx, `DELETE FROM sender_nodes WHERE node = 'node-c'`); err != nil {
		t.Fatal(err)
	}
	r, err = s.Replicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodes(r); got != "node-a node-b" || !r.IsLeader("node-c") {
		t.Errorf("nodes %q, leader %+v; want node-a and node-b, node-c still leading", got, r.Leader)
	}

	lead("node-a", "-1 second")
	r, err = s.Replicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodes(r); got != "node-a node-b" || r.Leader != nil {
		t.Errorf("nodes %q, leader %+v; want no leader once the term expired", got, r.Leader)
	}

	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Replicas(ctx); err == nil {
		t.Error("no error with a cancelled context")
	}
}

// River's leader is named as Switchboard names the process: the node the
// delivery workers were started with. It resigns when they stop.
func TestReplicasLeaderIsTheNode(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.URL(t))
	ctx := context.Background()
	if err := s.StartDelivery(ctx, nopDeliverer{}, switchboard.DeliveryConfig{Workers: 1, PollInterval: 20 * time.Millisecond,
		JobTimeout: time.Minute, Node: "the-node"}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.StopDelivery(ctx)
		}
	}()
	waitLeader(t, s, func(r *switchboard.Replicas) bool { return r.IsLeader("the-node") }, "the-node leads")

	if err := s.StopDelivery(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	waitLeader(t, s, func(r *switchboard.Replicas) bool { return r.Leader == nil }, "no leader after it stopped")
}

type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, string, int) error { return nil }

// waitLeader polls Replicas until ok holds, failing after a deadline.
func waitLeader(t *testing.T, s interface {
	Replicas(context.Context) (*switchboard.Replicas, error)
}, ok func(*switchboard.Replicas) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := s.Replicas(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s; leader %+v", what, r.Leader)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodes are the names of r's nodes, in order, separated by spaces.
func nodes(r *switchboard.Replicas) string {
	names := make([]string, len(r.Nodes))
	for i, n := range r.Nodes {
		names[i] = n.Node
	}
	return strings.Join(names, " ")
}
