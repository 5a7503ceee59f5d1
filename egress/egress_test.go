package egress_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/egress"
)

// Every internal range is refused by the zero Policy, in its IPv4-mapped
// and IPv4-embedding IPv6 forms too; public addresses pass.
func TestCheckRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr  string
		class egress.Class // "" for an address that passes
	}{
		{"127.0.0.1", egress.ClassLoopback},
		{"127.255.255.254", egress.ClassLoopback},
		{"::1", egress.ClassLoopback},
		{"0.0.0.0", egress.ClassUnspecified},
		{"0.1.2.3", egress.ClassUnspecified},
		{"::", egress.ClassUnspecified},
		{"10.0.0.1", egress.ClassPrivate},
		{"10.255.255.255", egress.ClassPrivate},
		{"172.16.0.1", egress.ClassPrivate},
		{"172.31.255.255", egress.ClassPrivate},
		{"192.168.1.1", egress.ClassPrivate},
		{"fc00::1", egress.ClassPrivate},
		{"fd12:3456::1", egress.ClassPrivate},
		{"fec0::1", egress.ClassPrivate},
		{"169.254.169.254", egress.ClassLinkLocal}, // cloud metadata
		{"fe80::1", egress.ClassLinkLocal},
		{"fe80::1%eth0", egress.ClassLinkLocal},
		{"100.64.0.1", egress.ClassShared},
		{"100.127.255.254", egress.ClassShared},
		{"224.0.0.1", egress.ClassMulticast},
		{"239.255.255.250", egress.ClassMulticast},
		{"ff02::1", egress.ClassMulticast},
		{"255.255.255.255", egress.ClassBroadcast},
		// IPv4-mapped and IPv4-embedding forms.
		{"::ffff:127.0.0.1", egress.ClassLoopback},
		{"::ffff:10.1.2.3", egress.ClassPrivate},
		{"::ffff:169.254.169.254", egress.ClassLinkLocal},
		{"::ffff:0.0.0.0", egress.ClassUnspecified},
		{"::127.0.0.1", egress.ClassLoopback},         // IPv4-compatible
		{"64:ff9b::a9fe:a9fe", egress.ClassLinkLocal}, // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", egress.ClassLoopback},     // NAT64 of 127.0.0.1
		{"2002:c0a8:101::1", egress.ClassPrivate},     // 6to4 of 192.168.1.1
		{"2002:7f00:1::", egress.ClassLoopback},       // 6to4 of 127.0.0.1
		// Public addresses, and the edges of the ranges.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"192.169.0.1", ""},
		{"11.0.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
	}
	var zero egress.Policy
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			err := zero.Check(a)
			if tt.class == "" {
				if err != nil {
					t.Errorf("Check(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			var de *egress.DeniedError
			if !errors.Is(err, egress.ErrDenied) || !errors.As(err, &de) || de.Class != tt.class {
				t.Fatalf("Check(%s) = %v, want a %s denial", tt.addr, err, tt.class)
			}
			if !strings.Contains(err.Error(), string(tt.class)) {
				t.Errorf("message %q does not name the class %s", err, tt.class)
			}
			if c, ok := egress.Classify(a); !ok || c != tt.class {
				t.Errorf("Classify(%s) = %s, %v; want %s", tt.addr, c, ok, tt.class)
			}
		})
	}
}

// The allowlist lets exactly the addresses it covers through, whichever
// form they are written in.
func TestAllowlistOverrides(t *testing.T) {
	t.Parallel()
	p, err := egress.Parse([]string{"127.0.0.0/8", "::1/128", " 10.1.0.0/16 ", "::ffff:192.168.7.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"127.9.9.9", true},
		{"::ffff:127.0.0.1", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"10.2.0.1", false},
		{"192.168.7.9", true}, // the mapped prefix covers its IPv4 form
		{"192.168.8.1", false},
		{"169.254.169.254", false},
		{"::", false},
		{"0.0.0.0", false},
		{"fe80::1", false},
		{"8.8.8.8", true}, // public: never refused
	}
	for _, tt := range tests {
		err := p.Check(netip.MustParseAddr(tt.addr))
		if (err == nil) != tt.allowed {
			t.Errorf("Check(%s) with the allowlist = %v, want allowed %v", tt.addr, err, tt.allowed)
		}
	}
}

func TestParseRefusesBadPrefixes(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"127.0.0.1", "localhost", "10.0.0.0/33", "127.0.0.1/8", ""} {
		if _, err := egress.Parse([]string{bad}); err == nil {
			t.Errorf("Parse(%q) = nil error, want one", bad)
		}
	}
	if _, err := egress.Parse(nil); err != nil {
		t.Errorf("Parse(nil) = %v", err)
	}
}

// CheckURL refuses the URLs that are internal on their face and leaves
// names to the dial-time check. Its message names the host, never the
// URL's query.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	var zero egress.Policy
	allowLoopback, err := egress.Parse([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url     string
		denied  bool
		allowed bool // with 127.0.0.0/8 allowed
	}{
		{"http://127.0.0.1:8080/hook?secret=s3cr3t", true, true},
		{"http://[::1]/hook", true, false},
		{"http://[::ffff:127.0.0.1]/hook", true, true},
		{"http://[::ffff:7f00:1]/hook", true, true},
		{"http://localhost:3000/hook", true, true},
		{"http://LOCALHOST./hook", true, true},
		{"http://app.localhost/hook", true, true},
		{"http://169.254.169.254/latest/meta-data", true, false},
		{"http://10.0.0.5/hook", true, false},
		{"http://[fe80::1%25eth0]/hook", true, false},
		{"http://0.0.0.0:8080/", true, false},
		{"http://2130706433/hook", true, true}, // 127.0.0.1 as one number
		{"http://0x7f.1/hook", true, true},
		{"http://127.1/hook", true, true},
		{"http://017700000001/hook", true, true},
		{"http://100.64.1.1/", true, false},
		{"https://app.example.com/hook", false, true},
		{"https://8.8.8.8/hook", false, true},
		{"https://localhost.example.com/hook", false, true},
		{"https://134744072/hook", false, true}, // 8.8.8.8 as one number
	}
	for _, tt := range tests {
		err := zero.CheckURL(tt.url)
		if denied := errors.Is(err, egress.ErrDenied); denied != tt.denied {
			t.Errorf("CheckURL(%s) = %v, want denied %v", tt.url, err, tt.denied)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("CheckURL(%s) = %q: names the query", tt.url, err)
		}
		if err := allowLoopback.CheckURL(tt.url); (err == nil) != tt.allowed {
			t.Errorf("CheckURL(%s) with 127.0.0.0/8 allowed = %v, want allowed %v", tt.url, err, tt.allowed)
		}
	}
}

// The dialer checks the address it connects to, after resolution: a name
// that resolves to loopback is refused although no literal is in sight,
// and nothing reaches the listener; with the allowlist it connects.
func TestDialerChecksResolvedAddresses(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	var zero egress.Policy
	for _, host := range []string{"localhost", "127.0.0.1"} {
		c, err := zero.Dialer(&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		if err == nil {
			c.Close()
			t.Fatalf("dial %s: connected, want a denial", host)
		}
		var de *egress.DeniedError
		if !errors.Is(err, egress.ErrDenied) || !errors.As(err, &de) || de.Class != egress.ClassLoopback {
			t.Fatalf("dial %s = %v, want a loopback denial", host, err)
		}
	}

	allow, err := egress.Parse([]string{"127.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := allow.Dialer(&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	c.Close()
	<-accepted // the allowed connection; the refused ones never came
	select {
	case <-accepted:
		t.Fatal("the listener accepted a second connection: a refused dial reached it")
	default:
	}
}

// A dialer's own Control hook still runs before the policy's.
func TestDialerKeepsItsControl(t *testing.T) {
	t.Parallel()
	errOwn := errors.New("own hook")
	d := egress.Policy{}.Dialer(&net.Dialer{Control: func(string, string, syscall.RawConn) error { return errOwn }})
	_, err := d.DialContext(t.Context(), "tcp", "127.0.0.1:1")
	if !errors.Is(err, errOwn) {
		t.Fatalf("dial = %v, want the dialer's own hook's error first", err)
	}
}
