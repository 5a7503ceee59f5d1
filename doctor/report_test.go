package doctor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReportText(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(statusHandler(http.StatusInternalServerError))
	t.Cleanup(srv.Close)
	r := probe(t, Options{URL: srv.URL + "/sms"})
	text := r.Text()
	for _, prefix := range []string{"PASS  connect", "WARN  reachability  11205  ", "FAIL  status        11200  500 Internal Server Error"} {
		if !hasLine(text, prefix) {
			t.Errorf("no line starting %q in:\n%s", prefix, text)
		}
	}
	if !strings.Contains(text, " — fix: ") {
		t.Errorf("no fix in:\n%s", text)
	}
	if !strings.Contains(text, "Twilio would log an error") {
		t.Errorf("no verdict in:\n%s", text)
	}

	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"check":"status"`, `"status":"fail"`, `"code":11200`, `"elapsed_ns":`, `"kind":"sms"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON %s lacks %s", data, key)
		}
	}
}

func TestProbeRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{URL: "://nope"},
		{URL: "ftp://example.com/twiml"},
		{URL: "https:///path"},
		{URL: "https://example.com/", Kind: "fax"},
		{URL: "https://example.com/", Method: "PUT"},
		{URL: "https://example.com/", Kind: KindClientNotification, Method: "GET"},
	} {
		if r, err := Probe(context.Background(), o); err == nil {
			t.Errorf("Probe(%+v) = %v, nil; want an error", o, r)
		}
	}
}
