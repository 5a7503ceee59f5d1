// Package egress decides which network destinations Switchboard may connect
// to for a URL an API caller chose (a message's status webhook, a probe of
// the doctor endpoint), so that such a URL cannot make Switchboard reach its
// own host or the private network it runs in.
//
// The decision is made on the address actually being connected to, after
// name resolution (Policy.Control, Policy.Dialer): a name that resolves to
// a private address, or that changes its answer between a check and the
// connection (DNS rebinding), is caught when it is dialled. Policy.CheckURL
// refuses the obviously internal URLs (IP literals, localhost names) early,
// when a caller hands one over.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrDenied is the error a refused destination matches (errors.Is): a
// permanent refusal, which trying again does not change.
var ErrDenied = errors.New("egress: destination denied")

// Class is the kind of internal address a destination was refused for.
type Class string

// Classes of refused addresses.
const (
	ClassUnspecified Class = "unspecified" // 0.0.0.0/8, ::: reaches the local host
	ClassLoopback    Class = "loopback"    // 127.0.0.0/8, ::1
	ClassPrivate     Class = "private"     // 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10
	ClassLinkLocal   Class = "link-local"  // 169.254/16 (cloud metadata), fe80::/10
	ClassShared      Class = "CGNAT"       // 100.64.0.0/10, carrier-grade NAT (RFC 6598)
	ClassMulticast   Class = "multicast"   // 224.0.0.0/4, ff00::/8
	ClassBroadcast   Class = "broadcast"   // 255.255.255.255
)

// DeniedError is a refused destination. Its message names the host or
// address and its class, never a URL, whose query may hold a secret.
type DeniedError struct {
	// Host is what was refused: the address connected to, or the host of
	// a URL.
	Host  string
	Class Class
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("egress: %s refused (%s address): internal destinations are reached only when egress.allow lists them",
		e.Host, e.Class)
}

// Is makes a DeniedError match ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")     // "this network": 0.0.0.0 reaches the local host
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598
	siteLocal   = netip.MustParsePrefix("fec0::/10")     // deprecated, still routed as private by some stacks
	broadcast   = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	// IPv6 forms that carry an IPv4 address a host or its network may
	// route to: IPv4-compatible (::a.b.c.d, deprecated), the NAT64
	// well-known prefix (RFC 6052) and 6to4 (RFC 3056). IPv4-mapped
	// addresses (::ffff:a.b.c.d) are unmapped before anything else.
	compatible = netip.MustParsePrefix("::/96")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// Classify returns the class of an internal address, and false for an
// address that is not internal. IPv4-mapped and IPv4-embedding IPv6
// addresses are classified by the IPv4 address they carry.
func Classify(a netip.Addr) (Class, bool) {
	a = a.WithZone("").Unmap()
	if c, ok := classify(a); ok {
		return c, true
	}
	if v4, ok := embedded(a); ok {
		return classify(v4)
	}
	return "", false
}

func classify(a netip.Addr) (Class, bool) {
	switch {
	case !a.IsValid():
		return ClassUnspecified, true // fails closed: nothing to connect to is nothing to allow
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return ClassUnspecified, true
	case a.IsLoopback():
		return ClassLoopback, true
	case a.IsPrivate() || siteLocal.Contains(a):
		return ClassPrivate, true
	case a.IsLinkLocalUnicast():
		return ClassLinkLocal, true
	case sharedSpace.Contains(a):
		return ClassShared, true
	case a.IsMulticast():
		return ClassMulticast, true
	case a == broadcast:
		return ClassBroadcast, true
	}
	return "", false
}

// embedded returns the IPv4 address an IPv6 address carries, in the forms
// that route to it.
func embedded(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case compatible.Contains(a), nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Policy refuses connections to internal addresses (see Class) except those
// in its allowlist. The zero Policy allows no internal address: it fails
// closed.
type Policy struct {
	allow []netip.Prefix
}

// New returns a Policy that allows the internal addresses in allow.
func New(allow ...netip.Prefix) Policy {
	p := Policy{}
	for _, pr := range allow {
		p.allow = append(p.allow, unmapPrefix(pr))
	}
	return p
}

// Parse returns a Policy that allows the internal addresses in the CIDR
// prefixes allow, such as "127.0.0.0/8" and "::1/128". A prefix with bits
// set past its length ("127.0.0.1/8") is refused as a likely mistake.
func Parse(allow []string) (Policy, error) {
	var prefixes []netip.Prefix
	for _, s := range allow {
		pr, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return Policy{}, fmt.Errorf("%q: want a CIDR prefix such as 127.0.0.0/8 or ::1/128", s)
		}
		if pr != pr.Masked() {
			return Policy{}, fmt.Errorf("%q: address bits set past the prefix length; did you mean %s?", s, pr.Masked())
		}
		prefixes = append(prefixes, pr)
	}
	return New(prefixes...), nil
}

// unmapPrefix turns an IPv4-mapped prefix (::ffff:127.0.0.0/104) into its
// IPv4 form, which is what addresses are compared in.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// allowed reports whether the allowlist covers a, or the IPv4 address it
// carries.
func (p Policy) allowed(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	v4, hasV4 := embedded(a)
	for _, pr := range p.allow {
		if pr.Contains(a) || (hasV4 && pr.Contains(v4)) {
			return true
		}
	}
	return false
}

// Check returns a *DeniedError when a is an internal address the
// allowlist does not cover, and nil otherwise.
func (p Policy) Check(a netip.Addr) error {
	c, internal := Classify(a)
	if !internal || p.allowed(a) {
		return nil
	}
	return &DeniedError{Host: a.String(), Class: c}
}

// Control checks the address a socket is about to connect to, with the
// signature of net.Dialer.Control. It is called for every address a name
// resolved to, after resolution, so the address checked is the address
// connected to. It fails closed: an address it cannot parse is refused.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Host: address, Class: ClassUnspecified}
	}
	return p.Check(ap.Addr())
}

// Dialer returns a copy of d that refuses the addresses p refuses, after
// d's own Control hook, if any, has passed them. Each of a name's addresses
// is checked as it is tried, so a name with a public and a loopback address
// connects only to the public one.
func (p Policy) Dialer(d *net.Dialer) *net.Dialer {
	out := *d
	inner := d.Control
	out.Control = func(network, address string, c syscall.RawConn) error {
		if inner != nil {
			if err := inner(network, address, c); err != nil {
				return err
			}
		}
		return p.Control(network, address, c)
	}
	return &out
}

// CheckURL refuses, before anything is dialled, a URL whose host is
// obviously internal: an IP literal (in any form a resolver may accept,
// such as 2130706433 or 0x7f.1) or a localhost name. Other names pass: they
// are checked when dialled. The error is a *DeniedError naming the host.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("egress: parse URL: %v", err)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	if a, ok := legacyIPv4(host); ok {
		if c, internal := Classify(a); internal && !p.allowed(a) {
			return &DeniedError{Host: host + " (" + a.String() + ")", Class: c}
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		// Localhost names are loopback (RFC 6761), whichever of
		// 127.0.0.1 and ::1 they resolve to.
		if p.allowed(netip.IPv6Loopback()) || p.allowed(netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
			return nil
		}
		return &DeniedError{Host: host, Class: ClassLoopback}
	}
	return nil
}

// legacyIPv4 parses the IPv4 forms inet_aton accepts besides the dotted
// quad: one to four parts, each decimal, octal (leading 0) or hexadecimal
// (0x), the last filling the remaining bytes ("127.1", "2130706433").
func legacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, part := range parts {
		base, digits := 10, part
		switch {
		case strings.HasPrefix(part, "0x"):
			base, digits = 16, part[2:]
		case len(part) > 1 && part[0] == '0':
			base, digits = 8, part[1:]
		}
		if digits == "" && base != 16 {
			return netip.Addr{}, false
		}
		if digits == "" {
			digits = "0" // "0x" alone is 0
		}
		if strings.ContainsAny(digits, "_+-") {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
