package ledger

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Memory is a Store in process memory, for a single gateway and for
// tests. Entries are kept in time order (equal times in append order).
// An entry whose non-empty ID is already kept is not appended again; the
// IDs remembered are those of the kept entries, so they are bounded by
// retention and by the bound on entries like the entries themselves.
type Memory struct {
	retention time.Duration
	now       func() time.Time
	// max bounds the entries kept, oldest dropped first: one process
	// must not grow without limit (0: no bound).
	max int

	mu      sync.RWMutex
	entries []Entry             // sorted by Time
	ids     map[string]struct{} // the non-empty IDs of entries
}

var _ Store = (*Memory)(nil)

// DefaultMaxEntries is the bound NewMemory sets: the last hundred
// thousand requests, about 45 MB (an entry is about 450 bytes with its id
// index). Use Redis for a longer history: the memory store is for one
// process, and its size is memory the gateway holds at any load.
const DefaultMaxEntries = 100_000

// SetMaxEntries changes the bound on kept entries (0: none).
func (m *Memory) SetMaxEntries(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.max = n
}

// NewMemory returns an empty Memory store, keeping at most
// DefaultMaxEntries. Every Append drops the entries
// older than retention (before now() - retention), and Range does not
// return them; retention <= 0 keeps everything. now is the clock (nil:
// time.Now).
func NewMemory(retention time.Duration, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{retention: retention, now: now, max: DefaultMaxEntries, ids: map[string]struct{}{}}
}

// floor is the oldest time retention keeps, or the zero time.
func (m *Memory) floor() time.Time {
	if m.retention <= 0 {
		return time.Time{}
	}
	return m.now().Add(-m.retention)
}

// Append records e (with its Time in UTC; the zero Time is now()) and
// drops the entries older than retention, e itself if it is. An entry
// whose ID is already kept is skipped, without an error.
func (m *Memory) Append(ctx context.Context, e Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	e.Time = e.Time.UTC()
	floor := m.floor()

	m.mu.Lock()
	defer m.mu.Unlock()
	if e.ID != "" {
		if _, dup := m.ids[e.ID]; dup {
			return nil
		}
		m.ids[e.ID] = struct{}{}
	}
	// Insert after every entry at or before e.Time: appends in time
	// order go to the end, equal times keep append order.
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].Time.After(e.Time) })
	if i == len(m.entries) {
		m.entries = append(m.entries, e)
	} else {
		m.entries = append(m.entries, Entry{})
		copy(m.entries[i+1:], m.entries[i:])
		m.entries[i] = e
	}
	if !floor.IsZero() {
		// Reslicing drops the old head; the next append that outgrows
		// the capacity copies only the live entries.
		n := sort.Search(len(m.entries), func(i int) bool { return !m.entries[i].Time.Before(floor) })
		m.dropFirst(n)
	}
	if m.max > 0 && len(m.entries) > m.max {
		m.dropFirst(len(m.entries) - m.max)
	}
	return nil
}

// dropFirst forgets the n oldest entries and their IDs; m.mu is held.
func (m *Memory) dropFirst(n int) {
	for _, e := range m.entries[:n] {
		if e.ID != "" {
			delete(m.ids, e.ID)
		}
	}
	clear(m.entries[:n]) // let the strings go
	m.entries = m.entries[n:]
}

// Range calls f for every kept entry with from <= Time < to, in time
// order. f runs without the store's lock held, so it may call Append.
func (m *Memory) Range(ctx context.Context, from, to time.Time, f func(Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if floor := m.floor(); from.Before(floor) {
		from = floor
	}
	if !from.Before(to) {
		return nil
	}
	m.mu.RLock()
	i := sort.Search(len(m.entries), func(i int) bool { return !m.entries[i].Time.Before(from) })
	j := sort.Search(len(m.entries), func(i int) bool { return !m.entries[i].Time.Before(to) })
	snap := make([]Entry, j-i)
	copy(snap, m.entries[i:j])
	m.mu.RUnlock()

	for k, e := range snap {
		if k%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := f(e); err != nil {
			return err
		}
	}
	return nil
}
