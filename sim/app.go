package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// DefaultAppListen is where the sample app listens unless told otherwise:
// the address of the route targets in switchboard.example.toml.
const DefaultAppListen = "127.0.0.1:3000"

// maxAppBody bounds the body the sample app reads; Twilio's webhooks are a
// few KiB.
const maxAppBody = 64 << 10

// App is a small application that receives Twilio webhooks, as the app
// behind Switchboard would: it takes a POST on any path, checks its
// X-Twilio-Signature when it has an auth token, answers messages and calls
// with empty TwiML and anything else with an empty 200, and writes one line
// per request: method, path, kind, the message's or call's SID, the status
// a status callback reports, Switchboard's event id and whether the
// signature held. It never writes bodies, phone numbers or query strings.
type App struct {
	// AuthToken, when set, is the auth token every request's signature
	// must have been made with (Switchboard re-signs what it delivers
	// with the account's first auth token). A request whose signature
	// does not hold gets 403. Empty: signatures are not checked.
	AuthToken string
	// PublicURL is the scheme, host and optional path prefix the requests
	// are signed for, the route's target as Switchboard sees it: a request
	// for path P with query Q is checked as signed for PublicURL+P?Q.
	// Serve sets it to its own URL when empty.
	PublicURL string
	// Log gets the lines; nil discards them.
	Log io.Writer

	mu sync.Mutex // one line at a time
}

// Serve serves the app on addr until the Server is closed.
func (a *App) Serve(ctx context.Context, addr string) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sample app: listen on %s: %w", addr, err)
	}
	srv := &Server{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           a,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
		served: make(chan struct{}),
	}
	if a.PublicURL == "" {
		a.PublicURL = srv.URL
	}
	go func() {
		defer close(srv.served)
		_ = srv.srv.Serve(ln) // ErrServerClosed once closed
	}()
	return srv, nil
}

// ServeHTTP answers one webhook.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	line := appLine{method: r.Method, path: r.URL.Path, event: r.Header.Get("X-Switchboard-Event-Id")}
	defer func() { a.write(line) }()
	if r.Method != http.MethodPost {
		line.outcome = "refused: not a POST"
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAppBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			line.outcome = "refused: body over 64 KiB"
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		line.outcome = "refused: body unreadable"
		http.Error(w, "body unreadable", http.StatusBadRequest)
		return
	}
	contentType := r.Header.Get("Content-Type")
	line.signature = "unchecked"
	if a.AuthToken != "" {
		// r.RequestURI is the path and query exactly as sent, which is
		// what the signature covers.
		signedFor := strings.TrimSuffix(a.PublicURL, "/") + r.RequestURI
		err := twilio.ValidateRequest([]string{a.AuthToken}, signedFor, contentType, body, r.Header.Get("X-Twilio-Signature"))
		if err != nil {
			// Fails closed: a request that is not Twilio's, or not
			// Switchboard's signed for this URL, is not acted on.
			line.signature, line.outcome = signatureProblem(err), "403"
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
		line.signature = "ok"
	}
	var form url.Values
	var jsonBody []byte
	switch strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0])) {
	case "application/x-www-form-urlencoded":
		if form, err = twilio.ParseForm(body); err != nil {
			line.outcome = "refused: malformed form"
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
	case "application/json":
		jsonBody = body
	}
	kind, fields := twilio.Classify(contentType, form, jsonBody)
	line.kind, line.sid, line.status = string(kind), fields.MessageSID, fields.Status
	if line.sid == "" {
		line.sid = fields.CallSID
	}
	switch kind {
	case switchboard.KindMessage, switchboard.KindVoice, switchboard.KindFallback:
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, "<Response/>")
	default:
		w.WriteHeader(http.StatusOK)
	}
	line.outcome = "200"
}

// signatureProblem names why a signature did not hold, in a word: the
// errors themselves may quote the request's content.
func signatureProblem(err error) string {
	switch {
	case errors.Is(err, twilio.ErrMissingSignature):
		return "missing"
	case errors.Is(err, twilio.ErrBodyHashMismatch):
		return "bad-body-hash"
	case errors.Is(err, twilio.ErrUnsignedContent):
		return "unsigned-content"
	case errors.Is(err, twilio.ErrMalformedForm):
		return "malformed-form"
	}
	return "bad"
}

// appLine is what the app writes about one request.
type appLine struct {
	method, path, kind, sid, status, event, signature, outcome string
}

var (
	sidPattern    = regexp.MustCompile(`^[A-Za-z]{2}[0-9A-Za-z]{1,62}$`)
	statusPattern = regexp.MustCompile(`^[a-z-]{1,32}$`)
	eventPattern  = regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)
)

// String renders the line. What came from the request is kept only when it
// has the shape it should (a SID, a status word, an event id), and the path
// is quoted when it holds anything unusual, so that a request cannot write
// arbitrary text, or a number or message, into the log.
func (l appLine) String() string {
	path := l.path
	if len(path) > 200 {
		path = path[:200] + "…"
	}
	if strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == '"' || r > '~' }) {
		path = strconv.Quote(path)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", l.method, path)
	if l.kind != "" {
		fmt.Fprintf(&b, " %s", l.kind)
	}
	keep := func(name, v string, p *regexp.Regexp) {
		if v != "" && p.MatchString(v) {
			fmt.Fprintf(&b, " %s=%s", name, v)
		}
	}
	keep("sid", l.sid, sidPattern)
	keep("status", l.status, statusPattern)
	keep("event", l.event, eventPattern)
	if l.signature != "" {
		fmt.Fprintf(&b, " signature=%s", l.signature)
	}
	fmt.Fprintf(&b, " -> %s", l.outcome)
	return b.String()
}

func (a *App) write(l appLine) {
	if a.Log == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintln(a.Log, l.String())
}
