package console_test

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
)

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, switchboard.StateDead)
	s := f.signIn()
	check := func(what string, h http.Header, cache string) {
		t.Helper()
		for k, want := range map[string]string{
			"Content-Security-Policy": wantCSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", what, k, got, want)
			}
		}
		if cache != "" && h.Get("Cache-Control") != cache {
			t.Errorf("%s: Cache-Control %q, want %q", what, h.Get("Cache-Control"), cache)
		}
	}
	check("sign-in form", f.do("GET", "/console/login", nil, nil).Header(), "no-store")
	check("refused sign-in", f.do("POST", "/console/login", nil, nil).Header(), "no-store")
	check("redirect", f.do("GET", "/console/events", nil, nil).Header(), "no-store")
	for _, path := range []string{"/console/events", "/console/events/" + id(1), "/console/dashboard.json", "/console/nowhere"} {
		check(path, f.do("GET", path, nil, s.cookie).Header(), "no-store")
	}
	check("action", f.do("POST", "/console/events/"+id(1)+"/replay", nil, s.cookie).Header(), "no-store")
}

var assetURL = regexp.MustCompile(`/console/static/[^"?]+\?v=[0-9a-f]{16}`)

func TestAssetsAreEmbeddedAndCachedByHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.signIn()
	page := f.get(s, "/console/dashboard", http.StatusOK)
	urls := assetURL.FindAllString(page, -1)
	if len(urls) < 6 {
		t.Fatalf("asset URLs %v", urls)
	}
	for _, u := range urls {
		w := f.do("GET", u, nil, nil) // assets need no session
		if w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Errorf("%s: status %d, %d bytes", u, w.Code, w.Body.Len())
			continue
		}
		if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", u, cc)
		}
		etag := w.Header().Get("ETag")
		if etag == "" || !strings.Contains(u, strings.Trim(etag, `"`)) {
			t.Errorf("%s: ETag %q is not its hash", u, etag)
		}
		ct := w.Header().Get("Content-Type")
		if !strings.HasPrefix(ct, "text/javascript") && !strings.HasPrefix(ct, "text/css") {
			t.Errorf("%s: Content-Type %q", u, ct)
		}
		if w := f.do("GET", u, nil, nil, "If-None-Match", etag); w.Code != http.StatusNotModified {
			t.Errorf("%s with its ETag: status %d, want 304", u, w.Code)
		}
		// An old hash is not cached for long.
		stale := f.do("GET", u[:strings.Index(u, "?")]+"?v=0000000000000000", nil, nil)
		if stale.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("%s with another hash: Cache-Control %q", u, stale.Header().Get("Cache-Control"))
		}
	}
	for _, path := range []string{"/console/static/nothing.js", "/console/static/../console.go", "/console/static/vendor/"} {
		if w := f.do("GET", path, nil, nil); w.Code == http.StatusOK {
			t.Errorf("%s: status %d", path, w.Code)
		}
	}
}

// TestPagesNeedNoInlineCodeOrEval holds every page to the CSP: no inline
// script or style, no event-handler attributes, and none of the htmx
// attributes that need eval (hx-on, js: values, trigger filters).
func TestPagesNeedNoInlineCodeOrEval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.store.dashboard = dashboardFixture()
	ev := seedEvent(f.store, 1, switchboard.StateDead)
	m := seedMessage(f.store, 1, nil)
	s := f.signIn()
	pages := map[string]string{"login": f.do("GET", "/console/login", nil, nil).Body.String()}
	for _, path := range []string{"/console/events", "/console/events/" + ev.ID, "/console/requests", "/console/requests/" + id(1001),
		"/console/messages", "/console/messages/" + m.ID, "/console/dashboard", "/console/replay?state=dead"} {
		pages[path] = f.get(s, path, http.StatusOK)
	}
	pages["probe"] = f.post(s, "/console/events/"+ev.ID+"/probe", nil, http.StatusOK)
	pages["error"] = f.get(s, "/console/nowhere", http.StatusNotFound)
	for name, page := range pages {
		doc := parseHTML(t, page)
		for _, n := range all(doc, func(*html.Node) bool { return true }) {
			switch {
			case n.Data == "script" && attr(n, "src") == "" && attr(n, "type") != "application/json":
				t.Errorf("%s: an inline script", name)
			case n.Data == "style":
				t.Errorf("%s: a style element", name)
			}
			for _, a := range n.Attr {
				switch {
				case a.Key == "style", strings.HasPrefix(a.Key, "on"), strings.HasPrefix(a.Key, "hx-on"):
					t.Errorf("%s: <%s %s>", name, n.Data, a.Key)
				case strings.HasPrefix(a.Key, "hx-") && (strings.HasPrefix(a.Val, "js:") || strings.HasPrefix(a.Val, "javascript:")):
					t.Errorf("%s: <%s %s=%q> needs eval", name, n.Data, a.Key, a.Val)
				case a.Key == "hx-trigger" && strings.Contains(a.Val, "["):
					t.Errorf("%s: hx-trigger filter %q needs eval", name, a.Val)
				}
			}
		}
		meta := first(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "name") == "htmx-config" })
		if meta == nil || !strings.Contains(attr(meta, "content"), `"allowEval":false`) {
			t.Errorf("%s: htmx may eval: %v", name, meta)
		}
	}
}

func TestVendoredFilesArePresent(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"static/vendor/htmx.min.js", "static/vendor/sse.min.js", "static/vendor/uPlot.iife.min.js",
		"static/vendor/uPlot.min.css", "static/vendor/LICENSES.txt", "static/console.js", "static/console.css"} {
		b, err := os.ReadFile(name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The script's npm versions are the lock file's.
	lock, err := os.ReadFile("assets/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	licenses, _ := os.ReadFile("static/vendor/LICENSES.txt")
	for _, pkg := range regexp.MustCompile(`"node_modules/([^"]+)": \{\s+"version": "([^"]+)"`).FindAllStringSubmatch(string(lock), -1) {
		if !strings.Contains(string(licenses), pkg[1]+" "+pkg[2]) {
			t.Errorf("vendored files are not %s %s: run assets/vendor.sh", pkg[1], pkg[2])
		}
	}
}
