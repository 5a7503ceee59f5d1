package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// healthcheck succeeds on a 2xx only: an error status, a redirect and a
// closed port fail.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	t.Cleanup(tls.Close)
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{"--url", srv.URL + "/healthz"}, true},
		{[]string{"--url", srv.URL + "/readyz"}, false},
		{[]string{"--url", srv.URL + "/moved"}, false},
		{[]string{"--url", closed.URL + "/healthz"}, false},
		{[]string{"--url", tls.URL + "/healthz"}, false},
		{[]string{"--url", tls.URL + "/healthz", "--insecure"}, true},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		c := &CLI{Stdout: &out, Stderr: &out}
		err := c.Run(t.Context(), append([]string{"healthcheck"}, tt.args...))
		if (err == nil) != tt.ok {
			t.Errorf("healthcheck %q: %v, want ok %v", tt.args, err, tt.ok)
		}
	}
}
