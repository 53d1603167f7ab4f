package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const validHash = "4f1a6a2e3f4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"

const base = `
server:
  listen: 127.0.0.1:9999
  body_limit: 1MiB
backends:
  - name: openai
    kind: proprietary
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
    region: us-east-1
    jurisdiction: US
    models: [gpt-4o-mini]
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6, cached_input_per_mtok: 0.075}
  - name: vllm
    kind: selfhosted
    base_url: ${VLLM_URL:-http://127.0.0.1:8000/v1}
    timeouts: {connect: 2s, first_byte: 10s}
models:
  - name: gpt-4o-mini
    aliases: [fast]
    deployments:
      - backend: vllm
        model: qwen2.5-7b
      - backend: openai
keys:
  - id: dev
    sha256: ` + validHash + `
    tenant: acme
    team: search
    models: [fast]
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseValid(t *testing.T) {
	cfg, err := Parse([]byte(base), env(map[string]string{"OPENAI_API_KEY": "sk-secret"}))
	require.NoError(t, err)

	assert.Equal(t, "127.0.0.1:9999", cfg.Server.Listen)
	assert.Equal(t, ByteSize(1<<20), cfg.Server.BodyLimit)
	assert.Equal(t, DefaultShutdownTimeout, cfg.Server.ShutdownTimeout)
	assert.Equal(t, "sk-secret", cfg.Backends[0].APIKey.Value())
	assert.Equal(t, 0.075, cfg.Backends[0].Price.Cached())
	assert.Equal(t, 0.0, cfg.Backends[1].Price.Cached())
	cfg.Backends[1].Price.InputPerMTok = 3
	assert.Equal(t, 3.0, cfg.Backends[1].Price.Cached(), "unset cached price is the input price")
	assert.Equal(t, "http://127.0.0.1:8000/v1", cfg.Backends[1].BaseURL, "default of ${VAR:-default}")
	assert.Equal(t, 2*time.Second, cfg.Backends[1].Timeouts.Connect)
	assert.Equal(t, DefaultBetweenChunks, cfg.Backends[1].Timeouts.BetweenChunks)
	assert.Equal(t, ProviderOpenAI, cfg.Backends[1].Provider)
	assert.Equal(t, "qwen2.5-7b", cfg.Models[0].Deployments[0].Model)
	assert.Equal(t, "gpt-4o-mini", cfg.Models[0].Deployments[1].Model, "deployment model defaults to the route name")
}

func TestSecretNeverPrints(t *testing.T) {
	cfg, err := Parse([]byte(base), env(map[string]string{"OPENAI_API_KEY": "sk-secret"}))
	require.NoError(t, err)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "sk-secret")
	assert.Contains(t, string(out), Mask)
	assert.NotContains(t, fmtAll(cfg.Backends[0].APIKey), "sk-secret")

	// The printed config parses back (config check output is reusable).
	_, err = Parse(out, env(nil))
	require.NoError(t, err)
}

func fmtAll(s Secret) string {
	return strings.Join([]string{s.String(), s.GoString(), s.LogValue().String()}, " ")
}

func TestExpand(t *testing.T) {
	lookup := env(map[string]string{"A": "x", "EMPTY": ""})
	for _, tc := range []struct{ in, want, err string }{
		{in: "${A}", want: "x"},
		{in: "pre-${A}-post", want: "pre-x-post"},
		{in: "${EMPTY}", want: ""},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${UNSET:-}", want: ""},
		{in: "$$5 and $x", want: "$5 and $x"},
		{in: "${UNSET}", err: "UNSET is not set"},
		{in: "${A", err: "unterminated"},
		{in: "${1A}", err: "invalid variable name"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Expand(tc.in, lookup)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestExpandedNumberDecodesAsNumber(t *testing.T) {
	doc := strings.Replace(base, "body_limit: 1MiB", "body_limit: ${LIMIT}", 1)
	doc = strings.Replace(doc, "input_per_mtok: 0.15", "input_per_mtok: \"${PRICE}\"", 1)
	cfg, err := Parse([]byte(doc), env(map[string]string{"OPENAI_API_KEY": "k", "LIMIT": "2048", "PRICE": "2.5"}))
	require.NoError(t, err)
	assert.Equal(t, ByteSize(2048), cfg.Server.BodyLimit)
	assert.Equal(t, 2.5, cfg.Backends[0].Price.InputPerMTok)
}

// TestInvalid edits the valid base document and checks that the error names
// the field path of the problem.
func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new string
		want     string
	}{
		{"unknown top-level key", "server:", "serverz: {}\nserver:", "serverz: unknown field (line 2)"},
		{"unknown nested key", "region: us-east-1", "regoin: us-east-1", "backends[0].regoin: unknown field"},
		{"unknown key in price", "cached_input_per_mtok: 0.075", "cached_per_mtok: 0.075", "backends[0].price.cached_per_mtok: unknown field"},
		{"unknown key in deployment", "model: qwen2.5-7b", "modle: qwen2.5-7b", "models[0].deployments[0].modle: unknown field"},
		{"negative price", "input_per_mtok: 0.15", "input_per_mtok: -1", "backends[0].price.input_per_mtok: must be >= 0"},
		{"negative output price", "output_per_mtok: 0.6", "output_per_mtok: -0.6", "backends[0].price.output_per_mtok: must be >= 0"},
		{"negative cached price", "cached_input_per_mtok: 0.075", "cached_input_per_mtok: -1", "backends[0].price.cached_input_per_mtok: must be >= 0"},
		{"bad kind", "kind: selfhosted", "kind: cloud", `backends[1].kind: must be one of local, selfhosted, proprietary; got "cloud"`},
		{"unknown provider", "kind: selfhosted", "kind: selfhosted\n    provider: grpc", `backends[1].provider: unknown provider "grpc"`},
		{"missing base_url", "    base_url: https://api.openai.com/v1\n", "", "backends[0].base_url: is required"},
		{"relative base_url", "base_url: https://api.openai.com/v1", "base_url: api.openai.com", "backends[0].base_url: must be an absolute http or https URL"},
		{"negative timeout", "connect: 2s", "connect: -2s", "backends[1].timeouts.connect: must be >= 0"},
		{"bad duration", "connect: 2s", "connect: soon", "line 17: cannot unmarshal !!str `soon` into time.Duration"},
		{"bad size", "body_limit: 1MiB", "body_limit: big", `invalid size "big"`},
		{"duplicate backend", "name: vllm", "name: openai", `backends[1].name: duplicate backend "openai"`},
		{"missing backend name", "name: vllm", "name: ''", "backends[1].name: is required"},
		{"unknown backend in route", "backend: vllm", "backend: nope", `models[0].deployments[0].backend: unknown backend "nope"`},
		{"model not served", "      - backend: openai", "      - backend: openai\n        model: gpt-5", `models[0].deployments[1].model: backend "openai" does not serve "gpt-5"`},
		{"no deployments", "    deployments:\n      - backend: vllm\n        model: qwen2.5-7b\n      - backend: openai\n", "    deployments: []\n", "models[0].deployments: at least one deployment is required"},
		{"alias clashes with name", "aliases: [fast]", "aliases: [gpt-4o-mini]", `models[0].aliases[0]: model name "gpt-4o-mini" already used at models[0].name`},
		{"bad key hash", "sha256: " + validHash, "sha256: abc", "keys[0].sha256: must be 64 lowercase hex digits"},
		{"uppercase key hash", "sha256: " + validHash, "sha256: " + strings.ToUpper(validHash), "keys[0].sha256: must be 64 lowercase hex digits"},
		{"missing tenant", "tenant: acme", "tenant: ''", "keys[0].tenant: is required"},
		{"key allows unknown model", "models: [fast]", "models: [slow]", `keys[0].models[0]: unknown model "slow"`},
		{"bad log level", "server:", "log: {level: loud}\nserver:", `log.level: must be one of debug, info, warn, error; got "loud"`},
		{"bad custom pattern", "keys:", "classification:\n  custom:\n    - {label: EMP_ID, pattern: 'EMP-(\\d+'}\nkeys:", "classification.custom[0].pattern: must be a valid regular expression"},
		{"bad custom label", "keys:", "classification:\n  custom:\n    - {label: emp-id, pattern: 'x'}\nkeys:", `classification.custom[0].label: must be non-empty and use only A-Z, 0-9 and _; got "emp-id"`},
		{"bad custom category", "keys:", "classification:\n  custom:\n    - {label: X, pattern: 'x', category: other}\nkeys:", `classification.custom[0].category: must be pii or secret; got "other"`},
		{"bad admin key hash", "keys:", "admin:\n  keys:\n    - {id: ops, sha256: nope}\nkeys:", "admin.keys[0].sha256: must be 64 lowercase hex digits"},
		{"admin key reused as a virtual key", "keys:", "admin:\n  keys:\n    - {id: ops, sha256: " + validHash + "}\nkeys:", "admin.keys[0].sha256: the same key is a virtual key too"},
		{"local backend with a base_url", "kind: selfhosted", "kind: local", "backends[1].base_url: must be empty for the embedded engine"},
		{"llamacpp provider on a remote kind", "kind: selfhosted", "kind: selfhosted\n    provider: llamacpp", "backends[1].provider: llamacpp is the embedded engine; its backends are kind local"},
		{"local model without a path", "keys:", "local_engine:\n  models: [{name: tiny}]\nkeys:", "local_engine.models[0].path: is required"},
		{"duplicate local model", "keys:", "local_engine:\n  models: [{name: a, path: x}, {name: a, path: y}]\nkeys:", `local_engine.models[1].name: duplicate local model "a"`},
		{"unknown generate shape", "keys:", "local_engine:\n  models: [{name: a, path: x, generate: llama3-8b}]\nkeys:", `local_engine.models[0].generate: must be tiny or bench, or empty; got "llama3-8b"`},
		{"negative slots", "keys:", "local_engine:\n  models: [{name: a, path: x, slots: -1}]\nkeys:", "local_engine.models[0].slots: must be >= 0"},
		{"max_in_flight below -1", "listen: 127.0.0.1:9999", "listen: 127.0.0.1:9999\n  max_in_flight: -2", "server.max_in_flight: must be >= 0 (0 for 256 per CPU), or -1 for no bound; got -2"},
		{"max_processing below -1", "listen: 127.0.0.1:9999", "listen: 127.0.0.1:9999\n  max_processing: -5", "server.max_processing: must be >= 0 (0 for 64 per CPU), or -1 for no bound; got -5"},
		{"cluster with sentinels", "keys:", "quotas:\n  store: redis\n  redis: {addrs: [a:1], master_name: m, cluster: true}\nkeys:", "quotas.redis.cluster: cannot be set with master_name (Sentinel)"},
		{"wait_timeout past timeout", "keys:", "quotas:\n  store: redis\n  redis: {addrs: [a:1], timeout: 100ms, wait_replicas: 1, wait_timeout: 100ms}\nkeys:", "quotas.redis.wait_timeout: must be below quotas.redis.timeout (100ms), or the read times out before WAIT answers; got 100ms"},
		{"ledger shards", "keys:", "ledger: {shards: 300}\nkeys:", "ledger.shards: must be between 1 and 256; got 300"},
		{"gpu_layers below -1", "keys:", "local_engine:\n  models: [{name: a, path: x, gpu_layers: -2}]\nkeys:", "local_engine.models[0].gpu_layers: must be >= -1"},
		{"unknown local_engine key", "keys:", "local_engine:\n  modles: []\nkeys:", "local_engine.modles: unknown field"},
		{"unset env var", "${OPENAI_API_KEY}", "${NOT_SET_ANYWHERE}", "backends[0].api_key: environment variable NOT_SET_ANYWHERE is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(base, tc.old, tc.new, 1)
			require.NotEqual(t, base, doc, "the edit must apply")
			_, err := Parse([]byte(doc), env(map[string]string{"OPENAI_API_KEY": "k"}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	doc := strings.Replace(base, "input_per_mtok: 0.15", "input_per_mtok: -1", 1)
	doc = strings.Replace(doc, "tenant: acme", "tenant: ''", 1)
	_, err := Parse([]byte(doc), env(map[string]string{"OPENAI_API_KEY": "k"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "backends[0].price.input_per_mtok: must be >= 0")
	assert.Contains(t, err.Error(), "keys[0].tenant: is required")
}

func TestEmpty(t *testing.T) {
	_, err := Parse(nil, env(nil))
	require.ErrorContains(t, err, "config is empty")
}

func TestUnsetCachedPriceIsNotReportedTwice(t *testing.T) {
	doc := strings.Replace(base, "input_per_mtok: 0.15, output_per_mtok: 0.6, cached_input_per_mtok: 0.075", "input_per_mtok: -1", 1)
	_, err := Parse([]byte(doc), env(map[string]string{"OPENAI_API_KEY": "k"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "backends[0].price.input_per_mtok: must be >= 0")
	assert.NotContains(t, err.Error(), "cached_input_per_mtok")
}

func TestLocalEngine(t *testing.T) {
	doc := `
local_engine:
  models:
    - {name: tiny, path: /models/tiny.gguf, slots: 8}
backends:
  - {name: local, kind: local}
models:
  - name: chat
    deployments:
      - {backend: local, model: tiny}
`
	cfg, err := Parse([]byte(doc), env(nil))
	require.NoError(t, err)
	assert.Equal(t, ProviderLlamaCpp, cfg.Backends[0].Provider, "kind local defaults to the embedded engine")
	assert.Equal(t, 8, cfg.LocalEngine.Models[0].Slots)
	assert.False(t, cfg.LocalEngine.FetchLibraries, "nothing is downloaded unless the config says so")
	assert.Empty(t, cfg.LocalEngine.Models[0].Generate)

	cfg, err = Parse([]byte(strings.Replace(strings.Replace(doc, "slots: 8}", "slots: 8, generate: tiny}", 1), "  models:", "  fetch_libraries: true\n  models:", 1)), env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.LocalEngine.FetchLibraries)
	assert.Equal(t, "tiny", cfg.LocalEngine.Models[0].Generate)

	_, err = Parse([]byte(strings.Replace(doc, "model: tiny}", "model: huge}", 1)), env(nil))
	require.ErrorContains(t, err, `models[0].deployments[0].model: no local_engine model named "huge"`)
	_, err = Parse([]byte(strings.Replace(doc, "kind: local}", "kind: local, models: [huge]}", 1)), env(nil))
	require.ErrorContains(t, err, `backends[0].models[0]: no local_engine model named "huge"`)
	_, err = Parse([]byte(strings.Replace(doc, "kind: local}", "kind: local, provider: openai}", 1)), env(nil))
	require.ErrorContains(t, err, "backends[0].provider: a local backend is served by the embedded engine")
}

func TestProviderPresetsAndDefaults(t *testing.T) {
	doc := `
backends:
  - {name: groq, kind: proprietary, provider: groq, api_key: k}
  - {name: claude, kind: proprietary, provider: anthropic, api_key: k}
  - {name: vllm, kind: selfhosted, base_url: "http://127.0.0.1:8000/v1"}
models:
  - {name: m, deployments: [{backend: groq, model: llama-3.3-70b-versatile}, {backend: claude, model: claude-sonnet-4-5}, {backend: vllm, model: q}]}
`
	cfg, err := Parse([]byte(doc), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "https://api.groq.com/openai/v1", cfg.Backends[0].BaseURL, "a preset fills its base URL")
	assert.Empty(t, cfg.Backends[1].BaseURL, "anthropic's client has its own default")
	assert.Equal(t, 3, cfg.Backends[0].Retry.Attempts, "proprietary backends retry")
	assert.Equal(t, 1, cfg.Backends[2].Retry.Attempts, "others do not")

	for old, want := range map[string]string{
		"provider: groq, api_key: k}":      `backends[0].provider: unknown provider "grok"`,
		"provider: anthropic, api_key: k}": "backends[1].region: is required for bedrock",
	} {
		repl := map[string]string{
			"provider: groq, api_key: k}":      "provider: grok, api_key: k}",
			"provider: anthropic, api_key: k}": "provider: bedrock}",
		}[old]
		_, err := Parse([]byte(strings.Replace(doc, old, repl, 1)), env(nil))
		require.ErrorContains(t, err, want)
	}
	_, err = Parse([]byte(strings.Replace(doc, "provider: anthropic, api_key: k}", "provider: azure, base_url: \"https://x.openai.azure.com/openai\"}", 1)), env(nil))
	require.ErrorContains(t, err, "backends[1].api_version: is required for azure")
}

func TestNativeResponses(t *testing.T) {
	for _, tc := range []struct {
		b    Backend
		want string
	}{
		{Backend{Provider: ProviderOpenAI, BaseURL: "https://api.openai.com/v1"}, ResponsesNative},
		{Backend{Provider: ProviderOpenAI, BaseURL: "https://API.OpenAI.com:443/v1", Kind: KindSelfHosted}, ResponsesNative},
		{Backend{Provider: ProviderOpenAI, BaseURL: "https://api.openai.com/v1", ResponsesAPI: "translate"}, ResponsesTranslate},
		{Backend{Provider: ProviderOpenAI, BaseURL: "http://vllm:8000/v1", Kind: KindSelfHosted}, ResponsesTranslate},
		{Backend{Provider: ProviderOpenAI, BaseURL: "http://vllm:8000/v1", Kind: KindSelfHosted, ResponsesAPI: "native"}, ResponsesNative},
		{Backend{Provider: ProviderOpenAI, BaseURL: "https://api.openai.com.evil.example/v1", Kind: KindProprietary}, ResponsesAuto},
		{Backend{Provider: ProviderOpenAI, BaseURL: "https://gateway.example/v1", Kind: KindProprietary}, ResponsesAuto},
		{Backend{Provider: "groq", BaseURL: "https://api.openai.com/v1", Kind: KindProprietary}, ResponsesTranslate},
		{Backend{Provider: ProviderAzure, BaseURL: "https://x.openai.azure.com", ResponsesAPI: "native"}, ResponsesTranslate},
	} {
		assert.Equal(t, tc.want, tc.b.ResponsesMode(), "%+v", tc.b)
	}
	for _, bad := range []string{"responses_api: yes", "responses_api: native\n    provider: anthropic"} {
		y := "backends:\n  - name: b\n    kind: proprietary\n    base_url: http://x\n    " + bad + "\n"
		_, err := Parse([]byte(y), func(string) (string, bool) { return "", false })
		require.Error(t, err, y)
		assert.Contains(t, err.Error(), "responses_api")
	}
}
