package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// The virtual key every test gateway accepts.
const testKey = "sk-test-key"

// The key the gateway must send upstream instead of the client's.
const backendKey = "sk-backend-secret"

// upstream is a fake OpenAI-compatible server. It records what it received
// and answers with handler.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	handler  http.HandlerFunc
}

type received struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

func newUpstream(t testing.TB, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{handler: h}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		u.mu.Lock()
		u.requests = append(u.requests, received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		u.handler(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.requests...)
}

// deadUpstream is a URL nothing listens on.
func deadUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1"
}

// chatCompletion is a complete OpenAI chat.completion body.
func chatCompletion(model, content string, prompt, completion, cached int) string {
	return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":%q,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%q,"refusal":null},"logprobs":null,"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d}}}`,
		model, content, prompt, completion, prompt+completion, cached)
}

func chunk(model, delta string, finish string) string {
	fr := "null"
	if finish != "" {
		fr = fmt.Sprintf("%q", finish)
	}
	return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}`,
		model, delta, fr)
}

func usageChunk(model string, prompt, completion int) string {
	return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
		model, prompt, completion, prompt+completion)
}

// writeSSE sends events one by one, flushing each, then [DONE].
func writeSSE(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	for _, e := range events {
		fmt.Fprintf(w, "data: %s\n\n", e)
		f.Flush()
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	f.Flush()
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// gatewayConfig is a config with one model route per entry of routes: the
// public name and the backends (by URL) it is deployed on, in order.
type route struct {
	name     string
	upstream string // upstream model name
	backends []string
}

func gatewayConfig(t testing.TB, extra string, routes ...route) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("server:\n  listen: 127.0.0.1:0\n  body_limit: 64KiB\n  shutdown_timeout: 5s\n  stream_keepalive: 50ms\n")
	b.WriteString("log: {level: error}\npolicy: {audit: none}\nbackends:\n")
	urls := map[string]string{}
	for _, r := range routes {
		for _, u := range r.backends {
			if _, ok := urls[u]; ok {
				continue
			}
			name := fmt.Sprintf("b%d", len(urls))
			urls[u] = name
			fmt.Fprintf(&b, "  - name: %s\n    kind: selfhosted\n    base_url: %s\n    api_key: %s\n", name, u, backendKey)
			b.WriteString("    price: {input_per_mtok: 1, output_per_mtok: 2, cached_input_per_mtok: 0.5}\n")
			b.WriteString("    timeouts: {connect: 1s, first_byte: 300ms, between_chunks: 300ms}\n")
		}
	}
	b.WriteString("models:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "  - name: %s\n    deployments:\n", r.name)
		for _, u := range r.backends {
			fmt.Fprintf(&b, "      - backend: %s\n", urls[u])
			if r.upstream != "" {
				fmt.Fprintf(&b, "        model: %s\n", r.upstream)
			}
		}
	}
	fmt.Fprintf(&b, "keys:\n  - id: test\n    sha256: %s\n    tenant: acme\n    team: search\n", gateway.HashKey(testKey))
	b.WriteString(extra)
	cfg, err := config.Parse([]byte(b.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err, b.String())
	return cfg
}

// startGateway serves cfg on a loopback port and returns its /v1 base URL.
func startGateway(t *testing.T, cfg *config.Config) (string, *gateway.Server) {
	t.Helper()
	return startGatewayWith(t, cfg, gateway.Options{Version: "test"})
}

func startGatewayWith(t *testing.T, cfg *config.Config, o gateway.Options) (string, *gateway.Server) {
	t.Helper()
	srv, err := gateway.New(cfg, o)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String() + "/v1", srv
}

// sdk is the real OpenAI Go SDK pointed at the gateway, without retries so
// every error is seen as the gateway sent it.
func sdk(base string, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(base), option.WithAPIKey(testKey), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
