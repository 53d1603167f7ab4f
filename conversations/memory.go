package conversations

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Memory is a bounded in-process Store, for a single gateway replica: at
// most maxEntries records and maxBytes of content, evicting the least
// recently used (written or read) first, each record expiring after its
// TTL. Safe for concurrent use.
//
// A record's size is the length of its compacted JSON values (Response
// and Items) and strings, plus a fixed overhead per record, per item and
// per entity label (see Size). Expired records are dropped when read or
// deleted, when they become the least recently used while a record is
// being put, or when evicted; until then they count against the bounds.
type Memory struct {
	// Now is the clock expiry is measured by; nil (the zero value) means
	// time.Now. Set it before the Memory is first used.
	Now func() time.Time

	mu       sync.Mutex
	lru      *simplelru.LRU[memKey, *memEntry]
	maxBytes int64
	bytes    int64
}

// Defaults for NewMemory's bounds.
const (
	DefaultMaxEntries = 10_000
	DefaultMaxBytes   = 256 << 20
)

// Per-record, per-item and per-entity overheads Size adds to the content:
// roughly what the Go values around the content take.
const (
	recordOverhead = 256
	itemOverhead   = 24
	entityOverhead = 48
)

type memKey struct{ tenant, id string }

type memEntry struct {
	r       Record
	expires time.Time
	size    int64
}

// NewMemory returns a Memory holding at most maxEntries records and
// maxBytes of content (both as measured by Size); maxEntries <= 0 means
// DefaultMaxEntries and maxBytes <= 0 DefaultMaxBytes.
func NewMemory(maxEntries int, maxBytes int64) *Memory {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	m := &Memory{maxBytes: maxBytes}
	l, err := simplelru.NewLRU(maxEntries, func(_ memKey, e *memEntry) { m.bytes -= e.size })
	if err != nil {
		panic(err) // unreachable: maxEntries > 0
	}
	m.lru = l
	return m
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Size is how much of a Memory's maxBytes r takes once stored (with
// Response and Items compacted, as Put stores them).
func Size(r Record) int64 {
	n := int64(recordOverhead + len(r.ID) + len(r.Tenant) + len(r.KeyID) + len(r.Model) + len(r.Response))
	for _, it := range r.Items {
		n += int64(itemOverhead + len(it))
	}
	for k := range r.Entities {
		n += int64(entityOverhead + len(k))
	}
	return n
}

// Put stores a copy of r, with Response and Items compacted.
func (m *Memory) Put(ctx context.Context, r Record, ttl time.Duration) error {
	if err := check(ctx, &r, ttl); err != nil {
		return err
	}
	c, err := compactCopy(r)
	if err != nil {
		return err
	}
	size := Size(c)
	if size > MaxRecordBytes || size > m.maxBytes {
		return ErrTooLarge
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	k := memKey{r.Tenant, r.ID}
	m.lru.Remove(k) // the callback takes its size off
	// Drop the expired records at the least recently used end (cheap), so
	// they free their room now rather than when evicted.
	for {
		_, e, ok := m.lru.GetOldest()
		if !ok || now.Before(e.expires) {
			break
		}
		m.lru.RemoveOldest()
	}
	for m.bytes+size > m.maxBytes {
		if _, _, ok := m.lru.RemoveOldest(); !ok {
			break
		}
	}
	m.lru.Add(k, &memEntry{r: c, expires: now.Add(ttl), size: size})
	m.bytes += size
	return nil
}

// Get returns tenant's record id, and marks it recently used. The
// returned Items slice and Entities map are the caller's; the JSON bytes
// they and Response hold are shared with the store and must not be
// modified.
func (m *Memory) Get(ctx context.Context, tenant, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{tenant, id}
	e, ok := m.lru.Get(k)
	if !ok {
		return Record{}, ErrNotFound
	}
	if !m.now().Before(e.expires) {
		m.lru.Remove(k)
		return Record{}, ErrNotFound
	}
	r := e.r
	r.Items = cloneItems(r.Items)
	r.Entities = maps.Clone(r.Entities)
	return r, nil
}

// Delete removes tenant's record id.
func (m *Memory) Delete(ctx context.Context, tenant, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{tenant, id}
	e, ok := m.lru.Peek(k)
	if !ok {
		return ErrNotFound
	}
	m.lru.Remove(k)
	if !m.now().Before(e.expires) {
		return ErrNotFound
	}
	return nil
}

// Len is the number of records held, expired ones not yet dropped
// included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

// Bytes is the sum of the Sizes of the records held.
func (m *Memory) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

// compactCopy returns r with Response and Items compacted into one new
// buffer (so the caller's bytes are not retained), and its own Entities.
// Compacting is what encoding r as JSON does to them (without HTML
// escaping), so Memory and Redis return the same bytes.
func compactCopy(r Record) (Record, error) {
	n := len(r.Response)
	for _, it := range r.Items {
		n += len(it)
	}
	var b bytes.Buffer
	b.Grow(n)
	ends := make([]int, 0, len(r.Items)+1)
	if err := json.Compact(&b, r.Response); err != nil {
		return Record{}, err
	}
	ends = append(ends, b.Len())
	for _, it := range r.Items {
		if err := json.Compact(&b, it); err != nil {
			return Record{}, err
		}
		ends = append(ends, b.Len())
	}
	buf := b.Bytes()
	r.Response = json.RawMessage(buf[:ends[0]:ends[0]])
	if r.Items != nil {
		items := make([]json.RawMessage, len(r.Items))
		for i := range items {
			start, end := ends[i], ends[i+1]
			items[i] = json.RawMessage(buf[start:end:end])
		}
		r.Items = items
	}
	if len(r.Entities) == 0 {
		r.Entities = nil // as Redis's omitempty returns it
	} else {
		r.Entities = maps.Clone(r.Entities)
	}
	return r, nil
}

// cloneItems copies the slice (not the bytes), nil staying nil, so that a
// caller appending to it never writes into the store's array.
func cloneItems(s []json.RawMessage) []json.RawMessage {
	if s == nil {
		return nil
	}
	return append(make([]json.RawMessage, 0, len(s)), s...)
}
