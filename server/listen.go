package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/web"
)

// listeners are what Server serves on: the public listener, and the admin
// listener when admin.listen is set.
type listeners struct {
	public, admin *http.Server
	publicLn      net.Listener
	adminLn       net.Listener // nil without admin.listen
	tls           *serverTLS   // nil: plain HTTP
}

// newHTTPServer is an http.Server with Switchboard's timeouts.
func newHTTPServer(h http.Handler, logger *slog.Logger, tlsCfg *serverTLS) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if tlsCfg != nil {
		srv.TLSConfig = tlsCfg.config.Clone()
	}
	return srv
}

// setupHTTP builds the listeners' servers: with admin.listen, the public
// one serves webhooks, /healthz and /readyz, and the admin one everything
// else of Switchboard's own (the admin and Twilio-compatible APIs, the
// pass-through, the console, /metrics); without it, one server serves all.
// TLS, when configured, is loaded here so that a bad certificate stops
// serve before it opens the store's work.
func (s *Server) setupHTTP(admin, console http.Handler) error {
	t, err := newServerTLS(s.cfg, s.logger)
	if err != nil {
		return err
	}
	s.ls.tls = t
	if s.cfg.Admin.Listen == "" {
		s.ls.public = newHTTPServer(s.routeRequest(admin, console), s.logger, t)
		return nil
	}
	s.ls.public = newHTTPServer(s.publicOnly(admin), s.logger, t)
	s.ls.admin = newHTTPServer(adminOnly(admin, console), s.logger, t)
	return nil
}

// publicOnly serves webhooks, and the health endpoints load balancers
// probe; Switchboard's own endpoints are 404 here.
func (s *Server) publicOnly(admin http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/healthz" || p == "/readyz" {
			admin.ServeHTTP(w, r)
			return
		}
		if isOwnPath(p) {
			http.NotFound(w, r)
			return
		}
		s.ingest.ServeHTTP(w, r)
	})
}

// adminOnly serves Switchboard's own endpoints and nothing else: no
// webhook is taken on the admin listener.
func adminOnly(admin, console http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/console":
			http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		case strings.HasPrefix(p, "/console/"):
			console.ServeHTTP(w, r)
		case isOwnPath(p) || p == "/healthz" || p == "/readyz":
			admin.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// isOwnPath reports whether p is one of Switchboard's own endpoints other
// than the health checks: the console, the admin API, the
// Twilio-compatible API and its pass-through, and /metrics.
func isOwnPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return p == "/console" || strings.HasPrefix(p, "/console/") || strings.HasPrefix(p, "/api/") ||
		strings.HasPrefix(p, web.TwilioPrefix) || web.IsTwilioHostPrefix(first) || p == "/metrics"
}

// listen opens the listeners.
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.ls.publicLn = ln
	if s.ls.admin != nil {
		aln, err := net.Listen("tcp", s.cfg.Admin.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin.listen on %s: %w", s.cfg.Admin.Listen, err)
		}
		s.ls.adminLn = aln
	}
	return nil
}

// serve serves on the listeners until they are shut down; each server's
// end is sent to s.served.
func (s *Server) serve() {
	run := func(srv *http.Server, ln net.Listener) {
		if s.ls.tls != nil {
			s.served <- srv.ServeTLS(ln, "", "") // certificates come from TLSConfig
		} else {
			s.served <- srv.Serve(ln)
		}
	}
	if s.ls.tls != nil && s.ls.tls.reloader != nil {
		s.ls.tls.reloader.start()
	}
	go run(s.ls.public, s.ls.publicLn)
	if s.ls.admin != nil {
		go run(s.ls.admin, s.ls.adminLn)
	}
}

// shutdownHTTP stops both servers gracefully, or closes them when ctx
// ends first, and stops reloading certificates.
func (s *Server) shutdownHTTP(ctx context.Context) error {
	var errs []error
	for _, srv := range []*http.Server{s.ls.public, s.ls.admin} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
			errs = append(errs, fmt.Errorf("stop HTTP: %w", err))
		}
	}
	if s.ls.tls != nil && s.ls.tls.reloader != nil {
		s.ls.tls.reloader.close()
	}
	return errors.Join(errs...)
}

// AdminAddr is the address of the admin listener once started, or "" when
// admin.listen is not set (the admin endpoints are on Addr).
func (s *Server) AdminAddr() string {
	if s.ls.adminLn == nil {
		return ""
	}
	return s.ls.adminLn.Addr().String()
}

// Scheme is "https" when serve terminates TLS, else "http".
func (s *Server) Scheme() string {
	if s.ls.tls != nil {
		return "https"
	}
	return "http"
}
