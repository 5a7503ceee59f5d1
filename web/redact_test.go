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

	for _, path := range []string{"/api/v1/events/" + it.Event.ID, "/api/v1/requests/" + it.Request.ID, "/api/v1/requests"} {
		resp, body := f.get(t, path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		if s := string(body); strings.Contains(s, "5550001111") || strings.Contains(s, "secret") {
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
