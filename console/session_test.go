package console_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard/console"
)

func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == console.CookieName {
			return c
		}
	}
	return nil
}

func TestSignInStartsASession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		publicURL  string
		tls        bool
		wantSecure bool
	}{
		{"plain http", "", false, false},
		{"over TLS", "", true, true},
		{"behind TLS ending in front", "https://sb.example.com", false, true},
		{"http public URL", "http://sb.example.com", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(o *console.Options) { o.PublicURL = tc.publicURL; o.SessionTTL = 2 * time.Hour })
			r := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			f.c.ServeHTTP(w, r)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/events" {
				t.Fatalf("status %d, Location %q", w.Code, w.Header().Get("Location"))
			}
			ck := sessionCookie(t, w)
			if ck == nil {
				t.Fatal("no session cookie")
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.Secure != tc.wantSecure {
				t.Errorf("cookie HttpOnly %v SameSite %v Path %q Secure %v; want true, Strict, /console/, %v",
					ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure, tc.wantSecure)
			}
			secret, err := hex.DecodeString(ck.Value)
			if err != nil || len(secret) != 32 {
				t.Fatalf("cookie value %q: want 32 bytes in hex", ck.Value)
			}
			sum := sha256.Sum256(secret)
			stored, ok := f.store.sessions[hex.EncodeToString(sum[:])]
			if !ok || len(f.store.sessions) != 1 {
				t.Fatalf("the store does not hold the secret's hash: %v", f.store.sessions)
			}
			if _, leaked := f.store.sessions[ck.Value]; leaked {
				t.Error("the store holds the secret itself")
			}
			if !stored.CreatedAt.Equal(base) || !stored.ExpiresAt.Equal(base.Add(2*time.Hour)) {
				t.Errorf("session %v to %v, want %v to %v", stored.CreatedAt, stored.ExpiresAt, base, base.Add(2*time.Hour))
			}
			if strings.Contains(f.logs.String(), token) {
				t.Error("the log holds the token")
			}
		})
	}
}

func TestSignInRefusesAWrongToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, configured, typed string
	}{
		{"wrong", token, "not-the-token"},
		{"prefix", token, token[:10]},
		{"empty typed", token, ""},
		{"none configured", "", ""},
		{"none configured, any typed", "", "anything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(o *console.Options) { o.Token = tc.configured })
			w := f.do("POST", "/console/login", url.Values{"token": {tc.typed}}, nil)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", w.Code)
			}
			if sessionCookie(t, w) != nil || len(f.store.sessions) != 0 {
				t.Error("a refused sign-in started a session")
			}
			mustID(t, w.Body.String(), "signin-error")
			if tc.typed != "" && strings.Contains(f.logs.String(), tc.typed) {
				t.Error("the log holds what was typed")
			}
			if !strings.Contains(f.logs.String(), "sign-in refused") {
				t.Errorf("refusal not logged: %s", f.logs)
			}
		})
	}
}

func TestSignInIsRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	attempt := func(remote, typed string) int {
		r := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"token": {typed}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		f.c.ServeHTTP(w, r)
		return w.Code
	}
	for i := range 5 {
		if code := attempt("198.51.100.7:1000", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, code)
		}
	}
	// Over the limit even the right token is not checked.
	if code := attempt("198.51.100.7:2000", token); code != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt: status %d, want 429", code)
	}
	// Another address is not held back.
	if code := attempt("203.0.113.9:1000", token); code != http.StatusSeeOther {
		t.Fatalf("other address: status %d, want 303", code)
	}
	// A host's IPv6 /64 is one address.
	for i := range 5 {
		attempt("[2001:db8::"+string(rune('1'+i))+"]:1000", "guess")
	}
	if code := attempt("[2001:db8::ffff]:1000", token); code != http.StatusTooManyRequests {
		t.Fatalf("same /64: status %d, want 429", code)
	}
	// The bucket refills: one attempt every 12 s.
	f.clock.advance(12 * time.Second)
	if code := attempt("198.51.100.7:3000", token); code != http.StatusSeeOther {
		t.Fatalf("after 12 s: status %d, want 303", code)
	}
	if !strings.Contains(f.logs.String(), "throttled") {
		t.Error("throttling not logged")
	}
}

func TestSignInGoesWhereItWasAsked(t *testing.T) {
	t.Parallel()
	// A shared link with many filters is longer than any one parameter.
	long := "/console/events?route=%2Fsms&q=" + strings.Repeat("a", 500) + "&since=" + strings.Repeat("b", 500)
	f := newFixture(t)
	if w := f.do("GET", "/console/login?next="+url.QueryEscape(long), nil, nil); w.Code != http.StatusOK ||
		attr(first(parseHTML(t, w.Body.String()), func(n *html.Node) bool { return attr(n, "name") == "next" }), "value") != long {
		t.Errorf("sign-in form for a long link: status %d", w.Code)
	}
	for _, tc := range []struct{ next, want string }{
		{"/console/messages?pool=main", "/console/messages?pool=main"},
		{"/console/events/" + id(1), "/console/events/" + id(1)},
		{"", "/console/events"},
		{"//evil.example/console/", "/console/events"},
		{"https://evil.example/console/", "/console/events"},
		{"/console/login", "/console/events"},
		{"/elsewhere", "/console/events"},
		{"/console/\\evil", "/console/events"},
		{long, long},
		{"/console/" + strings.Repeat("x", 5000), "/console/events"},
	} {
		f := newFixture(t)
		w := f.do("POST", "/console/login", url.Values{"token": {token}, "next": {tc.next}}, nil)
		if got := w.Header().Get("Location"); got != tc.want {
			t.Errorf("next %q: went to %q, want %q", tc.next, got, tc.want)
		}
	}
}

func TestNoSessionNoAccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"/console/", "/console/events?route=%2Fsms", "/console/events/" + id(1), "/console/requests",
		"/console/messages", "/console/dashboard", "/console/replay?route=/sms"} {
		w := f.do("GET", path, nil, nil)
		if w.Code != http.StatusFound || w.Header().Get("Location") != "/console/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: status %d to %q, want 302 to the sign-in form", path, w.Code, w.Header().Get("Location"))
		}
	}
	for _, path := range []string{"/console/dashboard.json", "/console/events/stream"} {
		if w := f.do("GET", path, nil, nil); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s: status %d, want 401", path, w.Code)
		}
	}
	for _, path := range []string{"/console/logout", "/console/events/" + id(1) + "/replay", "/console/replay", "/console/messages/" + id(1) + "/replay"} {
		if w := f.do("POST", path, url.Values{}, nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/console/login") {
			t.Errorf("POST %s: status %d to %q, want 303 to the sign-in form", path, w.Code, w.Header().Get("Location"))
		}
	}
	// htmx is told to load the sign-in page whole.
	w := f.do("POST", "/console/events/"+id(1)+"/replay", url.Values{}, nil, "HX-Request", "true")
	if w.Code != http.StatusUnauthorized || w.Header().Get("HX-Redirect") != "/console/login" {
		t.Errorf("htmx POST: status %d, HX-Redirect %q", w.Code, w.Header().Get("HX-Redirect"))
	}
	// A forged or malformed cookie is no session.
	for _, v := range []string{"", "zz", strings.Repeat("ab", 32), strings.Repeat("ab", 31)} {
		w := f.do("GET", "/console/events", nil, &http.Cookie{Name: console.CookieName, Value: v})
		if w.Code != http.StatusFound {
			t.Errorf("cookie %q: status %d, want 302", v, w.Code)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	for _, storeChecks := range []bool{true, false} {
		f := newFixture(t, func(o *console.Options) { o.SessionTTL = time.Hour })
		f.store.ignoreExpiry = !storeChecks
		s := f.signIn()
		f.clock.advance(59 * time.Minute)
		f.get(s, "/console/events", http.StatusOK)
		f.clock.advance(time.Minute)
		if w := f.do("GET", "/console/events", nil, s.cookie); w.Code != http.StatusFound {
			t.Errorf("store checks expiry %v: expired session got status %d, want 302", storeChecks, w.Code)
		}
		if w := f.do("GET", "/console/dashboard.json", nil, s.cookie); w.Code != http.StatusUnauthorized {
			t.Errorf("store checks expiry %v: expired session got JSON status %d, want 401", storeChecks, w.Code)
		}
	}
}

func TestSessionStoreDownFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	f.store.mu.Lock()
	f.store.sessionErr = errors.New("database is locked")
	f.store.mu.Unlock()
	if w := f.do("GET", "/console/events", nil, s.cookie); w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	other := f.signIn()
	page := f.get(s, "/console/events", http.StatusOK)
	mustID(t, page, "signout-button")
	w := f.do("POST", "/console/logout", url.Values{"csrf": {s.csrf}}, s.cookie)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/login" {
		t.Fatalf("sign out: status %d to %q", w.Code, w.Header().Get("Location"))
	}
	if ck := sessionCookie(t, w); ck == nil || ck.MaxAge >= 0 || ck.Value != "" {
		t.Errorf("sign out left the cookie: %+v", ck)
	}
	if w := f.do("GET", "/console/events", nil, s.cookie); w.Code != http.StatusFound {
		t.Errorf("after sign out: status %d, want 302", w.Code)
	}
	f.get(other, "/console/events", http.StatusOK) // only that session ended
}

func TestSignInFormWhenSignedIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	page := f.do("GET", "/console/login", nil, nil)
	if page.Code != http.StatusOK {
		t.Fatalf("status %d", page.Code)
	}
	in := mustID(t, page.Body.String(), "signin-token")
	if attr(in, "type") != "password" || attr(in, "name") != "token" {
		t.Errorf("token input: %v", in.Attr)
	}
	s := f.signIn()
	if w := f.do("GET", "/console/login", nil, s.cookie); w.Code != http.StatusFound {
		t.Errorf("signed in: status %d, want a redirect", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, "dead")
	s := f.signIn()
	other := f.signIn()
	target := "/console/events/" + id(1) + "/replay"
	for _, tc := range []struct {
		name   string
		form   url.Values
		header []string
		want   int
	}{
		{"no token", url.Values{}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"csrf": {strings.Repeat("0", 64)}}, nil, http.StatusForbidden},
		{"another session's token", url.Values{"csrf": {other.csrf}}, nil, http.StatusForbidden},
		{"cross-site fetch", url.Values{"csrf": {s.csrf}}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"same-site, other origin", url.Values{"csrf": {s.csrf}}, []string{"Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
		{"foreign origin", url.Values{"csrf": {s.csrf}}, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"form token", url.Values{"csrf": {s.csrf}}, nil, http.StatusOK},
		{"header token", url.Values{}, []string{"X-CSRF-Token", s.csrf}, http.StatusOK},
		{"same origin", url.Values{"csrf": {s.csrf}}, []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com"}, http.StatusOK},
	} {
		f.store.mu.Lock()
		f.store.events[0].State = "dead"
		f.store.mu.Unlock()
		w := f.do("POST", target, tc.form, s.cookie, tc.header...)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.want)
		}
		replayed := len(f.store.replays) > 0
		if tc.want == http.StatusForbidden && replayed {
			t.Errorf("%s: replayed anyway", tc.name)
		}
		f.store.replays = nil
	}
	// A sign-in from another site is refused too.
	w := f.do("POST", "/console/login", url.Values{"token": {token}}, nil, "Sec-Fetch-Site", "cross-site")
	if w.Code != http.StatusForbidden || sessionCookie(t, w) != nil {
		t.Errorf("cross-site sign-in: status %d", w.Code)
	}
}

func TestPagesCarryTheCSRFTokenForHtmx(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	doc := parseHTML(t, f.get(s, "/console/events", http.StatusOK))
	body := first(doc, func(n *html.Node) bool { return n.Data == "body" })
	if got, want := attr(body, "hx-headers"), `{"X-CSRF-Token":"`+s.csrf+`"}`; got != want {
		t.Errorf("body hx-headers %q, want %q", got, want)
	}
	if len(s.csrf) != 64 {
		t.Errorf("csrf token %q: want 32 bytes in hex", s.csrf)
	}
}
