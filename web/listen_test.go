package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/listener"
	"github.com/switchboard-dev/switchboard/web"
)

const laptopKey = "laptop-key-0123456789abcdef0123456789"

// fakeHub records the listeners it was asked to serve, answering 200, or
// an error for a name it does not know.
type fakeHub struct {
	mu     sync.Mutex
	served []string
}

func (h *fakeHub) Serve(w http.ResponseWriter, r *http.Request, name string) error {
	switch name {
	case "laptop", "desk":
	case "bad-url":
		return fmt.Errorf("%w: forward_to", switchboard.ErrInvalid)
	default:
		return listener.ErrUnknownListener
	}
	h.mu.Lock()
	h.served = append(h.served, name)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	return nil
}

// TestListenAuthorization: the admin token connects any listener, a
// listener's key connects that listener only, and everything else is
// refused before the hub sees it.
func TestListenAuthorization(t *testing.T) {
	t.Parallel()
	hub := &fakeHub{}
	f := newFixtureWith(t, token, nil, web.WithListeners(hub, map[string]string{"laptop": laptopKey, "desk": ""}))
	at := func(name, forwardTo string) string {
		return listener.Path + "?" + listener.ParamListener + "=" + name + "&" + listener.ParamForwardTo + "=" + url.QueryEscape(forwardTo)
	}
	path := func(name string) string { return at(name, "http://127.0.0.1:3000") }
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"admin token", path("laptop"), bearer, http.StatusOK},
		{"own key", path("laptop"), "Bearer " + laptopKey, http.StatusOK},
		{"own key, scheme in lower case", path("laptop"), "bearer " + laptopKey, http.StatusOK},
		{"another listener's key", path("desk"), "Bearer " + laptopKey, http.StatusUnauthorized},
		{"empty key configured", path("desk"), "Bearer ", http.StatusUnauthorized},
		{"no token", path("laptop"), "", http.StatusUnauthorized},
		{"wrong token", path("laptop"), "Bearer nope", http.StatusUnauthorized},
		{"key prefix", path("laptop"), "Bearer " + laptopKey[:20], http.StatusUnauthorized},
		{"key as basic auth", path("laptop"), "Basic " + laptopKey, http.StatusUnauthorized},
		{"key for no name", listener.Path, "Bearer " + laptopKey, http.StatusUnauthorized},
		{"bad name", path("Laptop%00"), bearer, http.StatusBadRequest},
		{"unknown listener", path("nobody"), bearer, http.StatusNotFound},
		{"bad forward_to", path("bad-url"), bearer, http.StatusBadRequest},
		{"key, localhost", at("laptop", "http://localhost:3000/sms"), "Bearer " + laptopKey, http.StatusOK},
		{"key, IPv6 loopback", at("laptop", "http://[::1]:3000"), "Bearer " + laptopKey, http.StatusOK},
		{"key, a public URL", at("laptop", "https://app.example.com/sms"), "Bearer " + laptopKey, http.StatusBadRequest},
		{"key, a name posing as loopback", at("laptop", "http://127.0.0.1.example.com/sms"), "Bearer " + laptopKey, http.StatusBadRequest},
		{"key, localhost as a subdomain", at("laptop", "http://localhost.example.com/sms"), "Bearer " + laptopKey, http.StatusBadRequest},
		{"key, a private address", at("laptop", "http://10.0.0.5:3000"), "Bearer " + laptopKey, http.StatusBadRequest},
		{"key, no forward_to", listener.Path + "?listener=laptop", "Bearer " + laptopKey, http.StatusBadRequest},
		{"admin token, a public URL", at("laptop", "https://app.example.com/sms"), bearer, http.StatusOK},
		{"key on another endpoint", "/api/v1/events", "Bearer " + laptopKey, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, call{method: http.MethodGet, path: tc.path, auth: tc.auth})
			if resp.StatusCode != tc.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if len(hub.served) != 6 {
		t.Errorf("hub served %q, want laptop six times", hub.served)
	}
}

func TestListenWithoutListeners(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, _ := f.do(t, call{method: http.MethodGet, path: listener.Path + "?listener=laptop", auth: bearer})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}
