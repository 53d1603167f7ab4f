package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Announcement names an entry with a vector that a replica stored in the
// shared store, for the other replicas' indexes.
type Announcement struct {
	Partition, Key string
}

// announcer is a shared store that announces the entries with vectors it
// stores, in order, from a position: Redis, in a stream.
type announcer interface {
	// Tail is the position after the last announcement so far.
	Tail(ctx context.Context) (string, error)
	// Announced waits up to block for announcements after position from
	// and returns them with the position after them.
	Announced(ctx context.Context, from string, block time.Duration) ([]Announcement, string, error)
}

var _ announcer = (*Redis)(nil)

// streamLen bounds the announcement stream (approximately: Redis trims
// whole nodes). A replica that falls further behind, cut off from Redis,
// rebuilds its index from the store when it is back.
const streamLen = 10000

func (r *Redis) stream() string { return r.prefix[:len(r.prefix)-1] + "-index" }

// announce adds an announcement of e to the stream in pipe.
func (r *Redis) announce(ctx context.Context, pipe redis.Pipeliner, e *Entry) {
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.stream(), MaxLen: streamLen, Approx: true,
		Values: []any{"p", e.Partition, "k", e.Key}})
}

// Tail implements announcer: the stream's last id, "0-0" when it is empty.
func (r *Redis) Tail(ctx context.Context) (string, error) {
	msgs, err := r.c.XRevRangeN(ctx, r.stream(), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("cache: redis xrevrange: %w", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// Announced implements announcer with XREAD BLOCK.
func (r *Redis) Announced(ctx context.Context, from string, block time.Duration) ([]Announcement, string, error) {
	res, err := r.c.XRead(ctx, &redis.XReadArgs{Streams: []string{r.stream(), from}, Count: 512, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, from, nil // nothing within block
	}
	if err != nil {
		return nil, from, fmt.Errorf("cache: redis xread: %w", err)
	}
	var out []Announcement
	for _, s := range res {
		for _, m := range s.Messages {
			p, _ := m.Values["p"].(string)
			k, _ := m.Values["k"].(string)
			if p != "" && k != "" {
				out = append(out, Announcement{Partition: p, Key: k})
			}
			from = m.ID
		}
	}
	return out, from, nil
}

// FollowOptions tune Follow; zero values are the defaults.
type FollowOptions struct {
	// Block is how long one read waits for announcements (default 2 s).
	Block time.Duration
	// Retry is the wait after a failed read before the next (default
	// 1 s).
	Retry time.Duration
	// OnError, if not nil, is called with each failed read or rebuild.
	OnError func(error)
}

// Follow keeps the semantic index in step with the entries other replicas
// put in the shared store, until ctx ends: it reads the store's
// announcements from where Rebuild began (or from now) and indexes each
// new entry's vector. After a failed read (Redis unreachable, the stream
// trimmed past this replica) it rebuilds the index from the store once
// Redis answers again. It returns at once without an index or a store
// that announces.
func (c *Cache) Follow(ctx context.Context, o FollowOptions) {
	a, ok := c.shared.(announcer)
	if !ok || c.index == nil {
		return
	}
	if o.Block <= 0 {
		o.Block = 2 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	fail := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		if o.OnError != nil {
			o.OnError(err)
		}
		t := time.NewTimer(o.Retry)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	from := c.followFrom.Load()
	for ctx.Err() == nil {
		if from == nil {
			if _, err := c.Rebuild(ctx); err != nil {
				if !fail(err) {
					return
				}
				continue
			}
			from = c.followFrom.Load()
			if from == nil {
				continue
			}
		}
		anns, next, err := a.Announced(ctx, *from, o.Block)
		if err != nil {
			from = nil // rebuild: announcements may have been trimmed meanwhile
			if !fail(err) {
				return
			}
			continue
		}
		for _, an := range anns {
			if c.index.Has(an.Partition, an.Key) {
				continue // this replica's own, or already rebuilt
			}
			e, err := c.shared.Get(ctx, an.Key)
			if err != nil || e == nil || len(e.Vector) == 0 || e.Partition != an.Partition {
				continue // expired or purged since
			}
			_ = c.index.Add(e.Partition, e.Key, e.Vector)
		}
		from = &next
	}
}
