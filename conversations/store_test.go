package conversations

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The behaviour every Store shares, run against each of them.

// env is one empty store under test.
type env struct {
	s Store
	// short is a TTL that pass can get past.
	short time.Duration
	// pass lets d pass for the store: Memory's clock advances; for Redis
	// real time must pass, so it does nothing and tests poll.
	pass func(d time.Duration)
}

type harness struct {
	name string
	new  func(t *testing.T) env
}

var harnesses = []harness{
	{"memory", func(t *testing.T) env {
		m := NewMemory(1000, 512<<20)
		c := newClock()
		m.Now = c.Now
		return env{s: m, short: time.Minute, pass: c.Add}
	}},
	{"redis", func(t *testing.T) env {
		c := redisClient(t, redisOrSkip(t))
		return env{s: NewRedis(c, testPrefix(t, c)), short: 50 * time.Millisecond, pass: func(time.Duration) {}}
	}},
}

var storeCases = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{"round trip", testRoundTrip},
	{"overwrite", testOverwrite},
	{"ttl expiry", testTTLExpiry},
	{"tenant isolation", testTenantIsolation},
	{"delete", testDelete},
	{"invalid", testInvalid},
	{"too large", testTooLarge},
	{"context cancelled", testContextCancelled},
	{"returned copy", testReturnedCopy},
	{"concurrent", testConcurrent},
}

func TestStores(t *testing.T) {
	for _, h := range harnesses {
		t.Run(h.name, func(t *testing.T) {
			for _, c := range storeCases {
				t.Run(c.name, func(t *testing.T) { c.run(t, h.new(t)) })
			}
		})
	}
}

// rec is a record as the gateway would store it, its JSON spaced out and
// holding what HTML escaping would change.
func rec(tenant, id string) Record {
	return Record{
		ID: id, Tenant: tenant, KeyID: "k1", Model: "gpt-4o-mini", CreatedAt: 1764820000,
		Response: json.RawMessage(`{ "id": "` + id + `", "object": "response",
			"output": [ {"type": "message", "content": [{"type": "output_text", "text": "<b>fine</b> & \u00e9 é"}]} ] }`),
		Items: []json.RawMessage{
			json.RawMessage(`{"role": "user", "content": "mail me at a@b.example"}`),
			json.RawMessage(` {"type":"message","role":"assistant","content":[{"type":"output_text","text":"<b>fine</b> & \u00e9 é"}]} `),
		},
		Entities: map[string]int{"EMAIL": 1},
	}
}

// stored is r as Get returns it: its JSON compacted.
func stored(t *testing.T, r Record) Record {
	t.Helper()
	c, err := compactCopy(r)
	require.NoError(t, err)
	return c
}

func testRoundTrip(t *testing.T, e env) {
	ctx := testCtx(t)
	r := rec("acme", "resp_1")
	require.NoError(t, e.s.Put(ctx, r, time.Hour))
	got, err := e.s.Get(ctx, "acme", "resp_1")
	require.NoError(t, err)
	require.Equal(t, stored(t, r), got)
	require.Equal(t, `{"role":"user","content":"mail me at a@b.example"}`, string(got.Items[0]))
	require.Equal(t, `{"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"<b>fine</b> & \u00e9 é"}]}]}`,
		string(got.Response), "compacted, nothing escaped")

	// The optional parts: no entities, no items.
	bare := Record{ID: "resp_2", Tenant: "acme", Response: json.RawMessage(`{}`)}
	require.NoError(t, e.s.Put(ctx, bare, time.Hour))
	got, err = e.s.Get(ctx, "acme", "resp_2")
	require.NoError(t, err)
	require.Equal(t, bare, got)
	empty := Record{ID: "resp_3", Tenant: "acme", Response: json.RawMessage(`null`), Items: []json.RawMessage{}, Entities: map[string]int{}}
	require.NoError(t, e.s.Put(ctx, empty, time.Hour))
	got, err = e.s.Get(ctx, "acme", "resp_3")
	require.NoError(t, err)
	require.Equal(t, Record{ID: "resp_3", Tenant: "acme", Response: json.RawMessage(`null`), Items: []json.RawMessage{}}, got)

	_, err = e.s.Get(ctx, "acme", "resp_unknown")
	require.ErrorIs(t, err, ErrNotFound)
}

func testOverwrite(t *testing.T, e env) {
	ctx := testCtx(t)
	r := rec("acme", "resp_1")
	require.NoError(t, e.s.Put(ctx, r, time.Hour))
	r.Items = append(r.Items, json.RawMessage(`{"role":"user","content":"more"}`))
	r.Entities = nil
	require.NoError(t, e.s.Put(ctx, r, time.Hour))
	got, err := e.s.Get(ctx, "acme", "resp_1")
	require.NoError(t, err)
	require.Equal(t, stored(t, r), got)
	require.Len(t, got.Items, 3)
}

func testTTLExpiry(t *testing.T, e env) {
	ctx := testCtx(t)
	require.NoError(t, e.s.Put(ctx, rec("acme", "keep"), time.Hour))
	// gone2 first: it expires no later than gone.
	require.NoError(t, e.s.Put(ctx, rec("acme", "gone2"), e.short))
	require.NoError(t, e.s.Put(ctx, rec("acme", "gone"), e.short))
	e.pass(e.short)
	require.Eventually(t, func() bool {
		_, err := e.s.Get(ctx, "acme", "gone")
		return err == ErrNotFound
	}, 10*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, e.s.Delete(ctx, "acme", "gone2"), ErrNotFound, "expired with its sibling")
	_, err := e.s.Get(ctx, "acme", "keep")
	require.NoError(t, err)

	// A new Put starts a new TTL.
	require.NoError(t, e.s.Put(ctx, rec("acme", "gone"), time.Hour))
	_, err = e.s.Get(ctx, "acme", "gone")
	require.NoError(t, err)
}

func testTenantIsolation(t *testing.T, e env) {
	ctx := testCtx(t)
	a := rec("tenant-a", "resp_a")
	require.NoError(t, e.s.Put(ctx, a, time.Hour))

	_, err := e.s.Get(ctx, "tenant-b", "resp_a")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, e.s.Delete(ctx, "tenant-b", "resp_a"), ErrNotFound)
	_, err = e.s.Get(ctx, "", "resp_a")
	require.ErrorIs(t, err, ErrNotFound)
	got, err := e.s.Get(ctx, "tenant-a", "resp_a")
	require.NoError(t, err, "B's delete left A's record")
	require.Equal(t, stored(t, a), got)

	// One id in two tenants is two records.
	b := rec("tenant-b", "resp_a")
	b.Model = "claude"
	require.NoError(t, e.s.Put(ctx, b, time.Hour))
	got, err = e.s.Get(ctx, "tenant-b", "resp_a")
	require.NoError(t, err)
	require.Equal(t, "claude", got.Model)
	require.NoError(t, e.s.Delete(ctx, "tenant-b", "resp_a"))
	got, err = e.s.Get(ctx, "tenant-a", "resp_a")
	require.NoError(t, err)
	require.Equal(t, "gpt-4o-mini", got.Model)

	// Tenants and ids that a naive key would join into one.
	for i, pair := range [][2][2]string{
		{{"x}:y", "z"}, {"x", "y}:z"}},
		{{"x%7D:y", "z"}, {"x}:y", "z"}},
		{{"x:y", "z"}, {"x", "y:z"}},
		{{"x{y}", "z"}, {"x{y", "}z"}},
	} {
		p, q := pair[0], pair[1]
		p[1] += fmt.Sprint("#", i) // records of earlier pairs are not in the way
		q[1] += fmt.Sprint("#", i)
		require.NoError(t, e.s.Put(ctx, rec(p[0], p[1]), time.Hour))
		_, err := e.s.Get(ctx, q[0], q[1])
		require.ErrorIs(t, err, ErrNotFound, "%q reads %q", q, p)
		require.ErrorIs(t, e.s.Delete(ctx, q[0], q[1]), ErrNotFound, "%q deletes %q", q, p)
		got, err := e.s.Get(ctx, p[0], p[1])
		require.NoError(t, err)
		require.Equal(t, p[0], got.Tenant)
	}
}

func testDelete(t *testing.T, e env) {
	ctx := testCtx(t)
	require.NoError(t, e.s.Put(ctx, rec("acme", "resp_1"), time.Hour))
	require.NoError(t, e.s.Put(ctx, rec("acme", "resp_2"), time.Hour))
	require.NoError(t, e.s.Delete(ctx, "acme", "resp_1"))
	_, err := e.s.Get(ctx, "acme", "resp_1")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, e.s.Delete(ctx, "acme", "resp_1"), ErrNotFound, "twice")
	require.ErrorIs(t, e.s.Delete(ctx, "acme", "resp_unknown"), ErrNotFound)
	require.ErrorIs(t, e.s.Delete(ctx, "acme", ""), ErrNotFound)
	_, err = e.s.Get(ctx, "acme", "resp_2")
	require.NoError(t, err, "only the one deleted")
}

func testInvalid(t *testing.T, e env) {
	ctx := testCtx(t)
	for name, tc := range map[string]struct {
		mod func(*Record)
		ttl time.Duration
	}{
		"no tenant":        {func(r *Record) { r.Tenant = "" }, time.Hour},
		"no id":            {func(r *Record) { r.ID = "" }, time.Hour},
		"zero ttl":         {func(*Record) {}, 0},
		"negative ttl":     {func(*Record) {}, -time.Second},
		"no response":      {func(r *Record) { r.Response = nil }, time.Hour},
		"invalid response": {func(r *Record) { r.Response = json.RawMessage(`{"id":`) }, time.Hour},
		"invalid item":     {func(r *Record) { r.Items[1] = json.RawMessage(`{"a":1}}`) }, time.Hour},
		"empty item":       {func(r *Record) { r.Items[0] = json.RawMessage{} }, time.Hour},
	} {
		r := rec("acme", "resp_bad")
		tc.mod(&r)
		err := e.s.Put(ctx, r, tc.ttl)
		require.Error(t, err, name)
		require.NotErrorIs(t, err, ErrNotFound, name)
		_, err = e.s.Get(ctx, "acme", "resp_bad")
		require.ErrorIs(t, err, ErrNotFound, "%s: nothing stored", name)
	}
}

func testTooLarge(t *testing.T, e env) {
	ctx := testCtx(t)
	r := rec("acme", "resp_big")
	r.Items = append(r.Items, json.RawMessage(`"`+strings.Repeat("x", MaxRecordBytes)+`"`))
	require.ErrorIs(t, e.s.Put(ctx, r, time.Hour), ErrTooLarge)
	_, err := e.s.Get(ctx, "acme", "resp_big")
	require.ErrorIs(t, err, ErrNotFound)

	// Well under the bound is fine.
	r.Items[len(r.Items)-1] = json.RawMessage(`"` + strings.Repeat("x", MaxRecordBytes/2) + `"`)
	require.NoError(t, e.s.Put(ctx, r, time.Hour))
	got, err := e.s.Get(ctx, "acme", "resp_big")
	require.NoError(t, err)
	require.Len(t, got.Items[len(got.Items)-1], MaxRecordBytes/2+2)
}

func testContextCancelled(t *testing.T, e env) {
	require.NoError(t, e.s.Put(testCtx(t), rec("acme", "resp_1"), time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, e.s.Put(ctx, rec("acme", "resp_2"), time.Hour), context.Canceled)
	_, err := e.s.Get(ctx, "acme", "resp_1")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, e.s.Delete(ctx, "acme", "resp_1"), context.Canceled)

	_, err = e.s.Get(testCtx(t), "acme", "resp_1")
	require.NoError(t, err, "the cancelled delete deleted nothing")
	_, err = e.s.Get(testCtx(t), "acme", "resp_2")
	require.ErrorIs(t, err, ErrNotFound, "the cancelled put stored nothing")

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = e.s.Get(expired, "acme", "resp_1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// testReturnedCopy: what Put is given and what Get returns are the
// caller's to change.
func testReturnedCopy(t *testing.T, e env) {
	ctx := testCtx(t)
	r := rec("acme", "resp_1")
	want := stored(t, r)
	require.NoError(t, e.s.Put(ctx, r, time.Hour))
	r.Items[0][2] = 'X'
	r.Entities["EMAIL"] = 7

	got, err := e.s.Get(ctx, "acme", "resp_1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	got.Items = append(got.Items[:1], json.RawMessage(`{"changed":true}`))
	got.Items[0] = json.RawMessage(`{"changed":true}`)
	got.Entities["EMAIL"] = 9
	got.Entities["IBAN"] = 1

	again, err := e.s.Get(ctx, "acme", "resp_1")
	require.NoError(t, err)
	require.Equal(t, want, again)
}

func testConcurrent(t *testing.T, e env) {
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("resp_%d_%d", w, i)
				r := rec("acme", id)
				if !assert.NoError(t, e.s.Put(ctx, r, time.Hour)) {
					return
				}
				got, err := e.s.Get(ctx, "acme", id)
				if !assert.NoError(t, err) || !assert.Equal(t, id, got.ID) {
					return
				}
				// Everyone writes and reads one shared record too.
				shared := rec("acme", "shared")
				shared.KeyID = id
				assert.NoError(t, e.s.Put(ctx, shared, time.Hour))
				got, err = e.s.Get(ctx, "acme", "shared")
				if assert.NoError(t, err) {
					assert.Len(t, got.Items, 2)
					got.Items = append(got.Items, json.RawMessage(`1`))
				}
				if i%2 == 0 {
					assert.NoError(t, e.s.Delete(ctx, "acme", id))
				}
			}
		})
	}
	wg.Wait()
	for w := range 8 {
		for i := range 25 {
			_, err := e.s.Get(ctx, "acme", fmt.Sprintf("resp_%d_%d", w, i))
			if i%2 == 0 {
				require.ErrorIs(t, err, ErrNotFound)
			} else {
				require.NoError(t, err)
			}
		}
	}
}

// clock is a Memory's injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// redisOrSkip is the address of the Redis the tests use
// (SWITCHYARD_TEST_REDIS); without one the test skips, or fails under
// SWITCHYARD_REQUIRE_REDIS=1.
func redisOrSkip(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		if os.Getenv("SWITCHYARD_REQUIRE_REDIS") == "1" {
			t.Fatal("SWITCHYARD_REQUIRE_REDIS=1 but SWITCHYARD_TEST_REDIS is not set")
		}
		t.Skip("no Redis: set SWITCHYARD_TEST_REDIS=host:port (.ci/run does)")
	}
	return addr
}

func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx).Err(), "redis at %s", addr)
	return c
}

var prefixSeq atomic.Int64

// testPrefix keeps tests (and repeated runs against one server) apart,
// and deletes the test's keys when it ends.
func testPrefix(t *testing.T, c *redis.Client) string {
	t.Helper()
	p := fmt.Sprintf("sytest:conv:%d:%d", time.Now().UnixNano(), prefixSeq.Add(1))
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+":*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return p
}
