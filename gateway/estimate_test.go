package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/tokens"
)

// estimateBody's text tokenizes differently under every encoding: words,
// digits, punctuation, accents and CJK.
const estimateBody = `{"model":"m","max_tokens":100,"messages":[` +
	`{"role":"system","content":"You are a terse assistant. Answer in Deutsch, Français or 日本語."},` +
	`{"role":"user","content":"Übersetze: the invoice 2026-11-03 totals 4,311.97 EUR; 請求書を確認してください。"}]}`

// A request reserves its prompt tokens as the models of its route count
// them, the most of its deployments: tiktoken's encoding for OpenAI model
// names on any backend, the local model's own tokenizer, and the
// documented approximation for every other model.
func TestReservationCountsTokensAsTheModelDoes(t *testing.T) {
	prompt := func(enc tokens.Encoding) int64 { return tokens.Prompt(enc, tokens.OpChat, []byte(estimateBody)) }
	require.NotEqual(t, prompt(tokens.O200kBase), prompt(tokens.Cl100kBase), "the body tells the encodings apart")
	require.NotEqual(t, prompt(tokens.O200kBase), prompt(tokens.Approx))

	type deployment struct{ backend, model string }
	cases := []struct {
		name   string
		deps   []deployment
		expect int64
	}{
		{"gpt-4o on an OpenAI backend", []deployment{{"openai", "gpt-4o-2024-08-06"}}, prompt(tokens.O200kBase)},
		{"gpt-3.5-turbo on a self-hosted server", []deployment{{"vllm", "gpt-3.5-turbo"}}, prompt(tokens.Cl100kBase)},
		{"llama on a self-hosted server", []deployment{{"vllm", "meta-llama/Llama-3.1-8B-Instruct"}}, prompt(tokens.Approx)},
		{"a route of both: the most", []deployment{{"openai", "gpt-4o"}, {"vllm", "mistral-small"}},
			max(prompt(tokens.O200kBase), prompt(tokens.Approx))},
	}
	var local *localengine.Model
	lib := localLibIfPresent()
	if lib != "" {
		pool := localengine.OpenPool(lib, []localengine.Spec{{Name: "tiny", Path: localModel(t), Context: 512, Slots: 1}}, nil)
		t.Cleanup(func() { pool.Close() })
		m, err := pool.Model("tiny")
		require.NoError(t, err)
		local = m
		own := prompt(tokens.Func(func(s string) int { return len(m.Tokenize(s, false)) }))
		require.NotEqual(t, own, prompt(tokens.Approx))
		cases = append(cases, struct {
			name   string
			deps   []deployment
			expect int64
		}{"a local model: its own tokenizer", []deployment{{"local", "tiny"}}, own})
	}

	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var y strings.Builder
			y.WriteString("server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: error}\npolicy: {audit: none}\n")
			if local != nil {
				fmt.Fprintf(&y, "local_engine:\n  lib_dir: %s\n  models:\n    - {name: tiny, path: %s, context: 512, slots: 1}\n", lib, localModel(t))
			}
			fmt.Fprintf(&y, "backends:\n"+
				"  - {name: openai, kind: proprietary, provider: openai, base_url: %[1]s, api_key: k}\n"+
				"  - {name: vllm, kind: selfhosted, base_url: %[1]s}\n", up.URL+"/v1")
			if local != nil {
				y.WriteString("  - {name: local, kind: local}\n")
			}
			y.WriteString("models:\n  - name: m\n    deployments:\n")
			for _, d := range tc.deps {
				fmt.Fprintf(&y, "      - {backend: %s, model: %s}\n", d.backend, d.model)
			}
			fmt.Fprintf(&y, "keys:\n  - {id: k1, sha256: %s, tenant: acme, team: ops}\n", gateway.HashKey(testKey))
			y.WriteString("quotas:\n  limits:\n    - {scope: key, tokens_per_minute: 1000000}\n")
			cfg, err := config.Parse([]byte(y.String()), func(string) (string, bool) { return "", false })
			require.NoError(t, err, y.String())
			exp := tracetest.NewInMemoryExporter()
			base, _ := startGatewayWith(t, cfg, gateway.Options{Version: "test", SpanExporter: exp})

			resp := post(t, base, estimateBody)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode, "%s", body)
			sp := spansByName(t, exp, "POST /v1/chat/completions")
			require.Len(t, sp["quota.reserve"], 1)
			reserved := attrs(sp["quota.reserve"][0])["switchyard.quota.estimate_tokens"].AsInt64()
			assert.Equal(t, tc.expect+100, reserved, "prompt tokens as the model counts them, plus max_tokens")
			t.Logf("%d prompt tokens reserved (o200k_base %d, cl100k_base %d, approx %d)", tc.expect,
				prompt(tokens.O200kBase), prompt(tokens.Cl100kBase), prompt(tokens.Approx))
		})
	}
}

// localLibIfPresent is the llama.cpp library directory, or "" when the
// libraries are absent and not required (localLibOrSkip, without the
// skip).
func localLibIfPresent() string {
	dir := os.Getenv(localengine.LibEnv)
	if dir == "" {
		dir = filepath.Join("..", localengine.DefaultLibDir)
	}
	if _, err := localengine.Open(dir); err != nil && os.Getenv("SWITCHYARD_REQUIRE_LLAMA") != "1" {
		return ""
	}
	return dir
}
