package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"
)

// Memory is an in-process Store: an LRU of at most a number of entries,
// each expiring after a TTL.
type Memory struct {
	lru      *expirable.LRU[string, *Entry]
	maxBytes int
}

var _ Store = (*Memory)(nil)

// NewMemory returns a Memory store of at most maxEntries entries (<= 0:
// 10,000) of at most maxBytes of answer each (<= 0: 1 MiB), kept for ttl
// (<= 0: an hour).
func NewMemory(maxEntries, maxBytes int, ttl time.Duration) *Memory {
	if maxEntries <= 0 {
		maxEntries = 10_000
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &Memory{lru: expirable.NewLRU[string, *Entry](maxEntries, nil, ttl), maxBytes: maxBytes}
}

// Get returns the entry under key; the entry is shared: do not modify it.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	e, _ := m.lru.Get(key)
	return e, nil
}

// Put stores e (not copied: do not modify it afterwards).
func (m *Memory) Put(_ context.Context, e *Entry) error {
	if len(e.Answer) > m.maxBytes {
		return ErrTooLarge
	}
	m.lru.Add(e.Key, e)
	return nil
}

// Delete removes key.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.lru.Remove(key)
	return nil
}

// Scan calls f with every live entry.
func (m *Memory) Scan(_ context.Context, f func(*Entry) bool) error {
	for _, e := range m.lru.Values() {
		if !f(e) {
			break
		}
	}
	return nil
}

// Len is the number of entries held (expired ones included until they
// are swept).
func (m *Memory) Len() int { return m.lru.Len() }

// Redis is a Store in Redis, shared by every replica: one string key per
// entry (the entry as JSON) under prefix, expiring after the TTL.
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
	if err := r.c.Set(ctx, r.prefix+e.Key, b, r.ttl).Err(); err != nil {
		return fmt.Errorf("cache: redis set: %w", err)
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
