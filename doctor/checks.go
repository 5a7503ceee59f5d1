package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// voiceGuideline is the response time Twilio recommends for voice
// webhooks, beyond which callers hear silence.
const voiceGuideline = 2 * time.Second

// sharedAddressSpace is carrier-grade NAT space (RFC 6598): no more
// reachable from the internet than private space.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// internal reports whether Twilio, calling from the internet, cannot reach
// addr.
func internal(addr netip.Addr) bool {
	addr = addr.Unmap()
	return addr.IsPrivate() || addr.IsLoopback() || addr.IsLinkLocalUnicast() ||
		addr.IsUnspecified() || sharedAddressSpace.Contains(addr)
}

// checkHost checks the host name itself, resolves it and checks where it
// points. It reports false when the probe cannot go on.
func (p *prober) checkHost(ctx context.Context) bool {
	host := p.o.target.Hostname()
	literal, err := netip.ParseAddr(host)
	isLiteral := err == nil
	switch {
	case isLiteral:
		p.r.pass("host", "IP address "+literal.String())
	case strings.Contains(host, "_"):
		code, fix := twilio.CodeBadHostName, "use a host name without underscores (a DNS alias or another subdomain)"
		if p.o.Kind == KindClientNotification {
			// Twilio's client notification guidance singles this out.
			code = twilio.CodeClientNotificationFailed
		}
		p.r.warn("host", code, fmt.Sprintf("host name %q contains an underscore, which is not valid in a host name and Twilio may refuse it", host), fix)
	default:
		p.r.pass("host", "host name "+host)
	}

	var addrs []netip.Addr
	if isLiteral {
		addrs = []netip.Addr{literal}
	} else {
		ips, err := p.o.Resolver.LookupIPAddr(ctx, host)
		if err != nil {
			if p.ctxDone() {
				return false
			}
			p.r.fail("dns", twilio.CodeBadHostName, fmt.Sprintf("%s does not resolve: %v", host, err),
				fixDNS)
			return false
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.IP); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
	}
	// Addresses Allow refuses are neither shown nor probed, so that a
	// report tells nothing about them.
	n := len(addrs)
	addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool { return p.o.Allow != nil && p.o.Allow(a) != nil })
	refused := n - len(addrs)
	if !isLiteral {
		msg := host + " resolves to " + joinAddrs(addrs)
		switch {
		case refused > 0 && len(addrs) == 0:
			msg = host + " resolves"
		case refused > 0:
			msg += fmt.Sprintf(" and %d address(es) not shown", refused)
		}
		p.r.pass("dns", msg)
	}
	if len(addrs) == 0 && refused > 0 {
		p.r.fail("reachability", 0, "not probed: "+host+" is at an address this server does not probe", refusedFix)
		return false
	}

	var hidden []string
	for _, a := range addrs {
		if internal(a) {
			hidden = append(hidden, a.String())
		}
	}
	switch {
	case len(hidden) == 0:
		p.r.pass("reachability", "public address")
	case len(hidden) == len(addrs):
		// A warning, not a failure, so that probing a local server works.
		p.r.warn("reachability", twilio.CodeHTTPConnectionFailure,
			"private, loopback or link-local address ("+strings.Join(hidden, ", ")+"): Twilio cannot reach it",
			"expose the app on a public address or through a tunnel, and point Twilio there")
	default:
		p.r.warn("reachability", twilio.CodeHTTPConnectionFailure,
			"some addresses are private, loopback or link-local ("+strings.Join(hidden, ", ")+"): Twilio cannot reach those",
			"publish only public addresses in DNS")
	}
	return true
}

// refusedFix is the fix of a probe Options.Allow refused.
const refusedFix = "probe it with the doctor command on a machine allowed to reach it"

// joinAddrs lists addresses for a message.
func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// errorFinding describes a request that got no usable response.
func (p *prober) errorFinding(err error, u string, hopCtx context.Context) Finding {
	host := p.hostOf(u)
	if errors.As(err, new(*refusedError)) {
		return Finding{Check: "connect", Status: StatusFail,
			Message: "not probed: " + host + " is at an address this server does not probe", Fix: refusedFix}
	}
	class := twilio.ClassifyError(err)
	// net/http reports a deadline by its cause, which ClassifyError does
	// not know.
	ownDeadline := errors.Is(err, errTotalTimeout) || errors.Is(err, errReadTimeout)
	if ownDeadline && class == twilio.ClassProtocol {
		class = twilio.ClassTimeout
	}
	switch class {
	case twilio.ClassDNS:
		return Finding{Check: "dns", Status: StatusFail, Code: twilio.CodeBadHostName,
			Message: host + " does not resolve: " + rootCause(err),
			Fix:     fixDNS}
	case twilio.ClassTLS:
		return tlsFinding(err)
	case twilio.ClassConnect:
		f := Finding{Check: "connect", Status: StatusFail, Code: twilio.CodeHTTPConnectionFailure,
			Fix: fixConnect}
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			f.Message = "connection refused by " + host + ": nothing listens on that port"
		case isTimeout(err) || ownDeadline:
			f.Message = fmt.Sprintf("no TCP connection to %s within %s (%s)", host, p.o.ov.Connect, p.o.ov.LimitName("ct"))
		default:
			f.Message = "cannot connect to " + host + ": " + rootCause(err)
		}
		return f
	case twilio.ClassTimeout:
		limit, name := p.o.ov.Total, p.o.ov.LimitName("tt")
		if errors.Is(err, errReadTimeout) || (!errors.Is(err, errTotalTimeout) && errors.Is(context.Cause(hopCtx), errReadTimeout)) {
			limit, name = p.o.ov.Read, p.o.ov.LimitName("rt")
		}
		return Finding{Check: "latency", Status: StatusFail, Code: twilio.CodeHTTPConnectionFailure,
			Message: fmt.Sprintf("no complete response within %s (%s); Twilio gives up and tries the fallback URL", limit, name),
			Fix:     fixTimeout}
	default:
		return Finding{Check: "http", Status: StatusFail, Code: twilio.CodeHTTPProtocolViolation,
			Message: "malformed response or connection lost: " + rootCause(err),
			Fix:     fixProtocol}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// rootCause returns the message of err without the method and URL
// net/http prefixes it with, which the report shows elsewhere.
func rootCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkStatus checks the status code of the final response, and reports
// whether it is one Twilio accepts.
func (p *prober) checkStatus(h *hopResult) bool {
	code, text := h.status, fmt.Sprintf("%d %s", h.status, http.StatusText(h.status))
	failCode := twilio.CodeHTTPRetrievalFailure
	if p.o.Kind == KindClientNotification {
		failCode = twilio.CodeClientNotificationFailed
		if code == http.StatusOK || code == http.StatusNotFound {
			p.r.pass("status", text+" (200: dispatched, 404: no binding)")
			return true
		}
	} else if code >= 200 && code < 300 {
		p.r.pass("status", text)
		return true
	}
	switch {
	case code == http.StatusUnauthorized && h.header.Get("WWW-Authenticate") != "":
		p.r.fail("auth", failCode,
			fmt.Sprintf("%s: the server demands HTTP authentication (WWW-Authenticate: %s)", text, h.header.Get("WWW-Authenticate")),
			"credentials in the URL (https://user:pass@host/...) or allow Twilio")
	case code == http.StatusUnauthorized:
		p.r.fail("auth", failCode, text+" without WWW-Authenticate: the app refused the request",
			"credentials in the URL (https://user:pass@host/...) or allow Twilio")
	case code == http.StatusMethodNotAllowed && h.method == "POST":
		p.r.fail("status", failCode, text+" for POST", "static file? use GET or a dynamic endpoint")
	case code == http.StatusForbidden && h.signature != "":
		p.r.fail("status", failCode, text+" for a correctly signed request: the app's signature check failed",
			"validate the signature over the public URL Twilio calls, not the one the app sees behind its proxy")
		covers := ""
		if h.method == "POST" && strings.HasPrefix(h.contentType, formType) {
			covers = " followed by the form parameters sorted by name"
		}
		p.r.warn("signature", 0,
			fmt.Sprintf("signed URL %s%s, X-Twilio-Signature %s", redact(h.signedURL), covers, h.signature),
			"the app must compute the signature over exactly this URL: check scheme, host, port and path behind proxies")
	case code == http.StatusTooManyRequests:
		p.r.fail("status", codeWebhookRateLimited, text+": the app is rate limiting Twilio", "raise the app's rate limit for Twilio or queue the work")
	case code == http.StatusNotFound:
		p.r.fail("status", failCode, text+": the app has no such route", "check the URL's path against the app's routes")
	case code >= 300 && code < 400:
		p.r.fail("status", failCode, text+" that Twilio cannot follow (no usable Location)", "answer 2xx, or redirect with a Location header")
	case code >= 500:
		p.r.fail("status", failCode, text+": the app failed", fixStatus)
	default:
		p.r.fail("status", failCode, text, "make the app answer 2xx")
	}
	return false
}

// checkLatency compares the total response time with Twilio's limits.
func (p *prober) checkLatency(elapsed time.Duration) {
	shown := elapsed.Round(time.Millisecond)
	if elapsed < 10*time.Millisecond {
		shown = elapsed.Round(10 * time.Microsecond)
	}
	msg := fmt.Sprintf("answered in %s (limit %s, %s)", shown, p.o.ov.Total, p.o.ov.LimitName("tt"))
	if p.o.Kind == KindVoice && elapsed > voiceGuideline {
		p.r.warn("latency", 0, msg+"; over the 2 s voice guideline, callers hear silence",
			"answer voice webhooks within 2 s: return TwiML first, do slow work in the background")
		return
	}
	p.r.pass("latency", msg)
}

// codeWebhookRateLimited is the error Twilio logs when a webhook answers
// 429.
const codeWebhookRateLimited twilio.Code = 11217
