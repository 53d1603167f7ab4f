package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Stores record each entry ID once.

func TestAppendOncePerID(t *testing.T) {
	cases := []struct {
		name    string
		entries []Entry
		want    []string // request IDs kept, in order
	}{
		{"same ID twice", []Entry{{ID: "a", RequestID: "r1"}, {ID: "a", RequestID: "r1"}}, []string{"r1"}},
		{"same ID, other content: the first stays", []Entry{{ID: "a", RequestID: "first"}, {ID: "a", RequestID: "second"}}, []string{"first"}},
		{"different IDs, one request ID", []Entry{{ID: "a", RequestID: "r"}, {ID: "b", RequestID: "r"}}, []string{"r", "r"}},
		{"no ID is never deduplicated", []Entry{{RequestID: "r"}, {RequestID: "r"}}, []string{"r", "r"}},
		{"three of one, one of another", []Entry{{ID: "x", RequestID: "1"}, {ID: "y", RequestID: "2"}, {ID: "x", RequestID: "1"}, {ID: "x", RequestID: "1"}}, []string{"1", "2"}},
	}
	forEach(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				one, two := b.open(t, 0, &clock{t: base})
				for i, e := range tc.entries {
					e.Time = base.Add(time.Duration(i) * time.Second)
					s := one
					if i%2 == 1 {
						s = two // another replica
					}
					appendAll(t, s, e)
				}
				got := collect(t, one, base, base.Add(time.Hour))
				require.Equal(t, tc.want, ids(got))
				for _, e := range got {
					require.Contains(t, tc.entries, Entry{ID: e.ID, RequestID: e.RequestID}, "the ID comes back")
				}
			})
		}
	})
}

func TestRedisIDsLayout(t *testing.T) {
	addr := redisAddr(t)
	c := redisClient(t, addr)
	p := testPrefix(t, c)
	const retention = 30 * 24 * time.Hour
	s := NewRedis(c, p, retention)
	s.now = func() time.Time { return base.Add(time.Hour) }
	ctx := testCtx(t)
	appendAll(t, s, Entry{ID: "id-1", Time: base, RequestID: "r1"}, Entry{ID: "id-2", Time: base.Add(time.Minute), RequestID: "r2"})

	ids := p + ":ledger-ids:{2026-03-01}"
	require.Equal(t, ids, s.IDsKey(base))
	require.ElementsMatch(t, []string{"id-1", "id-2"}, c.SMembers(ctx, ids).Val())
	for _, key := range []string{ids, s.Key(base)} {
		ttl := c.TTL(ctx, key).Val()
		require.LessOrEqual(t, ttl, retention+24*time.Hour, key)
		require.Greater(t, ttl, retention+24*time.Hour-time.Minute, key)
	}
	tag := func(k string) string { return k[strings.Index(k, "{"):] }
	require.Equal(t, tag(s.Key(base)), tag(ids), "one cluster slot")
	msgs, err := c.XRange(ctx, s.Key(base), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.Equal(t, "id-1", msgs[0].Values["id"])

	// Without retention the IDs do not expire either.
	forever := NewRedis(c, p+":forever", 0)
	appendAll(t, forever, Entry{ID: "x", Time: base})
	require.Equal(t, time.Duration(-1), c.TTL(ctx, forever.IDsKey(base)).Val())
}

// An append whose reply is lost after Redis ran it, then retried, is
// recorded once.
func TestRedisAppendRetriedAfterLostReply(t *testing.T) {
	addr := redisAddr(t)
	direct := redisClient(t, addr)
	p := testPrefix(t, direct)
	ctx := testCtx(t)
	px := newProxy(t, addr)
	c := redis.NewClient(&redis.Options{Addr: px.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(ctx).Err(), "the connection's handshake, before replies are dropped")
	s := NewRedis(c, p, 0)
	// A first append caches the script: the next one is a single EVALSHA.
	appendAll(t, NewRedis(direct, p, 0), Entry{ID: "warm-up", Time: base})

	e := Entry{ID: NewID(), Time: base.Add(time.Second), RequestID: "r1", CostPicoUSD: 7}
	px.dropReplies(true)
	require.Error(t, s.Append(ctx, e), "the reply is lost")
	select {
	case <-px.dropped:
	default:
		t.Fatal("the proxy dropped no reply")
	}
	require.EqualValues(t, 2, direct.XLen(ctx, s.Key(base)).Val(), "Redis ran the append")

	px.dropReplies(false)
	require.NoError(t, s.Append(ctx, e), "the retry")
	require.NoError(t, s.Append(ctx, e), "and another")
	require.Equal(t, []string{"", "r1"}, ids(collect(t, s, base, base.Add(time.Hour))))
}

// noScriptHook makes Redis answer NOSCRIPT to the EVALSHAs of the first
// pipeline whose index is odd (the even ones run), by asking for a script
// it does not have.
type noScriptHook struct{ fired atomic.Bool }

func (h *noScriptHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *noScriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *noScriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.fired.CompareAndSwap(false, true) {
			for i, c := range cmds {
				if args := c.Args(); i%2 == 1 && len(args) > 1 && fmt.Sprint(args[0]) == "evalsha" {
					args[1] = strings.Repeat("0", 40)
				}
			}
		}
		return next(ctx, cmds)
	}
}

func TestRedisAppendBatch(t *testing.T) {
	addr := redisAddr(t)
	c := redisClient(t, addr)
	hook := &noScriptHook{}
	c.AddHook(hook)
	p := testPrefix(t, c)
	s := NewRedis(c, p, time.Hour)
	s.now = func() time.Time { return base.Add(time.Hour) }
	ctx := testCtx(t)
	batch := []Entry{
		{ID: "a", Time: base.Add(1 * time.Minute), RequestID: "1", CostPicoUSD: 1},
		{ID: "b", Time: base.Add(2 * time.Minute), RequestID: "2", CostPicoUSD: 2},
		{ID: "a", Time: base.Add(1 * time.Minute), RequestID: "1", CostPicoUSD: 1}, // twice in one batch
		{ID: "c", Time: base.Add(24*time.Hour + time.Minute), RequestID: "3", CostPicoUSD: 3},
		{ID: "old", Time: base.Add(-2 * time.Hour), RequestID: "too old"},
		{ID: "d", Time: base.Add(3 * time.Minute), RequestID: "4", CostPicoUSD: 4},
	}
	require.NoError(t, s.AppendBatch(ctx, batch))
	require.True(t, hook.fired.Load())
	// a and d ran, b and c got NOSCRIPT and ran with EVAL after them;
	// the second a and the old entry are not recorded.
	want := []string{"1", "4", "2", "3"}
	require.Equal(t, want, ids(collect(t, s, base.Add(-time.Hour), base.Add(48*time.Hour))), "NOSCRIPT: again with EVAL, none twice")

	require.NoError(t, s.AppendBatch(ctx, batch), "the batch retried whole")
	require.Equal(t, want, ids(collect(t, s, base.Add(-time.Hour), base.Add(48*time.Hour))))

	bad := []Entry{{ID: "e", Time: base.Add(4 * time.Minute), RequestID: "5"}, {ID: "f", Time: time.Unix(-1, 0)}}
	require.ErrorIs(t, s.AppendBatch(ctx, bad), ErrBeforeEpoch)
	require.Equal(t, want, ids(collect(t, s, base.Add(-time.Hour), base.Add(48*time.Hour))), "nothing sent")
	require.NoError(t, s.AppendBatch(ctx, nil))
}
