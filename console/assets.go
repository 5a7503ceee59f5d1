package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// static holds the console's own CSS and JavaScript and, in vendor/, the
// third-party files assets/vendor.sh copies from npm.
//
//go:embed static
var static embed.FS

// assets serves the embedded files. A page names each with its content
// hash (?v=), so a browser may keep it for a year: a new build changes
// the hash, and with it the URL.
type assets struct{ files map[string]asset }

type asset struct {
	body        []byte
	hash        string // the first 16 hex digits of its SHA-256
	contentType string
}

func newAssets() *assets {
	a := &assets{files: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		a.files[strings.TrimPrefix(p, "static/")] = asset{body: body, hash: hex.EncodeToString(sum[:8]), contentType: ct}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("console assets: %v", err))
	}
	return a
}

// contentTypes are the types of the assets, fixed here rather than read
// from the system's MIME tables, which differ between machines.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
	".svg": "image/svg+xml",
}

// url is the address of the named asset, with its content hash; an
// unknown name fails the page's rendering rather than linking nowhere.
func (a *assets) url(name string) (string, error) {
	f, ok := a.files[name]
	if !ok {
		return "", fmt.Errorf("no asset %q", name)
	}
	return Prefix + "static/" + name + "?v=" + f.hash, nil
}

// ServeHTTP serves an asset: cached for a year when asked for by its
// current hash, revalidated by ETag otherwise.
func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := a.files[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := `"` + f.hash + `"`
	h := w.Header()
	h.Set("ETag", etag)
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.contentType)
	_, _ = w.Write(f.body)
}
