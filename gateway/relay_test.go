package gateway

import (
	"bufio"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// scripted is a stream that plays events, then panics or ends.
type scripted struct {
	events []string
	panics bool
}

var _ providers.Stream = (*scripted)(nil)

func (s *scripted) Recv() (providers.Event, error) {
	if len(s.events) == 0 {
		if s.panics {
			panic("boom")
		}
		return providers.Event{}, io.EOF
	}
	e := s.events[0]
	s.events = s.events[1:]
	return providers.Event{Data: []byte(e)}, nil
}

func (s *scripted) Close() error { return nil }

func newTestRelay(stream providers.Stream, c *call) (*relay, *record) {
	cfg := &config.Config{}
	cfg.Server.StreamKeepalive = 20 * time.Millisecond
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	rec := &record{}
	return &relay{s: s, call: c, d: &router.Deployment{}, stream: stream, cancel: func() {}, rec: rec}, rec
}

func runRelay(t *testing.T, r *relay) {
	t.Helper()
	done := make(chan struct{})
	go func() { r.run(bufio.NewWriter(io.Discard)); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not return")
	}
}

func TestRelayPanicInRecvIsSettled(t *testing.T) {
	r, rec := newTestRelay(&scripted{events: []string{`{"id":"x","choices":[{"delta":{"content":"a"}}]}`}, panics: true}, &call{})
	runRelay(t, r)
	assert.Equal(t, 500, rec.status)
	require.NotNil(t, rec.usage, "what was relayed is still billed")
	assert.EqualValues(t, 1, rec.usage.CompletionTokens)
}

func TestRelayPanicWhileWritingDoesNotDeadlock(t *testing.T) {
	// A nil call makes forward panic while it holds the writer's mutex.
	r, rec := newTestRelay(&scripted{events: []string{`{"id":"x"}`}}, nil)
	runRelay(t, r)
	assert.Equal(t, 500, rec.status)
}

func TestRounding(t *testing.T) {
	for _, tc := range []struct{ in, near, up float64 }{
		{0.0504, 0.05, 0.051},
		{0.05, 0.05, 0.05},
		{1234, 1200, 1300},
		{0.000123, 0.00012, 0.00013},
		{0, 0, 0},
	} {
		assert.InDelta(t, tc.near, sig2(tc.in), 1e-12, "sig2(%v)", tc.in)
		assert.InDelta(t, tc.up, sig2Up(tc.in), 1e-12, "sig2Up(%v)", tc.in)
		assert.GreaterOrEqual(t, sig2Up(tc.in), tc.in, "a cost never rounds below itself")
	}
}
