//go:build linux || darwin || freebsd

package gateway

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

func canPeek(conn net.Conn) bool {
	_, ok := underlying(conn).(syscall.Conn)
	return ok
}

// underlying unwraps TLS: the peek looks at the TCP socket, where a close
// shows the same way (a TLS record waiting is data, so "still there").
func underlying(conn net.Conn) net.Conn {
	if tc, ok := conn.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return conn
}

// peerClosed reports whether the peer closed or reset the connection, with
// a non-blocking MSG_PEEK receive: it consumes nothing, so a pipelined next
// request stays where fasthttp will read it. Zero bytes means an orderly
// close; EAGAIN means the connection is open and idle.
//
// It runs under RawConn.Control, not Read, so the read deadline fasthttp
// leaves on the connection while the handler runs cannot skip it.
func peerClosed(conn net.Conn) bool {
	sc, ok := underlying(conn).(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			closed = true // ECONNRESET and the like
		}
	})
	return closed
}
