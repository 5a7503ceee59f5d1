package listener

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/switchboard-dev/switchboard"
)

// ForwardURL is where a listener forwarding to forwardTo sends the events
// of route: forwardTo itself when it has a path, else forwardTo with the
// route's path (http://localhost:3000 and route /sms make
// http://localhost:3000/sms). forwardTo must be an absolute http(s) URL
// without user info or fragment (switchboard.ErrInvalid).
func ForwardURL(forwardTo, route string) (string, error) {
	u, err := url.Parse(forwardTo)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", fmt.Errorf("%w: forward-to %q is not an http(s) URL with a host and no user or fragment", switchboard.ErrInvalid, forwardTo)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/" + strings.TrimPrefix(route, "/")
	}
	return u.String(), nil
}

// LoopbackForward reports whether forwardTo names this machine: localhost,
// or a loopback address. A listener that connects with its own key may
// forward only there (package web): the server signs each request with
// the account's auth token for the listener's URL, and a signature for a
// URL on the internet, query of the holder's choosing, is one the
// production app would take as Twilio's.
func LoopbackForward(forwardTo string) bool {
	u, err := url.Parse(forwardTo)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
