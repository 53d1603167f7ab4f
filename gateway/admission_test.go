package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

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

// server.max_processing bounds only the requests the gateway works on:
// one held up before its upstream call (here by a quota store that does
// not answer) takes the one place and the next is refused; once it is
// waiting on its model it holds no place, and another is admitted beside
// it.
func TestProcessingBound(t *testing.T) {
	// A "Redis" that accepts connections and says nothing until hold
	// closes, then drops them: the quota step fails open.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hold := make(chan struct{})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-hold; conn.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		writeJSON(w, 200, chatCompletion("up", "done", 10, 5, 0))
	})
	cfg, _ := quotaConfig(t, "  store: redis\n  redis: {addrs: ["+ln.Addr().String()+"], timeout: 30s}\n", quotaLimit("fail_open"), up.URL+"/v1")
	cfg.Server.MaxProcessing = 1
	cfg.Server.MaxInFlight = 10
	base, _ := startGateway(t, cfg)
	root := strings.TrimSuffix(base, "/v1")
	gauge := func(name string) string {
		m, err := http.Get(root + "/metrics")
		require.NoError(t, err)
		raw, _ := io.ReadAll(m.Body)
		m.Body.Close()
		return regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} (\d+)$`).FindStringSubmatch(string(raw))[1]
	}

	var wg sync.WaitGroup
	codes := make([]int, 2)
	send := func(i int) {
		wg.Go(func() {
			code, err := chat(base, testKey)
			assert.NoError(t, err)
			codes[i] = code
		})
	}
	send(0)
	require.Eventually(t, func() bool { return gauge("switchyard_requests_processing") == "1" }, 10*time.Second, 5*time.Millisecond)
	code, err := chat(base, testKey)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code, "the one place processing is taken")

	close(hold)
	<-arrived // the first waits on its model, holding no place processing
	send(1)
	<-arrived // so the second got in beside it
	assert.Equal(t, "2", gauge("switchyard_requests_in_flight"))
	assert.Equal(t, "0", gauge("switchyard_requests_processing"))
	close(release)
	wg.Wait()
	assert.Equal(t, []int{200, 200}, codes)
}
