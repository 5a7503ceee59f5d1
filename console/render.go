package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are the console's templates: one layout, shared parts, and a file
// per page, each parsed over a copy of the layout.
type pages struct{ byName map[string]*template.Template }

func newPages(a *assets) *pages {
	funcs := template.FuncMap{
		"asset":    a.url,
		"time":     formatTime,
		"duration": formatDuration,
		"code":     codeText,
		"percent":  percent,
		"ms":       func(v scalar) string { return numberText(float64(v), " ms") },
		"num":      func(v *scalar) string { return numberText(float64(*v), "") },
	}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		p.byName[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, f))
	}
	return p
}

// view is what the layout renders a page with.
type view struct {
	Title string
	Nav   string // the section the page is in, for the navigation
	// CSRF is the session's token; empty when signed out. HXHeaders
	// carries it in every htmx request.
	CSRF      string
	HXHeaders string
	Redact    bool
	// Phone is whether the Phone page exists (Options.Phones).
	Phone bool
	Page  any
}

// navOf is the navigation section of a page.
var navOf = map[string]string{
	"events": "events", "event": "events", "replay": "events",
	"requests": "requests", "request": "requests",
	"messages": "messages", "message": "messages",
	"dashboard": "dashboard",
	"alerts":    "alerts", "alert": "alerts",
	"debugger": "debugger",
	"phone":    "phone",
}

// render writes page name whole, or nothing when it fails to render.
func (c *Console) render(w http.ResponseWriter, s *session, status int, name, title string, data any) error {
	t, ok := c.pages.byName[name]
	if !ok {
		return fmt.Errorf("render: no page %q", name)
	}
	v := view{Title: title, Nav: navOf[name], Redact: c.o.Redact, Phone: c.phoneOn(), Page: data}
	if s != nil {
		v.CSRF = s.csrf
		h, _ := json.Marshal(map[string]string{"X-CSRF-Token": s.csrf})
		v.HXHeaders = string(h)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// renderOrFail renders a page whose failure to render leaves nothing else
// to say.
func (c *Console) renderOrFail(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	if err := c.render(w, s, status, name, title, data); err != nil {
		c.logger.Error("console", "method", r.Method, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// fragment renders one of the shared parts, such as an inspector row.
func (c *Console) fragment(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.pages.byName["events"].ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// httpError is an answer with a status and a message for the user.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

var errNoPage = errors.New("no such page")

// errorPageData is the error page's data.
type errorPageData struct {
	Status  int
	Message string
}

// fail is the one place errors become answers: a status, a message safe
// to show, and for unexpected errors a log line with the detail. A page
// gets the error page, anything else JSON.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error, page bool) {
	status, msg := http.StatusInternalServerError, "Something went wrong; the server's log has the details."
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, errNoPage), errors.Is(err, switchboard.ErrNotFound):
		status, msg = http.StatusNotFound, "Not found."
	case errors.Is(err, switchboard.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "The store took too long to answer; try a narrower filter."
		c.logger.Warn("console: timed out", "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		c.logger.Error("console", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if !page {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	c.errorPage(w, r, s, status, msg)
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	c.renderOrFail(w, r, s, status, "error", http.StatusText(status), errorPageData{Status: status, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// formatTime shows a time in UTC to the millisecond; "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

// formatDuration shows a duration rounded to what a reader compares.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDuration(-d)
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	}
	return d.Round(time.Second).String()
}

// codeText describes a Twilio error code; "" for none.
func codeText(code int) string {
	if code == 0 {
		return ""
	}
	return twilio.Code(code).String()
}

// numberText shows a dashboard number, "—" for none (NaN).
func numberText(v float64, unit string) string {
	prec := 0
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case a < 10:
		prec = 2
	case a < 100:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + unit
}

// percent shows a share (0..1) as a percentage.
func percent(v float64) string {
	return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
}
