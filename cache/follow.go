package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// and returns them with the position after them; errBehind when some
	// after from were trimmed before this replica read them.
	Announced(ctx context.Context, from string, block time.Duration) ([]Announcement, string, error)
	// Entries reads the entries under keys, nil where there is none, in
	// one round trip.
	Entries(ctx context.Context, keys []string) ([]*Entry, error)
}

// errBehind says a follower missed announcements: it must rebuild.
var errBehind = errors.New("cache: announcements trimmed before they were read")

var _ announcer = (*Redis)(nil)

// streamLen bounds the announcement stream (approximately: Redis trims
// whole nodes). A replica that falls further behind, cut off from Redis,
// rebuilds its index from the store when it is back.
const streamLen = 10000

func (r *Redis) stream() string { return r.prefix[:len(r.prefix)-1] + "-index" }

// announce adds an announcement of e to the stream, on c (the client or
// a pipeline).
func (r *Redis) announce(ctx context.Context, c redis.Cmdable, e *Entry) *redis.StringCmd {
	return c.XAdd(ctx, &redis.XAddArgs{Stream: r.stream(), MaxLen: streamLen, Approx: true,
		Values: []any{"p", e.Partition, "k", e.Key}})
}

// noStream reports the error of XINFO STREAM on a stream never written.
func noStream(err error) bool { return err != nil && strings.Contains(err.Error(), "no such key") }

// Tail implements announcer: the id of the last announcement ever made
// (trimmed or not), "0-0" when there was none.
func (r *Redis) Tail(ctx context.Context) (string, error) {
	info, err := r.c.XInfoStream(ctx, r.stream()).Result()
	switch {
	case noStream(err):
		return "0-0", nil
	case err != nil:
		return "", fmt.Errorf("cache: redis xinfo: %w", err)
	}
	return info.LastGeneratedID, nil
}

// Announced implements announcer: the stream's state and what follows
// from, read together in a transaction (XINFO STREAM, XREAD), so that a
// trim between the two cannot go unseen (XREAD alone returns what is
// left); when nothing follows, a blocking XREAD waits for the next.
func (r *Redis) Announced(ctx context.Context, from string, block time.Duration) ([]Announcement, string, error) {
	anns, next, err := r.readAfter(ctx, from)
	if err != nil || len(anns) > 0 || next != from {
		return anns, next, err
	}
	_, err = r.c.XRead(ctx, &redis.XReadArgs{Streams: []string{r.stream(), from}, Count: 1, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, from, nil // nothing within block
	}
	if err != nil {
		return nil, from, fmt.Errorf("cache: redis xread: %w", err)
	}
	return r.readAfter(ctx, from)
}

func (r *Redis) readAfter(ctx context.Context, from string) ([]Announcement, string, error) {
	var info *redis.XInfoStreamCmd
	var read *redis.XStreamSliceCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		info = p.XInfoStream(ctx, r.stream())
		read = p.XRead(ctx, &redis.XReadArgs{Streams: []string{r.stream(), from}, Count: 512, Block: -1})
		return nil
	})
	if err != nil && info != nil && noStream(info.Err()) {
		return nil, from, nil // nothing announced yet
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, from, fmt.Errorf("cache: redis xinfo/xread: %w", err)
	}
	if behind(from, info.Val()) {
		return nil, from, errBehind
	}
	var out []Announcement
	for _, s := range read.Val() {
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

// behind reports whether announcements after from were trimmed: from
// itself is gone (trimming takes the oldest first, and this replica read
// up to from, so it fell about streamLen behind), or, from the start
// ("0-0"), any entry was trimmed at all.
func behind(from string, in *redis.XInfoStream) bool {
	switch {
	case from == "0-0" || from == "":
		return in.EntriesAdded > in.Length // Redis 7; older ones report 0
	case in.Length == 0:
		return streamIDLess(from, in.LastGeneratedID)
	default:
		return streamIDLess(from, in.FirstEntry.ID)
	}
}

// Entries implements announcer: one pipelined GET per key (keys may be
// on different Cluster nodes, which MGET refuses).
func (r *Redis) Entries(ctx context.Context, keys []string) ([]*Entry, error) {
	pipe := r.c.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, r.prefix+k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("cache: redis get: %w", err)
	}
	out := make([]*Entry, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue // expired or purged since
		}
		var e Entry
		if json.Unmarshal(b, &e) == nil {
			out[i] = &e
		}
	}
	return out, nil
}

// streamIDLess reports whether stream id a ("ms-seq") is before b; an
// empty or malformed id is before any other.
func streamIDLess(a, b string) bool {
	am, as := splitStreamID(a)
	bm, bs := splitStreamID(b)
	return am < bm || (am == bm && as < bs)
}

func splitStreamID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

// FollowOptions tune Follow; zero values are the defaults.
type FollowOptions struct {
	// Block is how long one read waits for announcements (default 2 s).
	Block time.Duration
	// Retry is the wait after a failed read before the next (default
	// 1 s), doubled after each failure in a row up to a minute.
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
	wait := o.Retry
	fail := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		if o.OnError != nil {
			o.OnError(err)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		wait = min(2*wait, time.Minute)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	cannot := func() bool {
		if c.noFollow.Load() && o.OnError != nil {
			o.OnError(errors.New("cache: the shared store cannot announce entries (no Redis streams): other replicas' semantic entries are found after a restart"))
		}
		return c.noFollow.Load()
	}
	if cannot() {
		return
	}
	from := c.followFrom.Load()
	for ctx.Err() == nil {
		if from == nil {
			_, err := c.Rebuild(ctx)
			if cannot() {
				return
			}
			if from = c.followFrom.Load(); err != nil || from == nil {
				if !fail(err) {
					return
				}
				continue
			}
		}
		anns, next, err := a.Announced(ctx, *from, o.Block)
		if errors.Is(err, errBehind) {
			from = nil // rebuild now
			continue
		}
		if err != nil {
			from = nil // rebuild: announcements may be trimmed meanwhile
			if !fail(err) {
				return
			}
			continue
		}
		wait = o.Retry
		var keys []string
		var parts []string
		for _, an := range anns {
			if !c.index.Has(an.Partition, an.Key) { // not this replica's own
				keys, parts = append(keys, an.Key), append(parts, an.Partition)
			}
		}
		if len(keys) > 0 {
			entries, err := a.Entries(ctx, keys)
			if err != nil {
				from = nil
				if !fail(err) {
					return
				}
				continue
			}
			for i, e := range entries {
				if e != nil && len(e.Vector) > 0 && e.Partition == parts[i] {
					_ = c.index.Add(e.Partition, e.Key, e.Vector)
				}
			}
		}
		from = &next
	}
}
