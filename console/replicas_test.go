package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/sqlite"
)

// thisProcess is the live state of the process the console runs in: its
// node and the jobs it took over.
type thisProcess struct {
	node    string
	rescued map[string]int64
}

func (p thisProcess) LiveState(context.Context) (*console.LiveState, error) {
	return &console.LiveState{Node: p.node, Rescued: p.rescued}, nil
}

// replicaRows are the replicas table's rows as node → the row's text.
func replicaRows(t *testing.T, doc *html.Node) map[string]string {
	t.Helper()
	table := byID(doc, "replicas-table")
	if table == nil {
		t.Fatal("no replicas table")
	}
	rows := map[string]string{}
	for _, tr := range all(table, func(n *html.Node) bool { return n.Data == "tr" }) {
		cells := all(tr, func(n *html.Node) bool { return n.Data == "td" })
		if len(cells) == 3 {
			node, _, _ := strings.Cut(text(cells[0]), " ")
			rows[node] = text(tr)
		}
	}
	return rows
}

// On PostgreSQL the dashboard lists the replicas that beat, with their
// last beat, the leader and since when, and which is this process; a
// leader that died is shown as still holding its term, then none.
func TestReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })

	now := time.Now().UTC().Truncate(time.Millisecond)
	const me, other = "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "6fa459ea-ee8a-3ca4-894e-db77e160355e"
	for node, at := range map[string]time.Time{me: now.Add(-200 * time.Millisecond), other: now.Add(-time.Second)} {
		if _, err := st.SenderHeartbeat(ctx, node, at, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// River's leader, elected a minute ago by the database's clock.
	if _, err := conn.Exec(ctx, `INSERT INTO river_leader (leader_id, elected_at, expires_at)
        VALUES ($1, $2, now() + interval '15 seconds')`, other, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	f := &fixture{t: t, clock: &clock{now: now}, logs: &syncBuffer{}}
	f.c = console.New(st, console.Options{Token: token, Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Live: thisProcess{node: me, rescued: map[string]int64{"delivery": 3, "send": 1}}})
	s := f.signIn()

	doc := parseHTML(t, f.get(s, "/console/dashboard", http.StatusOK))
	rows := replicaRows(t, doc)
	if len(rows) != 2 {
		t.Fatalf("replica rows %v, want two", rows)
	}
	if r := rows[me]; !strings.Contains(r, "this process") || !strings.Contains(r, "200 ms ago") || strings.Contains(r, "leader") {
		t.Errorf("this process's row %q", r)
	}
	if r := rows[other]; !strings.Contains(r, "leader") || !strings.Contains(r, "1.00 s ago") || strings.Contains(r, "this process") {
		t.Errorf("the leader's row %q", r)
	}
	leader := text(byID(doc, "leader"))
	if !strings.Contains(leader, other) || !strings.Contains(leader, "1m0s ago") || strings.Contains(leader, "this process") ||
		strings.Contains(leader, "stopped beating") {
		t.Errorf("leader %q", leader)
	}
	if r := text(byID(doc, "rescued")); !strings.Contains(r, "delivery 3") || !strings.Contains(r, "send 1") {
		t.Errorf("rescued %q", r)
	}

	var d console.DashboardJSON
	if err := json.Unmarshal([]byte(f.get(s, "/console/dashboard.json", http.StatusOK)), &d); err != nil {
		t.Fatal(err)
	}
	if d.Replicas == nil || len(d.Replicas.Nodes) != 2 || d.Replicas.Leader == nil || d.Replicas.Leader.Node != other ||
		!d.Replicas.Leader.Beating || d.Replicas.Nodes[0].Node != other || !d.Replicas.Nodes[1].This {
		t.Errorf("replicas in JSON %+v", d.Replicas)
	}

	// The leader is killed: it no longer beats, but holds its term.
	if _, err := conn.Exec(ctx, `DELETE FROM sender_nodes WHERE node = $1`, other); err != nil {
		t.Fatal(err)
	}
	doc = parseHTML(t, f.get(s, "/console/dashboard", http.StatusOK))
	if rows := replicaRows(t, doc); len(rows) != 1 || rows[me] == "" {
		t.Errorf("replica rows %v, want this process's alone", rows)
	}
	if leader := text(byID(doc, "leader")); !strings.Contains(leader, other) || !strings.Contains(leader, "stopped beating") {
		t.Errorf("leader that died: %q", leader)
	}

	// Its term expired, and nobody has been elected yet.
	if _, err := conn.Exec(ctx, `UPDATE river_leader SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	doc = parseHTML(t, f.get(s, "/console/dashboard", http.StatusOK))
	if leader := text(byID(doc, "leader")); !strings.Contains(leader, "No leader") {
		t.Errorf("no leader: %q", leader)
	}

	// This process elected.
	if _, err := conn.Exec(ctx, `UPDATE river_leader SET leader_id = $1, elected_at = now(), expires_at = now() + interval '15 seconds'`, me); err != nil {
		t.Fatal(err)
	}
	doc = parseHTML(t, f.get(s, "/console/dashboard", http.StatusOK))
	if leader := text(byID(doc, "leader")); !strings.Contains(leader, "(this process)") {
		t.Errorf("this process leading: %q", leader)
	}
	if r := replicaRows(t, doc)[me]; !strings.Contains(r, "leader") {
		t.Errorf("this process's row %q, want it marked leader", r)
	}
}

// On SQLite the dashboard says there is one process, and no replicas.
func TestReplicasOnSQLite(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, clock: &clock{now: time.Now()}, logs: &syncBuffer{}}
	f.c = console.New(st, console.Options{Token: token, Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Live: thisProcess{node: "n"}})
	s := f.signIn()

	doc := parseHTML(t, f.get(s, "/console/dashboard", http.StatusOK))
	if byID(doc, "replicas-table") != nil || byID(doc, "leader") != nil {
		t.Error("replicas or a leader shown on SQLite")
	}
	if got := text(byID(doc, "replicas-none")); !strings.Contains(got, "One process (SQLite)") {
		t.Errorf("replicas section %q", got)
	}
	if got := text(byID(doc, "rescued")); !strings.Contains(got, "none") {
		t.Errorf("rescued %q, want none", got)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(f.get(s, "/console/dashboard.json", http.StatusOK)), &d); err != nil {
		t.Fatal(err)
	}
	if _, ok := d["replicas"]; ok {
		t.Error("replicas in the JSON on SQLite")
	}
}

// unreadableReplicas is a store replicas share whose replicas cannot be
// read.
type unreadableReplicas struct{ *fakeStore }

func (unreadableReplicas) Replicas(context.Context) (*switchboard.Replicas, error) {
	return nil, errors.New("connection refused")
}

// Replicas that cannot be read leave the panel, not the page: it says
// they are not known (not that there is one process), and the log why.
func TestReplicasUnreadable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.c = console.New(unreadableReplicas{f.store}, console.Options{Token: token, Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	s := f.signIn()
	doc := parseHTML(t, f.get(s, "/console/dashboard", http.StatusOK))
	if got := text(byID(doc, "replicas-none")); !strings.Contains(got, "Not known") {
		t.Errorf("replicas section %q", got)
	}
	if byID(doc, "rescued") != nil {
		t.Error("rescued jobs shown without a live state")
	}
	if !strings.Contains(f.logs.String(), "connection refused") {
		t.Errorf("log lacks why:\n%s", f.logs)
	}
}
