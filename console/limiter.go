package console

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sign-in attempts per client address: a burst of signInBurst, then one
// every signInEvery. maxSignInSources bounds the addresses remembered.
const (
	signInBurst      = 5
	signInEvery      = 12 * time.Second
	maxSignInSources = 4096
)

// signInLimiter limits sign-in attempts per client address, in bounded
// memory: an address whose bucket has refilled is forgotten, since a fresh
// bucket is the same; when the table is full of addresses still limited,
// new addresses are refused (fail closed) until some refill.
type signInLimiter struct {
	mu     sync.Mutex
	every  time.Duration
	burst  int
	max    int
	source map[string]*rate.Limiter
}

func newSignInLimiter(burst int, every time.Duration, capacity int) *signInLimiter {
	return &signInLimiter{every: every, burst: burst, max: capacity, source: map[string]*rate.Limiter{}}
}

// allow spends one attempt of source's at now, and reports whether it had
// one.
func (l *signInLimiter) allow(source string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.source[source]
	if !ok {
		if len(l.source) >= l.max {
			l.forgetRefilled(now)
		}
		if len(l.source) >= l.max {
			return false
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.source[source] = lim
	}
	return lim.AllowN(now, 1)
}

func (l *signInLimiter) forgetRefilled(now time.Time) {
	for s, lim := range l.source {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.source, s)
		}
	}
}

// clientKey is the address a sign-in attempt is counted against: the
// peer's IP, and for IPv6 its /64, which one host usually holds whole.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
