package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/notify"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

const notifierSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// alertReceiver is a notifier's target that is down (503) until told to
// come back, and counts what it accepted.
type alertReceiver struct {
	down     atomic.Bool
	refused  atomic.Int64 // answered 503
	accepted atomic.Int64 // answered 200, signature verified
	mu       sync.Mutex
	ids      []string
	bad      []string
}

func (a *alertReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if a.down.Load() {
		a.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	key, _ := config.WebhookKey(notifierSecret)
	ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	a.mu.Lock()
	defer a.mu.Unlock()
	if notify.Sign(key, r.Header.Get("webhook-id"), ts, body) != r.Header.Get("webhook-signature") {
		a.bad = append(a.bad, r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a.ids = append(a.ids, r.Header.Get("webhook-id"))
	a.accepted.Add(1)
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling, not waiting for an outcome
	}
}

// TestNotificationsAreDeliveredDurably stores a notification as the alert
// engine does, on both store engines, and checks that it reaches the
// notifier's target through the delivery workers: retried while the
// target refuses connections and then answers 503, delivered exactly once
// once it is back, visible and replayable through the admin API.
func TestNotificationsAreDeliveredDurably(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storage := filepath.Join(t.TempDir(), "sb.db")
			if engine == "postgres" {
				storage = pgtest.URL(t)
			}
			testNotificationDelivery(t, storage)
		})
	}
}

func testNotificationDelivery(t *testing.T, storage string) {
	// The target's address, with nothing listening yet: connections are
	// refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cfg := config.Default()
	cfg.Listen, cfg.Storage.URL, cfg.Admin.Token = "127.0.0.1:0", storage, "admin-token"
	cfg.Delivery.BackoffBase, cfg.Delivery.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.Delivery.BreakerFailures, cfg.Delivery.BreakerOpenFor = 3, 200*time.Millisecond
	cfg.Notifiers = []config.Notifier{{Name: "ops", Type: "webhook", URL: "http://" + addr + "/alerts", Secret: notifierSecret,
		MaxAttempts: 1000, MaxAge: time.Hour}}
	logger := slog.New(slog.DiscardHandler)
	s, err := New(t.Context(), &cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	store := s.Store()
	ctx := t.Context()

	now := time.Now().UTC()
	n := &switchboard.Notification{Rule: "webhook-dead-letters", Key: "/sms", Status: switchboard.AlertFiring,
		Severity: "critical", Seq: 1, FiredAt: now, At: now}
	it, err := switchboard.NotificationItem("ops", n, "0190a0b0-0000-7000-8000-000000000001", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Ingest(ctx, []*switchboard.Ingest{it}); err != nil {
		t.Fatal(err)
	}
	id := it.Event.ID
	attempts := func() []*switchboard.Attempt {
		atts, err := store.Attempts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return atts
	}

	// Down: connections refused.
	eventually(t, "two refused attempts", func() bool { return len(attempts()) >= 2 })
	first := attempts()[0]
	if first.TargetURL != "http://"+addr || first.StatusCode != 0 || first.Error == "" {
		t.Errorf("refused attempt recorded as %+v", first)
	}

	// Up but failing: 503.
	recv := &alertReceiver{}
	recv.down.Store(true)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	eventually(t, "two 503 answers", func() bool { return recv.refused.Load() >= 2 })
	if ev, err := store.Event(ctx, id); err != nil || ev.State.Terminal() {
		t.Fatalf("event %+v, %v while the target is down, want it waiting", ev, err)
	}

	// Back: delivered once.
	recv.down.Store(false)
	eventually(t, "the notification delivered", func() bool {
		ev, err := store.Event(ctx, id)
		return err == nil && ev.State == switchboard.StateDelivered
	})
	if got := recv.accepted.Load(); got != 1 || len(recv.bad) != 0 || recv.ids[0] != id {
		t.Errorf("target accepted %d notifications (ids %v, bad signatures %v), want 1 with id %s", got, recv.ids, recv.bad, id)
	}

	// The same transition stored again (another replica, a retry) is the
	// same notification.
	again, _ := switchboard.NotificationItem("ops", n, "0190a0b0-0000-7000-8000-000000000002", now)
	if err := store.Ingest(ctx, []*switchboard.Ingest{again}); err != nil || !again.Duplicate {
		t.Errorf("storing the notification again: duplicate %v, %v", again.Duplicate, err)
	}

	// Visible in the inspector's API by its route, and replayable.
	api := func(method, path string, out any) int {
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+s.Addr()+path, nil)
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return resp.StatusCode
	}
	var list struct {
		Items []struct {
			ID, Route, Kind, State string
		} `json:"items"`
	}
	if code := api("GET", "/api/v1/events?route="+url.QueryEscape(switchboard.NotifierRoute("ops")), &list); code != 200 ||
		len(list.Items) != 1 || list.Items[0].ID != id || list.Items[0].Kind != string(switchboard.KindNotification) {
		t.Fatalf("events of notify:ops: %d %+v", code, list)
	}
	if code := api("GET", "/api/v1/events/"+id, nil); code != 200 {
		t.Errorf("event %s: %d", id, code)
	}
	if code := api("POST", "/api/v1/events/"+id+"/replay", nil); code/100 != 2 {
		t.Fatalf("replay: %d", code)
	}
	eventually(t, "the replay delivered", func() bool { return recv.accepted.Load() == 2 })
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.ids[1] != id {
		t.Errorf("replay's webhook-id %s, want %s", recv.ids[1], id)
	}
}
