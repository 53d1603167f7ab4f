package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache puts the stores and the semantic index together: entries go to
// the shared store when there is one, except those holding sensitive data
// (unless their tenant allows it), which stay in this process.
type Cache struct {
	local          *Memory
	shared         Store
	index          *Index
	shareSensitive func(tenant string) bool
	// followFrom is where Follow reads announcements from: the stream's
	// tail when the last successful Rebuild began; nil before one.
	followFrom atomic.Pointer[string]
	// noFollow is set when the shared store refused to announce (no
	// streams: Redis < 5, or an ACL without the stream's key).
	noFollow atomic.Bool
}

// Options configure a Cache.
type Options struct {
	// Local is the in-process store; nil makes a default Memory.
	Local *Memory
	// Shared is the store every replica reads (Redis); nil keeps every
	// entry in Local.
	Shared Store
	// Index finds semantic matches; nil disables semantic lookups.
	Index *Index
	// ShareSensitive reports whether a tenant lets entries holding
	// sensitive data go to the shared store; nil: no tenant does.
	ShareSensitive func(tenant string) bool
}

// New returns a Cache.
func New(o Options) *Cache {
	if o.Local == nil {
		o.Local = NewMemory(MemoryOptions{})
	}
	if o.ShareSensitive == nil {
		o.ShareSensitive = func(string) bool { return false }
	}
	return &Cache{local: o.Local, shared: o.Shared, index: o.Index, shareSensitive: o.ShareSensitive}
}

// Semantic reports whether the cache has an index for semantic lookups.
func (c *Cache) Semantic() bool { return c.index != nil }

// Get returns the entry under key, from this process or the shared
// store; nil when there is none.
func (c *Cache) Get(ctx context.Context, key string) (*Entry, error) {
	if e, _ := c.local.Get(ctx, key); e != nil {
		return e, nil
	}
	if c.shared == nil {
		return nil, nil
	}
	return c.shared.Get(ctx, key)
}

// Nearest returns the entry whose lookup vector is the most similar to
// vec in partition, and the similarity; nil when the partition holds none
// (or its entry expired: the index then forgets it).
func (c *Cache) Nearest(ctx context.Context, partition string, vec []float32) (*Entry, float32, error) {
	if c.index == nil {
		return nil, 0, nil
	}
	key, sim, ok := c.index.Nearest(partition, vec)
	if !ok {
		return nil, 0, nil
	}
	e, err := c.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if e == nil {
		c.index.Remove(partition, key)
		return nil, 0, nil
	}
	return e, sim, nil
}

// Put stores e: in the shared store unless it holds sensitive data its
// tenant does not let out of this process; its vector, if any, in the
// index. It reports whether it went to the shared store.
func (c *Cache) Put(ctx context.Context, e *Entry) (shared bool, err error) {
	if c.shared != nil && (!e.Sensitive || c.shareSensitive(e.Tenant)) {
		err = c.shared.Put(ctx, e)
		shared = err == nil
	} else {
		local := *e
		local.Vector = nil // the index keeps its own copy; only a shared entry needs it, to rebuild
		err = c.local.Put(ctx, &local)
	}
	if err == nil && c.index != nil && len(e.Vector) > 0 && e.Partition != "" {
		// A vector the index refuses (another dimension in the partition)
		// leaves the entry to exact lookups.
		_ = c.index.Add(e.Partition, e.Key, e.Vector)
	}
	return shared, err
}

// Rebuild adds the vectors of the shared store's entries to the index,
// as at start, and returns how many it added. Follow then adds those
// other replicas store.
func (c *Cache) Rebuild(ctx context.Context) (int, error) {
	if c.index == nil || c.shared == nil {
		return 0, nil
	}
	c.followFrom.Store(nil)
	var tail *string
	if a, ok := c.shared.(announcer); ok {
		// Entries announced from now on are Follow's; those before are
		// in the store the scan reads.
		t, err := a.Tail(ctx)
		var reply redis.Error
		switch {
		case err == nil:
			tail = &t
		case errors.As(err, &reply):
			c.noFollow.Store(true) // the scan alone, as at start
		default:
			return 0, err
		}
	}
	var mu sync.Mutex
	n := 0
	err := c.shared.Scan(ctx, func(e *Entry) bool {
		if len(e.Vector) > 0 && e.Partition != "" && c.index.Add(e.Partition, e.Key, e.Vector) == nil {
			mu.Lock()
			n++
			mu.Unlock()
		}
		return true
	})
	if err == nil {
		c.followFrom.Store(tail)
	}
	return n, err
}

// Filter selects entries to purge: every non-zero field must match.
type Filter struct {
	Tenant string
	Route  string
	// Before selects entries created before it.
	Before time.Time
}

func (f Filter) match(e *Entry) bool {
	return (f.Tenant == "" || f.Tenant == e.Tenant) && (f.Route == "" || f.Route == e.Route) &&
		(f.Before.IsZero() || e.Created.Before(f.Before))
}

// Purge deletes the entries f selects, in this process and in the shared
// store, and returns how many it deleted.
func (c *Cache) Purge(ctx context.Context, f Filter) (int, error) {
	var mu sync.Mutex
	var doomed []*Entry
	collect := func(e *Entry) bool {
		if f.match(e) {
			mu.Lock()
			doomed = append(doomed, e)
			mu.Unlock()
		}
		return true
	}
	_ = c.local.Scan(ctx, collect)
	n := 0
	for _, e := range doomed {
		_ = c.local.Delete(ctx, e.Key)
		c.forget(e)
		n++
	}
	if c.shared == nil {
		return n, nil
	}
	doomed = doomed[:0]
	err := c.shared.Scan(ctx, collect)
	for _, e := range doomed {
		if derr := c.shared.Delete(ctx, e.Key); derr != nil {
			err = errors.Join(err, derr)
			continue
		}
		c.forget(e)
		n++
	}
	return n, err
}

func (c *Cache) forget(e *Entry) {
	if c.index != nil && e.Partition != "" {
		c.index.Remove(e.Partition, e.Key)
	}
}
