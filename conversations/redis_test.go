package conversations

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Tests of the Redis layout, beyond the shared behaviour.

func TestRedisKey(t *testing.T) {
	s := NewRedis(nil, "")
	require.Equal(t, "sy:{conv:acme}:resp_1", s.Key("acme", "resp_1"))
	s = NewRedis(nil, "p")
	require.Equal(t, "p:{conv:acme}:resp_1", s.Key("acme", "resp_1"))
	require.Equal(t, "p:{conv:a%7D:b}:c", s.Key("a}:b", "c"))
	require.Equal(t, "p:{conv:a}:b}:c", s.Key("a", "b}:c"))
	require.Equal(t, "p:{conv:a%257D:b}:c", s.Key("a%7D:b", "c"))
	require.Equal(t, "p:{conv:a{b}:c", s.Key("a{b", "c"))
	for _, tenant := range []string{"acme", "a}:b", "a{b}", "%}{"} {
		k := s.Key(tenant, "x}y")
		open := strings.IndexByte(k, '{')
		end := open + strings.IndexByte(k[open:], '}')
		require.Equal(t, "conv:"+strings.NewReplacer("%", "%25", "}", "%7D").Replace(tenant), k[open+1:end],
			"the hash tag is the tenant's, whatever the id")
	}
}

func TestRedisLayout(t *testing.T) {
	c := redisClient(t, redisOrSkip(t))
	p := testPrefix(t, c)
	s := NewRedis(c, p)
	ctx := testCtx(t)
	r := rec("acme", "resp_1")
	require.NoError(t, s.Put(ctx, r, time.Hour))

	key := p + ":{conv:acme}:resp_1"
	keys, err := c.Keys(ctx, p+":*").Result()
	require.NoError(t, err)
	require.Equal(t, []string{key}, keys)
	require.Equal(t, "string", c.Type(ctx, key).Val())
	ttl := c.PTTL(ctx, key).Val()
	require.LessOrEqual(t, ttl, time.Hour)
	require.Greater(t, ttl, time.Hour-time.Minute)

	v, err := c.Get(ctx, key).Bytes()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(v, &m))
	require.Equal(t, map[string]any{
		"id": "resp_1", "tenant": "acme", "key_id": "k1", "model": "gpt-4o-mini", "created_at": float64(1764820000),
		"response": map[string]any{"id": "resp_1", "object": "response", "output": []any{map[string]any{
			"type": "message", "content": []any{map[string]any{"type": "output_text", "text": "<b>fine</b> & é é"}}}}},
		"items": []any{
			map[string]any{"role": "user", "content": "mail me at a@b.example"},
			map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "<b>fine</b> & é é"}}},
		},
		"entities": map[string]any{"EMAIL": float64(1)},
	}, m)
	require.Contains(t, string(v), `"text":"<b>fine</b> & \u00e9 é"`, "not HTML-escaped, not re-encoded")

	// A TTL under a millisecond is one.
	require.NoError(t, s.Put(ctx, rec("acme", "resp_2"), time.Microsecond))
	require.LessOrEqual(t, c.PTTL(ctx, p+":{conv:acme}:resp_2").Val(), time.Millisecond)
}

func TestRedisStoredRecordChecked(t *testing.T) {
	c := redisClient(t, redisOrSkip(t))
	p := testPrefix(t, c)
	s := NewRedis(c, p)
	ctx := testCtx(t)

	// A value whose tenant or id is not the key's is not returned.
	v, err := encodeRecord(&Record{ID: "x", Tenant: "other", Response: json.RawMessage(`{}`)})
	require.NoError(t, err)
	require.NoError(t, c.Set(ctx, s.Key("acme", "x"), v, time.Hour).Err())
	_, err = s.Get(ctx, "acme", "x")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, c.Set(ctx, s.Key("other", "y"), v, time.Hour).Err())
	_, err = s.Get(ctx, "other", "y")
	require.ErrorIs(t, err, ErrNotFound)

	// A value that is not a record is an error, not "not found".
	require.NoError(t, c.Set(ctx, s.Key("acme", "bad"), "not json", time.Hour).Err())
	_, err = s.Get(ctx, "acme", "bad")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound)
}

// TestRedisUnreachable needs no Redis: every operation fails with an
// error that is not ErrNotFound.
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	s := NewRedis(c, "p")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Put(ctx, rec("acme", "r"), time.Hour)
	require.Error(t, err)
	_, err = s.Get(ctx, "acme", "r")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound)
	err = s.Delete(ctx, "acme", "r")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound)
}
