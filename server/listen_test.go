package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With admin.listen, the public listener carries webhooks and the health
// checks only, and the admin listener Switchboard's own endpoints and no
// webhooks; Shutdown closes both.
func TestAdminListenerSplit(t *testing.T) {
	t.Parallel()
	cfg := tlsConfig(t, t.TempDir(), "")
	cfg.PublicURL = "http://hooks.example.com"
	cfg.Admin.Listen = "127.0.0.1:0"
	s, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	if s.AdminAddr() == "" || s.AdminAddr() == s.Addr() {
		t.Fatalf("AdminAddr() = %q, Addr() = %q: want two addresses", s.AdminAddr(), s.Addr())
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(addr, path string, auth bool) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer secret")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", addr, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	post := func(addr, path string) int {
		t.Helper()
		resp, err := http.Post("http://"+addr+path, "application/x-www-form-urlencoded", strings.NewReader("MessageSid=SM1"))
		if err != nil {
			t.Fatalf("POST %s%s: %v", addr, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	public, admin := s.Addr(), s.AdminAddr()
	for _, p := range []string{"/api/v1/events", "/console/", "/console", "/metrics",
		"/2010-04-01/Accounts/" + testAccount + "/Messages.json", "/verify.twilio.com/v2/Services"} {
		if code := get(public, p, true); code != http.StatusNotFound {
			t.Errorf("public GET %s: %d, want 404", p, code)
		}
	}
	// Path tricks, written on the wire as they are (no client cleans
	// them): none reaches the admin API, the console or the metrics on
	// the public port.
	for _, target := range []string{"//api/v1/events", "/API/v1/events", "/api%2Fv1%2Fevents", "/%61pi/v1/events",
		"/console/../api/v1/events", "/./metrics", "//metrics", "/metrics/", "/healthz/../metrics", "/healthz/../api/v1/events",
		"http://" + admin + "/api/v1/events", "http://" + admin + "/metrics", "/Console/", "//console/", "/console%2F",
		"/%2E%2E/api/v1/events", "/healthz%2F..%2Fmetrics"} {
		for _, method := range []string{"GET", "HEAD"} {
			conn, err := net.Dial("tcp", public)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer secret\r\nConnection: close\r\n\r\n", method, target, admin)
			resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
			if err != nil {
				conn.Close()
				t.Fatalf("public %s %s: %v", method, target, err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			conn.Close()
			if resp.StatusCode/100 == 2 || resp.StatusCode/100 == 3 || bytes.Contains(body, []byte("switchboard_")) ||
				bytes.Contains(body, []byte(`"items"`)) || bytes.Contains(body, []byte("<html")) {
				t.Errorf("public %s %s: %d %q, want no admin endpoint", method, target, resp.StatusCode, body[:min(len(body), 200)])
			}
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code := get(public, p, false); code != http.StatusOK {
			t.Errorf("public GET %s: %d, want 200", p, code)
		}
		if code := get(admin, p, false); code != http.StatusOK {
			t.Errorf("admin GET %s: %d, want 200", p, code)
		}
	}
	// A webhook reaches intake on the public listener (unsigned: 403),
	// and nothing takes it on the admin one.
	if code := post(public, "/sms"); code != http.StatusForbidden {
		t.Errorf("public POST /sms unsigned: %d, want intake's 403", code)
	}
	if code := post(admin, "/sms"); code != http.StatusNotFound {
		t.Errorf("admin POST /sms: %d, want 404", code)
	}
	if code := get(admin, "/metrics", false); code != http.StatusOK {
		t.Errorf("admin GET /metrics: %d, want 200", code)
	}
	if code := get(admin, "/api/v1/events", true); code != http.StatusOK {
		t.Errorf("admin GET /api/v1/events: %d, want 200", code)
	}
	if code := get(admin, "/api/v1/events", false); code != http.StatusUnauthorized {
		t.Errorf("admin GET /api/v1/events without a token: %d, want 401", code)
	}
	if code := get(admin, "/console", false); code != http.StatusMovedPermanently {
		t.Errorf("admin GET /console: %d, want a redirect to /console/", code)
	}
	if code := get(admin, "/console/", false); code == http.StatusNotFound {
		t.Errorf("admin GET /console/: 404, want the console")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, addr := range []string{public, admin} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Shutdown", addr)
		}
	}
	for range 2 {
		if err := <-s.served; err != http.ErrServerClosed {
			t.Errorf("a listener ended with %v, want http.ErrServerClosed", err)
		}
	}
}

// With admin.listen and TLS, both listeners serve the same certificate.
func TestAdminListenerTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newTestCert(t, 7)
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	writeAtomic(t, certFile, c.certPEM)
	writeAtomic(t, keyFile, c.keyPEM)
	cfg := tlsConfig(t, dir, "[tls]\ncert_file = \""+certFile+"\"\nkey_file = \""+keyFile+"\"\n")
	cfg.Admin.Listen = "127.0.0.1:0"
	s := startServer(t, cfg, slog.New(slog.DiscardHandler))
	roots := newPool(c)
	for _, addr := range []string{s.Addr(), s.AdminAddr()} {
		if got, err := handshakeSerial(addr, roots); err != nil || got != 7 {
			t.Errorf("handshake with %s: serial %d, %v; want 7", addr, got, err)
		}
	}
}
