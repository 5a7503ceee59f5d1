package console

import (
	"testing"
	"time"
)

func TestSignInLimiterIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	l := newSignInLimiter(2, 10*time.Second, 2)
	for _, src := range []string{"a", "b"} {
		if !l.allow(src, now) || !l.allow(src, now) || l.allow(src, now) {
			t.Fatalf("%s: burst of 2 not kept", src)
		}
	}
	// Full of addresses still limited: a new one is refused.
	if l.allow("c", now) {
		t.Fatal("a third address was let in while the table was full")
	}
	// Once "a" has refilled it is forgotten, and "c" fits.
	later := now.Add(20 * time.Second)
	if !l.allow("b", later) { // b is remembered and refilled
		t.Fatal("b not refilled")
	}
	if !l.allow("c", later) {
		t.Fatal("c refused although a had refilled")
	}
	if len(l.source) > 2 {
		t.Errorf("%d addresses remembered, bound 2", len(l.source))
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.1:443":             "192.0.2.1",
		"[::ffff:192.0.2.1]:443":    "192.0.2.1",
		"[2001:db8:1:2:3::4]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::]:443": "2001:db8:1:2::/64",
		"not-an-address":            "not-an-address",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}
