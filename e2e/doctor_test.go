package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// switchboard doctor against local apps: the exit status tells whether
// Twilio would log an error, and the report names the code.
func TestDoctorCLI(t *testing.T) {
	t.Parallel()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Message>hi</Message></Response>`))
	}))
	t.Cleanup(healthy.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusBadGateway)
	}))
	t.Cleanup(broken.Close)

	stdout, stderr, err := runCLI(t, "", "doctor", "--auth-token", authToken, healthy.URL+"/sms")
	if code := exitCode(err); code != 0 {
		t.Errorf("healthy app: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "PASS") {
		t.Errorf("healthy app: no PASS line:\n%s", stdout)
	}

	stdout, stderr, err = runCLI(t, "", "doctor", "--json", broken.URL+"/sms")
	if code := exitCode(err); code == 0 {
		t.Errorf("app answering 502: exit 0, want non-zero\n%s", stdout)
	}
	var report struct {
		Findings []struct {
			Status string `json:"status"`
			Code   int    `json:"code"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json output: %v\n%s\n%s", err, stdout, stderr)
	}
	found := false
	for _, f := range report.Findings {
		found = found || (f.Status == "fail" && f.Code == 11200)
	}
	if !found {
		t.Errorf("no failing 11200 finding for a 502:\n%s", stdout)
	}
}
