package gateway_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// Past server.max_in_flight the model API refuses at once with 503 and
// Retry-After, in the ingress's error shape, counted in a metric; the
// requests in flight, a started stream included, finish untouched; health
// and metrics still answer; a place freed is taken again.
func TestAdmissionControl(t *testing.T) {
	arrived := make(chan string, 4)
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		stream := gjson.GetBytes(raw, "stream").Bool()
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+chunk("m", `{"role":"assistant","content":"first "}`, "")+"\n\n")
			w.(http.Flusher).Flush()
		}
		arrived <- r.URL.Path
		<-release
		if stream {
			for _, ev := range []string{chunk("m", `{"content":"second"}`, "stop"), usageChunk("m", 3, 2), "[DONE]"} {
				_, _ = io.WriteString(w, "data: "+ev+"\n\n")
			}
			return
		}
		writeJSON(w, 200, chatCompletion("m", "done", 3, 2, 0))
	})
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Server.MaxInFlight = 2
	base, _ := startGateway(t, cfg)
	root := strings.TrimSuffix(base, "/v1")
	post := func(path, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}

	// Two requests take the two places: a stream that has started, and a
	// JSON request waiting for its upstream.
	stream := post("/chat/completions", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, stream.StatusCode)
	streamBody := bufio.NewReader(stream.Body)
	var wg sync.WaitGroup
	var jsonStatus int
	wg.Go(func() {
		resp := post("/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
		jsonStatus = resp.StatusCode
		resp.Body.Close()
	})
	<-arrived
	<-arrived

	// A third is refused at once, in OpenAI's shape on the OpenAI routes
	// and in Anthropic's on /v1/messages.
	resp := post("/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, "gateway_overloaded", gjson.GetBytes(raw, "error.code").Str, "%s", raw)
	assert.Contains(t, gjson.GetBytes(raw, "error.message").Str, "capacity")
	assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	resp = post("/messages", `{"model":"chat","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "overloaded_error", gjson.GetBytes(raw, "error.type").Str, "%s", raw)

	// Health, readiness and metrics are not model calls.
	for _, path := range []string{"/healthz", "/metrics"} {
		r, err := http.Get(root + path)
		require.NoError(t, err)
		r.Body.Close()
		assert.Equal(t, 200, r.StatusCode, path)
	}
	m, err := http.Get(root + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(m.Body)
	m.Body.Close()
	assert.Regexp(t, `switchyard_requests_shed_total\{[^}]*\} 2\n`, string(metrics))
	assert.Regexp(t, `switchyard_requests_in_flight\{[^}]*\} 2\n`, string(metrics))

	// The requests in flight finish whole.
	close(release)
	wg.Wait()
	assert.Equal(t, 200, jsonStatus)
	rest, err := io.ReadAll(streamBody)
	require.NoError(t, err)
	stream.Body.Close()
	assert.Contains(t, string(rest), "second")
	assert.Contains(t, string(rest), "[DONE]")

	// The places are free again.
	resp = post("/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}
