package listener

import (
	"fmt"
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
