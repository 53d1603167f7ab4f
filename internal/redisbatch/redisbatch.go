// Package redisbatch sends the Lua scripts of concurrent callers to Redis
// in shared pipelines.
package redisbatch

import (
	"context"
	"errors"
	"fmt"
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
	c       redis.UniversalClient
	linger  time.Duration
	durable Durability

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

// Durability asks the primaries to confirm that writes reached their
// replicas before a call succeeds: after the scripts of a batch, WAIT
// Replicas Timeout on the same connection to each primary written. Redis
// replicates asynchronously, so without it a primary that dies just after
// answering takes its last writes with it; with it, a call either
// succeeds with its write on Replicas replicas too (it survives the
// primary's failover) or fails with ErrNotReplicated, and the caller
// retries it (the scripts must be safe to run twice, as the ledger's
// append is). The zero value waits for nothing.
type Durability struct {
	Replicas int
	Timeout  time.Duration
}

// ErrNotReplicated is a call's error when its write ran on the primary
// but fewer replicas than Durability.Replicas confirmed it in time: it may
// be lost in a failover, so it is to be retried.
var ErrNotReplicated = errors.New("redis: write not confirmed by enough replicas")

// NewDurable returns a lingering Batcher (linger may be 0) whose calls
// succeed only once d.Replicas replicas hold their writes.
func NewDurable(c redis.UniversalClient, linger time.Duration, d Durability) *Batcher {
	return &Batcher{c: c, linger: linger, durable: d}
}

// Durable reports whether calls wait for replicas (NewDurable).
func (p *Batcher) Durable() bool { return p.durable.Replicas > 0 }

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
		var res *redis.Cmd
		if p.durable.Replicas > 0 {
			call := &scriptCall{s: s, keys: keys, args: args, done: make(chan struct{})}
			p.exec([]*scriptCall{call})
			res = call.res
		} else {
			res = s.Run(ctx, p.c, keys, args...)
		}
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
	if p.durable.Replicas > 0 {
		p.execDurable(ctx, batch)
		return
	}
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

// execDurable sends one batch as one pipeline per primary, each ending in
// WAIT on the connection that carried its scripts.
func (p *Batcher) execDurable(ctx context.Context, batch []*scriptCall) {
	if len(batch) > 1 {
		p.batched.Add(int64(len(batch)))
	}
	moved := p.sendDurable(ctx, batch)
	if len(moved) > 0 {
		// A slot moved (a failover): those scripts did not run. Once the
		// client has learnt the new layout, they go once more.
		if p.relearn(ctx, moved[0]) {
			moved = p.sendDurable(ctx, moved)
		}
	}
	for _, c := range moved {
		close(c.done) // with their MOVED errors
	}
}

// sendDurable sends calls and completes each, except the ones Redis
// Cluster answered with MOVED or ASK, which it returns with their errors
// set and done still open.
func (p *Batcher) sendDurable(ctx context.Context, calls []*scriptCall) (moved []*scriptCall) {
	groups := map[redis.Cmdable][]*scriptCall{}
	var order []redis.Cmdable
	for _, c := range calls {
		node, err := p.primary(ctx, c.keys)
		if err != nil {
			c.res = redis.NewCmd(ctx)
			c.res.SetErr(err)
			close(c.done)
			continue
		}
		if _, ok := groups[node]; !ok {
			order = append(order, node)
		}
		groups[node] = append(groups[node], c)
	}
	for _, node := range order {
		group := groups[node]
		res := runAndWait(ctx, node, group, p.durable, func(c *scriptCall, pipe redis.Pipeliner) *redis.Cmd {
			return pipe.EvalSha(ctx, c.s.Hash(), c.keys, c.args...)
		})
		// Scripts the server did not have go again with their text.
		var again []*scriptCall
		for i, c := range group {
			if err := res[i].Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
				again = append(again, c)
				continue
			}
			c.res = res[i]
		}
		if len(again) > 0 {
			res = runAndWait(ctx, node, again, p.durable, func(c *scriptCall, pipe redis.Pipeliner) *redis.Cmd {
				return c.s.Eval(ctx, pipe, c.keys, c.args...)
			})
			for i, c := range again {
				c.res = res[i]
			}
		}
		for _, c := range group {
			if isMoved(c.res.Err()) {
				moved = append(moved, c)
				continue
			}
			close(c.done)
		}
	}
	return moved
}

// isMoved reports a Redis Cluster redirection.
func isMoved(err error) bool {
	return err != nil && (redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK"))
}

// relearn asks the cluster client to reload the slot layout after c was
// redirected, and waits (at most relearnWithin) until it sends c's slot
// elsewhere. It reports whether it did.
func (p *Batcher) relearn(ctx context.Context, c *scriptCall) bool {
	cc, ok := p.c.(*redis.ClusterClient)
	if !ok || len(c.keys) == 0 {
		return false
	}
	before, err := cc.MasterForKey(ctx, c.keys[0])
	if err != nil {
		return false
	}
	cc.ReloadState(ctx) // in the background
	deadline := time.Now().Add(relearnWithin)
	for time.Now().Before(deadline) {
		time.Sleep(relearnWithin / 50) // polling the client's reload
		if now, err := cc.MasterForKey(ctx, c.keys[0]); err == nil && now != before {
			return true
		}
	}
	return false
}

// relearnWithin bounds the wait for a reloaded slot layout.
const relearnWithin = 200 * time.Millisecond

// primary is the connection that reaches the primary holding keys: the
// node of the first key's slot on Redis Cluster (every key of one script
// is in one slot), the client itself otherwise.
func (p *Batcher) primary(ctx context.Context, keys []string) (redis.Cmdable, error) {
	cc, ok := p.c.(*redis.ClusterClient)
	if !ok || len(keys) == 0 {
		return p.c, nil
	}
	return cc.MasterForKey(ctx, keys[0])
}

// runAndWait pipelines calls and WAIT on node, and returns each call's
// reply; a reply that succeeded fails with ErrNotReplicated when WAIT
// counted fewer replicas than d asks.
func runAndWait(ctx context.Context, node redis.Cmdable, calls []*scriptCall, d Durability, eval func(*scriptCall, redis.Pipeliner) *redis.Cmd) []*redis.Cmd {
	res := make([]*redis.Cmd, len(calls))
	var wait *redis.Cmd
	_, _ = node.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range calls {
			res[i] = eval(c, pipe)
		}
		wait = pipe.Do(ctx, "WAIT", d.Replicas, d.Timeout.Milliseconds())
		return nil
	})
	n, err := wait.Int64()
	if err == nil && n >= int64(d.Replicas) {
		return res
	}
	if err == nil {
		err = fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, d.Replicas, d.Timeout)
	} else {
		err = fmt.Errorf("%w: %w", ErrNotReplicated, err)
	}
	for i, r := range res {
		if r.Err() == nil {
			failed := redis.NewCmd(ctx)
			failed.SetErr(err)
			res[i] = failed
		}
	}
	return res
}
