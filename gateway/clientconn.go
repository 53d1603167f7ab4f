package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Causes with which a request's context is canceled.
var (
	// errClientGone: the client closed its connection. It wraps
	// context.Canceled, so it is answered (and logged) as 499.
	errClientGone = fmt.Errorf("client closed the connection: %w", context.Canceled)
	// ErrShuttingDown: the shutdown deadline passed with the request still
	// running; it is answered as 503.
	ErrShuttingDown = errors.New("the gateway is shutting down")
)

// watchClient checks the client's connection every interval while the
// gateway waits for an upstream before anything was written back, and
// cancels the request with errClientGone when the client has gone. fasthttp
// only reports a departed client on a failed write, and before the first
// byte there is nothing to write; peerClosed looks at the socket without
// reading from it. The returned stop must be called when the wait is over.
func watchClient(conn net.Conn, interval time.Duration, cancel context.CancelCauseFunc) (stop func()) {
	if conn == nil || interval <= 0 || !canPeek(conn) {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if peerClosed(conn) {
			cancel(errClientGone)
			return
		}
		t.Reset(interval)
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// setWriteDeadline restarts the client's write deadline, for a stream that
// is still producing: fasthttp sets one when the response starts
// (server.write_timeout), and each event earns a fresh one. Only real
// connections get one (in-process test contexts have none to set).
func setWriteDeadline(conn net.Conn, d time.Duration) {
	if d <= 0 {
		return
	}
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn, *tls.Conn:
		_ = conn.SetWriteDeadline(time.Now().Add(d))
	}
}

// connDeadlines is fasthttp's ConnState hook. A new connection must send
// its first request within read (fasthttp, with ReduceMemoryUsage, reads
// a new connection's first byte before it sets any deadline: a client
// that connects and sends nothing would hold its connection forever). A
// connection waiting for its next request drops the write deadline of the
// last response, so an early write such as "100 Continue" is not failed
// by a stale one.
func connDeadlines(read time.Duration) func(net.Conn, fasthttp.ConnState) {
	return func(conn net.Conn, state fasthttp.ConnState) {
		switch state {
		case fasthttp.StateNew:
			if read > 0 {
				_ = conn.SetReadDeadline(time.Now().Add(read))
			}
		case fasthttp.StateIdle:
			_ = conn.SetWriteDeadline(time.Time{})
		}
	}
}
