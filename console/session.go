package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

// CookieName is the session cookie. It holds the session's secret, 32
// random bytes in hex; the store keeps only their SHA-256.
const CookieName = "switchboard_session"

// secretBytes is the size of a session's secret.
const secretBytes = 32

// session is the signed-in browser's session.
type session struct {
	id   string // hex SHA-256 of the secret: the store's key
	csrf string // hex HMAC-SHA256(secret, "csrf")
}

func newSession(secret []byte) *session {
	sum := sha256.Sum256(secret)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("csrf"))
	return &session{id: hex.EncodeToString(sum[:]), csrf: hex.EncodeToString(mac.Sum(nil))}
}

// errNoSession is a request without a valid session: no cookie, a
// malformed one, or one the store does not know or has expired.
var errNoSession = errors.New("not signed in")

// session returns the request's session.
func (c *Console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return nil, errNoSession
	}
	secret, err := hex.DecodeString(ck.Value)
	if err != nil || len(secret) != secretBytes {
		return nil, errNoSession
	}
	s := newSession(secret)
	ctx, cancel := context.WithTimeout(r.Context(), c.o.RequestTimeout)
	defer cancel()
	now := c.now()
	stored, err := c.store.Session(ctx, s.id, now)
	switch {
	case errors.Is(err, switchboard.ErrNotFound):
		return nil, errNoSession
	case err != nil:
		return nil, fmt.Errorf("look up the console session: %w", err)
	case !stored.ExpiresAt.After(now):
		// The store says so too; this holds even against one that does not.
		return nil, errNoSession
	}
	return s, nil
}

// withSession runs h for a signed-in request. Without a session a page
// redirects to the sign-in form (htmx is told to go there), and anything
// else (JSON, the live stream) is 401.
func (c *Console) withSession(h handler, page bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		switch {
		case errors.Is(err, errNoSession):
			c.toSignIn(w, r, page)
			return
		case err != nil:
			c.logger.Error("console", "method", r.Method, "path", r.URL.Path, "err", err)
			c.fail(w, r, nil, &httpError{http.StatusServiceUnavailable, "The store did not answer; try again shortly."}, page)
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err, page)
		}
	}
}

func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, page bool) {
	if !page {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "sign in to the console first"})
		return
	}
	to := Prefix + "login"
	if r.Method == http.MethodGet && len(r.URL.RequestURI()) <= maxNext {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if r.Header.Get("HX-Request") == "true" {
		// An htmx request would swap the sign-in page into part of this
		// one: have htmx load it whole instead.
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	status := http.StatusFound
	if r.Method != http.MethodGet {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, to, status)
}

// csrfChecked refuses a POST without the session's CSRF token, in the
// X-CSRF-Token header (htmx sends it, from hx-headers) or the csrf form
// field (plain forms).
func (c *Console) csrfChecked(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostForm.Get("csrf")
		}
		if !hmac.Equal([]byte(got), []byte(s.csrf)) {
			c.logger.Warn("console: POST without a valid CSRF token refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			return &httpError{http.StatusForbidden, "This form's security token is missing or stale: reload the page and try again."}
		}
		return h(w, r, s)
	}
}

// loginPage is the sign-in form's data.
type loginPage struct {
	Next  string
	Error string
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	// next alone is read, and safeNext refuses what it cannot be.
	next := safeNext(r.URL.Query().Get("next"))
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, next, http.StatusFound)
		return
	}
	c.renderOrFail(w, r, nil, http.StatusOK, "login", "Sign in", loginPage{Next: next})
}

// signIn checks the admin token and starts a session. Attempts are
// limited per client address; a refused one is logged with the address,
// never with what was typed.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	source := clientKey(r.RemoteAddr)
	if !c.limiter.allow(source, c.now()) {
		c.logger.Warn("console sign-in throttled", "remote", source)
		c.renderOrFail(w, r, nil, http.StatusTooManyRequests, "login", "Sign in",
			loginPage{Next: Prefix + "events", Error: "Too many sign-in attempts from your address: wait a minute and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.renderOrFail(w, r, nil, http.StatusBadRequest, "login", "Sign in", loginPage{Next: Prefix + "events", Error: "The form could not be read."})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	presented := sha256.Sum256([]byte(r.PostForm.Get("token")))
	// Hashes of equal length compare in constant time, so neither the
	// token nor its length leaks through timing.
	if c.o.Token == "" || subtle.ConstantTimeCompare(presented[:], c.tokenHash[:]) != 1 {
		c.logger.Warn("console sign-in refused: wrong token", "remote", source)
		c.renderOrFail(w, r, nil, http.StatusUnauthorized, "login", "Sign in", loginPage{Next: next, Error: "That is not the admin token."})
		return
	}
	secret := make([]byte, secretBytes)
	if _, err := io.ReadFull(c.rand, secret); err != nil {
		c.logger.Error("console sign-in: no randomness for the session", "err", err)
		c.renderOrFail(w, r, nil, http.StatusServiceUnavailable, "login", "Sign in", loginPage{Next: next, Error: "Could not start a session; try again."})
		return
	}
	s := newSession(secret)
	now := c.now()
	ctx, cancel := context.WithTimeout(r.Context(), c.o.RequestTimeout)
	defer cancel()
	if err := c.store.CreateSession(ctx, &switchboard.ConsoleSession{ID: s.id, CreatedAt: now, ExpiresAt: now.Add(c.o.SessionTTL)}); err != nil {
		c.logger.Error("console sign-in: store the session", "err", err)
		c.renderOrFail(w, r, nil, http.StatusServiceUnavailable, "login", "Sign in", loginPage{Next: next, Error: "Could not start a session: the store did not answer."})
		return
	}
	http.SetCookie(w, c.cookie(r, hex.EncodeToString(secret), int(c.o.SessionTTL.Seconds())))
	c.logger.Info("console sign-in", "remote", source)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session: the store forgets it and the browser its
// cookie.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.store.DeleteSession(r.Context(), s.id, c.now()); err != nil {
		return fmt.Errorf("delete the console session: %w", err)
	}
	http.SetCookie(w, c.cookie(r, "", -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	return nil
}

// cookie is the session cookie: sent only to the console, never to
// scripts, never with a request another site starts, and only over TLS
// when the request came over it or the public URL is https.
func (c *Console) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure || r.TLS != nil,
	}
}

// maxNext bounds the page a sign-in returns to.
const maxNext = 4096

// safeNext is where to go after signing in: next when it is a console
// page on this site, the inspector otherwise, so that the sign-in form is
// no open redirect.
func safeNext(next string) string {
	const fallback = Prefix + "events"
	u, err := url.Parse(next)
	if err != nil || next == "" || len(next) > maxNext || !utf8.ValidString(next) || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\x00\r\n\t") || strings.HasPrefix(u.Path, Prefix+"login") {
		return fallback
	}
	// A dot segment ("..", or "%2e%2e" once decoded) would take the
	// cleaned path out of the console, or to the sign-in form again.
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fallback
		}
	}
	return next
}
