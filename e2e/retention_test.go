package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/switchboard-dev/switchboard/sim"
)

func TestRetentionPrunesWhileAccepting(t *testing.T) {
	forEachStore(t, testRetention)
}

// Delivered events that have grown old are pruned, with their requests
// and attempts, by the running server, batch after batch, while new
// webhooks keep being acknowledged and delivered; rejected requests go by
// their own, short retention; nothing recent goes.
func testRetention(t *testing.T, st store) {
	const old = 40
	a := startApp(t)
	cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	appendConfig(t, cfg, "\n[retention]\nrejected = \"1s\"\ndelivered = \"24h\"\ninterval = \"50ms\"\nbatch_size = 7\n")
	p := startServe(t, cfg)
	tw := newTwilio(t, p)
	db := openDB(t, st)

	// Old traffic: delivered webhooks, and forged ones refused.
	sids := receiveAll(t, []*sim.Sim{tw}, old)
	a.waitForSIDs(t, 60*time.Second, sids)
	eventually(t, 30*time.Second, func() (bool, string) {
		n := db.count(t, "SELECT count(*) FROM events WHERE state = 'delivered'")
		return n == old, fmt.Sprintf("%d of %d events recorded as delivered", n, old)
	})
	for range 5 {
		if got := sendForged(t, p, "/sms", "forged-auth-token"); got.status != http.StatusForbidden {
			t.Fatalf("forged webhook: answered %v; want 403", got)
		}
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		n := db.count(t, "SELECT count(*) FROM requests WHERE outcome = 'rejected'")
		return n == 0, fmt.Sprintf("%d rejected requests left, want them pruned after 1 s", n)
	})

	oldEvents := db.ids(t, "SELECT id FROM events")

	// New webhooks keep coming while the old ones are pruned.
	var (
		mu       sync.Mutex
		fresh    []string
		failures []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	sent := func() int { mu.Lock(); defer mu.Unlock(); return len(fresh) }
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sid, r, err := receive(t.Context(), tw, fmt.Sprintf("fresh %d", i))
			mu.Lock()
			switch {
			case err != nil:
				failures = append(failures, err.Error())
			case !acknowledged(r):
				failures = append(failures, describe(r))
			default:
				fresh = append(fresh, sid)
			}
			mu.Unlock()
		}
	})
	eventually(t, 30*time.Second, func() (bool, string) { return sent() >= 10, "fewer than 10 fresh webhooks acknowledged" })

	// A month and a half passes for the old events: they were delivered
	// 45 days ago as far as retention can tell.
	agedEvents, agedRequests := db.age(t, oldEvents)
	if len(agedEvents) != old {
		t.Fatalf("aged %d events, want %d", len(agedEvents), old)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		ev := db.count(t, "SELECT count(*) FROM events WHERE id IN ("+quoted(agedEvents)+")")
		req := db.count(t, "SELECT count(*) FROM requests WHERE id IN ("+quoted(agedRequests)+")")
		att := db.count(t, "SELECT count(*) FROM attempts WHERE event_id IN ("+quoted(agedEvents)+")")
		return ev+req+att == 0, fmt.Sprintf("%d aged events, %d of their requests and %d attempts left", ev, req, att)
	})
	atPruned := sent()
	eventually(t, 30*time.Second, func() (bool, string) {
		return sent() >= atPruned+10, "fewer than 10 fresh webhooks acknowledged after the pruning"
	})
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d fresh webhooks not acknowledged while pruning: %v", len(failures), failures[:min(len(failures), 5)])
	}
	a.waitForSIDs(t, 60*time.Second, fresh)
	eventually(t, 30*time.Second, func() (bool, string) {
		n := db.count(t, "SELECT count(*) FROM events WHERE state = 'delivered'")
		return n == len(fresh), fmt.Sprintf("%d delivered events stored, want the %d fresh ones", n, len(fresh))
	})
	if got := scrapeGauge(t, p, `switchboard_retention_pruned_total{kind="delivered"}`); got != old {
		t.Errorf("pruned_total{delivered} = %v, want %d", got, old)
	}
	if got := scrapeGauge(t, p, `switchboard_retention_pruned_total{kind="rejected"}`); got != 5 {
		t.Errorf("pruned_total{rejected} = %v, want 5", got)
	}
	p.out.waitFor(t, 5*time.Second, `"msg":"retention: pruned"`, `"delivered":`)
	t.Logf("%d old events pruned while %d fresh webhooks were acknowledged", old, len(fresh))
}

// testDB reads and ages a running server's store from the side, on a
// connection of its own.
type testDB struct {
	db     *sql.DB
	engine string
}

func openDB(t *testing.T, st store) *testDB {
	t.Helper()
	driver, dsn := "pgx", st.url
	if st.name == "sqlite" {
		driver, dsn = "sqlite", "file:"+st.url+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return &testDB{db: db, engine: st.name}
}

func (d *testDB) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := d.db.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (d *testDB) ids(t *testing.T, query string, args ...any) []string {
	t.Helper()
	rows, err := d.db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// age moves the last change of the delivered events among ids 45 days
// back, in one transaction, and returns those events and their requests.
func (d *testDB) age(t *testing.T, ids []string) (events, requests []string) {
	t.Helper()
	shift := `updated_at - interval '45 days'`
	if d.engine == "sqlite" {
		shift = fmt.Sprintf("updated_at - %d", (45 * 24 * time.Hour).Microseconds())
	}
	tx, err := d.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(t.Context(), `UPDATE events SET updated_at = `+shift+` WHERE state = 'delivered' AND id IN (`+quoted(ids)+`) RETURNING id, request_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ev, req string
		if err := rows.Scan(&ev, &req); err != nil {
			t.Fatal(err)
		}
		events, requests = append(events, ev), append(requests, req)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return events, requests
}

// quoted lists ids (UUIDs, nothing to escape) as SQL string literals.
func quoted(ids []string) string {
	return "'" + strings.Join(ids, "', '") + "'"
}
