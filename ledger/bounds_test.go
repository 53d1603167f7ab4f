package ledger

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// xlenCounter counts the XLEN commands a client sends.
type xlenCounter struct{ n atomic.Int64 }

func (h *xlenCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *xlenCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xlen" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *xlenCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "xlen" {
				h.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// A Redis Range probes one stream per UTC day and shard: a range of more
// days than MaxDays (a century, fewer with shards) is refused before any
// command is sent, instead of millions of XLEN (QA: to=9999-12-31).
func TestRedisRangeBound(t *testing.T) {
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	nop := func(Entry) error { return nil }

	// No server needed: nothing is sent.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = down.Close() })
	for _, c := range []struct {
		name     string
		shards   int
		from, to time.Time
	}{
		{"QA: 2026-12-01 to 9999-12-31", 1, date(2026, 12, 1), date(9999, 12, 31)},
		{"QA: 1900 to 2200", 1, date(1900, 1, 1), date(2200, 1, 1)},
		{"QA: year 1 to 9999", 1, date(1, 1, 1), date(9999, 12, 31)},
		{"zero time to far future", 1, time.Time{}, time.Unix(1<<62, 0)},
		{"a century and a day", 1, date(2000, 1, 1), date(2000, 1, 1).AddDate(0, 0, MaxRangeDays+1)},
		{"1500 days on 256 shards", 256, date(2026, 1, 1), date(2026, 1, 1).AddDate(0, 0, 1500)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewRedis(down, "x", 0, WithShards(c.shards))
			start := time.Now()
			err := s.Range(testCtx(t), c.from, c.to, nop)
			require.ErrorIs(t, err, ErrRangeTooLong)
			var rt *RangeTooLongError
			require.ErrorAs(t, err, &rt)
			require.Equal(t, s.MaxDays(), rt.MaxDays)
			require.Less(t, time.Since(start), time.Second)
		})
	}
	require.EqualValues(t, MaxRangeDays, NewRedis(down, "x", 0).MaxDays())
	require.EqualValues(t, MaxRangeKeys/256, NewRedis(down, "x", 0, WithShards(256)).MaxDays())

	// Within the bound the store is asked (and here fails to answer).
	err := NewRedis(down, "x", 0, WithShards(256)).Range(testCtx(t), date(2026, 1, 1), date(2027, 1, 1), nop)
	require.ErrorContains(t, err, "ledger: XLEN")
	require.NotErrorIs(t, err, ErrRangeTooLong)
	// Retention raises from first: a long-ago from is fine.
	kept := NewRedis(down, "x", 30*24*time.Hour)
	kept.now = func() time.Time { return base }
	err = kept.Range(testCtx(t), date(1, 1, 1), base, nop)
	require.NotErrorIs(t, err, ErrRangeTooLong)

	// Against a server: the XLEN sent are the days × shards probed, none
	// for a range past the bound.
	c := redisClient(t, redisAddr(t))
	hook := &xlenCounter{}
	c.AddHook(hook)
	p := testPrefix(t, c)
	s := NewRedis(c, p, 0, WithShards(4))
	appendAll(t, s, Entry{ID: "a", Time: base.Add(time.Hour), RequestID: "a"})
	got := []string{}
	require.NoError(t, s.Range(testCtx(t), base.AddDate(-3, 0, 0), base.AddDate(3, 0, 0), func(e Entry) error {
		got = append(got, e.RequestID)
		return nil
	}))
	require.Equal(t, []string{"a"}, got)
	require.Equal(t, 4*Days(base.AddDate(-3, 0, 0), base.AddDate(3, 0, 0)), hook.n.Load())
	hook.n.Store(0)
	require.ErrorIs(t, s.Range(testCtx(t), date(2026, 12, 1), date(9999, 12, 31), nop), ErrRangeTooLong)
	require.ErrorIs(t, NewRedis(c, p, 0, WithShards(8)).Range(testCtx(t), time.Time{}, date(2026, 1, 1), nop), ErrRangeTooLong,
		"56 years (from the epoch) × 8 shards > MaxRangeKeys")
	require.Zero(t, hook.n.Load(), "nothing sent")
	// From the zero time on one shard: the epoch on, within the bound.
	one := NewRedis(c, p, 0)
	require.Equal(t, []string{"a"}, ids(collect(t, one, time.Time{}, base.AddDate(0, 0, 2))))
}
