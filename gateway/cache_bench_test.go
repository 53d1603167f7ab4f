package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/gguf"
)

// The response cache through the gateway, as docs/benchmarks.md
// ("Response cache") reports it. Every request is timed on its own and
// the benchmarks report the median and the 99th percentile (µs) beside
// the mean (sec/op). Each runs two ways against one gateway:
//
//   - inprocess: the Fiber handler driven with a fasthttp.RequestCtx, no
//     client socket, as BenchmarkChatCompletionJSON and
//     BenchmarkAllFeatures do;
//   - loopback: a net/http client with keep-alive over a loopback TCP
//     connection to the gateway serving on 127.0.0.1.
//
// And with two sets of features: policy (the shipped bundle, the audit
// trail written to /dev/null, Prometheus metrics, the memory ledger: what
// cannot be switched off, plus audit and metrics), and allon (those, plus
// quotas in a real redis-server and every span exported over OTLP/HTTP to
// a sink, as BenchmarkAllFeatures; needs SWITCHYARD_TEST_REDIS).

// cacheBenchSystem is a realistic system prompt (~600 bytes).
const cacheBenchSystem = "You are the support assistant of Example Corp, a company that sells accounting software " +
	"to small businesses. Answer in the customer's language, in at most three short paragraphs. Never invent " +
	"prices, dates or features: when you do not know, say so and offer to open a ticket. Do not give legal or " +
	"tax advice; point to an accountant instead. Format lists with hyphens, code and file names in backticks. " +
	"The customer is on the Business plan, in the EU, and their account was created in 2023. Be friendly but " +
	"brief, and end every answer with one question that moves the conversation forward."

// cacheBenchBody is a chat request for route chat of a system prompt and
// five turns (~1.5 KB), whose last user content is last (a string, or a
// JSON array of parts when raw).
func cacheBenchBody(last any) string {
	msgs := []map[string]any{
		{"role": "system", "content": cacheBenchSystem},
		{"role": "user", "content": "Hi, I can't export my invoices to PDF since this morning. The button is greyed out."},
		{"role": "assistant", "content": "Sorry about that! The export is disabled while an invoice is still a draft. " +
			"Could you check whether the invoices you want to export are finalised (status \"Sent\" or \"Paid\")?"},
		{"role": "user", "content": "They are all marked as Sent. I also tried another browser, same thing."},
		{"role": "assistant", "content": "Thanks for checking. Then it may be the export permission of your user role: " +
			"only Owners and Accountants may export. Which role does your user have under Settings → Team?"},
		{"role": "user", "content": last},
	}
	b, err := json.Marshal(map[string]any{"model": "chat", "messages": msgs, "temperature": 0.2, "max_tokens": 512})
	if err != nil {
		panic(err)
	}
	return string(b)
}

const cacheBenchQuestion = "I am an Accountant, and it still does not work. What else can I try?"

// cacheBenchAnswer is the upstream's ~1 KB answer.
var cacheBenchAnswer = chatCompletion("gpt-x", strings.Repeat("Owners and Accountants can export invoices; ask your Owner to change your role. ", 10), 380, 160, 0)

// cacheBenchUpstream answers every chat request with cacheBenchAnswer and
// drops the spans exported to it.
func cacheBenchUpstream(b testing.TB) *upstream {
	return newUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
			return
		}
		writeJSON(w, 200, cacheBenchAnswer)
	})
}

// cacheBenchConfig serves route chat from upstream with the cache in mode
// (exact, semantic or off) and the features named (policy or allon);
// local adds the local engine's backend and an embed route served by
// its model demo-embed, and top is appended (top-level sections).
func cacheBenchConfig(b testing.TB, mode, features, upstreamURL string, local bool, top string) *config.Config {
	b.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, `server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}
log: {level: warn}
policy: {audit: /dev/null}
backends:
  - {name: mock, kind: selfhosted, provider: openai, base_url: %s/v1, price: {input_per_mtok: 1, output_per_mtok: 2}}
`, upstreamURL)
	if local {
		y.WriteString("  - {name: local, kind: local, price: {input_per_mtok: 0, output_per_mtok: 0}}\n")
	}
	fmt.Fprintf(&y, "models:\n  - {name: chat, cache: %s, deployments: [{backend: mock, model: gpt-x}]}\n", mode)
	if local {
		y.WriteString("  - {name: embed, deployments: [{backend: local, model: demo-embed}]}\n")
	}
	fmt.Fprintf(&y, "keys:\n  - {id: bench, sha256: %s, tenant: bench-%d, team: bench}\n", gateway.HashKey(testKey), time.Now().UnixNano())
	if features == "allon" {
		addr := os.Getenv("SWITCHYARD_TEST_REDIS")
		if addr == "" {
			b.Skip("no Redis: set SWITCHYARD_TEST_REDIS=host:port")
		}
		fmt.Fprintf(&y, `telemetry:
  traces: {exporter: otlp-http, endpoint: "%s", insecure: true, sampling_ratio: 1}
quotas:
  store: redis
  redis: {addrs: ["%s"]}
  limits:
    - {scope: key, requests_per_minute: 100000000, tokens_per_minute: 10000000000}
    - {scope: team, usd_per_month: 1000000}
`, upstreamURL, addr)
	}
	y.WriteString(top)
	cfg, err := config.Parse([]byte(y.String()), func(string) (string, bool) { return "", false })
	require.NoError(b, err, y.String())
	return cfg
}

// cacheBenchGateway builds a gateway from cfg and serves it on a loopback
// port; its handler is also driven in process.
type cacheBenchGateway struct {
	url     string // .../v1/chat/completions
	handler fasthttp.RequestHandler
	client  *http.Client
}

func startCacheBenchGateway(b testing.TB, cfg *config.Config) *cacheBenchGateway {
	b.Helper()
	srv, err := gateway.New(cfg, gateway.Options{Version: "bench"})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(func() {
		client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &cacheBenchGateway{url: "http://" + ln.Addr().String() + "/v1/chat/completions", handler: srv.App().Handler(), client: client}
}

// cacheBenchReply is what one request got.
type cacheBenchReply struct {
	status       int
	cache, match string
	body         []byte
}

// inProcess sends body to the handler.
func (g *cacheBenchGateway) inProcess(b testing.TB, body string) cacheBenchReply {
	var req fasthttp.Request
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI("/v1/chat/completions")
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	g.handler(&ctx)
	return cacheBenchReply{status: ctx.Response.StatusCode(), cache: string(ctx.Response.Header.Peek(gateway.HeaderCache)),
		match: string(ctx.Response.Header.Peek(gateway.HeaderCacheMatch)), body: ctx.Response.Body()}
}

// loopback sends body over the loopback connection and reads the whole
// answer.
func (g *cacheBenchGateway) loopback(b testing.TB, body string) cacheBenchReply {
	req, err := http.NewRequest(http.MethodPost, g.url, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return cacheBenchReply{status: resp.StatusCode, cache: resp.Header.Get(gateway.HeaderCache),
		match: resp.Header.Get(gateway.HeaderCacheMatch), body: got}
}

// storeFirst asks body until it is a hit (answers are stored in the
// background, just after the response).
func (g *cacheBenchGateway) storeFirst(b testing.TB, body string) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := g.loopback(b, body)
		require.Equal(b, 200, r.status, "%s", r.body)
		if r.cache == "hit" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("never a hit: X-Switchyard-Cache %q", r.cache)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// benchLatency runs one per iteration, timing each, and reports the
// median and the 99th percentile in µs.
func benchLatency(b *testing.B, one func(i int)) {
	b.ReportAllocs()
	lat := make([]time.Duration, 0, 1<<16)
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		one(i)
		lat = append(lat, time.Since(t))
	}
	// After the loop: b.Loop resets the reported metrics.
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// transports runs bench once per transport: in process and over
// loopback HTTP.
func transports(b *testing.B, g *cacheBenchGateway, bench func(b *testing.B, send func(testing.TB, string) cacheBenchReply)) {
	b.Run("inprocess", func(b *testing.B) { bench(b, g.inProcess) })
	b.Run("loopback", func(b *testing.B) { bench(b, g.loopback) })
}

// BenchmarkCacheHit: an exact hit, the answer stored first; every
// request must be served from the cache.
func BenchmarkCacheHit(b *testing.B) {
	for _, features := range []string{"policy", "allon"} {
		b.Run(features, func(b *testing.B) {
			up := cacheBenchUpstream(b)
			g := startCacheBenchGateway(b, cacheBenchConfig(b, "exact", features, up.URL, false, ""))
			body := cacheBenchBody(cacheBenchQuestion)
			g.storeFirst(b, body)
			transports(b, g, func(b *testing.B, send func(testing.TB, string) cacheBenchReply) {
				benchLatency(b, func(int) {
					if r := send(b, body); r.status != 200 || r.cache != "hit" || r.match != "exact" {
						b.Fatalf("status %d, cache %q %q: %s", r.status, r.cache, r.match, r.body)
					}
				})
			})
		})
	}
}

// BenchmarkCacheMissBareProxy is the upstream round trip the hit saves,
// with the same features and request against an httptest upstream that
// answers at once: the cache off (the route does not opt in), and a miss
// (the route in exact mode, every request a new question, so each is
// looked up, answered upstream and stored in the background; the store's
// 10,000 entries fill and evict).
func BenchmarkCacheMissBareProxy(b *testing.B) {
	for _, features := range []string{"policy", "allon"} {
		for _, mode := range []string{"off", "miss"} {
			b.Run(features+"/cache="+mode, func(b *testing.B) {
				up := cacheBenchUpstream(b)
				cfgMode := "off"
				if mode == "miss" {
					cfgMode = "exact"
				}
				g := startCacheBenchGateway(b, cacheBenchConfig(b, cfgMode, features, up.URL, false, ""))
				want := "bypass"
				if mode == "miss" {
					want = "miss"
				}
				seq := 0
				template := cacheBenchBody(cacheBenchQuestion + " (case #)")
				transports(b, g, func(b *testing.B, send func(testing.TB, string) cacheBenchReply) {
					body := cacheBenchBody(cacheBenchQuestion)
					benchLatency(b, func(int) {
						if mode == "miss" {
							seq++
							body = strings.Replace(template, "#", strconv.Itoa(seq), 1)
						}
						if r := send(b, body); r.status != 200 || r.cache != want {
							b.Fatalf("status %d, cache %q: %s", r.status, r.cache, r.body)
						}
					})
				})
			})
		}
	}
}

// cacheBenchLlamaLib returns the llama.cpp library directory, or skips
// (localLibOrSkip for a benchmark).
func cacheBenchLlamaLib(b testing.TB) string {
	b.Helper()
	dir := os.Getenv(localengine.LibEnv)
	if dir == "" {
		dir = filepath.Join("..", localengine.DefaultLibDir)
	}
	if _, err := localengine.Open(dir); err != nil {
		b.Skipf("llama.cpp libraries not available: %v", err)
	}
	return dir
}

// BenchmarkCacheSemanticHitLocal: a semantic hit whose lookup text is
// embedded in process by the local engine, on the demo model (the
// generated tiny shape config.yaml's demo uses: 64 dimensions, 2 layers,
// one thread). The answer is stored for the question as a string; every
// request asks it as an array of one text part, which changes the exact
// key but not the lookup text: an exact miss, then a semantic hit of
// similarity 1 after the embedding.
func BenchmarkCacheSemanticHitLocal(b *testing.B) {
	lib := cacheBenchLlamaLib(b)
	model := filepath.Join(b.TempDir(), "demo.gguf")
	require.NoError(b, gguf.GenerateFile(model, gguf.Tiny, 7))
	up := cacheBenchUpstream(b)
	top := fmt.Sprintf(`local_engine:
  lib_dir: %s
  models:
    - {name: demo-embed, path: %s, context: 512, threads: 1, embeddings: true}
cache:
  semantic: {embedding_model: embed}
`, lib, model)
	g := startCacheBenchGateway(b, cacheBenchConfig(b, "semantic", "policy", up.URL, true, top))
	stored := cacheBenchBody(cacheBenchQuestion)
	asked := cacheBenchBody([]map[string]string{{"type": "text", "text": cacheBenchQuestion}})
	first := g.loopback(b, stored)
	require.Equal(b, 200, first.status, "%s", first.body)
	require.Equal(b, "miss", first.cache)
	// Stored (an exact hit) before the other form is asked: a miss of
	// that form would be stored under its own key and hit exactly.
	g.storeFirst(b, stored)
	g.storeFirst(b, asked)
	transports(b, g, func(b *testing.B, send func(testing.TB, string) cacheBenchReply) {
		benchLatency(b, func(int) {
			if r := send(b, asked); r.status != 200 || r.cache != "hit" || r.match != "semantic; similarity=1.0000" {
				b.Fatalf("status %d, cache %q %q: %s", r.status, r.cache, r.match, r.body)
			}
		})
	})
}
