package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// benchHandler drives the gateway's handler in process (no client socket)
// against a loopback upstream that answers at once, so the figures are the
// gateway's own cost per request plus one loopback round trip upstream.
func benchHandler(b *testing.B, body string, upstream http.HandlerFunc) {
	up := newUpstream(b, upstream)
	benchServe(b, gatewayConfig(b, "", route{name: "chat", backends: []string{up.URL + "/v1"}}), body)
}

// benchServe drives cfg's handler with body, one request at a time.
func benchServe(b *testing.B, cfg *config.Config, body string) { benchServeN(b, cfg, body, 0) }

// benchServeN drives cfg's handler with body; parallel > 0 runs
// parallel × GOMAXPROCS requests at once (b.RunParallel).
func benchServeN(b *testing.B, cfg *config.Config, body string, parallel int) {
	srv, err := gateway.New(cfg, gateway.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { // before the upstream (the trace sink) closes
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	h := srv.App().Handler()

	var req fasthttp.Request
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI("/v1/chat/completions")
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)

	one := func() {
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		// Drain a streamed body the way fasthttp would write it.
		if ctx.Response.IsBodyStream() {
			_ = ctx.Response.Body()
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel > 0 {
		b.SetParallelism(parallel)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
		return
	}
	for b.Loop() {
		one()
	}
}

func BenchmarkChatCompletionJSON(b *testing.B) {
	resp := chatCompletion("m", "Hello! How can I help you today? I am a small mock answer of about forty tokens, enough to look like a real reply.", 12, 40, 0)
	benchHandler(b, `{"model":"chat","messages":[{"role":"user","content":"Say hello"}]}`, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, resp)
	})
}

func BenchmarkChatCompletionStream(b *testing.B) {
	events := []string{chunk("m", `{"role":"assistant","content":""}`, "")}
	for range 18 {
		events = append(events, chunk("m", `{"content":"word "}`, ""))
	}
	events = append(events, chunk("m", `{}`, "stop"), usageChunk("m", 12, 19))
	benchHandler(b, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`, func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, events...)
	})
}

// BenchmarkAllFeatures is the JSON request with every feature on, as
// bench/run.sh's all-on configuration: policy with the shipped bundle, the
// audit trail to a file, quotas in a real redis-server
// (SWITCHYARD_TEST_REDIS), every span exported over OTLP/HTTP to a sink,
// metrics and the ledger. Profile it with -cpuprofile / -memprofile.
func BenchmarkAllFeatures(b *testing.B) {
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		b.Skip("no Redis: set SWITCHYARD_TEST_REDIS=host:port")
	}
	resp := chatCompletion("m", "Hello! How can I help you today? I am a small mock answer of about forty tokens, enough to look like a real reply.", 12, 40, 0)
	for _, tc := range []struct {
		stream   bool
		parallel int
	}{{false, 0}, {true, 0}, {false, 4}, {true, 4}} {
		stream := tc.stream
		name := "json"
		body := `{"model":"chat","messages":[{"role":"user","content":"Say hello"}]}`
		if stream {
			name, body = "stream", `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello"}]}`
		}
		if tc.parallel > 0 {
			name += "-parallel"
		}
		b.Run(name, func(b *testing.B) {
			events := []string{chunk("m", `{"role":"assistant","content":""}`, "")}
			for range 18 {
				events = append(events, chunk("m", `{"content":"word "}`, ""))
			}
			events = append(events, chunk("m", `{}`, "stop"), usageChunk("m", 12, 19))
			up := newUpstream(b, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/traces" {
					_, _ = io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusOK)
					return
				}
				if stream {
					writeSSE(w, events...)
					return
				}
				writeJSON(w, 200, resp)
			})
			y := fmt.Sprintf(`server: {listen: 127.0.0.1:0}
log: {level: warn}
policy: {audit: %s}
backends:
  - {name: mock, kind: selfhosted, provider: openai, base_url: %s/v1}
models:
  - {name: chat, deployments: [{backend: mock, model: m}]}
keys:
  - {id: bench, sha256: %s, tenant: bench-%d, team: bench}
telemetry:
  traces: {exporter: otlp-http, endpoint: "%s", insecure: true, sampling_ratio: 1}
quotas:
  store: redis
  redis: {addrs: ["%s"]}
  limits:
    - {scope: key, requests_per_minute: 100000000, tokens_per_minute: 10000000000}
    - {scope: team, usd_per_month: 1000000}
`, filepath.Join(b.TempDir(), "audit.jsonl"), up.URL, gateway.HashKey(testKey), time.Now().UnixNano(), up.URL, addr)
			cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
			require.NoError(b, err, y)
			benchServeN(b, cfg, body, tc.parallel)
		})
	}
}
