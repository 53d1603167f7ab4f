package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/policies"
)

const (
	otherTenantKey = "sk-other-tenant"
	cappedTeamKey  = "sk-capped-team" // tenant t1, team capped
)

// cacheUpstream is a fake chat upstream that answers each question with a
// numbered answer, JSON or streamed, and counts what it was asked.
type cacheUpstream struct {
	*upstream
	calls atomic.Int64
}

func newCacheUpstream(t *testing.T) *cacheUpstream {
	u := &cacheUpstream{}
	u.upstream = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model    string
			Stream   bool
			Messages []struct{ Content string }
		}
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		n := u.calls.Add(1)
		answer := fmt.Sprintf("answer %d to %s", n, strings.ReplaceAll(body.Messages[len(body.Messages)-1].Content, `"`, ""))
		if body.Stream {
			delta := func(s string) string { b, _ := json.Marshal(map[string]string{"content": s}); return string(b) }
			events := []string{chunk(body.Model, `{"role":"assistant","content":""}`, ""), chunk(body.Model, delta("answer "), ""),
				chunk(body.Model, delta(strings.TrimPrefix(answer, "answer ")), ""), chunk(body.Model, `{}`, "stop")}
			if !strings.Contains(answer, "no usage") {
				events = append(events, usageChunk(body.Model, 30, 7))
			}
			writeSSE(w, events...)
			return
		}
		writeJSON(w, 200, chatCompletion(body.Model, answer, 30, 7, 0))
	})
	return u
}

// embedUpstream answers embeddings with the vectors the test gives per
// input text, and records every input it was sent.
type embedUpstream struct {
	*upstream
	mu     sync.Mutex
	inputs []string
}

func newEmbedUpstream(t *testing.T, vectors map[string][]float32) *embedUpstream {
	e := &embedUpstream{}
	e.upstream = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Input string }
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		e.mu.Lock()
		e.inputs = append(e.inputs, body.Input)
		e.mu.Unlock()
		v, ok := vectors[body.Input]
		if !ok {
			v = []float32{0, 0, 0, 1}
		}
		b, _ := json.Marshal(map[string]any{"object": "list", "model": "embed",
			"data":  []any{map[string]any{"object": "embedding", "index": 0, "embedding": v}},
			"usage": map[string]any{"prompt_tokens": 5, "total_tokens": 5}})
		writeJSON(w, 200, string(b))
	})
	return e
}

func (e *embedUpstream) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.inputs...)
}

// cacheConfig serves "chat" from a proprietary upstream with the cache in
// mode, and "embed" from a proprietary embedding upstream first and a
// self-hosted one second; two tenants.
func cacheConfig(t *testing.T, mode, chatURL, cloudEmbedURL, embedURL, cacheLines, extra string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`
server: {listen: 127.0.0.1:0, shutdown_timeout: 5s, stream_keepalive: 50ms}
log: {level: error}
backends:
  - {name: openai, kind: proprietary, base_url: %s, api_key: k, price: {input_per_mtok: 1, output_per_mtok: 2}}
  - {name: cloud-embed, kind: proprietary, base_url: %s, api_key: k, price: {input_per_mtok: 1, output_per_mtok: 0}}
  - {name: gpu, kind: selfhosted, base_url: %s, api_key: k, price: {input_per_mtok: 0, output_per_mtok: 0}}
  - {name: edge, kind: selfhosted, base_url: %s, api_key: k, price: {input_per_mtok: 0, output_per_mtok: 0}}
models:
  - name: chat
    cache: %s
    deployments:
      - {backend: openai, model: gpt-x}
      - {backend: edge, model: llama}
  - name: embed
    deployments:
      - {backend: cloud-embed, model: text-embed}
      - {backend: gpu, model: bge}
keys:
  - {id: k1, sha256: %s, tenant: t1, team: search}
  - {id: k2, sha256: %s, tenant: t2, team: search}
  - {id: k3, sha256: %s, tenant: t1, team: capped}
admin:
  keys:
    - {id: ops, sha256: %s}
cache:
  semantic: {embedding_model: embed}
%s%s`, chatURL+"/v1", cloudEmbedURL+"/v1", embedURL+"/v1", chatURL+"/v1", mode, gateway.HashKey(testKey), gateway.HashKey(otherTenantKey), gateway.HashKey(cappedTeamKey), gateway.HashKey(adminKey), cacheLines, extra)
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err, y)
	return cfg
}

type cacheAnswer struct {
	text, cache, match, backend, cost string
}

func askChat(t *testing.T, client *openai.Client, question string, opts ...option.RequestOption) cacheAnswer {
	t.Helper()
	var resp *http.Response
	got, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(question)},
	}, append(opts, option.WithResponseInto(&resp))...)
	require.NoError(t, err)
	require.Len(t, got.Choices, 1)
	return cacheAnswer{text: got.Choices[0].Message.Content, cache: resp.Header.Get(gateway.HeaderCache),
		match: resp.Header.Get(gateway.HeaderCacheMatch), backend: resp.Header.Get(gateway.HeaderBackend), cost: resp.Header.Get(gateway.HeaderCost)}
}

func askChatStream(t *testing.T, client *openai.Client, question string) cacheAnswer {
	t.Helper()
	var resp *http.Response
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(question)},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}, option.WithResponseInto(&resp))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	require.Len(t, acc.Choices, 1)
	assert.Equal(t, "stop", acc.Choices[0].FinishReason)
	assert.Positive(t, acc.Usage.PromptTokens, "the replay carries the usage")
	return cacheAnswer{text: acc.Choices[0].Message.Content, cache: resp.Header.Get(gateway.HeaderCache),
		match: resp.Header.Get(gateway.HeaderCacheMatch), backend: resp.Header.Get(gateway.HeaderBackend)}
}

// eventually retries ask until the answer is a hit: answers are stored in
// the background, just after the response.
func eventually(t *testing.T, ask func() cacheAnswer) cacheAnswer {
	t.Helper()
	var a cacheAnswer
	require.Eventually(t, func() bool { a = ask(); return a.cache == "hit" }, 5*time.Second, 10*time.Millisecond)
	return a
}

// Exact hits through the openai-go SDK, JSON and streamed, each served in
// the other's form; misses for other questions; the client's directives;
// one tenant's answers never served to another.
func TestCacheExact(t *testing.T) {
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none}\n"))
	client, other := sdk(base), sdk(base, option.WithAPIKey(otherTenantKey))

	first := askChat(t, client, "What is the capital of France?")
	assert.Equal(t, "miss", first.cache)
	assert.Equal(t, int64(1), up.calls.Load())
	hit := eventually(t, func() cacheAnswer { return askChat(t, client, "What is the capital of France?") })
	assert.Equal(t, first.text, hit.text, "the stored answer")
	assert.Equal(t, "exact", hit.match)
	assert.Equal(t, "openai", hit.backend, "the backend that made it")
	assert.Equal(t, "0", hit.cost, "a hit costs nothing")
	assert.Equal(t, int64(1), up.calls.Load(), "the upstream is not asked again")

	streamed := askChatStream(t, client, "What is the capital of France?")
	assert.Equal(t, "hit", streamed.cache, "stream is not part of the key")
	assert.Equal(t, first.text, streamed.text, "replayed as a stream")
	assert.Equal(t, int64(1), up.calls.Load())

	other1 := askChat(t, other, "What is the capital of France?")
	assert.Equal(t, "miss", other1.cache, "another tenant never gets t1's answer")
	assert.NotEqual(t, first.text, other1.text)
	assert.Equal(t, int64(2), up.calls.Load())

	miss := askChat(t, client, "How tall is Everest?")
	assert.Equal(t, "miss", miss.cache)
	assert.Equal(t, int64(3), up.calls.Load())

	// A streamed miss is recorded while it streams; a JSON request hits it.
	s1 := askChatStream(t, client, "Name a prime number")
	assert.Equal(t, "miss", s1.cache)
	hit = eventually(t, func() cacheAnswer { return askChat(t, client, "Name a prime number") })
	assert.Equal(t, s1.text, hit.text)

	// no-cache: answered upstream (and stored); no-store: served from the
	// cache, but a miss is not stored.
	n := up.calls.Load()
	nc := askChat(t, client, "What is the capital of France?", option.WithHeader(gateway.HeaderCache, "no-cache"))
	assert.Equal(t, "bypass", nc.cache)
	assert.Equal(t, n+1, up.calls.Load())
	ns := askChat(t, client, "Why is the sky blue?", option.WithHeader(gateway.HeaderCache, "no-store"))
	assert.Equal(t, "miss", ns.cache)
	again := askChat(t, client, "Why is the sky blue?")
	assert.Equal(t, "miss", again.cache, "the no-store answer was not kept")

	// Sampling parameters are part of the key.
	var resp *http.Response
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("What is the capital of France?")},
		Temperature: openai.Float(1.5),
	}, option.WithResponseInto(&resp))
	require.NoError(t, err)
	assert.Equal(t, "miss", resp.Header.Get(gateway.HeaderCache))
	assert.Empty(t, emb.seen(), "exact mode embeds nothing")
}

// A route that does not opt in is answered "bypass", and so is a request
// the policy forbids caching for (the confidential data class).
func TestCacheBypass(t *testing.T) {
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "off", up.URL, emb.URL, emb.URL, "", "policy: {audit: none}\n"))
	for range 2 {
		assert.Equal(t, "bypass", askChat(t, sdk(base), "hi").cache)
	}
	assert.Equal(t, int64(2), up.calls.Load())

	up2 := newCacheUpstream(t)
	base2, _ := startGateway(t, cacheConfig(t, "exact", up2.URL, emb.URL, emb.URL, "", "policy: {audit: none}\n"))
	client := sdk(base2)
	confidential := option.WithHeader(gateway.HeaderDataClass, "confidential")
	for range 2 {
		a := askChat(t, client, "hi", confidential)
		assert.Equal(t, "bypass", a.cache, "obligations.cache off")
		assert.Equal(t, "edge", a.backend, "confidential data stays self-hosted")
	}
	unknown := askChat(t, client, "hi", option.WithHeader(gateway.HeaderDataClass, "restricted"))
	assert.Equal(t, "bypass", unknown.cache, "a class the bundle does not know is the strictest")
	assert.Equal(t, "edge", unknown.backend)
	assert.Equal(t, "miss", askChat(t, client, "hi").cache, "the confidential answers were not stored")
	assert.Equal(t, int64(4), up2.calls.Load())
}

// Semantic hits for a paraphrase, misses for another question and for
// the same question in another conversation; the lookup text is embedded
// by the self-hosted deployment only, never the proprietary one listed
// first.
func TestCacheSemantic(t *testing.T) {
	up := newCacheUpstream(t)
	cloud := newEmbedUpstream(t, nil)
	gpu := newEmbedUpstream(t, map[string][]float32{
		"What is the capital of France?":                       {1, 0, 0, 0},
		"Tell me France's capital city":                        {0.98, 0.15, 0, 0},
		"How tall is Everest?":                                 {0, 1, 0, 0},
		"My email is jane.doe@example.com, reset my password":  {0, 0, 1, 0},
		"My email is bob.smith@example.org, reset my password": {0, 0, 0.99, 0.1},
	})
	base, _ := startGateway(t, cacheConfig(t, "semantic", up.URL, cloud.URL, gpu.URL, "", "policy: {audit: none}\n"))
	client := sdk(base)

	first := askChat(t, client, "What is the capital of France?")
	assert.Equal(t, "miss", first.cache)
	// Stored (an exact hit asks no upstream), then found by a paraphrase.
	eventually(t, func() cacheAnswer { return askChat(t, client, "What is the capital of France?") })
	hit := eventually(t, func() cacheAnswer { return askChat(t, client, "Tell me France's capital city") })
	assert.Equal(t, first.text, hit.text)
	assert.True(t, strings.HasPrefix(hit.match, "semantic; similarity=0.98"), hit.match)
	assert.Equal(t, int64(1), up.calls.Load())

	miss := askChat(t, client, "How tall is Everest?")
	assert.Equal(t, "miss", miss.cache, "a different question")

	// The same last question in another conversation does not match.
	var resp *http.Response
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("answer in French"), openai.UserMessage("Tell me France's capital city")},
	}, option.WithResponseInto(&resp))
	require.NoError(t, err)
	assert.Equal(t, "miss", resp.Header.Get(gateway.HeaderCache))

	streamed := askChatStream(t, client, "Tell me France's capital city")
	assert.Equal(t, "hit", streamed.cache)
	assert.Equal(t, first.text, streamed.text)

	// Personal data: matched exactly only, never embedded; Bob never gets
	// the answer to Jane's question.
	jane := askChat(t, client, "My email is jane.doe@example.com, reset my password")
	assert.Equal(t, "miss", jane.cache)
	eventually(t, func() cacheAnswer { return askChat(t, client, "My email is jane.doe@example.com, reset my password") })
	bob := askChat(t, client, "My email is bob.smith@example.org, reset my password")
	assert.Equal(t, "miss", bob.cache, "a similar question holding other personal data")
	assert.NotContains(t, bob.text, "jane")
	for _, in := range gpu.seen() {
		assert.NotContains(t, in, "@", "a question holding personal data is not embedded")
	}

	assert.Empty(t, cloud.seen(), "no lookup text reaches the proprietary embedding API")
	assert.Contains(t, gpu.seen(), "Tell me France's capital city", "the self-hosted one embedded it")

	// A declared data class other than public: exact only, never embedded.
	internal := askChat(t, client, "How tall is Mont Blanc?", option.WithHeader(gateway.HeaderDataClass, "internal"))
	assert.Equal(t, "miss", internal.cache)
	assert.NotContains(t, gpu.seen(), "How tall is Mont Blanc?")
	for _, in := range gpu.seen() {
		assert.NotContains(t, in, "be brief", "only the last user turn is embedded")
	}
}

// A change of the policy bundle's revision invalidates every entry.
func TestCachePolicyRevision(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Shipped()))
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none, bundle: "+dir+"}\n"))
	client := sdk(base)
	assert.Equal(t, "miss", askChat(t, client, "hi").cache)
	eventually(t, func() cacheAnswer { return askChat(t, client, "hi") })

	revision := func() string {
		_, body := dashboardGet(t, strings.TrimSuffix(base, "/v1")+"/readyz")
		var v struct{ Policy struct{ Revision string } }
		require.NoError(t, json.Unmarshal(body, &v))
		return v.Policy.Revision
	}
	rev := revision()
	require.NotEmpty(t, rev)
	data := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(data, []byte(strings.Replace(string(b), `"confidential"]`, `"confidential", "secret"]`, 1)), 0o644))
	require.Eventually(t, func() bool { return revision() != rev }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "miss", askChat(t, client, "hi").cache, "a new revision: the old answers are not served")
}

// An exact hit reuses the prompt estimate the first request's policy
// input had (it is not counted again): counted on the route the request
// looked up, not on the deployments its decision narrowed it to. Here a
// policy rule turns the estimate into an answer-shaping obligation, which
// a hit must match: were the stored estimate the narrowed route's (the
// kept deployment counts with tiktoken, the excluded one over-estimates),
// the identical request would never hit.
func TestCacheHitReusesPromptEstimate(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Shipped()))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "estimate.rego"), []byte(`package switchyard

obligations["max_output_tokens"] := input.request.estimated_input_tokens if input.request.data_class == "internal"
`), 0o644))
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	cfg := cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none, bundle: "+dir+"}\n")
	// openai (excluded for internal data: no zero retention) counts
	// with Approx, edge (kept) with o200k_base.
	cfg.Models[0].Deployments[0].Model, cfg.Models[0].Deployments[1].Model = "claude-x", "gpt-4o"
	base, _ := startGateway(t, cfg)
	client := sdk(base)
	question := strings.Repeat("Summarise the quarterly figures for the northern region, please. ", 20)
	internal := option.WithHeader(gateway.HeaderDataClass, "internal")
	first := askChat(t, client, question, internal)
	require.Equal(t, "miss", first.cache)
	require.Equal(t, "edge", first.backend)
	hit := eventually(t, func() cacheAnswer { return askChat(t, client, question, internal) })
	assert.Equal(t, first.text, hit.text)
	assert.Equal(t, "exact", hit.match)
}

// A hit is written to the ledger as a hit that cost nothing and saved
// what the stored answer cost; the admin API purges by tenant.
func TestCacheLedgerAndPurge(t *testing.T) {
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none}\n"))
	client := sdk(base)
	first := askChat(t, client, "What is the capital of France?")
	eventually(t, func() cacheAnswer { return askChat(t, client, "What is the capital of France?") })

	resp, body := adminGet(t, base+"/switchyard/costs?format=csv", adminKey)
	require.Equal(t, 200, resp.StatusCode)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	header := strings.Split(lines[0], ",")
	col := func(name string) int {
		for i, h := range header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	var hits, misses int
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if f[col("cache")] == "hit" {
			hits++
			assert.Equal(t, "0", f[col("cost_usd")])
			assert.Equal(t, first.cost, f[col("savings_usd")], "the hit saved what the answer cost")
			assert.Equal(t, "openai", f[col("backend")])
		} else {
			misses++
		}
	}
	assert.Equal(t, 1, hits)
	assert.Equal(t, 1, misses)

	req, _ := http.NewRequest(http.MethodDelete, base+"/switchyard/cache?tenant=t2", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	assert.JSONEq(t, `{"purged":0}`, string(b))
	assert.Equal(t, "hit", askChat(t, client, "What is the capital of France?").cache)
	req, _ = http.NewRequest(http.MethodDelete, base+"/switchyard/cache?tenant=t1", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	r, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ = io.ReadAll(r.Body)
	r.Body.Close()
	assert.JSONEq(t, `{"purged":1}`, string(b))
	assert.Equal(t, "miss", askChat(t, client, "What is the capital of France?").cache)

	req, _ = http.NewRequest(http.MethodDelete, base+"/switchyard/cache", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	r, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	assert.Equal(t, 401, r.StatusCode, "purging needs an admin key")
}

// cacheRedis empties the Redis database the cache tests share and returns
// a client of it and the config lines that point a gateway at it.
func cacheRedis(t *testing.T) (*redis.Client, string) {
	addr := redisOrSkip(t)
	const db = 12
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.FlushDB(context.Background()).Err())
	return rdb, fmt.Sprintf("policy: {audit: none}\nquotas: {redis: {addrs: [%s], db: %d}}\n", addr, db)
}

// With the Redis store, replicas share answers; one holding sensitive
// data stays in the replica that made it.
func TestCacheRedisShared(t *testing.T) {
	rdb, top := cacheRedis(t)
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	a, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "  store: redis\n", top))
	b, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "  store: redis\n", top))
	assert.Equal(t, "miss", askChat(t, sdk(a), "What is the capital of France?").cache)
	eventually(t, func() cacheAnswer { return askChat(t, sdk(b), "What is the capital of France?") })

	secret := "Email me at jane.doe@example.com, what is the capital of France?"
	assert.Equal(t, "miss", askChat(t, sdk(a), secret).cache)
	eventually(t, func() cacheAnswer { return askChat(t, sdk(a), secret) })
	assert.Equal(t, "miss", askChat(t, sdk(b), secret).cache, "sensitive answers stay in the replica")
	keys, err := rdb.Keys(context.Background(), "sy:cache:*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		v, err := rdb.Get(context.Background(), k).Result()
		require.NoError(t, err)
		assert.NotContains(t, v, "jane.doe", "no sensitive answer in Redis")
	}
	assert.Len(t, keys, 1, "only the plain answer is shared")
}

// Semantic entries are shared too: a replica that was already running
// finds, by a paraphrase, the answer another stored after it started.
func TestCacheRedisSharedSemantic(t *testing.T) {
	_, top := cacheRedis(t)
	up := newCacheUpstream(t)
	gpu := newEmbedUpstream(t, map[string][]float32{
		"What is the capital of France?": {1, 0, 0, 0},
		"Tell me France's capital city":  {0.98, 0.15, 0, 0},
	})
	a, _ := startGateway(t, cacheConfig(t, "semantic", up.URL, gpu.URL, gpu.URL, "  store: redis\n", top))
	b, _ := startGateway(t, cacheConfig(t, "semantic", up.URL, gpu.URL, gpu.URL, "  store: redis\n", top))
	first := askChat(t, sdk(a), "What is the capital of France?")
	require.Equal(t, "miss", first.cache)
	// no-store: b's misses while its index catches up store nothing of
	// their own.
	hit := eventually(t, func() cacheAnswer {
		return askChat(t, sdk(b), "Tell me France's capital city", option.WithHeader(gateway.HeaderCache, "no-store"))
	})
	assert.Equal(t, first.text, hit.text, "a's answer")
	assert.True(t, strings.HasPrefix(hit.match, "semantic; similarity=0.98"), hit.match)
}

// The in-process route: with no embedding_model set, the first route a
// local-engine embedding model serves embeds the lookup text, inside the
// gateway. The same question in another content form misses the exact
// key and hits semantically.
func TestCacheSemanticLocalEngine(t *testing.T) {
	lib := localLibOrSkip(t)
	up := newCacheUpstream(t)
	y := fmt.Sprintf(`
server: {listen: 127.0.0.1:0, shutdown_timeout: 5s, stream_keepalive: 50ms}
log: {level: error}
policy: {audit: none}
local_engine:
  lib_dir: %s
  models:
    - {name: tiny-embed, path: %s, context: 512, embeddings: true}
backends:
  - {name: local, kind: local, price: {input_per_mtok: 0, output_per_mtok: 0}}
  - {name: openai, kind: proprietary, base_url: %s, api_key: k, price: {input_per_mtok: 1, output_per_mtok: 2}}
models:
  - name: chat
    cache: semantic
    deployments:
      - {backend: openai, model: gpt-x}
  - name: embed
    deployments:
      - {backend: local, model: tiny-embed}
keys:
  - {id: k1, sha256: %s, tenant: t1, team: search}
`, lib, localModel(t), up.URL+"/v1", gateway.HashKey(testKey))
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)
	first := askChat(t, sdk(base), "What is the capital of France?")
	assert.Equal(t, "miss", first.cache)

	parts := `{"model":"chat","messages":[{"role":"system","content":"be brief"},` +
		`{"role":"user","content":[{"type":"text","text":"What is the capital of France?"}]}]}`
	var body []byte
	var resp *http.Response
	// Stored (an exact hit asks no upstream), then found semantically.
	eventually(t, func() cacheAnswer { return askChat(t, sdk(base), "What is the capital of France?") })
	require.Eventually(t, func() bool {
		resp = post(t, base, parts)
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		return resp.Header.Get(gateway.HeaderCache) == "hit"
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "semantic; similarity=1.0000", resp.Header.Get(gateway.HeaderCacheMatch))
	var got struct {
		Choices []struct{ Message struct{ Content string } }
	}
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, first.text, got.Choices[0].Message.Content)
	assert.Equal(t, int64(1), up.calls.Load(), "answered from the cache")
}

// Through the Anthropic SDK, a hit is rendered as a Messages answer, JSON
// and streamed: the cache works on the one pipeline every ingress shares.
func TestCacheThroughMessages(t *testing.T) {
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none}\n"))
	client := claude(base)
	ctx := context.Background()
	params := anthropic.MessageNewParams{Model: "chat", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is the capital of France?"))}}
	var resp *http.Response
	first, err := client.Messages.New(ctx, params, aoption.WithResponseInto(&resp))
	require.NoError(t, err)
	assert.Equal(t, "miss", resp.Header.Get(gateway.HeaderCache))
	require.Eventually(t, func() bool {
		_, err := client.Messages.New(ctx, params, aoption.WithResponseInto(&resp))
		require.NoError(t, err)
		return resp.Header.Get(gateway.HeaderCache) == "hit"
	}, 5*time.Second, 10*time.Millisecond)
	again, err := client.Messages.New(ctx, params, aoption.WithResponseInto(&resp))
	require.NoError(t, err)
	assert.Equal(t, "hit", resp.Header.Get(gateway.HeaderCache))
	require.Len(t, again.Content, 1)
	assert.Equal(t, first.Content[0].Text, again.Content[0].Text)

	stream := client.Messages.NewStreaming(ctx, params, aoption.WithResponseInto(&resp))
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, "hit", resp.Header.Get(gateway.HeaderCache))
	require.Len(t, msg.Content, 1)
	assert.Equal(t, first.Content[0].Text, msg.Content[0].Text, "replayed as Anthropic events")
	assert.Equal(t, int64(1), up.calls.Load())
}

// A stored answer is served only under the same obligations: a team whose
// output is capped never gets an uncapped answer (nor the reverse).
func TestCacheObligations(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Shipped()))
	data := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(data, []byte(strings.Replace(string(b), `"teams": {`, `"teams": {"capped": {"max_output_tokens": 16}, `, 1)), 0o644))
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none, bundle: "+dir+"}\n"))
	assert.Equal(t, "miss", askChat(t, sdk(base), "hi").cache)
	eventually(t, func() cacheAnswer { return askChat(t, sdk(base), "hi") })
	capped := sdk(base, option.WithAPIKey(cappedTeamKey))
	assert.Equal(t, "miss", askChat(t, capped, "hi").cache, "same tenant, another output cap")
	eventually(t, func() cacheAnswer { return askChat(t, capped, "hi") })
}

// A stream whose upstream sent no usage is stored with the gateway's
// estimate, which a hit reports.
func TestCacheStreamWithoutUsage(t *testing.T) {
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "", "policy: {audit: none}\n"))
	client := sdk(base)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("no usage please")},
	})
	for stream.Next() {
	}
	require.NoError(t, stream.Err())
	var resp *http.Response
	var got *openai.ChatCompletion
	require.Eventually(t, func() bool {
		var err error
		got, err = client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("no usage please")},
		}, option.WithResponseInto(&resp))
		require.NoError(t, err)
		return resp.Header.Get(gateway.HeaderCache) == "hit"
	}, 5*time.Second, 10*time.Millisecond)
	assert.Positive(t, got.Usage.PromptTokens, "the estimate was stored with the answer")
	assert.Positive(t, got.Usage.CompletionTokens)
	assert.Equal(t, "true", resp.Header.Get(gateway.HeaderEstimated))

	// A streamed hit asking for usage gets one usage chunk, the stored
	// estimate, as the miss did.
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(
		`{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"no usage please"}]}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(r.Body)
	r.Body.Close()
	require.Equal(t, "hit", r.Header.Get(gateway.HeaderCache))
	usageChunks := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if data, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(data, "usage.prompt_tokens").Exists() {
			usageChunks++
		}
	}
	assert.Equal(t, 1, usageChunks, "%s", raw)
}

// The lookup's embedding call is a span of its own, named and attributed
// as an embeddings call and ended with it; the request's attempt span
// (the chat call, which gets the usage) stays the request's.
func TestCacheLookupEmbeddingSpan(t *testing.T) {
	up := newCacheUpstream(t)
	gpu := newEmbedUpstream(t, map[string][]float32{
		"What is the capital of France?": {1, 0, 0, 0},
		"Tell me France's capital city":  {0.98, 0.15, 0, 0},
	})
	exp := tracetest.NewInMemoryExporter()
	base, _ := startGatewayWith(t, cacheConfig(t, "semantic", up.URL, gpu.URL, gpu.URL, "", "policy: {audit: none}\n"), gateway.Options{Version: "test", SpanExporter: exp})
	client := sdk(base)

	// The spans of the trace the client started, once its server span ended.
	ask := func(question, traceID string) (cacheAnswer, map[string][]sdktrace.ReadOnlySpan) {
		a := askChat(t, client, question, option.WithHeader("Traceparent", "00-"+traceID+"-b7ad6b7169203331-01"))
		var got map[string][]sdktrace.ReadOnlySpan
		require.Eventually(t, func() bool {
			got = map[string][]sdktrace.ReadOnlySpan{}
			for _, s := range exp.GetSpans().Snapshots() {
				if s.SpanContext().TraceID().String() == traceID {
					got[s.Name()] = append(got[s.Name()], s)
				}
			}
			return len(got["POST /v1/chat/completions"]) == 1
		}, 5*time.Second, 10*time.Millisecond)
		return a, got
	}
	miss, sp := ask("What is the capital of France?", "0af7651916cd43dd8448eb211c803101")
	require.Equal(t, "miss", miss.cache)
	require.Len(t, sp["embeddings bge"], 1, "the lookup's embedding span, ended")
	emb := sp["embeddings bge"][0]
	assert.Equal(t, "embeddings", attrs(emb)["gen_ai.operation.name"].AsString())
	assert.NotContains(t, attrs(emb), attribute.Key("gen_ai.usage.output_tokens"), "the request's usage is not the embedding's")
	assert.Empty(t, sp["chat bge"])
	require.Len(t, sp["chat gpt-x"], 1, "the request's own attempt")
	assert.Positive(t, attrs(sp["chat gpt-x"][0])["gen_ai.usage.output_tokens"].AsInt64())

	eventually(t, func() cacheAnswer { return askChat(t, client, "Tell me France's capital city") })
	hit, sp := ask("Tell me France's capital city", "0af7651916cd43dd8448eb211c803102")
	require.Equal(t, "hit", hit.cache)
	require.Len(t, sp["embeddings bge"], 1)
	assert.Empty(t, sp["chat gpt-x"], "a hit calls no chat upstream")
}

// A streamed answer is bounded by its size, not by its chunks' envelopes:
// 60 one-word chunks (~11 KB on the wire) of a ~400-byte answer are
// stored under a 2 KiB bound.
func TestCacheStreamBoundBySize(t *testing.T) {
	words := strings.Fields(strings.Repeat("lorem ipsum dolor sit amet consectetur ", 10))
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		events := []string{chunk("gpt-x", `{"role":"assistant","content":""}`, "")}
		for _, word := range words {
			events = append(events, chunk("gpt-x", `{"content":"`+word+` "}`, ""))
		}
		writeSSE(w, append(events, chunk("gpt-x", `{}`, "stop"), usageChunk("gpt-x", 30, len(words)))...)
	})
	emb := newEmbedUpstream(t, nil)
	base, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "  max_entry_bytes: 2KiB\n", "policy: {audit: none}\n"))
	streamed := askChatStream(t, sdk(base), "Say lorem ipsum")
	require.Equal(t, "miss", streamed.cache)
	hit := eventually(t, func() cacheAnswer { return askChat(t, sdk(base), "Say lorem ipsum") })
	assert.Equal(t, streamed.text, hit.text)
	assert.Len(t, strings.Fields(hit.text), len(words))
}

// An answer holding sensitive data the question did not stays in the
// replica that made it, as one whose question held it.
func TestCacheSensitiveAnswerStaysLocal(t *testing.T) {
	rdb, top := cacheRedis(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("gpt-x", "Write to jane.doe@example.com or call +44 20 7946 0958", 30, 12, 0))
	})
	emb := newEmbedUpstream(t, nil)
	a, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "  store: redis\n", top))
	b, _ := startGateway(t, cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "  store: redis\n", top))
	require.Equal(t, "miss", askChat(t, sdk(a), "Who is the support contact?").cache)
	eventually(t, func() cacheAnswer { return askChat(t, sdk(a), "Who is the support contact?") })
	assert.Equal(t, "miss", askChat(t, sdk(b), "Who is the support contact?").cache, "not shared")
	keys, err := rdb.Keys(context.Background(), "sy:cache:*").Result()
	require.NoError(t, err)
	assert.Empty(t, keys, "the answer holding an email and a phone number is not in Redis")
}

// An exact entry found but not served (another decision made it) leaves
// nothing behind: the request's reservation counts its prompt on the
// deployments its own decision kept, as without the cache.
func TestCacheFoundNotServedReservesNarrowedEstimate(t *testing.T) {
	up := newCacheUpstream(t)
	emb := newEmbedUpstream(t, nil)
	cfg := cacheConfig(t, "exact", up.URL, emb.URL, emb.URL, "",
		"policy: {audit: none}\nquotas:\n  limits:\n    - {scope: key, tokens_per_minute: 100000000}\n")
	// openai (excluded for internal data) counts with Approx, edge with
	// o200k_base: the two estimates differ.
	cfg.Models[0].Deployments[0].Model, cfg.Models[0].Deployments[1].Model = "claude-x", "gpt-4o"
	exp := tracetest.NewInMemoryExporter()
	base, _ := startGatewayWith(t, cfg, gateway.Options{Version: "test", SpanExporter: exp})
	client := sdk(base)
	question := strings.Repeat("Summarise the quarterly figures for the northern region, please. ", 20)

	reserved := func(traceID string, opts ...option.RequestOption) (string, int64) {
		a := askChat(t, client, question, append(opts, option.WithHeader("Traceparent", "00-"+traceID+"-b7ad6b7169203331-01"))...)
		var est int64
		require.Eventually(t, func() bool {
			for _, s := range exp.GetSpans().Snapshots() {
				if s.SpanContext().TraceID().String() == traceID && s.Name() == "quota.reserve" {
					est = attrs(s)["switchyard.quota.estimate_tokens"].AsInt64()
					return true
				}
			}
			return false
		}, 5*time.Second, 10*time.Millisecond)
		return a.cache, est
	}
	first, whole := reserved("0af7651916cd43dd8448eb211c803201")
	require.Equal(t, "miss", first)
	eventually(t, func() cacheAnswer { return askChat(t, client, question) })
	internal := option.WithHeader(gateway.HeaderDataClass, "internal")
	found, narrowed := reserved("0af7651916cd43dd8448eb211c803202", internal)
	require.Equal(t, "miss", found, "stored under another decision: not served")
	_, fresh := reserved("0af7651916cd43dd8448eb211c803203", internal, option.WithHeader(gateway.HeaderCache, "no-cache"))
	assert.Equal(t, fresh, narrowed, "as without a stored entry")
	assert.Less(t, narrowed, whole, "the decision kept the deployment that counts fewer")
}
