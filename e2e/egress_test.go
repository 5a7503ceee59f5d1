package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/sim"
)

// TestStatusWebhookInternalIsRefused runs serve with no egress allowlist. A
// native create whose status_webhook names a local app by its IP literal or
// by localhost is refused (400) and stores nothing. One that names it by a
// host name resolving to loopback is accepted, since names are checked as
// they are dialled: every status callback still reaches the status route's
// target, while each of the webhook's copies is dead at its first attempt
// with the denial on record, and the local app never receives a request.
func TestStatusWebhookInternalIsRefused(t *testing.T) {
	t.Parallel()
	tunnel := newLateTunnel(t)
	tw, err := sim.New(sim.Config{
		Seed: simSeeds.Add(1),
		Accounts: []sim.Account{{
			SID: accountSID, AuthTokens: []string{authToken},
			Numbers: []sim.Number{{Number: outboundSender, Throughput: 100}},
		}},
		Carriers:  []sim.Carrier{{Latency: sim.Latency{Median: 50 * time.Millisecond, P99: 200 * time.Millisecond}}},
		Transport: tunnel,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	srv, err := tw.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	target, hook := startApp(t), startApp(t)
	cfg := writeConfig(t, config{
		storage:     filepath.Join(t.TempDir(), "data", "switchboard.db"),
		routes:      []route{{path: "/status", target: target.url("/status")}},
		provider:    srv.URL,
		pools:       []pool{{name: "main", senders: []string{outboundSender}, rate: 10}},
		statusRoute: "/status",
	})
	p := startServe(t, cfg)
	tunnel.to(p.addr)

	_, port, _ := net.SplitHostPort(strings.TrimPrefix(hook.srv.URL, "http://"))
	for i, hookURL := range []string{hook.url("/hooks/status?token=s3cr3t"), "http://localhost:" + port + "/hooks/status?token=s3cr3t"} {
		status, body := adminPost(t, p, "/api/v1/messages", fmt.Sprintf("internal-%d", i),
			fmt.Sprintf(`{"to": "+15557770002", "body": "internal webhook", "status_webhook": %q}`, hookURL))
		if status != http.StatusBadRequest || !strings.Contains(body, "loopback") || strings.Contains(body, "s3cr3t") {
			t.Errorf("create with status_webhook %s = %d %s; want 400 naming loopback, not the query", hookURL, status, body)
		}
	}
	if ms := listMessages(t, p, ""); len(ms) != 0 {
		t.Errorf("refused creates stored %d messages", len(ms))
	}

	t.Run("name resolving to loopback", func(t *testing.T) {
		name, addr := loopbackName(t)
		if name == "" {
			t.Skip("no host name other than localhost resolves only to loopback here")
		}
		named := startAppOn(t, addr)
		_, port, _ := net.SplitHostPort(named.srv.Listener.Addr().String())
		hookURL := "http://" + name + ":" + port + "/hooks/status?token=s3cr3t"
		status, created := postMessage(t, p, "internal-name",
			fmt.Sprintf(`{"to": "+15557770002", "body": "internal webhook by name", "status_webhook": %q}`, hookURL))
		if status != http.StatusAccepted {
			t.Fatalf("create with status_webhook %s = %d, want 202: names are checked when dialled", hookURL, status)
		}

		var copies []eventState
		eventually(t, 15*time.Second, func() (bool, string) {
			sid := messageDetail(t, p, created.ID).Message.TwilioSID
			m, ok := tw.Message(sid)
			if sid == "" || !ok {
				return false, "message not at the simulator yet"
			}
			acked := tunnel.acked(sid)
			if m.Status != sim.StatusDelivered || acked != len(m.History)-1 {
				return false, fmt.Sprintf("at the simulator %s; %d callbacks acknowledged", m.Status, acked)
			}
			var routed int
			copies = copies[:0]
			// The events name the message by the SID its app knows.
			for _, ev := range sidEvents(t, p, (&switchboard.OutboundMessage{ID: created.ID}).SID()) {
				switch {
				case ev.Target == "" && ev.State == "delivered":
					routed++
				case ev.Target != "" && ev.State == "dead":
					copies = append(copies, ev)
				}
			}
			return routed == acked && len(copies) == acked,
				fmt.Sprintf("%d callbacks: %d delivered to the route's target, %d webhook copies dead", acked, routed, len(copies))
		})
		for _, ev := range copies {
			if ev.Attempts != 1 || !strings.Contains(ev.LastError, "loopback") || strings.Contains(ev.LastError, "s3cr3t") {
				t.Errorf("webhook copy %s: %d attempts, last error %q; want one attempt, the loopback denial, not the query",
					ev.ID, ev.Attempts, ev.LastError)
			}
		}
		named.mu.Lock()
		defer named.mu.Unlock()
		if n := len(named.deliveries); n != 0 {
			t.Errorf("the app behind a name resolving to loopback received %d requests, want none", n)
		}
	})
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if n := len(hook.deliveries); n != 0 {
		t.Errorf("the local app received %d requests, want none", n)
	}
}

// TestDoctorEndpointRefusesInternal runs serve with the default
// configuration: POST /api/v1/doctor refuses a local app's IP literal (400)
// and, for a name resolving to loopback, answers a failed report without
// showing the address; the app receives no probe.
func TestDoctorEndpointRefusesInternal(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	p := startServe(t, writeConfig(t, config{storage: filepath.Join(t.TempDir(), "data", "switchboard.db")}))

	status, body := adminPost(t, p, "/api/v1/doctor", "", fmt.Sprintf(`{"url": %q}`, a.url("/sms")))
	if status != http.StatusBadRequest || !strings.Contains(body, "loopback") || !strings.Contains(body, "doctor.allow_private") {
		t.Errorf("doctor of %s = %d %s; want 400 naming loopback and doctor.allow_private", a.url("/sms"), status, body)
	}

	if name, addr := loopbackName(t); name != "" {
		named := startAppOn(t, addr)
		_, port, _ := net.SplitHostPort(named.srv.Listener.Addr().String())
		status, body := adminPost(t, p, "/api/v1/doctor", "", fmt.Sprintf(`{"url": "http://%s:%s/sms"}`, name, port))
		if status != http.StatusOK || !strings.Contains(body, "not probed") || strings.Contains(body, addr.String()) {
			t.Errorf("doctor of %s = %d %s; want a report saying it was not probed, without the address", name, status, body)
		}
		named.mu.Lock()
		if n := len(named.deliveries); n != 0 {
			t.Errorf("the app behind %s received %d probes, want none", name, n)
		}
		named.mu.Unlock()
	} else {
		t.Log("no host name other than localhost resolves only to loopback here: the by-name case is not run")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.deliveries); n != 0 {
		t.Errorf("the local app received %d probes, want none", n)
	}
}

// eventState is an event as GET /api/v1/events lists it.
type eventState struct {
	ID        string `json:"id"`
	Target    string `json:"target"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// sidEvents lists the events of a message SID.
func sidEvents(t *testing.T, p *proc, sid string) []eventState {
	t.Helper()
	var page struct {
		Items []eventState `json:"items"`
	}
	adminGet(t, p, "/api/v1/events?sid="+sid+"&limit=500", &page)
	return page.Items
}

// adminPost posts a JSON body to the admin API, with an idempotency key
// unless key is empty, and returns the status and body.
func adminPost(t *testing.T, p *proc, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// loopbackName returns a host name of this machine that is not a localhost
// name and resolves only to loopback addresses (its own name, through the
// hosts file, on many machines), with the first of them; "" when there is
// none. The create-time check cannot tell such a name from a public one:
// only the check of the address dialled catches it.
func loopbackName(t *testing.T) (string, netip.Addr) {
	t.Helper()
	name, err := os.Hostname()
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if err != nil || name == "" || name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return "", netip.Addr{}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		return "", netip.Addr{}
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return "", netip.Addr{}
		}
	}
	return name, addrs[0].Unmap()
}

// startAppOn starts an app listening on an ephemeral port of addr.
func startAppOn(t *testing.T, addr netip.Addr) *app {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	a := newApp()
	a.srv = httptest.NewUnstartedServer(a)
	a.srv.Listener.Close()
	a.srv.Listener = ln
	a.srv.Start()
	t.Cleanup(a.srv.Close)
	return a
}
