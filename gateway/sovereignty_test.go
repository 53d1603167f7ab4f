package gateway_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/classify/corpus"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// recorder is an OpenAI-compatible upstream that keeps every raw body it
// receives and answers each operation in its own shape.
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newRecorder(t *testing.T, name string) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, raw)
		r.mu.Unlock()
		switch {
		case strings.HasSuffix(req.URL.Path, "/embeddings"):
			writeJSON(w, 200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}`)
		case strings.HasSuffix(req.URL.Path, "/completions") && !strings.HasSuffix(req.URL.Path, "/chat/completions"):
			writeJSON(w, 200, `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"by `+name+`","finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
		default:
			writeJSON(w, 200, chatCompletion("m", "by "+name, 3, 2, 0))
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// since returns the bodies received after the first n.
func (r *recorder) since(n int) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies[n:]...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// TestSovereigntyCorpus sends the generated corpus (classify/corpus) through
// the whole gateway, shipped policy unchanged, for a local_only tenant and
// a redact tenant. The route prefers a proprietary backend, with a
// self-hosted one behind it. No sensitive value may reach the proprietary
// upstream, in any form the corpus lists; at most 2% of the clean
// near-misses may be kept local for nothing.
func TestSovereigntyCorpus(t *testing.T) {
	prop := newRecorder(t, "openai")
	local := newRecorder(t, "vllm")
	var b strings.Builder
	b.WriteString("server: {listen: 127.0.0.1:0, body_limit: 1MiB}\nlog: {level: error}\npolicy: {audit: none}\n")
	fmt.Fprintf(&b, "backends:\n  - {name: openai, kind: proprietary, jurisdiction: US, base_url: %s/v1, api_key: k}\n", prop.URL)
	fmt.Fprintf(&b, "  - {name: vllm, kind: selfhosted, jurisdiction: EU, base_url: %s/v1, api_key: k}\n", local.URL)
	fmt.Fprintf(&b, "models:\n  - name: %s\n    deployments:\n      - {backend: openai, model: m}\n      - {backend: vllm, model: m}\n", corpus.Model)
	b.WriteString("keys:\n")
	tenants := []struct{ key, tenant, mode string }{{"sk-local", "t", "local_only"}, {"sk-redact", "acme", "redact"}, {"sk-strict", "clinic", "strict local_only"}}
	for _, k := range tenants {
		fmt.Fprintf(&b, "  - {id: %s, sha256: %s, tenant: %s, team: t}\n", k.tenant, gateway.HashKey(k.key), k.tenant)
	}
	cfg, err := config.Parse([]byte(b.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)
	base = strings.TrimSuffix(base, "/v1")

	cases := corpus.Generate(1)
	client := &http.Client{}
	send := func(key string, c corpus.Case) *http.Response {
		body := c.Body
		req, err := http.NewRequest(http.MethodPost, base+c.Path(), nil)
		require.NoError(t, err)
		if c.Gzip {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(body)
			zw.Close()
			body = z.Bytes()
			req.Header.Set("Content-Encoding", "gzip")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tn := range tenants {
		var sensitive, leaked, clean, keptLocal int
		var leaks, kept, failed []string
		for _, c := range cases {
			before := prop.count()
			resp := send(tn.key, c)
			if resp.StatusCode != http.StatusOK {
				failed = append(failed, fmt.Sprintf("%s: %d", c.Name, resp.StatusCode))
				continue
			}
			if c.Sensitive {
				sensitive++
				for _, got := range prop.since(before) {
					if l := corpus.Leaks(got, c.Forbidden); len(l) > 0 {
						leaked++
						leaks = append(leaks, c.Name)
						break
					}
				}
				continue
			}
			clean++
			if resp.Header.Get("X-Switchyard-Backend") != "openai" {
				keptLocal++
				kept = append(kept, c.Name)
			}
		}
		t.Logf("%s tenant: %d of %d sensitive prompts reached the proprietary upstream; %d of %d clean prompts (%.1f%%) kept local",
			tn.mode, leaked, sensitive, keptLocal, clean, 100*float64(keptLocal)/float64(max(clean, 1)))
		require.Empty(t, failed, "requests that failed")
		require.Zero(t, leaked, "leaked: %v", leaks)
		if tn.tenant != "clinic" { // strict trades clean traffic for safety; its figure is reported, not bounded
			require.LessOrEqual(t, float64(keptLocal), 0.02*float64(clean), "kept local: %v", kept)
		}
		require.GreaterOrEqual(t, sensitive, 1000)
		require.GreaterOrEqual(t, clean, 300)
	}
	require.NotZero(t, local.count())
}
