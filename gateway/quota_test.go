package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/tokens"
)

// The quota tests use a real redis-server: SWITCHYARD_TEST_REDIS names a
// running one (.ci/run starts it); tests that stop Redis start their own.

const adminKey = "sk-admin-test"

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

// quotaConfig serves model "m" from the given upstreams (in order) with a
// price of $1 per million tokens in and out, so a token costs one
// micro-dollar, under the given quotas section. Every config gets a fresh
// tenant, so tests sharing one Redis do not share counters.
func quotaConfig(t *testing.T, store, limits string, upstreams ...string) (*config.Config, string) {
	t.Helper()
	tenant := fmt.Sprintf("t%d", time.Now().UnixNano())
	var y strings.Builder
	y.WriteString("server: {listen: 127.0.0.1:0, shutdown_timeout: 5s, stream_keepalive: 50ms}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n")
	for i, u := range upstreams {
		fmt.Fprintf(&y, "  - {name: b%d, kind: selfhosted, base_url: %s, price: {input_per_mtok: 1, output_per_mtok: 1}, timeouts: {first_byte: 10s}}\n", i, u)
	}
	y.WriteString("models:\n  - name: m\n    deployments:\n")
	for i := range upstreams {
		fmt.Fprintf(&y, "      - {backend: b%d, model: up}\n", i)
	}
	fmt.Fprintf(&y, "keys:\n  - {id: k1, sha256: %s, tenant: %s, team: ops}\n", gateway.HashKey(testKey), tenant)
	fmt.Fprintf(&y, "admin:\n  keys:\n    - {id: ops, sha256: %s}\n", gateway.HashKey(adminKey))
	y.WriteString("quotas:\n" + store + "  limits:\n" + limits)
	cfg, err := config.Parse([]byte(y.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err, y.String())
	return cfg, tenant
}

func redisStore(addr string) string {
	return "  store: redis\n  redis: {addrs: [" + addr + "], timeout: 200ms}\n"
}

// chatBody is the request every quota test sends: its size, hence its
// prompt estimate, is fixed.
const chatBody = `{"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":100}`

// estimate is what the gateway reserves for chatBody: its prompt tokens as
// the upstream model "up" counts them (tokens.Approx: no tokenizer is
// known for it) plus max_tokens, one micro-dollar per token.
var estimate = tokens.Prompt(tokens.Approx, tokens.OpChat, []byte(chatBody)) + 100

func post(t *testing.T, base, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

type counter struct {
	Key       string `json:"key"`
	Metric    string `json:"metric"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
}

// counters reads key k1's counters through the admin API.
func counters(t *testing.T, base string) map[string]counter {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/switchyard/quota?key_id=k1", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var out struct {
		Counters []counter `json:"counters"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	m := map[string]counter{}
	for _, c := range out.Counters {
		m[c.Metric] = c
	}
	return m
}

// Two gateways share one Redis; 200 concurrent requests meet a budget
// that fits 20: exactly 20 get through, and the spend never passes the
// limit.
func TestQuotaExactUnderConcurrencyAcrossReplicas(t *testing.T) {
	addr := redisOrSkip(t)
	for _, tc := range []struct {
		name, limit string
		code        string
	}{
		{"usd budget", fmt.Sprintf("    - {scope: team, usd_per_day: %g, on_store_error: fail_closed}\n", float64(20*estimate)/1e6), "insufficient_quota"},
		{"tokens per minute", fmt.Sprintf("    - {scope: key, tokens_per_minute: %d, on_store_error: fail_closed}\n", 20*estimate), "rate_limit_exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var upstreamCalls atomic.Int64
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				upstreamCalls.Add(1)
				<-release // hold every admitted request until all 200 are decided
				writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
			})
			// Exactness, not latency, is under test: 200 requests at once
			// under the race detector on two cores can take Redis past
			// the 200 ms the other tests allow, and fail_closed then
			// answers 503.
			store := strings.Replace(redisStore(addr), "timeout: 200ms", "timeout: 3s", 1)
			cfg, _ := quotaConfig(t, store, tc.limit, up.URL+"/v1")
			a, _ := startGateway(t, cfg)
			b, _ := startGateway(t, cfg)

			var admitted, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					base := a
					if i%2 == 1 {
						base = b
					}
					resp := post(t, base, chatBody)
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					switch resp.StatusCode {
					case 200:
						admitted.Add(1)
					case 429:
						assert.Contains(t, string(body), tc.code)
						if refused.Add(1) == 180 {
							close(release)
						}
					default:
						t.Errorf("status %d: %s", resp.StatusCode, body)
						if refused.Add(1) == 180 { // fail, but do not hang
							close(release)
						}
					}
				}()
			}
			wg.Wait()
			assert.EqualValues(t, 20, admitted.Load())
			assert.EqualValues(t, 180, refused.Load())
			assert.EqualValues(t, 20, upstreamCalls.Load(), "refused requests never reach the upstream")
			// Settled at the actual 15 tokens each: 300 of the limit used,
			// the rest of the reservations released. (A rate also refills
			// with time, so for tokens "at least"; without the refunds it
			// would take most of a minute to get there.)
			require.Eventually(t, func() bool {
				for _, c := range counters(t, a) {
					switch c.Metric {
					case "usd":
						return c.Remaining == c.Limit-20*15
					case "tokens":
						return c.Remaining >= c.Limit-20*15
					}
				}
				return false
			}, 5*time.Second, 20*time.Millisecond)
		})
	}
}

// Every way a request can end settles its reservation exactly once, at
// what it actually used.
func TestQuotaSettlesOnEveryPath(t *testing.T) {
	addr := redisOrSkip(t)
	var mode atomic.Value
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "json":
			writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
		case "stream":
			writeSSE(w, chunk("up", "Hel", ""), chunk("up", "lo", "stop"), usageChunk("up", 12, 8), "[DONE]")
		case "disconnect":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "data: %s\n\n", chunk("up", "word ", "")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		case "error":
			writeJSON(w, 500, `{"error":{"message":"boom","type":"server_error"}}`)
		}
	})
	good := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "from the fallback", 20, 10, 0))
	})
	cfg, _ := quotaConfig(t, redisStore(addr), "    - {scope: key, usd_per_month: 1}\n", up.URL+"/v1", good.URL+"/v1")
	base, _ := startGateway(t, cfg)
	limit := int64(1_000_000)
	spent := func() int64 { return limit - counters(t, base)["usd"].Remaining }
	settled := func(want int64) {
		t.Helper()
		require.Eventually(t, func() bool { return spent() == want }, 5*time.Second, 10*time.Millisecond, "spent %d, want %d", spent(), want)
	}

	mode.Store("json")
	resp := post(t, base, chatBody)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	settled(15)

	mode.Store("stream")
	resp = post(t, base, strings.Replace(chatBody, `"max_tokens":100`, `"max_tokens":100,"stream":true`, 1))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	settled(15 + 20)

	// The client leaves mid-stream: what was generated is billed (the
	// gateway estimates it), the rest of the reservation is released.
	mode.Store("disconnect")
	resp = post(t, base, strings.Replace(chatBody, `"max_tokens":100`, `"max_tokens":100,"stream":true`, 1))
	rd := bufio.NewReader(resp.Body)
	for range 3 {
		_, err := rd.ReadString('\n')
		require.NoError(t, err)
	}
	resp.Body.Close()
	require.Eventually(t, func() bool { s := spent(); return s > 35 && s < 35+estimate }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	afterDisconnect := spent()

	// The first deployment fails, the second answers: billed at the
	// second's usage, once.
	mode.Store("error")
	resp = post(t, base, chatBody)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "from the fallback")
	settled(afterDisconnect + 30)

	// Every deployment fails: nothing is billed and the reservation is
	// released.
	cfg2, _ := quotaConfig(t, redisStore(addr), "    - {scope: key, usd_per_month: 1}\n", up.URL+"/v1")
	base2, _ := startGateway(t, cfg2)
	resp = post(t, base2, chatBody)
	resp.Body.Close()
	require.Equal(t, 500, resp.StatusCode)
	require.Eventually(t, func() bool { c := counters(t, base2)["usd"]; return c.Remaining == c.Limit }, 5*time.Second, 10*time.Millisecond)
}

// Rate limits answer 429 with Retry-After and OpenAI's x-ratelimit-*
// headers; the headers come on every response.
func TestQuotaRateLimitHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	cfg, _ := quotaConfig(t, "", "    - {scope: key, requests_per_minute: 2, tokens_per_minute: 100000}\n", up.URL+"/v1")
	base, _ := startGateway(t, cfg)
	for i := range 2 {
		resp := post(t, base, chatBody)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "2", resp.Header.Get("X-Ratelimit-Limit-Requests"))
		assert.Equal(t, strconv.Itoa(1-i), resp.Header.Get("X-Ratelimit-Remaining-Requests"))
		assert.Equal(t, "100000", resp.Header.Get("X-Ratelimit-Limit-Tokens"))
		assert.NotEmpty(t, resp.Header.Get("X-Ratelimit-Reset-Requests"))
	}
	resp := post(t, base, chatBody)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 429, resp.StatusCode)
	assert.Contains(t, string(body), `"code":"rate_limit_exceeded"`)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 30, ra, 2, "two a minute: the next one in about 30 s")
	assert.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining-Requests"))

	// An admin resets the key's counters; it may send again at once.
	req, _ := http.NewRequest(http.MethodPost, base+"/switchyard/quota/reset", strings.NewReader(`{"key_id":"k1"}`))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r2.Body.Close()
	require.Equal(t, 200, r2.StatusCode)
	resp = post(t, base, chatBody)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	// A virtual key cannot use the admin API.
	req, _ = http.NewRequest(http.MethodGet, base+"/switchyard/quota?key_id=k1", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	r3, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r3.Body.Close()
	require.Equal(t, 401, r3.StatusCode)
}

// A spent budget is a 429 insufficient_quota, until the period ends.
func TestQuotaBudgetSpent(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	// Room for one reservation of this request; once it settles at 15,
	// the rest (estimate - 5) cannot hold another, settled or not.
	cfg, _ := quotaConfig(t, "", fmt.Sprintf("    - {scope: team, usd_per_month: %g}\n", float64(estimate+10)/1e6), up.URL+"/v1")
	base, _ := startGateway(t, cfg)
	resp := post(t, base, chatBody)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	resp = post(t, base, chatBody)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 429, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"code":"insufficient_quota"`)
	ra, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64)
	require.NoError(t, err)
	now := time.Now().UTC()
	monthEnd := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	assert.InDelta(t, monthEnd.Sub(now).Seconds(), float64(ra), 5, "until the month's budget renews")
}

// An upstream that uses more than the reservation is still charged in
// full, past the budget, and the budget then refuses; with requests in
// flight on two replicas the overshoot is at most the sum of their
// (actual - reserved), the bound quota's package doc states.
func TestQuotaUsageOverReservation(t *testing.T) {
	addr := redisOrSkip(t)
	actual := 2 * estimate // every answer costs twice its reservation
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, int(actual-10), 0))
	})

	t.Run("one request", func(t *testing.T) {
		// Room for one reservation and a half.
		cfg, tenant := quotaConfig(t, redisStore(addr), fmt.Sprintf("    - {scope: team, usd_per_day: %g, on_store_error: fail_closed}\n", float64(estimate*3/2)/1e6), up.URL+"/v1")
		base, _ := startGateway(t, cfg)
		resp := post(t, base, chatBody)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Eventually(t, func() bool { return budgetSpent(t, addr, tenant) == actual },
			5*time.Second, 20*time.Millisecond, "the whole actual cost is charged, past the limit")
		resp = post(t, base, chatBody)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 429, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), "insufficient_quota")
	})

	t.Run("concurrent on two replicas", func(t *testing.T) {
		const fit = 10 // reservations the budget holds
		store := strings.Replace(redisStore(addr), "timeout: 200ms", "timeout: 3s", 1)
		cfg, tenant := quotaConfig(t, store, fmt.Sprintf("    - {scope: team, usd_per_day: %g, on_store_error: fail_closed}\n", float64(fit*estimate)/1e6), up.URL+"/v1")
		a, _ := startGateway(t, cfg)
		b, _ := startGateway(t, cfg)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := a
				if i%2 == 1 {
					base = b
				}
				resp := post(t, base, chatBody)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					admitted.Add(1)
				case 429:
					assert.Contains(t, string(body), "insufficient_quota")
				default:
					t.Errorf("status %d: %s", resp.StatusCode, body)
				}
			}()
		}
		wg.Wait()
		n := admitted.Load()
		require.Positive(t, n)
		assert.LessOrEqual(t, n, int64(fit), "an admission needs room for its whole reservation")
		var spent int64
		require.Eventually(t, func() bool { spent = budgetSpent(t, addr, tenant); return spent == n*actual },
			5*time.Second, 20*time.Millisecond, "every admitted request is charged its actual cost")
		limit := int64(fit) * estimate
		t.Logf("limit %d µUSD; %d admitted at %d µUSD each (reserved %d): spent %d, %d over", limit, n, actual, estimate, spent, spent-limit)
		assert.LessOrEqual(t, spent-limit, n*(actual-estimate), "the overshoot is at most the in-flight requests' (actual - reserved)")
		resp := post(t, b, chatBody)
		resp.Body.Close()
		assert.Equal(t, 429, resp.StatusCode, "an overspent budget refuses the next request")
	})
}

// budgetSpent reads what a tenant's budgets have spent straight from
// Redis (the admin API's remaining stops at zero, and an overspend is
// what is under test): the sum of the spent fields of its budget hashes.
func budgetSpent(t *testing.T, addr, tenant string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*:"+tenant+"}:*:bud").Result()
	require.NoError(t, err)
	var sum int64
	for _, k := range keys {
		v, err := c.HGet(ctx, k, "spent").Int64()
		if err != redis.Nil {
			require.NoError(t, err)
		}
		sum += v
	}
	return sum
}

// Redis stops mid-test: each failure mode does what it says, no request
// waits on the dead store, and counting resumes when Redis is back.
func TestQuotaWhenRedisStops(t *testing.T) {
	rd := startRedisProc(t, redisProcOptions{})
	local := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "from selfhosted", 10, 5, 0))
	})
	cloud := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "from the cloud", 10, 5, 0))
	})
	for _, tc := range []struct {
		mode   string
		status int
		body   string
	}{
		{"fail_open", 200, "from the cloud"},
		{"fail_closed", 503, "quota_unavailable"},
		{"local_only", 200, "from selfhosted"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			rd.Kill() // a fresh, empty server for each mode
			rd.Restart()
			// The cloud deployment first: local_only must skip it.
			cfg, _ := quotaConfig(t, redisStore(rd.Addr()), "    - {scope: key, usd_per_month: 1, on_store_error: "+tc.mode+"}\n", cloud.URL+"/v1", local.URL+"/v1")
			cfg.Backends[0].Kind, cfg.Backends[0].APIKey = config.KindProprietary, backendKey
			base, _ := startGateway(t, cfg)
			resp := post(t, base, chatBody)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			// Settled before Redis goes (a settlement retries, so one
			// caught by the outage could land after the restart).
			require.Eventually(t, func() bool { c := counters(t, base)["usd"]; return c.Limit-c.Remaining == 15 }, 5*time.Second, 20*time.Millisecond)

			rd.Kill()
			for range 3 {
				start := time.Now()
				resp := post(t, base, chatBody)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Less(t, time.Since(start), time.Second, "no request waits on a dead Redis")
				assert.Equal(t, tc.status, resp.StatusCode, "%s", body)
				assert.Contains(t, string(body), tc.body)
			}
			ready := readyz(t, base)
			assert.Equal(t, "degraded", ready["status"])

			// Redis comes back (empty: a restart without persistence):
			// readiness recovers by itself, and counting resumes.
			rd.Restart()
			require.Eventually(t, func() bool { return readyz(t, base)["status"] == "ready" }, 5*time.Second, 50*time.Millisecond)
			resp = post(t, base, chatBody)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			require.Contains(t, string(body), "from the cloud")
			// This request is counted. So is each request admitted during
			// the outage (fail_open, local_only) whose settlement retries
			// reached the restarted Redis: none to all three, depending
			// on how fast it came back.
			outage := 0
			if tc.status == 200 {
				outage = 3
			}
			require.Eventually(t, func() bool {
				spent := counters(t, base)["usd"]
				n := spent.Limit - spent.Remaining
				return n%15 == 0 && n >= 15 && n <= 15*int64(1+outage)
			}, 5*time.Second, 20*time.Millisecond)
			rd.Kill()
		})
	}
}

func readyz(t *testing.T, v1 string) map[string]any {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(v1, "/v1") + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}
