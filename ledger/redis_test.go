package ledger

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Tests of the Redis layout, beyond the shared behaviour.

func TestRedisLayout(t *testing.T) {
	addr := redisAddr(t)
	c := redisClient(t, addr)
	p := testPrefix(t, c)
	const retention = 30 * 24 * time.Hour
	s := NewRedis(c, p, retention)
	s.now = func() time.Time { return base.Add(30 * time.Hour) }
	ctx := testCtx(t)
	appendAll(t, s, fixture...)

	require.Equal(t, p+":ledger:{2026-03-01}", s.Key(base.Add(23*time.Hour)))
	require.Equal(t, p+":ledger:{2026-02-28}", s.Key(time.Date(2026, 3, 1, 2, 0, 0, 0, time.FixedZone("X", 3*3600))), "the UTC day")
	for key, n := range map[string]int64{p + ":ledger:{2026-03-01}": 3, p + ":ledger:{2026-03-02}": 2} {
		require.Equal(t, n, c.XLen(ctx, key).Val(), key)
		ttl := c.TTL(ctx, key).Val()
		require.LessOrEqual(t, ttl, retention+24*time.Hour, key)
		require.Greater(t, ttl, retention+24*time.Hour-time.Minute, key)
	}
	keys, err := c.Keys(ctx, p+":*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 2)

	msgs, err := c.XRange(ctx, p+":ledger:{2026-03-01}", "-", "+").Result()
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"time": "2026-03-01T02:00:00Z", "request_id": "r2", "decision_id": "d2", "tenant": "acme", "team": "search",
		"key_id": "k2", "model": "claude", "backend": "bedrock", "kind": "bedrock", "provider": "anthropic",
		"upstream_model": "anthropic.claude-v2", "prompt_tokens": "200", "completion_tokens": "20",
		"cached_tokens": "0", "cache_write_tokens": "30", "cost_pico_usd": "1000000000000000",
		"savings_pico_usd": "-7", "estimated": "0", "id": "",
	}, msgs[1].Values)

	// Without retention nothing expires.
	forever := NewRedis(c, p+":forever", 0)
	appendAll(t, forever, fixture[0])
	require.Equal(t, time.Duration(-1), c.TTL(ctx, forever.Key(fixture[0].Time)).Val())
}

func TestRedisPaging(t *testing.T) {
	s, _ := redisPair(t, 0)
	ctx := testCtx(t)
	const n = 2*pageSize + 345
	p := s.c.Pipeline()
	for i := range n {
		e := Entry{Time: base.Add(time.Duration(i) * time.Second), RequestID: strconv.Itoa(i), CostPicoUSD: 1}
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.Key(e.Time), Values: encode(&e)})
	}
	_, err := p.Exec(ctx)
	require.NoError(t, err)
	got := collect(t, s, base, base.Add(24*time.Hour))
	require.Len(t, got, n)
	for i, e := range got {
		require.Equal(t, strconv.Itoa(i), e.RequestID)
	}
	// A range of many empty days is a few XLEN round trips.
	got = collect(t, s, base.AddDate(-3, 0, 0), base.AddDate(3, 0, 0))
	require.Len(t, got, n)
}

func TestRedisBeforeEpoch(t *testing.T) {
	s, _ := redisPair(t, 0)
	err := s.Append(testCtx(t), Entry{Time: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)})
	require.ErrorIs(t, err, ErrBeforeEpoch)
	appendAll(t, s, Entry{Time: epoch, RequestID: "epoch"})
	start := time.Now()
	require.Equal(t, []string{"epoch"}, ids(collect(t, s, time.Time{}, base)))
	t.Logf("Range from the zero time to %s: %s", base.Format(time.DateOnly), time.Since(start))
}

func TestRedisBadEntry(t *testing.T) {
	s, _ := redisPair(t, 0)
	ctx := testCtx(t)
	key := s.Key(base)
	appendAll(t, s, fixture[0])
	for _, vals := range [][]any{
		{"request_id", "no time"},
		{"time", "yesterday"},
		{"time", "2026-03-01T05:00:00Z", "cost_pico_usd", "1.5"},
		{"time", "2026-03-01T05:00:00Z", "estimated", "yes"},
	} {
		require.NoError(t, s.c.Del(ctx, key).Err())
		require.NoError(t, s.c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: vals}).Err())
		err := s.Range(ctx, base, base.Add(time.Hour*24), func(Entry) error { return nil })
		require.ErrorContains(t, err, key, vals)
	}
	// Unknown fields are ignored, missing ones are zero.
	require.NoError(t, s.c.Del(ctx, key).Err())
	require.NoError(t, s.c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"time", "2026-03-01T05:00:00Z", "team", "t", "new_field", "x"}}).Err())
	require.Equal(t, []Entry{{Time: base.Add(5 * time.Hour), Team: "t"}}, collect(t, s, base, base.Add(24*time.Hour)))
}

func TestRedisErrorsWrapped(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	s := NewRedis(c, "x", time.Hour)
	s.now = func() time.Time { return base }
	ctx := testCtx(t)
	err := s.Append(ctx, fixture[0])
	require.Error(t, err)
	require.ErrorContains(t, err, "ledger: append to x:ledger:{2026-03-01}")
	err = s.Range(ctx, base, base.Add(time.Hour), func(Entry) error { return nil })
	require.ErrorContains(t, err, "ledger: XLEN")

	// A real server and a deadline: the context's error comes through.
	s2, _ := redisPair(t, time.Hour)
	dead, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	require.ErrorIs(t, s2.Append(dead, Entry{Time: time.Now()}), context.DeadlineExceeded)
	require.ErrorIs(t, s2.Range(dead, time.Now().Add(-time.Minute), time.Now(), func(Entry) error { return nil }), context.DeadlineExceeded)
}

func TestNextID(t *testing.T) {
	for in, want := range map[string]string{"1-0": "1-1", "1700000000000-41": "1700000000000-42", "5-18446744073709551615": "6-0"} {
		got, err := nextID(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "1", "a-1", "1-b"} {
		_, err := nextID(bad)
		require.Error(t, err, bad)
	}
}

// With shards a day's entries spread over several streams, each entry on
// the one its ID picks; Range reads them all, a retried append is still
// recorded once, and AppendBatch (the spool's replay) agrees.
func TestRedisShards(t *testing.T) {
	c := redisClient(t, redisAddr(t))
	p := testPrefix(t, c)
	s := NewRedis(c, p, 0, WithShards(4))
	s.now = func() time.Time { return base.Add(72 * time.Hour) }
	ctx := testCtx(t)
	var es []Entry
	for i := range 200 {
		es = append(es, Entry{ID: "id-" + strconv.Itoa(i), Time: base.Add(time.Duration(i) * 15 * time.Minute), RequestID: strconv.Itoa(i), CostPicoUSD: int64(i)})
	}
	appendAll(t, s, es[:100]...)
	require.NoError(t, s.AppendBatch(ctx, es[100:]))
	appendAll(t, s, es[:10]...) // retried: recorded once
	require.NoError(t, s.AppendBatch(ctx, es[150:160]))

	used := 0
	for i := range 4 {
		n := c.XLen(ctx, s.shardKey("ledger", base, i)).Val()
		if n > 0 {
			used++
		}
		require.Equal(t, n, c.SCard(ctx, s.shardKey("ledger-ids", base, i)).Val(), "shard %d: one ID per entry", i)
	}
	require.Equal(t, 4, used, "the first day's 96 entries use every shard")
	require.Equal(t, p+":ledger:{2026-03-01/3}", s.shardKey("ledger", base, 3))

	seen := map[string]int{}
	var sum int64
	require.NoError(t, s.Range(ctx, base, base.Add(96*time.Hour), func(e Entry) error {
		seen[e.ID]++
		sum += e.CostPicoUSD
		return nil
	}))
	require.Len(t, seen, 200)
	for id, n := range seen {
		require.Equal(t, 1, n, id)
	}
	require.EqualValues(t, 199*200/2, sum)
}
