package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	// maxRedirects is how many redirects a probe follows, as many as
	// common HTTP clients do.
	maxRedirects = 10
	// twilio.MaxTwiMLBytes is the largest TwiML body Twilio accepts.

	// maxHeaderBytes bounds the response headers a probe reads.
	maxHeaderBytes = 1 << 20
)

// Causes of a probe's own deadlines, told apart from the caller's.
var (
	errTotalTimeout = errors.New("total time limit reached")
	errReadTimeout  = errors.New("read time limit reached")
)

// Probe calls o.URL as Twilio would for a webhook of kind o.Kind and
// reports what Twilio would make of the answer. The probe stays within
// Twilio's timeouts, or the URL fragment's overrides of them, and reads at
// most 64 kB and one byte of any body.
//
// Problems with the URL are findings of the report, not errors. The error
// is for options a probe cannot run with (an unparseable URL, a scheme
// other than http and https, an unknown kind or method), and for ctx
// ending before the probe does, in which case the report so far comes with
// it.
func Probe(ctx context.Context, o Options) (*Report, error) {
	n, err := normalize(o)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	p := &prober{
		o:   n,
		r:   &Report{URL: redact(o.URL), Kind: n.Kind},
		ctx: ctx,
	}
	err = p.run(ctx)
	p.r.Elapsed = time.Since(start)
	if err != nil {
		return p.r, err
	}
	return p.r, nil
}

// prober is the state of one probe.
type prober struct {
	o      *normalized
	r      *Report
	ctx    context.Context // the caller's
	client *http.Client
	// seen records the hosts whose connection and TLS were already
	// reported, so that a redirect to the same host does not repeat them.
	seen map[string]bool
}

// ctxDone reports whether the caller's context ended.
func (p *prober) ctxDone() bool { return p.ctx.Err() != nil }

// hopResult is the outcome of one request.
type hopResult struct {
	method      string
	url         *url.URL
	status      int
	header      http.Header
	tls         *tls.ConnectionState
	body        []byte // at most twilio.MaxTwiMLBytes+1 bytes
	remote      string // the address connected to
	signedURL   string
	signature   string
	contentType string // of the request
}

func (p *prober) run(ctx context.Context) error {
	ov := p.o.ov
	if len(ov.Set) > 0 || len(ov.Problems) > 0 {
		if len(ov.Problems) > 0 {
			p.r.warn("overrides", 0, fmt.Sprintf("connection overrides %v; Twilio would not accept: %v", ov.Set, ov.Problems),
				"use #ct=100–10000&rt=100–15000&tt=100–15000&rc=0–5&rp=ct|rt|4xx|5xx|all")
		} else {
			p.r.pass("overrides", fmt.Sprintf("connection overrides %v", ov.Set))
		}
	}

	// tt bounds everything Twilio does for one webhook, lookups included.
	total, cancel := context.WithTimeoutCause(ctx, ov.Total, errTotalTimeout)
	defer cancel()
	start := time.Now()
	if !p.checkHost(total) {
		return p.callerErr()
	}

	dial := (&net.Dialer{Timeout: ov.Connect, Resolver: p.o.Resolver, Control: p.control}).DialContext
	transport := &http.Transport{
		Proxy:                  nil, // Twilio calls the URL directly, not through the local proxy
		DialContext:            dial,
		DialTLSContext:         dialTLS(p.o, dial),
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	defer transport.CloseIdleConnections()
	p.client = &http.Client{
		Transport: transport,
		// Redirects are followed by hand, so that each hop is seen.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p.seen = map[string]bool{}

	pl, err := newPayload(p.o)
	if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	token := uuid.NewString() // one webhook: the same token on every hop
	method, target, contentType, body := p.o.Method, withQuery(p.o.target, pl.query), pl.contentType, pl.body

	var hops []Hop
	var warnings []Finding
	redirects := 0
	summarize := func() {
		if len(hops) > 1 {
			p.r.Hops = hops
		}
		if redirects == 0 {
			p.r.pass("redirect", "no redirects")
			return
		}
		var steps []string
		for _, h := range hops {
			steps = append(steps, fmt.Sprintf("%s (%d)", h.URL, h.Status))
		}
		if len(steps) > 4 { // the hops list them all
			steps = []string{steps[0], "…", steps[len(steps)-1]}
		}
		chain := strings.Join(steps, " → ")
		p.r.warn("redirect", 0, fmt.Sprintf("%d redirect(s): %s; each costs a round trip within Twilio's time limit", redirects, chain),
			"point Twilio at the final URL")
		for _, w := range warnings {
			p.r.add(w)
		}
	}

	for {
		h, hopCtx, err := p.do(total, token, method, target, contentType, body)
		if err != nil {
			if p.ctxDone() {
				return p.callerErr()
			}
			var buildErr *requestError
			if errors.As(err, &buildErr) {
				return fmt.Errorf("doctor: %w", err)
			}
			hops = append(hops, Hop{URL: redact(target.String()), Method: method})
			f := p.errorFinding(err, target.String(), hopCtx)
			if redirects > 0 {
				summarize()
			}
			p.r.add(f)
			return nil
		}
		hops = append(hops, Hop{URL: redact(h.url.String()), Method: method, Status: h.status})
		p.reportConnection(h)

		loc := h.header.Get("Location")
		if !isRedirect(h.status) || loc == "" {
			summarize()
			p.finish(h, time.Since(start))
			return nil
		}
		if redirects == maxRedirects {
			summarize()
			p.r.fail("redirect", twilio.CodeHTTPRetrievalFailure, fmt.Sprintf("more than %d redirects (a loop?); Twilio gives up", maxRedirects),
				"point Twilio at the final URL and break the redirect loop")
			return nil
		}
		next, err := h.url.Parse(loc)
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Hostname() == "" {
			summarize()
			p.r.fail("redirect", twilio.CodeHTTPRetrievalFailure, fmt.Sprintf("%d redirect to %q, which is not an http(s) URL Twilio can follow", h.status, loc),
				"redirect to a valid http:// or https:// URL, or better, point Twilio at the final URL")
			return nil
		}
		next.Fragment, next.RawFragment = "", ""
		redirects++
		if method == "POST" && (h.status == http.StatusMovedPermanently || h.status == http.StatusFound || h.status == http.StatusSeeOther) {
			warnings = append(warnings, Finding{Check: "redirect", Status: StatusWarn,
				Message: fmt.Sprintf("%d turns the POST into a GET of %s: Twilio re-requests with GET and the parameters are lost", h.status, redact(next.String())),
				Fix:     "point Twilio at the final URL, or redirect with 307/308 to keep the POST"})
			method, contentType, body = "GET", "", nil
		}
		target = next
	}
}

// refusedError is an address Options.Allow refused to connect to.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// control checks the address a connection is about to be made to against
// Options.Allow, after resolution, so no name or redirect can reach an
// address it refuses. It fails closed on an address it cannot parse.
func (p *prober) control(network, address string, _ syscall.RawConn) error {
	if p.o.Allow == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusedError{fmt.Errorf("unparsable address %q", address)}
	}
	if err := p.o.Allow(ap.Addr()); err != nil {
		return &refusedError{err}
	}
	return nil
}

// callerErr returns the error for a probe cut short by its caller's
// context.
func (p *prober) callerErr() error {
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("doctor: probe interrupted: %w", err)
	}
	return nil
}

// requestError is a request the probe could not build: a bug or bad
// options, never a finding.
type requestError struct{ err error }

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// do sends one request within rt and the remaining tt and reads at most
// twilio.MaxTwiMLBytes+1 bytes of the answer. It returns the hop's context so that a
// timeout can be traced to the limit that caused it.
func (p *prober) do(total context.Context, token, method string, target *url.URL, contentType string, body []byte) (*hopResult, context.Context, error) {
	ctx, cancel := context.WithTimeoutCause(total, p.o.ov.Read, errReadTimeout)
	defer cancel()
	var remote string
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { remote = info.Conn.RemoteAddr().String() },
	})
	s, err := newRequest(ctx, p.o, token, method, target, contentType, body)
	if err != nil {
		return nil, ctx, &requestError{err}
	}
	resp, err := p.client.Do(s.req)
	if err != nil {
		return nil, ctx, fmt.Errorf("%s %s: %w", method, redact(s.signedURL), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, twilio.MaxTwiMLBytes+1))
	if err != nil {
		return nil, ctx, fmt.Errorf("read response to %s %s: %w", method, redact(s.signedURL), err)
	}
	return &hopResult{
		method:      method,
		url:         s.req.URL,
		status:      resp.StatusCode,
		header:      resp.Header,
		tls:         resp.TLS,
		body:        data,
		remote:      remote,
		signedURL:   s.signedURL,
		signature:   s.signature,
		contentType: contentType,
	}, ctx, nil
}

// reportConnection reports the connection and handshake of the first
// request to each host.
func (p *prober) reportConnection(h *hopResult) {
	host := h.url.Host
	if p.seen[host] {
		return
	}
	p.seen[host] = true
	msg := "connected to " + host
	if h.remote != "" {
		msg = "connected to " + h.remote
	}
	p.r.pass("connect", msg)
	if h.tls != nil {
		p.r.add(tlsPassFinding(h.tls, p.o.Now()))
	}
}

// finish checks the final response.
func (p *prober) finish(h *hopResult, elapsed time.Duration) {
	ok := p.checkStatus(h)
	if ok && h.signature != "" {
		p.r.pass("signature", "signed with X-Twilio-Signature over "+redact(h.signedURL))
	}
	p.checkLatency(elapsed)
	if ok && p.o.Kind.expectsTwiML() {
		p.checkBody(h)
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// hostOf returns the host and port of a URL, for messages.
func (p *prober) hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

// redact returns a URL with any password replaced, for reports that may
// be shared.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
