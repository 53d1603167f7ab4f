package conversations

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Tests of Memory's bounds and clock, beyond the shared behaviour.

// present reports which of ids tenant "acme" still has in m.
func present(t *testing.T, m *Memory, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		_, err := m.Get(testCtx(t), "acme", id)
		if err == nil {
			out = append(out, id)
		} else {
			require.ErrorIs(t, err, ErrNotFound)
		}
	}
	return out
}

func TestMemoryExpiryClock(t *testing.T) {
	ctx := testCtx(t)
	m := NewMemory(10, 1<<20)
	c := newClock()
	m.Now = c.Now
	require.NoError(t, m.Put(ctx, rec("acme", "r"), time.Minute))
	c.Add(time.Minute - time.Nanosecond)
	_, err := m.Get(ctx, "acme", "r")
	require.NoError(t, err, "just before its ttl")
	c.Add(time.Nanosecond)
	_, err = m.Get(ctx, "acme", "r")
	require.ErrorIs(t, err, ErrNotFound, "at its ttl")
	require.Zero(t, m.Len(), "dropped when read")
	require.Zero(t, m.Bytes())

	// The zero value of Now is the wall clock.
	wall := NewMemory(10, 1<<20)
	require.NoError(t, wall.Put(ctx, rec("acme", "r"), time.Hour))
	_, err = wall.Get(ctx, "acme", "r")
	require.NoError(t, err)
	require.NoError(t, wall.Put(ctx, rec("acme", "soon"), time.Nanosecond))
	require.Eventually(t, func() bool {
		_, err := wall.Get(ctx, "acme", "soon")
		return err == ErrNotFound
	}, 5*time.Second, time.Millisecond)
}

func TestMemoryEvictsLeastRecentlyUsedByEntries(t *testing.T) {
	ctx := testCtx(t)
	m := NewMemory(3, 1<<30)
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, m.Put(ctx, rec("acme", id), time.Hour))
	}
	_, err := m.Get(ctx, "acme", "a") // a is now the most recently used
	require.NoError(t, err)
	require.NoError(t, m.Put(ctx, rec("acme", "d"), time.Hour))
	require.Equal(t, 3, m.Len())
	require.Equal(t, []string{"a", "c", "d"}, present(t, m, "a", "b", "c", "d"), "b was the least recently used")

	// Rewriting a record uses it too.
	require.NoError(t, m.Put(ctx, rec("acme", "a"), time.Hour))
	require.NoError(t, m.Put(ctx, rec("acme", "e"), time.Hour))
	require.Equal(t, []string{"a", "d", "e"}, present(t, m, "a", "c", "d", "e"))
}

func TestMemoryEvictsLeastRecentlyUsedByBytes(t *testing.T) {
	ctx := testCtx(t)
	size := Size(stored(t, rec("acme", "a")))
	m := NewMemory(100, 3*size+size/2) // room for three
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, m.Put(ctx, rec("acme", id), time.Hour))
	}
	require.Equal(t, 3*size, m.Bytes())
	_, err := m.Get(ctx, "acme", "a")
	require.NoError(t, err)
	require.NoError(t, m.Put(ctx, rec("acme", "d"), time.Hour))
	require.Equal(t, []string{"a", "c", "d"}, present(t, m, "a", "b", "c", "d"))
	require.Equal(t, 3*size, m.Bytes())

	// A record as large as two evicts the two least recently used
	// (present read a, c, d in that order).
	big := rec("acme", "big")
	big.Items = append(big.Items, json.RawMessage(`"`+strings.Repeat("x", int(size))+`"`))
	bigSize := Size(stored(t, big))
	require.Greater(t, bigSize, size)
	require.LessOrEqual(t, bigSize, 2*size+size/2)
	require.NoError(t, m.Put(ctx, big, time.Hour))
	require.Equal(t, []string{"d", "big"}, present(t, m, "a", "c", "d", "big"))
	require.Equal(t, size+bigSize, m.Bytes())

	// One larger than the whole store is refused, and evicts nothing.
	huge := rec("acme", "huge")
	huge.Items = append(huge.Items, json.RawMessage(`"`+strings.Repeat("x", int(3*size))+`"`))
	require.ErrorIs(t, m.Put(ctx, huge, time.Hour), ErrTooLarge)
	require.Equal(t, []string{"d", "big"}, present(t, m, "d", "big", "huge"))
}

func TestMemoryAccounting(t *testing.T) {
	ctx := testCtx(t)
	m := NewMemory(100, 1<<20)
	c := newClock()
	m.Now = c.Now
	r := rec("acme", "a")
	size := Size(stored(t, r))
	require.Less(t, size, Size(r), "compacted before it is measured")
	for range 5 {
		require.NoError(t, m.Put(ctx, r, time.Hour))
	}
	require.Equal(t, size, m.Bytes(), "a rewrite replaces")
	require.Equal(t, 1, m.Len())
	require.NoError(t, m.Delete(ctx, "acme", "a"))
	require.Zero(t, m.Bytes())
	require.Zero(t, m.Len())

	// Expired records at the least recently used end go when a record is
	// put, before any live one.
	for i := range 4 {
		require.NoError(t, m.Put(ctx, rec("acme", fmt.Sprint("old", i)), time.Minute))
	}
	require.NoError(t, m.Put(ctx, rec("acme", "live"), time.Hour))
	c.Add(2 * time.Minute)
	require.Equal(t, 5, m.Len())
	require.NoError(t, m.Put(ctx, rec("acme", "new"), time.Hour))
	require.Equal(t, 2, m.Len())
	require.Equal(t, Size(stored(t, rec("acme", "live")))+Size(stored(t, rec("acme", "new"))), m.Bytes())
	require.Equal(t, []string{"live", "new"}, present(t, m, "old0", "live", "new"))

	// An expired record deleted is gone, and reported not found.
	require.NoError(t, m.Put(ctx, rec("acme", "x"), time.Minute))
	c.Add(time.Minute)
	require.ErrorIs(t, m.Delete(ctx, "acme", "x"), ErrNotFound)
	require.Equal(t, 2, m.Len())
}

func TestMemoryDefaults(t *testing.T) {
	ctx := testCtx(t)
	m := NewMemory(0, -1)
	require.Equal(t, int64(DefaultMaxBytes), m.maxBytes)
	for i := range DefaultMaxEntries + 1 {
		require.NoError(t, m.Put(ctx, Record{ID: fmt.Sprint(i), Tenant: "acme", Response: json.RawMessage(`1`)}, time.Hour))
	}
	require.Equal(t, DefaultMaxEntries, m.Len())
}
