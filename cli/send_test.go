package cli

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/web"
)

// sendFixture serves the admin API with one pool over a fresh store and
// returns its URL and a configuration file with its admin token.
func sendFixture(t *testing.T) (url, cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := web.New(store, "cli-token", nil, nil, web.WithOutbound([]web.OutboundPool{{
		Name: "main", AccountSID: "AC00000000000000000000000000000001", Senders: []string{"+15550001001"},
		Purposes: switchboard.Purposes,
	}}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfgPath = filepath.Join(dir, "switchboard.toml")
	toml := fmt.Sprintf("[storage]\nurl = %q\n[admin]\ntoken = \"cli-token\"\n", filepath.Join(dir, "sb.db"))
	if err := os.WriteFile(cfgPath, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, cfgPath
}

func TestSend(t *testing.T) {
	t.Parallel()
	url, cfg := sendFixture(t)
	send := func(args ...string) (string, error) {
		return runCLI(t.Context(), append([]string{"send", "--config", cfg, "--server", url}, args...)...)
	}
	out, err := send("--to", "+15557770001", "--body", "hello", "--purpose", "otp", "--key", "k1")
	if err != nil || !strings.HasPrefix(out, "accepted: message ") || !strings.Contains(out, "pool main, queued") {
		t.Fatalf("send = %q, %v", out, err)
	}
	id := strings.Fields(out)[2]
	out, err = send("--to", "+15557770001", "--body", "hello", "--purpose", "otp", "--key", "k1")
	if err != nil || !strings.Contains(out, "already stored under this key, not sent again: message "+id) {
		t.Errorf("repeat = %q, %v; want message %s", out, err, id)
	}
	out, err = send("--to", "+15557770001", "--body", "other", "--purpose", "otp", "--key", "k1", "--json")
	if err == nil || !strings.Contains(err.Error(), "409 Conflict") {
		t.Errorf("same key, other body = %q, %v; want a 409", out, err)
	}
	if _, err := send("--to", "+15557770001", "--body", "hello"); err == nil || !strings.Contains(err.Error(), "--key is required") {
		t.Errorf("without --key: %v", err)
	}
	if _, err := send("--to", "nope", "--body", "hello", "--key", "k2"); err == nil || !strings.Contains(err.Error(), `400 Bad Request: invalid input: to "nope"`) {
		t.Errorf("bad recipient: %v", err)
	}
	out, err = send("--to", "+15557770002", "--body", "json", "--key", "k3", "--json")
	if err != nil || !strings.Contains(out, `"idempotency_key": "k3"`) {
		t.Errorf("--json = %q, %v", out, err)
	}
}

func TestListenURL(t *testing.T) {
	t.Parallel()
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"[::]:9000":      "http://127.0.0.1:9000",
		"[::1]:9000":     "http://[::1]:9000",
		"localhost:80":   "http://localhost:80",
	} {
		if got := listenURL(listen); got != want {
			t.Errorf("listenURL(%q) = %q, want %q", listen, got, want)
		}
	}
}
