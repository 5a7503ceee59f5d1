//go:build !unix

package e2e

import (
	"net"
	"testing"
)

// reservePort picks a free loopback port for an app that starts later.
// Unlike on Unix, the port is not held meanwhile.
func reservePort(t *testing.T) *reservation {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &reservation{addr: addr, release: func() {}}
}
