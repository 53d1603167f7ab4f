package ledger

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The same behavioural tests run against Memory and Redis (a real
// redis-server at $SWITCHYARD_TEST_REDIS, skipped without one unless
// SWITCHYARD_REQUIRE_REDIS=1).

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// backend opens stores of one kind for a test: the store, and a second
// one reaching the same ledger like another gateway replica (for Memory,
// the same store). Both use the clock for retention.
type backend struct {
	name string
	open func(t *testing.T, retention time.Duration, c *clock) (Store, Store)
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T, retention time.Duration, c *clock) (Store, Store) {
			m := NewMemory(retention, c.Now)
			return m, m
		}},
		{"redis", func(t *testing.T, retention time.Duration, c *clock) (Store, Store) {
			one, two := redisPair(t, retention)
			one.now, two.now = c.Now, c.Now
			return one, two
		}},
	}
}

// forEach runs test once per backend, in parallel.
func forEach(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

// redisAddr is the test server's address, or skips (fails when
// SWITCHYARD_REQUIRE_REDIS=1) without one.
func redisAddr(t testing.TB) string {
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		const how = "(redis-server --port 6390 --save '' --appendonly no --daemonize yes; SWITCHYARD_TEST_REDIS=127.0.0.1:6390)"
		if os.Getenv("SWITCHYARD_REQUIRE_REDIS") == "1" {
			t.Fatal("SWITCHYARD_REQUIRE_REDIS=1 but SWITCHYARD_TEST_REDIS is not set " + how)
		}
		t.Skip("SWITCHYARD_TEST_REDIS is not set: skipping the Redis store " + how)
	}
	return addr
}

func redisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx).Err(), "redis at %s", addr)
	return c
}

var prefixSeq atomic.Int64

// testPrefix keeps tests (and repeated runs against one server) apart,
// and deletes the test's keys when it ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	p := fmt.Sprintf("sytest:%s:%d:%d", t.Name(), time.Now().UnixNano(), prefixSeq.Add(1))
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+":*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return p
}

// redisPair is two Redis stores on one ledger through two clients: two
// gateway replicas.
func redisPair(t testing.TB, retention time.Duration) (*Redis, *Redis) {
	addr := redisAddr(t)
	c1, c2 := redisClient(t, addr), redisClient(t, addr)
	p := testPrefix(t, c1)
	return NewRedis(c1, p, retention), NewRedis(c2, p, retention)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// base is a Sunday, 00:00 UTC.
var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func appendAll(t *testing.T, s Store, es ...Entry) {
	t.Helper()
	ctx := testCtx(t)
	for _, e := range es {
		require.NoError(t, s.Append(ctx, e))
	}
}

func collect(t *testing.T, s Store, from, to time.Time) []Entry {
	t.Helper()
	var out []Entry
	require.NoError(t, s.Range(testCtx(t), from, to, func(e Entry) error {
		out = append(out, e)
		return nil
	}))
	return out
}

func ids(es []Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.RequestID)
	}
	return out
}
