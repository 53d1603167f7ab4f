// Package redisbatch sends the Lua scripts of concurrent callers to Redis
// in shared pipelines.
package redisbatch

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batcher sends the scripts of concurrent calls to Redis together, in one
// pipeline per batch: a call queued while a batch is in flight goes with
// every other call queued meanwhile, as soon as that batch is back. An
// idle gateway therefore waits for nothing (a lone call is sent at once),
// and a busy one pays one round trip, one write and one read per batch
// instead of per call, on its side and on Redis's. On Redis Cluster the
// client splits a batch by node.
//
// Batches run one at a time: a call made while nothing is in flight goes
// at once from its caller's goroutine, and batches queued behind it on a
// goroutine that lives while calls are queued. Each call waits for its own result or its context, whichever
// comes first; a call whose context ends first may still run in its
// batch, as a single EVALSHA whose reply is lost may have.
type Batcher struct {
	c      redis.UniversalClient
	linger time.Duration

	mu      sync.Mutex
	queue   []*scriptCall
	running bool // a goroutine is sending batches

	batched atomic.Int64 // calls sent in a batch of more than one
}

// maxBatch bounds one pipeline.
const maxBatch = 256

type scriptCall struct {
	s    *redis.Script
	keys []string
	args []any
	res  *redis.Cmd
	done chan struct{}
}

// New returns a Batcher over c that sends each batch as soon as the one
// before is back. It is safe for concurrent use; it holds no goroutine
// while idle.
func New(c redis.UniversalClient) *Batcher { return &Batcher{c: c} }

// NewLingering returns a Batcher that also waits linger after a call
// arrives before sending, so that calls made off the request path
// (settlements, ledger writes) share a round trip even at low rates: each
// waits up to linger longer for its reply.
func NewLingering(c redis.UniversalClient, linger time.Duration) *Batcher {
	return &Batcher{c: c, linger: linger}
}

// Batched is how many calls went in a batch of more than one.
func (p *Batcher) Batched() int64 { return p.batched.Load() }

// Run runs s like s.Run (EVALSHA, EVAL when Redis does not have the
// script), in the next batch.
func (p *Batcher) Run(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	if err := ctx.Err(); err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	p.mu.Lock()
	if !p.running && p.linger == 0 {
		// Nothing in flight: the call goes at once, from this goroutine
		// (no hand-over to a sender), and calls that queue meanwhile
		// follow in a batch when it is back.
		p.running = true
		p.mu.Unlock()
		res := s.Run(ctx, p.c, keys, args...)
		p.mu.Lock()
		if len(p.queue) > 0 {
			go p.send()
		} else {
			p.running = false
		}
		p.mu.Unlock()
		return res
	}
	call := &scriptCall{s: s, keys: keys, args: args, done: make(chan struct{})}
	p.queue = append(p.queue, call)
	if !p.running {
		p.running = true
		go p.send()
	}
	p.mu.Unlock()
	select {
	case <-call.done:
		return call.res
	case <-ctx.Done():
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// send sends batches until the queue is empty.
func (p *Batcher) send() {
	var batch []*scriptCall
	for {
		if p.linger > 0 {
			time.Sleep(p.linger)
		}
		p.mu.Lock()
		n := min(len(p.queue), maxBatch)
		if n == 0 {
			p.running = false
			p.queue = nil // the backing array of a burst is not kept
			p.mu.Unlock()
			return
		}
		batch = append(batch[:0], p.queue[:n]...)
		clear(p.queue[:n])
		p.queue = p.queue[n:]
		p.mu.Unlock()
		p.exec(batch)
	}
}

// exec sends one batch. Its context has no deadline: the client's read and
// write timeouts bound it, and each caller waits at most for its own
// context.
func (p *Batcher) exec(batch []*scriptCall) {
	ctx := context.Background()
	if len(batch) == 1 {
		c := batch[0]
		c.res = c.s.Run(ctx, p.c, c.keys, c.args...)
		close(c.done)
		return
	}
	p.batched.Add(int64(len(batch)))
	pipe := p.c.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = pipe.EvalSha(ctx, c.s.Hash(), c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, c := range batch {
		res := cmds[i]
		if err := res.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			res = c.s.Run(ctx, p.c, c.keys, c.args...) // loads the script
		}
		c.res = res
		close(c.done)
	}
}
