package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Defaults of PassThrough.
const (
	DefaultPassThroughMaxBody  = 32 << 20
	DefaultPassThroughTimeout  = 30 * time.Second
	DefaultPassThroughInFlight = 256
)

// PassThroughProvider is where the requests of one account that
// Switchboard does not serve itself go.
type PassThroughProvider struct {
	Account string // the account SID
	// BaseURL is the provider's REST API: Twilio's (a host under
	// twilio.com), or another server of Twilio's API, such as the
	// simulator, that serves every product on this one base.
	BaseURL *url.URL
	// Transport makes the requests; nil is http.DefaultTransport. It
	// should bound connecting and waiting for the answer's headers.
	Transport http.RoundTripper
}

// PassThrough configures passing through to the account's provider what
// the Twilio-compatible API does not serve itself (see WithPassThrough).
type PassThrough struct {
	// Providers: each account's requests go to its first entry here. An
	// account with none has nothing passed through (404, 20404).
	Providers []PassThroughProvider
	// MaxBodyBytes caps a request's body (413 past it); zero is
	// DefaultPassThroughMaxBody.
	MaxBodyBytes int64
	// Timeout bounds one exchange, from the request's arrival to the
	// answer's last byte, a client's stalled body included; zero is
	// DefaultPassThroughTimeout.
	Timeout time.Duration
	// MaxInFlight bounds the requests passed through at once (429, 20429
	// past it); zero is DefaultPassThroughInFlight.
	MaxInFlight int
	// Metrics counts what is passed through; nil counts nothing.
	Metrics *metrics.Metrics
}

// passThrough is a configured PassThrough.
type passThrough struct {
	providers map[string]PassThroughProvider // by account SID
	maxBody   int64
	timeout   time.Duration
	slots     chan struct{}
	metrics   *metrics.Metrics
}

// WithPassThrough passes through to the authenticated account's provider,
// unchanged, every request of the Twilio-compatible API that Switchboard
// does not serve itself: anything under /2010-04-01/ no other handler
// takes (Calls, IncomingPhoneNumbers, a message's Media…), and the paths
// of Twilio's other products prefixed with their host, such as
// /lookups.twilio.com/v2/PhoneNumbers/…. See docs/api.md.
//
// The request is authenticated first, as the rest of the API is (an
// account's SID and token or an API key's SID and secret, the path's
// account being theirs): Switchboard is not an open proxy, and anything
// else is refused (401, 20003) without reaching a provider. Method, path,
// query, headers (the Authorization header as received; hop-by-hop and
// forwarding headers aside) and body are forwarded as they came, and the
// provider's status, headers (hop-by-hop aside) and body are answered,
// both streamed. Without this option such requests are 404 (20404) once
// authenticated.
func WithPassThrough(p PassThrough) Option {
	return func(s *Server) {
		pt := &passThrough{providers: map[string]PassThroughProvider{}, maxBody: p.MaxBodyBytes, timeout: p.Timeout,
			metrics: p.Metrics}
		if pt.maxBody <= 0 {
			pt.maxBody = DefaultPassThroughMaxBody
		}
		if pt.timeout <= 0 {
			pt.timeout = DefaultPassThroughTimeout
		}
		n := p.MaxInFlight
		if n <= 0 {
			n = DefaultPassThroughInFlight
		}
		pt.slots = make(chan struct{}, n)
		for _, pr := range p.Providers {
			if _, ok := pt.providers[pr.Account]; !ok && pr.BaseURL != nil {
				pt.providers[pr.Account] = pr
			}
		}
		s.passThrough = pt
	}
}

// Error codes of the pass-through that Twilio does not name, after the
// pattern of codeConflict: HTTP status + 20000.
const (
	codeTooLarge       twilio.Code = 20413
	codeBadGateway     twilio.Code = 20502
	codeGatewayTimeout twilio.Code = 20504
)

// apiHost is the host of Twilio's REST API, whose paths need no prefix.
const apiHost = "api.twilio.com"

// twilioHost is a host name under twilio.com: the only hosts a path
// prefix may name, so that the pass-through reaches nothing else.
var twilioHost = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+twilio\.com$`)

// IsTwilioHostPrefix reports whether segment, the first segment of a
// path, names a host of Twilio's other products for the pass-through:
// a DNS name under twilio.com, in any case.
func IsTwilioHostPrefix(segment string) bool {
	return len(segment) <= 253 && twilioHost.MatchString(strings.ToLower(segment))
}

// passThroughPath is what a request's path says of where it goes.
type passThroughPath struct {
	host    string // the host a prefix names; "" for /2010-04-01/ paths
	path    string // the path at that host, decoded
	rawPath string // and as received
	account string // the account the path names, if any
}

var errPassThroughPath = twilioErr(http.StatusNotFound, codeNotFound, "The requested resource was not found")

// parsePassThroughPath reads r's path: /2010-04-01/… for Twilio's REST
// API, or /{host}/… for another of Twilio's hosts. A path that could mean
// two things is refused: encoded slashes or backslashes, empty, "." or
// ".." segments (the mux redirects most of these before they get here).
func parsePassThroughPath(r *http.Request) (passThroughPath, error) {
	raw := r.URL.EscapedPath()
	if l := strings.ToLower(raw); strings.Contains(l, "%2f") || strings.Contains(l, "%5c") || strings.Contains(raw, `\`) {
		return passThroughPath{}, errPassThroughPath
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for i, sg := range segs {
		if sg == "." || sg == ".." || (sg == "" && i != len(segs)-1) {
			return passThroughPath{}, errPassThroughPath
		}
	}
	p := passThroughPath{path: r.URL.Path, rawPath: raw}
	if !strings.HasPrefix(r.URL.Path, TwilioPrefix) {
		// The host must be spelled without escapes: what was matched is
		// what is dialled.
		first := segs[0]
		rawFirst, _, _ := strings.Cut(strings.TrimPrefix(raw, "/"), "/")
		if rawFirst != first || !IsTwilioHostPrefix(first) {
			return passThroughPath{}, twilioErr(http.StatusNotFound, codeNotFound,
				"Only Twilio's hosts (a name under twilio.com) are passed through")
		}
		p.host = strings.ToLower(first)
		p.path, p.rawPath = strings.TrimPrefix(r.URL.Path, "/"+first), strings.TrimPrefix(raw, "/"+rawFirst)
		if p.path == "" {
			p.path, p.rawPath = "/", "/"
		}
		segs = segs[1:]
		if len(segs) > 0 && IsTwilioHostPrefix(segs[0]) {
			// A host prefix after a host prefix: a provider that reads
			// prefixes as Switchboard does (another Switchboard) would take
			// the path after the second as another account's REST API,
			// unchecked here. No path of Twilio's starts so: refused, fail
			// closed.
			return passThroughPath{}, errPassThroughPath
		}
	}
	if p.host == "" || p.host == apiHost {
		// /2010-04-01/Accounts/{Sid}[.json][/…]
		if len(segs) >= 3 && strings.EqualFold(segs[1], "Accounts") {
			p.account = strings.TrimSuffix(segs[2], ".json")
		}
	}
	return p, nil
}

// target is where p goes at provider pr: at the host the path names when
// the provider is Twilio itself, else at the provider's base URL, which
// serves every product.
func (p passThroughPath) target(pr PassThroughProvider) *url.URL {
	base := pr.BaseURL
	if p.host != "" && strings.HasSuffix(strings.ToLower(base.Hostname()), ".twilio.com") {
		return &url.URL{Scheme: "https", Host: p.host, Path: p.path, RawPath: p.rawPath}
	}
	return &url.URL{
		Scheme: base.Scheme, Host: base.Host,
		Path:    strings.TrimSuffix(base.Path, "/") + p.path,
		RawPath: strings.TrimSuffix(base.EscapedPath(), "/") + p.rawPath,
	}
}

var (
	sidSegment      = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)
	resourceSegment = regexp.MustCompile(`^(?:[A-Z][A-Za-z]{0,63}|v[0-9]{1,3}|[0-9]{4}-[0-9]{2}-[0-9]{2})$`)
)

// maxClassSegments is how many segments of a path its class keeps.
const maxClassSegments = 6

// class is p's path for metrics and logs: the host, then up to
// maxClassSegments segments, with ".json" dropped, SIDs as {sid} and any
// segment but a resource name or version as {id}. It never holds a phone
// number, a name or another value a path may carry.
func (p passThroughPath) class() string {
	var b strings.Builder
	if p.host != "" {
		b.WriteString("/" + p.host)
	}
	segs := strings.Split(strings.TrimPrefix(p.path, "/"), "/")
	for i, sg := range segs {
		if i == maxClassSegments {
			b.WriteString("/…")
			break
		}
		sg = strings.TrimSuffix(sg, ".json")
		switch {
		case sg == "":
		case sidSegment.MatchString(sg):
			sg = "{sid}"
		case !resourceSegment.MatchString(sg):
			sg = "{id}"
		}
		b.WriteString("/" + sg)
	}
	return b.String()
}

// passThroughHandler serves what the mux does not route elsewhere: under
// /2010-04-01/, and /{host}/… for Twilio's other hosts. A path prefixed
// with api.twilio.com is Twilio's REST API: it is served as if the prefix
// were absent, so that Switchboard's own endpoints still take it.
func (s *Server) passThroughHandler(w http.ResponseWriter, r *http.Request) {
	if first, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok && strings.EqualFold(first, apiHost) &&
		strings.HasPrefix("/"+rest, TwilioPrefix) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		r2.URL.RawPath = ""
		if _, rawRest, ok := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/"); ok {
			r2.URL.RawPath = "/" + rawRest
		}
		s.mux.ServeHTTP(w, r2)
		return
	}
	if err := s.passThroughRequest(w, r); err != nil {
		s.writeTwilioError(w, r, err)
	}
}

// passThroughRequest authenticates r, checks its path and forwards it. It
// fails closed: a request it returns an error for has reached no
// provider.
func (s *Server) passThroughRequest(w http.ResponseWriter, r *http.Request) error {
	account, err := s.twilioCredentials(r)
	if err != nil {
		return err
	}
	p, err := parsePassThroughPath(r)
	if err != nil {
		return err
	}
	if p.account != "" && p.account != account {
		// Another account's path (a subaccount's included): refused as
		// Twilio refuses a wrong token.
		return errTwilioAuth
	}
	pt := s.passThrough
	if pt == nil {
		return errPassThroughPath
	}
	p = s.withTwilioSID(r.Context(), account, p)
	pr, ok := pt.providers[account]
	if !ok {
		return twilioErr(http.StatusNotFound, codeNotFound,
			"Switchboard does not serve this resource, and account %s has no provider to pass it through to", account)
	}
	if r.Header.Get("Upgrade") != "" {
		// No Twilio API upgrades a connection; a tunnel would escape the
		// body cap.
		return twilioErr(http.StatusBadRequest, codeInvalidParameter, "Connection upgrades are not passed through")
	}
	if r.ContentLength > pt.maxBody {
		return twilioErr(http.StatusRequestEntityTooLarge, codeTooLarge, "The request body exceeds %d bytes", pt.maxBody)
	}
	select {
	case pt.slots <- struct{}{}:
		defer func() { <-pt.slots }()
	default:
		return twilioErr(http.StatusTooManyRequests, twilio.CodeTooManyRequests, "Too many requests are being passed through at once")
	}
	pt.forward(s, w, r, p, pr, account)
	return nil
}

// forward streams r to pr and its answer back, within pt's timeout and
// body cap, and counts and logs the exchange without its query, headers
// or body.
func (pt *passThrough) forward(s *Server, w http.ResponseWriter, r *http.Request, p passThroughPath, pr PassThroughProvider, account string) {
	ctx, cancel := context.WithTimeout(r.Context(), pt.timeout)
	defer cancel()
	r = r.WithContext(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		// The transport waits for the request's body to be sent before
		// giving up on the exchange, whatever its context says: a client
		// that stalls its body would hold the slot and the provider's
		// connection for as long as it likes. Reading the body ends at the
		// deadline instead (fails closed: the client's request is given
		// up and its connection closed). A ResponseWriter without
		// deadlines is left to the server's ReadTimeout.
		_ = http.NewResponseController(w).SetReadDeadline(deadline)
	}
	var body *cappedBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &cappedBody{ReadCloser: r.Body, left: pt.maxBody}
		r.Body = body
	}
	target, class, start := p.target(pr), p.class(), time.Now()
	status := 0 // the provider's, once it answered
	// Deferred: the proxy panics with http.ErrAbortHandler when the
	// answer breaks off midway.
	defer func() {
		pt.metrics.ObservePassThrough(r.Method, class, status)
		s.logger.Debug("passed through", "method", r.Method, "path", class, "account", account, "status", status,
			"took", time.Since(start))
	}()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = &url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path, RawPath: target.RawPath,
				RawQuery: pr.In.URL.RawQuery}
			pr.Out.Host = ""
		},
		Transport: pr.Transport,
		ModifyResponse: func(resp *http.Response) error {
			status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL: its path and query may hold numbers
			}
			var te *twilioError
			switch {
			case body != nil && body.over.Load():
				te = &twilioError{http.StatusRequestEntityTooLarge, codeTooLarge, "The request body exceeds the size passed through"}
			// The connection's read deadline is the exchange's: at that
			// instant the server may cancel the request's context before
			// the timeout's own context ends, so a cancellation at or past
			// the deadline is the timeout too.
			case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil && pastDeadline(ctx):
				te = &twilioError{http.StatusGatewayTimeout, codeGatewayTimeout, "The provider did not answer in time"}
			default:
				te = &twilioError{http.StatusBadGateway, codeBadGateway, "The provider could not be reached"}
			}
			s.logger.Warn("pass-through failed", "method", r.Method, "path", class, "account", account, "status", te.status, "err", err)
			s.writeTwilioError(w, r, te)
		},
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	proxy.ServeHTTP(w, r)
}

// pastDeadline reports whether ctx's deadline has come.
func pastDeadline(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// cappedBody fails a read past its cap, and says so: the error reaching
// the proxy may come wrapped by the transport.
type cappedBody struct {
	io.ReadCloser
	left int64
	over atomic.Bool // read by the proxy's error handler
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.over.Store(true)
		return 0, errBodyTooLarge
	}
	return n, err
}

var errBodyTooLarge = errors.New("pass-through: request body too large")
