package web_test

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/web"
)

func TestRedactionHidesBodiesQueriesAndExcerpts(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	it := storetest.NewItem("/sms", "redact", base)
	it.Request.URL = "https://hooks.example.com/sms?From=%2B15550001111"
	it.Request.Body = []byte("From=%2B15550001111&Body=my+secret")
	// A copy for a status webhook whose query holds a secret.
	fan := &switchboard.Event{ID: it.Event.ID + "-fan", IdempotencyKey: it.Event.IdempotencyKey + "#status_webhook",
		Target: "https://app.example.com/status?secret=s3cr3t"}
	it.Fanout = []*switchboard.Event{fan}
	if err := store.Ingest(t.Context(), []*switchboard.Ingest{it}); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordAttempts(t.Context(), []*switchboard.AttemptResult{{
		Attempt: switchboard.Attempt{EventID: it.Event.ID, Number: 1, StartedAt: base, TargetURL: "http://app/sms?From=%2B15550001111",
			StatusCode: 500, Latency: time.Millisecond, ResponseExcerpt: []byte("no such user +15550001111")},
		State: switchboard.StateDead,
	}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(store, token, nil, nil, web.WithRedaction()))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}

	for _, path := range []string{"/api/v1/events/" + it.Event.ID, "/api/v1/events/" + fan.ID, "/api/v1/requests/" + it.Request.ID, "/api/v1/requests"} {
		resp, body := f.get(t, path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		if s := string(body); strings.Contains(s, "5550001111") || strings.Contains(s, "secret") || strings.Contains(s, "s3cr3t") {
			t.Errorf("%s leaks a number or body:\n%s", path, s)
		}
		if !strings.Contains(string(body), "[redacted]") {
			t.Errorf("%s: nothing marked redacted", path)
		}
		if !json.Valid(body) {
			t.Errorf("%s: invalid JSON", path)
		}
	}
}

func TestEventShowsItsTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	it := storetest.NewItem("/status", "target", base)
	fan := &switchboard.Event{ID: it.Event.ID + "-fan", IdempotencyKey: it.Event.IdempotencyKey + "#status_webhook",
		Target: "https://app.example.com/status?k=v"}
	it.Fanout = []*switchboard.Event{fan}
	f.ingest(t, it)
	var d web.EventDetailJSON
	if err := json.Unmarshal(must200(t, f, "/api/v1/events/"+fan.ID), &d); err != nil {
		t.Fatal(err)
	}
	if d.Event.Target != fan.Target || d.Request.ID != it.Request.ID {
		t.Errorf("fan-out event: target %q, request %s; want %q from request %s", d.Event.Target, d.Request.ID, fan.Target, it.Request.ID)
	}
	var own web.EventDetailJSON
	if err := json.Unmarshal(must200(t, f, "/api/v1/events/"+it.Event.ID), &own); err != nil {
		t.Fatal(err)
	}
	if own.Event.Target != "" {
		t.Errorf("the callback's own event shows target %q, want none", own.Event.Target)
	}
}
