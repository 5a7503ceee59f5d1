package doctor

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

var errRefused = errors.New("refused in test")

// onlyAddr allows a single address.
func onlyAddr(allowed netip.Addr) func(netip.Addr) error {
	return func(a netip.Addr) error {
		if a.Unmap() == allowed {
			return nil
		}
		return errRefused
	}
}

// A host that resolves only to addresses Allow refuses is not probed: no
// request reaches it, the probe fails, and the report does not show the
// address. With the address allowed, the same probe reaches the app.
func TestAllowRefusesResolvedAddresses(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		twimlHandler("application/xml", validTwiML)(w, r)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	url := "http://app.example.test:" + port + "/sms"

	r := probe(t, Options{URL: url, Resolver: fakeResolver(net.IPv4(127, 0, 0, 1)), Allow: onlyAddr(netip.MustParseAddr("10.9.9.9"))})
	requireFindings(t, r, want{"reachability", StatusFail, 0})
	if !r.Failed() || hits.Load() != 0 {
		t.Fatalf("refused probe: failed %v, app hit %d times; want failed and none:\n%s", r.Failed(), hits.Load(), r.Text())
	}
	if strings.Contains(r.Text(), "127.0.0.1") {
		t.Errorf("the report shows the refused address:\n%s", r.Text())
	}

	r = probe(t, Options{URL: url, Resolver: fakeResolver(net.IPv4(127, 0, 0, 1)), Allow: onlyAddr(netip.MustParseAddr("127.0.0.1"))})
	if r.Failed() || hits.Load() != 1 {
		t.Fatalf("allowed probe: failed %v, app hit %d times; want passed and once:\n%s", r.Failed(), hits.Load(), r.Text())
	}
}

// A redirect to an address Allow refuses is not followed there: the
// connection is refused as it is made, and the report says so.
func TestAllowRefusesRedirectTargets(t *testing.T) {
	t.Parallel()
	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://[::1]:1/internal", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(outer.Close)

	r := probe(t, Options{URL: outer.URL + "/sms", Allow: onlyAddr(netip.MustParseAddr("127.0.0.1"))})
	f := findFinding(r, want{"connect", StatusFail, 0})
	if f == nil || !strings.Contains(f.Message, "not probed") {
		t.Fatalf("no failing connect finding saying the redirect target was not probed:\n%s", r.Text())
	}
	if len(r.Hops) != 2 || r.Hops[1].Status != 0 {
		t.Errorf("hops %+v, want the redirect and an unanswered second hop", r.Hops)
	}
}
