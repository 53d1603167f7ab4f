package gateway_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/switchyard/switchyard/gateway"
)

// benchHandler drives the gateway's handler in process (no client socket)
// against a loopback upstream that answers at once, so the figures are the
// gateway's own cost per request plus one loopback round trip upstream.
func benchHandler(b *testing.B, body string, upstream http.HandlerFunc) {
	up := newUpstream(b, upstream)
	cfg := gatewayConfig(b, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	srv, err := gateway.New(cfg, gateway.Options{})
	require.NoError(b, err)
	h := srv.App().Handler()

	var req fasthttp.Request
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI("/v1/chat/completions")
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.SetContentType("application/json")
	req.SetBodyString(body)

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
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
