package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// With admin.listen, the real binary serves /metrics, the admin API and the
// console on the admin address only: on the public port they are 404, and
// the public port still answers the health checks, which
// switchboard healthcheck probes.
func TestAdminListenerSeparatesMetrics(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	cfg := writeConfig(t, config{storage: t.TempDir() + "/sb.db", adminListen: "127.0.0.1:0",
		routes: []route{{path: "/sms", target: app.url("/sms")}}})
	p := startServe(t, cfg)
	admin := adminAddr(t, p)
	if admin == "" || admin == p.addr {
		t.Fatalf("admin address %q beside public %q: want an address of its own", admin, p.addr)
	}
	get := func(addr, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", addr, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body)
	}
	if code, _ := get(p.addr, "/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", code)
	}
	if code, _ := get(p.addr, "/api/v1/events"); code != http.StatusNotFound {
		t.Errorf("public /api/v1/events: %d, want 404", code)
	}
	if code, _ := get(p.addr, "/console/"); code != http.StatusNotFound {
		t.Errorf("public /console/: %d, want 404", code)
	}
	code, body := get(admin, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "switchboard_queue_lag_seconds") {
		t.Errorf("admin /metrics: %d, want 200 with switchboard_queue_lag_seconds", code)
	}
	if code, _ := get(admin, "/api/v1/events"); code != http.StatusOK {
		t.Errorf("admin /api/v1/events: %d, want 200", code)
	}
	mustCLI(t, "", "healthcheck", "--url", "http://"+p.addr+"/healthz")
	if _, _, err := runCLI(t, "", "healthcheck", "--url", "http://"+p.addr+"/metrics"); err == nil {
		t.Error("healthcheck of the public /metrics succeeded, want it to fail with the 404")
	}
	if _, err := p.stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.out.tail(20))
	}
}

// adminAddr is the admin address in serve's "switchboard listening" line.
func adminAddr(t *testing.T, p *proc) string {
	t.Helper()
	for _, line := range strings.Split(p.out.String(), "\n") {
		var entry struct {
			Msg       string `json:"msg"`
			AdminAddr string `json:"admin_addr"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "switchboard listening" {
			return entry.AdminAddr
		}
	}
	t.Fatalf("no listening line:\n%s", p.out.tail(20))
	return ""
}
