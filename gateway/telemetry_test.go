package gateway_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/gateway"
)

// traced serves routes with an in-memory span exporter.
func traced(t *testing.T, extra string, routes ...route) (string, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	base, _ := startGatewayWith(t, gatewayConfig(t, extra, routes...), gateway.Options{Version: "test", SpanExporter: exp})
	return base, exp
}

// spans of one trace by name; the server span ends last, so wait for it.
func spansByName(t *testing.T, exp *tracetest.InMemoryExporter, server string) map[string][]sdktrace.ReadOnlySpan {
	t.Helper()
	var got map[string][]sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		got = map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range exp.GetSpans().Snapshots() {
			got[s.Name()] = append(got[s.Name()], s)
		}
		return len(got[server]) == 1
	}, 5*time.Second, 10*time.Millisecond)
	return got
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	require.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s under %s", child.Name(), parent.Name())
	require.Equal(t, parent.SpanContext().TraceID(), child.SpanContext().TraceID())
}

func TestTraceOfAJSONRequest(t *testing.T) {
	var upstreamTraceparent string
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		upstreamTraceparent = r.Header.Get("Traceparent")
		writeJSON(w, 200, chatCompletion("qwen-resp", "hi", 100, 20, 10))
	})
	base, exp := traced(t, "", route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}})

	// The client's own trace context is continued.
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(`{"model":"chat","max_tokens":64,"temperature":0.5,"messages":[{"role":"user","content":"hello"}]}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	sp := spansByName(t, exp, "POST /v1/chat/completions")
	server := sp["POST /v1/chat/completions"][0]
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", server.SpanContext().TraceID().String())
	assert.Equal(t, trace.SpanKindServer, server.SpanKind())
	sa := attrs(server)
	assert.EqualValues(t, 200, sa["http.response.status_code"].AsInt64())
	assert.Equal(t, resp.Header.Get("X-Switchyard-Decision-Id"), sa["switchyard.decision_id"].AsString())
	assert.Equal(t, "0.000135", sa["switchyard.cost_usd"].AsString())

	for _, name := range []string{"classify", "policy", "route"} {
		require.Len(t, sp[name], 1, name)
		childOf(t, sp[name][0], server)
	}
	assert.Contains(t, attrs(sp["policy"][0])["switchyard.policy.routes"].AsStringSlice(), "b0/qwen")

	attempt := sp["chat qwen"]
	require.Len(t, attempt, 1)
	childOf(t, attempt[0], sp["route"][0])
	assert.Equal(t, trace.SpanKindClient, attempt[0].SpanKind())
	a := attrs(attempt[0])
	assert.Equal(t, "chat", a["gen_ai.operation.name"].AsString())
	assert.Equal(t, "openai", a["gen_ai.provider.name"].AsString())
	assert.Equal(t, "qwen", a["gen_ai.request.model"].AsString())
	assert.Equal(t, "qwen-resp", a["gen_ai.response.model"].AsString())
	assert.Equal(t, "chatcmpl-1", a["gen_ai.response.id"].AsString())
	assert.Equal(t, []string{"stop"}, a["gen_ai.response.finish_reasons"].AsStringSlice())
	assert.EqualValues(t, 100, a["gen_ai.usage.input_tokens"].AsInt64())
	assert.EqualValues(t, 20, a["gen_ai.usage.output_tokens"].AsInt64())
	assert.EqualValues(t, 10, a["gen_ai.usage.cache_read.input_tokens"].AsInt64())
	assert.EqualValues(t, 64, a["gen_ai.request.max_tokens"].AsInt64())
	assert.InDelta(t, 0.5, a["gen_ai.request.temperature"].AsFloat64(), 1e-9)
	assert.Equal(t, "127.0.0.1", a["server.address"].AsString())
	assert.Positive(t, a["server.port"].AsInt64())

	// The upstream joined the trace, under the attempt's span.
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-"+attempt[0].SpanContext().SpanID().String()+"-01", upstreamTraceparent)

	// Prompt and completion text are never recorded.
	for _, s := range exp.GetSpans().Snapshots() {
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.Emit(), "hello", "%s %s", s.Name(), kv.Key)
		}
	}
}

// A streamed answer's spans end with the stream, not when the handler
// returns, and carry the time to first chunk.
func TestTraceOfAStream(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{chunk("qwen", "Hel", ""), chunk("qwen", "lo", ""), chunk("qwen", "!", "stop"), usageChunk("qwen", 12, 3), "[DONE]"} {
			io.WriteString(w, "data: "+ev+"\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	})
	base, exp := traced(t, "", route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}})
	resp := post(t, base, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	sp := spansByName(t, exp, "POST /v1/chat/completions")
	attempt := sp["chat qwen"][0]
	a := attrs(attempt)
	ttfc := a["gen_ai.response.time_to_first_chunk"].AsFloat64()
	assert.Positive(t, ttfc)
	assert.Less(t, ttfc, 0.2)
	took := attempt.EndTime().Sub(attempt.StartTime())
	assert.GreaterOrEqual(t, took, 200*time.Millisecond, "the attempt's span lasts until the last chunk")
	assert.EqualValues(t, 3, a["gen_ai.usage.output_tokens"].AsInt64())
	server := sp["POST /v1/chat/completions"][0]
	assert.False(t, server.EndTime().Before(attempt.EndTime()))
}

// A fallback shows as two attempts; the first says why it failed.
func TestTraceOfAFallback(t *testing.T) {
	bad := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, `{"error":{"message":"overloaded","type":"server_error"}}`)
	})
	good := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("qwen", "hi", 10, 2, 0))
	})
	base, exp := traced(t, "", route{name: "chat", upstream: "qwen", backends: []string{bad.URL + "/v1", good.URL + "/v1"}})
	resp := post(t, base, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	sp := spansByName(t, exp, "POST /v1/chat/completions")
	attempts := sp["chat qwen"]
	require.Len(t, attempts, 2)
	byBackend := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range attempts {
		byBackend[attrs(s)["switchyard.backend"].AsString()] = s
		childOf(t, s, sp["route"][0])
	}
	assert.Equal(t, "upstream_error", attrs(byBackend["b0"])["error.type"].AsString())
	assert.EqualValues(t, 10, attrs(byBackend["b1"])["gen_ai.usage.input_tokens"].AsInt64())
	assert.EqualValues(t, 2, attrs(sp["POST /v1/chat/completions"][0])["switchyard.attempts"].AsInt64())
}

// A denial: the policy span says why; nothing is routed.
func TestTraceOfAPolicyDenial(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { t.Error("a denied request must not reach the upstream") })
	cfg := gatewayConfig(t, "", route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}})
	cfg.Keys[0].Team = "interns" // may only use llama3.2 in the shipped bundle
	exp := tracetest.NewInMemoryExporter()
	base, _ := startGatewayWith(t, cfg, gateway.Options{Version: "test", SpanExporter: exp})
	resp := post(t, base, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
	resp.Body.Close()
	require.Equal(t, 403, resp.StatusCode)

	sp := spansByName(t, exp, "POST /v1/chat/completions")
	pa := attrs(sp["policy"][0])
	assert.False(t, pa["switchyard.policy.allow"].AsBool())
	assert.Equal(t, []string{"MODEL_NOT_ALLOWED"}, pa["switchyard.policy.reasons"].AsStringSlice())
	assert.Empty(t, sp["route"])
	assert.EqualValues(t, 403, attrs(sp["POST /v1/chat/completions"][0])["http.response.status_code"].AsInt64())
}

// After traffic, /metrics has the token usage and cost of the requests.
func TestMetricsAfterTraffic(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "chat") && r.Header.Get("Accept") == "text/event-stream" {
			writeSSE(w, chunk("qwen", "a", ""), chunk("qwen", "b", "stop"), usageChunk("qwen", 7, 2), "[DONE]")
			return
		}
		writeJSON(w, 200, chatCompletion("qwen", "hi", 100, 20, 10))
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", upstream: "qwen", backends: []string{up.URL + "/v1"}}))
	for range 3 {
		resp := post(t, base, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`)
		resp.Body.Close()
	}
	resp := post(t, base, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The stream's record is emitted after its last write.
	var metrics string
	require.Eventually(t, func() bool {
		m, err := http.Get(strings.TrimSuffix(base, "/v1") + "/metrics")
		require.NoError(t, err)
		defer m.Body.Close()
		b, _ := io.ReadAll(m.Body)
		metrics = string(b)
		return strings.Contains(metrics, "time_to_first_chunk_seconds_count")
	}, 5*time.Second, 10*time.Millisecond)
	value := func(prefix string, labels ...string) float64 {
		t.Helper()
		for _, l := range strings.Split(metrics, "\n") {
			if !strings.HasPrefix(l, prefix+"{") {
				continue
			}
			ok := true
			for _, lab := range labels {
				ok = ok && strings.Contains(l, lab)
			}
			if ok {
				v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
				require.NoError(t, err)
				return v
			}
		}
		t.Fatalf("no %s %v in\n%s", prefix, labels, metrics)
		return 0
	}
	// Three requests of 100 prompt (10 cached) and 20 completion tokens at
	// $1 in, $0.50 cached, $2 out per million: 135 micro-dollars each.
	assert.Equal(t, 307.0, value("gen_ai_client_token_usage_sum", `gen_ai_token_type="input"`, `gen_ai_provider_name="openai"`, `gen_ai_request_model="qwen"`))
	assert.Equal(t, 62.0, value("gen_ai_client_token_usage_sum", `gen_ai_token_type="output"`))
	assert.Equal(t, 4.0, value("gen_ai_client_operation_duration_seconds_count", `gen_ai_operation_name="chat"`))
	assert.Equal(t, 1.0, value("gen_ai_client_operation_time_to_first_chunk_seconds_count", `gen_ai_operation_name="chat"`))
	assert.Equal(t, 1.0, value("gen_ai_client_operation_time_per_output_chunk_seconds_count", `gen_ai_operation_name="chat"`))
	// 7 prompt and 2 completion tokens streamed: 7 + 4 micro-dollars.
	assert.InDelta(t, 0.000405+0.000011, value("switchyard_cost_USD_total", `switchyard_tenant="acme"`, `switchyard_team="search"`, `gen_ai_request_model="chat"`, `switchyard_backend_kind="selfhosted"`), 1e-12)
	assert.Equal(t, 4.0, value("switchyard_requests_total", `outcome="ok"`, `switchyard_backend_kind="selfhosted"`))
	assert.Equal(t, 4.0, value("switchyard_policy_decisions_total", `outcome="allow"`))
	assert.Equal(t, 1.0, value("switchyard_backend_healthy", `switchyard_deployment="b0/qwen"`))
	assert.NotContains(t, metrics, "request_id")
	assert.NotContains(t, metrics, `key_id`)
}
