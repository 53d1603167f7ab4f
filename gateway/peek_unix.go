//go:build linux || darwin || freebsd

package gateway

import (
	"errors"
	"net"
	"syscall"
)

func canPeek(conn net.Conn) bool {
	_, ok := conn.(syscall.Conn)
	return ok
}

// peerClosed reports whether the peer closed or reset the connection, with
// a non-blocking MSG_PEEK receive: it consumes nothing, so a pipelined next
// request stays where fasthttp will read it. Zero bytes means an orderly
// close; EAGAIN means the connection is open and idle.
func peerClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			closed = true // ECONNRESET and the like
		}
		return true // never wait for readability
	})
	return closed
}
