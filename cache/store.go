package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// Memory is an in-process Store: an LRU bounded by a number of entries and
// by their total size, each entry expiring a TTL after it was created
// (checked when it is read: an expired entry is dropped then, or evicted
// as the least recently used). It starts no goroutine.
type Memory struct {
	lru      *lru.Cache[string, *Entry]
	maxBytes int   // per answer
	maxTotal int64 // all entries
	bytes    atomic.Int64
	ttl      time.Duration
	now      func() time.Time
}

var _ Store = (*Memory)(nil)

// MemoryOptions bound a Memory store; zero fields take their defaults.
type MemoryOptions struct {
	// MaxEntries is the most entries kept. Default 10,000.
	MaxEntries int
	// MaxEntryBytes is the largest answer kept. Default 1 MiB.
	MaxEntryBytes int
	// MaxBytes bounds the entries' answers and vectors together. Default
	// 256 MiB.
	MaxBytes int64
	// TTL is how long an entry is served. Default an hour.
	TTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewMemory returns an empty Memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = 1 << 20
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{maxBytes: o.MaxEntryBytes, maxTotal: o.MaxBytes, ttl: o.TTL, now: o.Now}
	m.lru, _ = lru.NewWithEvict(o.MaxEntries, func(_ string, e *Entry) { m.bytes.Add(-size(e)) }) // size > 0: no error
	return m
}

// size is what an entry holds, as the total bound counts it.
func size(e *Entry) int64 { return int64(len(e.Answer) + 4*len(e.Vector) + len(e.Key) + 256) }

// Get returns the entry under key; the entry is shared: do not modify it.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	e, ok := m.lru.Get(key)
	if !ok {
		return nil, nil
	}
	if m.now().Sub(e.Created) > m.ttl {
		m.lru.Remove(key)
		return nil, nil
	}
	return e, nil
}

// Put stores e (not copied: do not modify it afterwards), then evicts the
// least recently used entries while the total is over its bound.
func (m *Memory) Put(_ context.Context, e *Entry) error {
	if len(e.Answer) > m.maxBytes {
		return ErrTooLarge
	}
	m.lru.Remove(e.Key) // a replaced entry's size leaves the total
	m.lru.Add(e.Key, e)
	m.bytes.Add(size(e))
	for m.bytes.Load() > m.maxTotal {
		if _, _, ok := m.lru.RemoveOldest(); !ok {
			break
		}
	}
	return nil
}

// Delete removes key.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.lru.Remove(key)
	return nil
}

// Scan calls f with every live entry.
func (m *Memory) Scan(_ context.Context, f func(*Entry) bool) error {
	now := m.now()
	for _, e := range m.lru.Values() {
		if now.Sub(e.Created) > m.ttl {
			continue
		}
		if !f(e) {
			break
		}
	}
	return nil
}

// Len is the number of entries held (expired ones included until they
// are read or evicted).
func (m *Memory) Len() int { return m.lru.Len() }

// Bytes is the entries' total size as the bound counts it.
func (m *Memory) Bytes() int64 { return m.bytes.Load() }

// Redis is a Store in Redis, shared by every replica: one string key per
// entry (the entry as JSON) under prefix, expiring after the TTL; entries
// with a vector are announced in a stream, "<prefix>:cache-index", for
// the other replicas' semantic indexes (Cache.Follow).
type Redis struct {
	c        redis.UniversalClient
	prefix   string
	ttl      time.Duration
	maxBytes int
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Redis store with keys "<prefix>:cache:<key>" (prefix
// "" is "sy"), entries of at most maxBytes of answer (<= 0: 1 MiB) kept
// for ttl (<= 0: an hour).
func NewRedis(c redis.UniversalClient, prefix string, maxBytes int, ttl time.Duration) *Redis {
	if prefix == "" {
		prefix = "sy"
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &Redis{c: c, prefix: prefix + ":cache:", ttl: ttl, maxBytes: maxBytes}
}

// Get reads key.
func (r *Redis) Get(ctx context.Context, key string) (*Entry, error) {
	b, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: redis get: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("cache: redis entry %s: %w", key, err)
	}
	return &e, nil
}

// Put writes e with the store's TTL.
func (r *Redis) Put(ctx context.Context, e *Entry) error {
	if len(e.Answer) > r.maxBytes {
		return ErrTooLarge
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if len(e.Vector) == 0 || e.Partition == "" {
		if err := r.c.Set(ctx, r.prefix+e.Key, b, r.ttl).Err(); err != nil {
			return fmt.Errorf("cache: redis set: %w", err)
		}
		return nil
	}
	// The entry, then its announcement for the other replicas' indexes:
	// one round trip, or two on a Cluster, whose pipelines go to each
	// node at once (the announcement must not arrive before the entry).
	if _, ok := r.c.(*redis.ClusterClient); ok {
		if err := r.c.Set(ctx, r.prefix+e.Key, b, r.ttl).Err(); err != nil {
			return fmt.Errorf("cache: redis set: %w", err)
		}
		_ = r.announce(ctx, r.c, e).Err() // unannounced: see below
		return nil
	}
	pipe := r.c.Pipeline()
	set := pipe.Set(ctx, r.prefix+e.Key, b, r.ttl)
	r.announce(ctx, pipe, e)
	// Stored but unannounced (XADD failed), an entry is found exactly at
	// once and semantically after the others' next rebuild.
	if _, err := pipe.Exec(ctx); err != nil && set.Err() != nil {
		return fmt.Errorf("cache: redis set: %w", set.Err())
	}
	return nil
}

// Delete removes key.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.c.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("cache: redis del: %w", err)
	}
	return nil
}

// Scan reads every entry with SCAN (on every primary of a Cluster);
// entries that expire or are unreadable meanwhile are skipped.
func (r *Redis) Scan(ctx context.Context, f func(*Entry) bool) error {
	stop := errors.New("stop")
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, r.prefix+"*", 256).Iterator()
		for it.Next(ctx) {
			b, err := c.Get(ctx, it.Val()).Bytes()
			if err != nil {
				continue
			}
			var e Entry
			if json.Unmarshal(b, &e) != nil {
				continue
			}
			if !f(&e) {
				return stop
			}
		}
		return it.Err()
	}
	var err error
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, r.c)
	}
	if err != nil && !errors.Is(err, stop) {
		return fmt.Errorf("cache: redis scan: %w", err)
	}
	return nil
}
