package ledger

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// proxy forwards TCP connections to a Redis server and plays the faults
// of a network: it can swallow the server's replies (Redis ran the
// command, the client never hears of it) or be down (connections are
// cut and new ones closed at once).
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	drop  bool
	conns map[net.Conn]struct{}
	// dropped receives one value per reply swallowed.
	dropped chan struct{}
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, dropped: make(chan struct{}, 1024)}
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setDown(true)
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

// setDown cuts every connection and refuses new ones (true), or lets
// them through again (false).
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// dropReplies makes the proxy swallow the next server replies, cutting
// the connection each time, or forward them again.
func (p *proxy) dropReplies(drop bool) {
	p.mu.Lock()
	p.drop = drop
	p.mu.Unlock()
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(client)
	}
}

func (p *proxy) serve(client net.Conn) {
	if !p.track(client) {
		_ = client.Close()
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(server) {
		if server != nil {
			_ = server.Close()
		}
		p.untrack(client)
		return
	}
	defer p.untrack(client, server)
	go func() {
		_, _ = io.Copy(server, client)
		p.untrack(client, server)
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := p.drop
			p.mu.Unlock()
			if drop {
				// The server answered, so it ran the command; the
				// client sees its connection cut instead.
				p.dropped <- struct{}{}
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
