package cache_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/cache"
)

func req(tenant, body string) cache.Request {
	return cache.Request{Tenant: tenant, Revision: "r1", Operation: "chat", Route: "chat", Body: []byte(body)}
}

func TestExactKey(t *testing.T) {
	base := `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0}`
	key := func(r cache.Request) string {
		k, err := cache.ExactKey(r)
		require.NoError(t, err)
		return k
	}
	k := key(req("t1", base))
	for _, c := range []struct {
		name string
		r    cache.Request
		same bool
	}{
		{"keys reordered, spaces", req("t1", `{ "temperature":0, "messages":[{"content":"hi","role":"user"}], "model":"chat" }`), true},
		{"delivery and user ignored", req("t1", `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"user":"u9","metadata":{"a":"b"},"messages":[{"role":"user","content":"hi"}],"temperature":0}`), true},
		{"another tenant", req("t2", base), false},
		{"another revision", cache.Request{Tenant: "t1", Revision: "r2", Operation: "chat", Route: "chat", Body: []byte(base)}, false},
		{"another route", cache.Request{Tenant: "t1", Revision: "r1", Operation: "chat", Route: "chat2", Body: []byte(base)}, false},
		{"the same temperature written otherwise", req("t1", `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0.0}`), true},
		{"another temperature", req("t1", `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0.7}`), false},
		{"another question", req("t1", `{"model":"chat","messages":[{"role":"user","content":"hi!"}],"temperature":0}`), false},
		{"tools", req("t1", `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0,"tools":[]}`), false},
		{"max tokens", req("t1", `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":5}`), false},
	} {
		assert.Equal(t, c.same, key(c.r) == k, c.name)
	}
	// Seeds past 2^53 stay apart.
	assert.NotEqual(t, key(req("t1", `{"messages":[],"seed":9007199254740993}`)), key(req("t1", `{"messages":[],"seed":9007199254740992}`)))
	// A tenant named so that it runs into the revision does not collide.
	a := key(cache.Request{Tenant: "ab", Revision: "c", Operation: "chat", Route: "chat", Body: []byte(base)})
	b := key(cache.Request{Tenant: "a", Revision: "bc", Operation: "chat", Route: "chat", Body: []byte(base)})
	assert.NotEqual(t, a, b)
	for _, bad := range []string{``, `[]`, `null`, `{"a":`} {
		_, err := cache.ExactKey(req("t1", bad))
		assert.Error(t, err, bad)
	}
}

func TestSemanticLookup(t *testing.T) {
	body := func(system, last string) string {
		return fmt.Sprintf(`{"model":"chat","messages":[{"role":"system","content":%q},{"role":"user","content":%q}]}`, system, last)
	}
	a, ok := cache.SemanticLookup(req("t1", body("be brief", "What is the capital of France?")))
	require.True(t, ok)
	assert.Equal(t, "What is the capital of France?", a.Text, "only the last user turn")
	b, ok := cache.SemanticLookup(req("t1", body("be brief", "Tell me France's capital")))
	require.True(t, ok)
	assert.Equal(t, a.Partition, b.Partition, "same context, other question: one partition")
	c, _ := cache.SemanticLookup(req("t1", body("answer in French", "Tell me France's capital")))
	assert.NotEqual(t, a.Partition, c.Partition, "another conversation")
	d, _ := cache.SemanticLookup(req("t2", body("be brief", "Tell me France's capital")))
	assert.NotEqual(t, a.Partition, d.Partition, "another tenant")

	parts, ok := cache.SemanticLookup(req("t1", `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`))
	require.True(t, ok)
	assert.Equal(t, "a\nb", parts.Text)
	for _, bad := range []string{
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`,
		`{"messages":[{"role":"tool","content":"42","tool_call_id":"c"}]}`,
		`{"messages":[{"role":"user","content":"   "}]}`,
		`{"messages":[]}`, `{}`, `nope`,
	} {
		_, ok := cache.SemanticLookup(req("t1", bad))
		assert.False(t, ok, bad)
	}
}

func entry(key, tenant string, sensitive bool) *cache.Entry {
	return &cache.Entry{Key: key, Tenant: tenant, Route: "chat", Revision: "r1", Answer: []byte(`{"id":"x"}`),
		Sensitive: sensitive, Created: time.Now().UTC()}
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(cache.MemoryOptions{MaxEntries: 2, MaxEntryBytes: 16})
	require.NoError(t, m.Put(ctx, entry("a", "t", false)))
	require.NoError(t, m.Put(ctx, entry("b", "t", false)))
	_, _ = m.Get(ctx, "a") // a is now the most recent
	require.NoError(t, m.Put(ctx, entry("c", "t", false)))
	got, err := m.Get(ctx, "b")
	require.NoError(t, err)
	assert.Nil(t, got, "the least recently used went")
	got, _ = m.Get(ctx, "a")
	assert.NotNil(t, got)
	big := entry("d", "t", false)
	big.Answer = make([]byte, 17)
	assert.ErrorIs(t, m.Put(ctx, big), cache.ErrTooLarge)

	// The total bound: each entry counts its answer and 256 bytes more.
	small := cache.NewMemory(cache.MemoryOptions{MaxEntries: 100, MaxBytes: 3 * (256 + 1 + 10)})
	for _, k := range []string{"a", "b", "c", "d"} {
		require.NoError(t, small.Put(ctx, entry(k, "t", false)))
	}
	assert.Equal(t, 3, small.Len(), "the oldest went to stay under MaxBytes")
	got, _ = small.Get(ctx, "a")
	assert.Nil(t, got)
	require.NoError(t, small.Put(ctx, entry("d", "t", false)))
	assert.Equal(t, int64(3*(256+1+10)), small.Bytes(), "a replaced entry is counted once")

	short := cache.NewMemory(cache.MemoryOptions{MaxEntries: 10, TTL: 20 * time.Millisecond})
	require.NoError(t, short.Put(ctx, entry("a", "t", false)))
	require.Eventually(t, func() bool { e, _ := short.Get(ctx, "a"); return e == nil }, 2*time.Second, 5*time.Millisecond, "expired")
}

func redisClient(t *testing.T) redis.UniversalClient {
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		if os.Getenv("SWITCHYARD_REQUIRE_REDIS") == "1" {
			t.Fatal("SWITCHYARD_REQUIRE_REDIS=1 but SWITCHYARD_TEST_REDIS is not set")
		}
		t.Skip("no Redis: set SWITCHYARD_TEST_REDIS=host:port")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedis(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	prefix := fmt.Sprintf("test%d", time.Now().UnixNano())
	r := cache.NewRedis(c, prefix, 1024, time.Minute)
	e := entry("k1", "t1", false)
	e.Vector, e.Partition, e.CostPicoUSD = []float32{0.5, -1}, "p", 42
	require.NoError(t, r.Put(ctx, e))
	got, err := r.Get(ctx, "k1")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, e.Vector, got.Vector)
	assert.Equal(t, int64(42), got.CostPicoUSD)
	assert.JSONEq(t, string(e.Answer), string(got.Answer))
	ttl, err := c.TTL(ctx, prefix+":cache:k1").Result()
	require.NoError(t, err)
	assert.InDelta(t, time.Minute.Seconds(), ttl.Seconds(), 2)
	none, err := r.Get(ctx, "nope")
	require.NoError(t, err)
	assert.Nil(t, none)
	require.NoError(t, r.Put(ctx, entry("k2", "t2", false)))
	var seen []string
	require.NoError(t, r.Scan(ctx, func(e *cache.Entry) bool { seen = append(seen, e.Key); return true }))
	assert.ElementsMatch(t, []string{"k1", "k2"}, seen)
	require.NoError(t, r.Delete(ctx, "k1"))
	got, _ = r.Get(ctx, "k1")
	assert.Nil(t, got)
}

func TestCachePutAndPurge(t *testing.T) {
	ctx := context.Background()
	shared := cache.NewMemory(cache.MemoryOptions{MaxEntries: 100}) // stands for the shared store
	local := cache.NewMemory(cache.MemoryOptions{MaxEntries: 100})
	c := cache.New(cache.Options{Local: local, Shared: shared, Index: cache.NewIndex(cache.IndexOptions{}),
		ShareSensitive: func(tenant string) bool { return tenant == "open" }})
	out, err := c.Put(ctx, entry("plain", "t1", false))
	require.NoError(t, err)
	assert.True(t, out)
	out, err = c.Put(ctx, entry("secret", "t1", true))
	require.NoError(t, err)
	assert.False(t, out, "sensitive: kept in the process")
	out, err = c.Put(ctx, entry("allowed", "open", true))
	require.NoError(t, err)
	assert.True(t, out, "the tenant lets it be shared")
	got, _ := shared.Get(ctx, "secret")
	assert.Nil(t, got)
	got, _ = c.Get(ctx, "secret")
	assert.NotNil(t, got)

	sem := entry("sem", "t1", false)
	sem.Partition, sem.Vector = "p1", []float32{1, 0}
	_, err = c.Put(ctx, sem)
	require.NoError(t, err)
	near, sim, err := c.Nearest(ctx, "p1", []float32{0.9, 0.1})
	require.NoError(t, err)
	require.NotNil(t, near)
	assert.Equal(t, "sem", near.Key)
	assert.Greater(t, sim, float32(0.99))
	near, _, _ = c.Nearest(ctx, "p2", []float32{1, 0})
	assert.Nil(t, near, "another partition")

	n, err := c.Purge(ctx, cache.Filter{Tenant: "t1"})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	got, _ = c.Get(ctx, "plain")
	assert.Nil(t, got)
	near, _, _ = c.Nearest(ctx, "p1", []float32{1, 0})
	assert.Nil(t, near, "the index forgot it")
	got, _ = c.Get(ctx, "allowed")
	assert.NotNil(t, got, "another tenant's stays")
	n, _ = c.Purge(ctx, cache.Filter{Before: time.Now().Add(time.Hour)})
	assert.Equal(t, 1, n)
}

// Replicas sharing Redis: each index learns of the entries the others
// store as they store them (Follow), one that starts later rebuilds from
// the store first, and one cut off from Redis reports it and stops with
// its context.
func TestFollow(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	prefix := fmt.Sprintf("test%d", time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := c.Keys(ctx, prefix+":*").Result()
		keys = append(keys, prefix+":cache-index")
		_ = c.Del(ctx, keys...).Err()
	})
	replica := func() *cache.Cache {
		return cache.New(cache.Options{Shared: cache.NewRedis(c, prefix, 1<<20, time.Minute), Index: cache.NewIndex(cache.IndexOptions{})})
	}
	follow := func(cc *cache.Cache, o cache.FollowOptions) (stop func()) {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); cc.Follow(fctx, o) }()
		return func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Follow did not return after its context ended")
			}
		}
	}
	put := func(cc *cache.Cache, key string, vec []float32) {
		e := entry(key, "t1", false)
		e.Partition, e.Vector = "p1", vec
		_, err := cc.Put(ctx, e)
		require.NoError(t, err)
	}
	nearest := func(cc *cache.Cache, vec []float32) string {
		e, _, err := cc.Nearest(ctx, "p1", vec)
		require.NoError(t, err)
		if e == nil {
			return ""
		}
		return e.Key
	}

	a, b := replica(), replica()
	put(b, "before", []float32{0, 1, 0})
	_, err := a.Rebuild(ctx)
	require.NoError(t, err)
	put(b, "between", []float32{0, 0, 1}) // after a's rebuild, before it follows
	defer follow(a, cache.FollowOptions{Block: 50 * time.Millisecond})()
	put(b, "after", []float32{1, 0, 0})
	for _, want := range []struct {
		key string
		vec []float32
	}{{"before", []float32{0, 1, 0.1}}, {"between", []float32{0, 0.1, 1}}, {"after", []float32{1, 0.1, 0}}} {
		require.Eventually(t, func() bool { return nearest(a, want.vec) == want.key }, 5*time.Second, 5*time.Millisecond, want.key)
	}

	// A replica that never rebuilt does so when it starts following.
	late := replica()
	defer follow(late, cache.FollowOptions{Block: 50 * time.Millisecond})()
	require.Eventually(t, func() bool { return nearest(late, []float32{0, 1, 0}) == "before" }, 5*time.Second, 5*time.Millisecond)
	put(a, "from-a", []float32{1, 1, 0})
	require.Eventually(t, func() bool { return nearest(late, []float32{1, 1, 0}) == "from-a" }, 5*time.Second, 5*time.Millisecond)

	// Announcements trimmed before a follower read them (it fell behind):
	// it rebuilds from the store and misses none.
	behind := replica()
	_, err = behind.Rebuild(ctx)
	require.NoError(t, err)
	put(b, "trimmed-1", []float32{0, 1, 1})
	put(b, "trimmed-2", []float32{1, 0, 1})
	require.NoError(t, c.XTrimMaxLen(ctx, prefix+":cache-index", 0).Err())
	defer follow(behind, cache.FollowOptions{Block: 50 * time.Millisecond})()
	require.Eventually(t, func() bool {
		return nearest(behind, []float32{0, 1, 1}) == "trimmed-1" && nearest(behind, []float32{1, 0, 1}) == "trimmed-2"
	}, 5*time.Second, 5*time.Millisecond)

	// A rebuild that failed part-way is done again before following.
	flaky := &failingScan{Redis: cache.NewRedis(c, prefix, 1<<20, time.Minute), fail: 1}
	partial := cache.New(cache.Options{Shared: flaky, Index: cache.NewIndex(cache.IndexOptions{})})
	_, err = partial.Rebuild(ctx)
	require.Error(t, err)
	defer follow(partial, cache.FollowOptions{Block: 50 * time.Millisecond, Retry: time.Millisecond})()
	require.Eventually(t, func() bool { return nearest(partial, []float32{0, 1, 1}) == "trimmed-1" }, 5*time.Second, 5*time.Millisecond)

	// Purged in the store: the followers' indexes forget it on lookup.
	_, err = b.Purge(ctx, cache.Filter{Tenant: "t1"})
	require.NoError(t, err)
	assert.Equal(t, "", nearest(a, []float32{1, 0, 0}))

	// No Redis: each failure reported, and the context still ends it.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	cut := cache.New(cache.Options{Shared: cache.NewRedis(down, prefix, 0, 0), Index: cache.NewIndex(cache.IndexOptions{})})
	var failures atomic.Int32
	stop := follow(cut, cache.FollowOptions{Retry: time.Millisecond, OnError: func(error) { failures.Add(1) }})
	require.Eventually(t, func() bool { return failures.Load() >= 3 }, 5*time.Second, time.Millisecond)
	stop()
}

// failingScan is a Redis store whose first fail scans fail.
type failingScan struct {
	*cache.Redis
	fail int32
}

func (f *failingScan) Scan(ctx context.Context, fn func(*cache.Entry) bool) error {
	if atomic.AddInt32(&f.fail, -1) >= 0 {
		return errors.New("scan cut short")
	}
	return f.Redis.Scan(ctx, fn)
}

// Tail is the last announcement ever made, trimmed or not: a follower
// starting from it after the stream was emptied is not behind (it would
// otherwise rebuild without end).
func TestRedisTail(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	prefix := fmt.Sprintf("test%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = c.Del(ctx, prefix+":cache-index", prefix+":cache:k").Err() })
	r := cache.NewRedis(c, prefix, 1<<20, time.Minute)
	tail, err := r.Tail(ctx)
	require.NoError(t, err)
	assert.Equal(t, "0-0", tail, "never written")
	e := entry("k", "t1", false)
	e.Partition, e.Vector = "p", []float32{1, 0}
	require.NoError(t, r.Put(ctx, e))
	require.NoError(t, c.XTrimMaxLen(ctx, prefix+":cache-index", 0).Err())
	tail, err = r.Tail(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, "0-0", tail)
	anns, next, err := r.Announced(ctx, tail, 10*time.Millisecond)
	require.NoError(t, err, "not behind")
	assert.Empty(t, anns)
	assert.Equal(t, tail, next)
}
