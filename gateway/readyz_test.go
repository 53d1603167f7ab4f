package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// readiness is /readyz's answer.
type readiness struct {
	code   int
	Status string `json:"status"`
	Quota  struct {
		Store       string `json:"store"`
		Degraded    bool   `json:"degraded"`
		StoreErrors int64  `json:"store_errors"`
		Breaker     string `json:"breaker"`
	} `json:"quota"`
}

// getReadyz reads /readyz; an error is returned, not reported, so that it
// can run inside require.Eventually.
func getReadyz(v1 string) (readiness, error) {
	var r readiness
	resp, err := http.Get(strings.TrimSuffix(v1, "/v1") + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	r.code = resp.StatusCode
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// chat sends chatBody with key and returns the status.
func chat(v1, key string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, v1+"/chat/completions", strings.NewReader(chatBody))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// deadRedis is a Redis address nothing answers on: connections are
// refused at once.
const deadRedis = "127.0.0.1:1"

// readyzWhenBreakerOpens starts a gateway whose quota store is a dead
// Redis, sends requests (each of which, and each /readyz, asks the store
// and fails) until the breaker is no longer closed, and returns the
// gateway's base URL and /readyz then.
func readyzWhenBreakerOpens(t *testing.T, cfg *config.Config, wantRequest int) (string, readiness) {
	t.Helper()
	base, _ := startGateway(t, cfg)
	r, err := getReadyz(base)
	require.NoError(t, err)
	require.Equal(t, 200, r.code, "nothing has asked the store yet")
	require.Equal(t, "ready", r.Status)
	require.Equal(t, "closed", r.Quota.Breaker)

	require.Eventually(t, func() bool {
		code, err := chat(base, testKey)
		if err != nil || code != wantRequest {
			t.Logf("request: %d, %v; want %d", code, err, wantRequest)
			return false
		}
		r, err = getReadyz(base)
		return err == nil && r.Quota.Breaker != "closed"
	}, 10*time.Second, 5*time.Millisecond, "the breaker never opened")
	assert.Contains(t, []string{"open", "half_open"}, r.Quota.Breaker)
	assert.True(t, r.Quota.Degraded)
	assert.Positive(t, r.Quota.StoreErrors)
	assert.Equal(t, "redis", r.Quota.Store)
	return base, r
}

func quotaLimit(mode string) string {
	return "    - {scope: key, usd_per_month: 1, on_store_error: " + mode + "}\n"
}

func TestReadyzQuotaStoreDown(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	store := redisStore(deadRedis)

	t.Run("fail_closed refuses every request: 503", func(t *testing.T) {
		cfg, _ := quotaConfig(t, store, quotaLimit("fail_closed"), up.URL+"/v1")
		_, r := readyzWhenBreakerOpens(t, cfg, 503)
		assert.Equal(t, 503, r.code)
		assert.Equal(t, "quota store unavailable", r.Status)
	})

	t.Run("fail_open serves: 200 degraded", func(t *testing.T) {
		cfg, _ := quotaConfig(t, store, quotaLimit("fail_open"), up.URL+"/v1")
		_, r := readyzWhenBreakerOpens(t, cfg, 200)
		assert.Equal(t, 200, r.code)
		assert.Equal(t, "degraded", r.Status)
	})

	t.Run("local_only with a self-hosted deployment serves: 200 degraded", func(t *testing.T) {
		cfg, _ := quotaConfig(t, store, quotaLimit("local_only"), up.URL+"/v1")
		_, r := readyzWhenBreakerOpens(t, cfg, 200)
		assert.Equal(t, 200, r.code)
		assert.Equal(t, "degraded", r.Status)
	})

	t.Run("local_only with only proprietary deployments refuses: 503", func(t *testing.T) {
		cfg, _ := quotaConfig(t, store, quotaLimit("local_only"), up.URL+"/v1")
		cfg.Backends[0].Kind, cfg.Backends[0].APIKey = config.KindProprietary, backendKey
		_, r := readyzWhenBreakerOpens(t, cfg, 503)
		assert.Equal(t, 503, r.code)
		assert.Equal(t, "quota store unavailable", r.Status)
	})

	t.Run("a key without a fail_closed limit is still served: 200 degraded", func(t *testing.T) {
		cfg, tenant := quotaConfig(t, store, "    - {scope: key, id: k1, usd_per_month: 1, on_store_error: fail_closed}\n", up.URL+"/v1")
		cfg.Keys = append(cfg.Keys, config.Key{ID: "k2", SHA256: gateway.HashKey("sk-other"), Tenant: tenant, Team: "ops"})
		_, r := readyzWhenBreakerOpens(t, cfg, 503)
		assert.Equal(t, 200, r.code)
		assert.Equal(t, "degraded", r.Status)
	})
}

// While the store stays down, /readyz stays 503, through the open
// breaker's OpenFor and its half-open probe (a /readyz), which fails and
// reopens it.
func TestReadyzStaysUnavailable(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("up", "ok", 10, 5, 0))
	})
	cfg, _ := quotaConfig(t, redisStore(deadRedis), quotaLimit("fail_closed"), up.URL+"/v1")
	base, r := readyzWhenBreakerOpens(t, cfg, 503)
	require.Equal(t, 503, r.code)
	opened := r.Quota.StoreErrors
	// Open, /readyz does not ask the store; half-open, it probes, which
	// counts one more store error.
	require.Eventually(t, func() bool {
		r, err := getReadyz(base)
		if err != nil {
			return false
		}
		assert.Equal(t, 503, r.code, "breaker %s", r.Quota.Breaker)
		assert.Equal(t, "quota store unavailable", r.Status)
		return r.Quota.StoreErrors > opened
	}, 10*time.Second, 10*time.Millisecond, "no probe")
	r, err := getReadyz(base)
	require.NoError(t, err)
	assert.Equal(t, "open", r.Quota.Breaker, "the failed probe reopened it")
	assert.Equal(t, 503, r.code)
}

// A proprietary backend whose key variable is not set: /readyz says so for
// its deployments, a request routed only there fails at once naming the
// variable, and a route with another deployment falls back to it.
func TestMissingProviderKey(t *testing.T) {
	var cloudCalls atomic.Int32
	cloud := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		cloudCalls.Add(1)
		writeJSON(w, 200, chatCompletion("m", "cloud", 3, 2, 0))
	})
	local := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("m", "local", 3, 2, 0))
	})
	y := fmt.Sprintf(`server: {listen: 127.0.0.1:0}
log: {level: error}
policy: {audit: none}
backends:
  - {name: cloud, kind: proprietary, base_url: %s/v1, api_key: "${MY_CLOUD_KEY:-}"}
  - {name: mine, kind: selfhosted, base_url: %s/v1}
  - {name: blank, kind: proprietary, base_url: %s/v1, api_key: "${BLANK_KEY}"}
  - {name: dead, kind: selfhosted, base_url: "http://127.0.0.1:1/v1"}
models:
  - name: only-cloud
    deployments: [{backend: cloud, model: m}]
  - name: either
    deployments: [{backend: cloud, model: m}, {backend: mine, model: m}]
  - name: neither
    deployments: [{backend: cloud, model: m}, {backend: dead, model: m}]
keys:
  - {id: test, sha256: %s, tenant: acme}
`, cloud.URL, local.URL, cloud.URL, gateway.HashKey(testKey))
	env := map[string]string{"BLANK_KEY": "  \n"}
	cfg, err := config.Parse([]byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	assert.Equal(t, `backend "cloud" has no API key: set MY_CLOUD_KEY`, cfg.Backends[0].MissingCredentials())
	assert.Empty(t, cfg.Backends[1].MissingCredentials(), "self-hosted servers need no key")
	assert.Equal(t, `backend "blank" has no API key: set BLANK_KEY`, cfg.Backends[2].MissingCredentials(), "a key of spaces is none")
	base, _ := startGateway(t, cfg)

	var apiErr *openai.Error
	_, err = sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "only-cloud", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 502, apiErr.StatusCode)
	assert.Equal(t, "upstream_credentials_missing", apiErr.Code)
	assert.Contains(t, apiErr.Message, "set MY_CLOUD_KEY")

	// Every deployment failed: the one without a key is named with the
	// variable to set, though another's error decides the answer.
	_, err = sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "neither", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "upstream_unavailable", apiErr.Code)
	assert.Contains(t, apiErr.Message, `cloud (m) failed with 502 upstream_credentials_missing (Backend "cloud" has no API key: set MY_CLOUD_KEY)`)

	out, err := sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "either", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	require.NoError(t, err)
	assert.Equal(t, "local", out.Choices[0].Message.Content)
	assert.Zero(t, cloudCalls.Load(), "nothing was sent without a key")

	resp, err := http.Get(strings.TrimSuffix(base, "/v1") + "/readyz")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, d := range gjson.GetBytes(raw, "deployments").Array() {
		switch d.Get("id").Str {
		case "cloud/m":
			assert.False(t, d.Get("healthy").Bool())
			assert.Equal(t, `backend "cloud" has no API key: set MY_CLOUD_KEY`, d.Get("problem").Str)
		case "mine/m":
			assert.True(t, d.Get("healthy").Bool())
			assert.False(t, d.Get("problem").Exists())
		}
	}
}
