//go:build unix

package e2e

import (
	"fmt"
	"syscall"
	"testing"
)

// reservePort holds a loopback port for an app that starts later: the
// socket is bound, so that no other process takes the port meanwhile, but
// not listening, so that connections to it are refused as they are by a
// host whose app is down.
func reservePort(t *testing.T) *reservation {
	t.Helper()
	// Close-on-exec, or the switchboard processes started meanwhile would
	// inherit the socket and keep the port.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("reserve a port: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatalf("reserve a port: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("reserve a port: %v", err)
	}
	r := &reservation{
		addr:    fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port),
		release: func() { syscall.Close(fd) },
	}
	t.Cleanup(r.free)
	return r
}
