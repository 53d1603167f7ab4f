package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// policyBackend is an upstream of a given kind and jurisdiction that
// records what it was sent.
type policyBackend struct {
	name, kind, jurisdiction string
	price                    string
	up                       *upstream
	delay                    time.Duration
	calls                    atomic.Int32
}

func newPolicyBackend(t *testing.T, name, kind, jurisdiction string) *policyBackend {
	b := &policyBackend{name: name, kind: kind, jurisdiction: jurisdiction, price: "{input_per_mtok: 1, output_per_mtok: 2}"}
	b.up = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		if b.delay > 0 {
			<-time.After(b.delay) // a backend that takes its time
		}
		writeJSON(w, 200, chatCompletion("m", "answered by "+name, 10, 5, 0))
	})
	return b
}

// policyGateway serves one model, "chat", deployed on the backends in
// order, with the given keys (tenant/team pairs) and extra config.
func policyGateway(t *testing.T, extra string, backends ...*policyBackend) (string, *config.Config) {
	t.Helper()
	var b strings.Builder
	b.WriteString("server: {listen: 127.0.0.1:0}\nlog: {level: error}\n")
	b.WriteString(extra)
	b.WriteString("backends:\n")
	for _, pb := range backends {
		fmt.Fprintf(&b, "  - {name: %s, kind: %s, jurisdiction: %s, base_url: %s/v1, api_key: k, price: %s}\n", pb.name, pb.kind, pb.jurisdiction, pb.up.URL, pb.price)
	}
	b.WriteString("models:\n  - name: chat\n    deployments:\n")
	for _, pb := range backends {
		fmt.Fprintf(&b, "      - {backend: %s, model: m}\n", pb.name)
	}
	b.WriteString("keys:\n")
	for _, k := range []struct{ id, tenant, team string }{{"plain", "t", "t"}, {"eu", "eu-bank", "t"}, {"redact", "acme", "t"}, {"finance", "t", "finance"}, {"strict", "clinic", "t"}} {
		fmt.Fprintf(&b, "  - {id: %s, sha256: %s, tenant: %s, team: %s}\n", k.id, gateway.HashKey("sk-"+k.id), k.tenant, k.team)
	}
	cfg, err := config.Parse([]byte(b.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err, b.String())
	base, _ := startGateway(t, cfg)
	return base, cfg
}

func ask(t *testing.T, base, key, prompt string, opts ...option.RequestOption) (*openai.ChatCompletion, *http.Response, error) {
	t.Helper()
	var resp *http.Response
	got, err := sdk(base, append([]option.RequestOption{option.WithAPIKey(key), option.WithResponseInto(&resp)}, opts...)...).
		Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	})
	return got, resp, err
}

func bodiesSent(b *policyBackend) string {
	var all []string
	for _, r := range b.up.received() {
		all = append(all, fmt.Sprint(r.Body["messages"]))
	}
	return strings.Join(all, "\n")
}

func TestPolicyCardNumberStaysLocal(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS, vllm)

	// Without sensitive data the proprietary backend, first in order, answers.
	got, resp, err := ask(t, base, "sk-plain", "What is the capital of France?")
	require.NoError(t, err)
	assert.Equal(t, "answered by openai", got.Choices[0].Message.Content)
	assert.NotEmpty(t, resp.Header.Get("X-Switchyard-Decision-Id"))

	got, _, err = ask(t, base, "sk-plain", "Charge my card 4111 1111 1111 1111 please")
	require.NoError(t, err)
	assert.Equal(t, "answered by vllm", got.Choices[0].Message.Content)
	assert.NotContains(t, bodiesSent(openaiUS), "4111", "the card number never reached the proprietary backend")
	assert.Contains(t, bodiesSent(vllm), "4111 1111 1111 1111")
}

func TestPolicyEUPinnedTenantNeverLeavesTheEU(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	azureEU := newPolicyBackend(t, "azure", "proprietary", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS, azureEU)
	for range 3 {
		got, _, err := ask(t, base, "sk-eu", "Summarise our Q3 results")
		require.NoError(t, err)
		assert.Equal(t, "answered by azure", got.Choices[0].Message.Content)
	}
	assert.Zero(t, openaiUS.calls.Load())

	// Even when the EU backend is down, the tenant is not sent to the US.
	azureEU.up.Close()
	_, _, err := ask(t, base, "sk-eu", "Summarise our Q3 results")
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 502, apiErr.StatusCode)
	assert.Zero(t, openaiUS.calls.Load())
}

func TestPolicyOverCapIsRefused(t *testing.T) {
	pricey := newPolicyBackend(t, "openai", "proprietary", "US")
	pricey.price = "{input_per_mtok: 15, output_per_mtok: 75}"
	base, _ := policyGateway(t, "policy: {audit: none}\n", pricey)
	// finance caps a request at $0.05; 1,000 output tokens at $75/M is $0.075.
	_, _, err := ask(t, base, "sk-finance", "Write a long report", option.WithJSONSet("max_tokens", 1000))
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 403, apiErr.StatusCode)
	assert.Equal(t, "permission_error", apiErr.Type)
	assert.Equal(t, "no_eligible_backend", apiErr.Code)
	assert.Contains(t, apiErr.Message, "openai/m (COST_CAP)")
	assert.Contains(t, apiErr.Message, "decision dec_")
	assert.NotEmpty(t, apiErr.Response.Header.Get("X-Switchyard-Decision-Id"))
	assert.Zero(t, pricey.calls.Load())

	// A small request fits under the cap.
	_, _, err = ask(t, base, "sk-finance", "Hi", option.WithJSONSet("max_tokens", 100))
	require.NoError(t, err)
}

func TestPolicyRedactsForProprietaryBackends(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS)
	_, _, err := ask(t, base, "sk-redact", "Email jane.doe@example.com and cc jane.doe@example.com, or call +44 20 7946 0958")
	require.NoError(t, err)
	sent := bodiesSent(openaiUS)
	assert.Contains(t, sent, "Email [EMAIL_1] and cc [EMAIL_1], or call [PHONE_1]")
	assert.NotContains(t, sent, "jane.doe")
	assert.NotContains(t, sent, "7946")
}

// A weak signal (nine digits with no SSN context) keeps a strict tenant's
// request local; a standard tenant's may go out.
func TestPolicyStrictTenantCountsWeakSignals(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	base, _ := policyGateway(t, "policy: {audit: "+audit+"}\n", openaiUS, vllm)
	prompt := "Look up batch 878117765 for me"
	got, _, err := ask(t, base, "sk-plain", prompt)
	require.NoError(t, err)
	assert.Equal(t, "answered by openai", got.Choices[0].Message.Content)
	got, _, err = ask(t, base, "sk-strict", prompt)
	require.NoError(t, err)
	assert.Equal(t, "answered by vllm", got.Choices[0].Message.Content)
	assert.Equal(t, int32(1), openaiUS.calls.Load())
	raw, err := os.ReadFile(audit)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"weak_entities":{"US_SSN":1}`)
	assert.NotContains(t, string(raw), "878117765")
}

func TestPolicyLatencySLOExcludesSlowBackend(t *testing.T) {
	slow := newPolicyBackend(t, "slow", "selfhosted", "EU")
	slow.delay = 150 * time.Millisecond
	fast := newPolicyBackend(t, "fast", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", slow, fast)

	// The first request teaches the router how slow "slow" is.
	got, _, err := ask(t, base, "sk-plain", "hi")
	require.NoError(t, err)
	assert.Equal(t, "answered by slow", got.Choices[0].Message.Content)

	got, _, err = ask(t, base, "sk-plain", "hi", option.WithHeader("X-Switchyard-Max-Latency-Ms", "100"))
	require.NoError(t, err)
	assert.Equal(t, "answered by fast", got.Choices[0].Message.Content)
	assert.EqualValues(t, 1, slow.calls.Load())
}

func TestPolicyAuditTrail(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	base, _ := policyGateway(t, "policy: {audit: "+path+"}\n", openaiUS, vllm)
	_, resp, err := ask(t, base, "sk-plain", "my SSN is 123-45-6789")
	require.NoError(t, err)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	line := string(data)
	assert.Contains(t, line, `"decision_id":"`+resp.Header.Get("X-Switchyard-Decision-Id")+`"`)
	assert.Contains(t, line, `"entities":{"US_SSN":1}`)
	assert.Contains(t, line, `"routes":["vllm/m"]`)
	assert.Contains(t, line, `"excluded":{"openai/m":["LOCAL_ONLY"]}`)
	assert.Contains(t, line, `"revision":"`)
	assert.NotContains(t, line, "6789", "never prompt text")
	assert.Equal(t, 1, strings.Count(line, "\n"))
}

func TestPolicyCustomDetectorCategoryIsObeyed(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\nclassification:\n  custom:\n    - {label: PROJECT, pattern: 'Project Falcon', category: secret}\n", openaiUS, vllm)
	got, _, err := ask(t, base, "sk-plain", "Status of Project Falcon?")
	require.NoError(t, err)
	assert.Equal(t, "answered by vllm", got.Choices[0].Message.Content)
	assert.NotContains(t, bodiesSent(openaiUS), "Falcon")
}

// writeBundle writes a one-file policy bundle.
func writeBundle(t *testing.T, rego string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package switchyard\n\nimport rego.v1\n\n"+rego), 0o644))
	return dir
}

func TestPolicyBrokenContract(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	// A custom bundle that denies without saying why breaks the contract.
	dir := writeBundle(t, `decision := {"allow": false, "deny": [], "routes": [], "excluded": {}, "redact": {}, "obligations": {}}`+"\n")

	t.Run("closed", func(t *testing.T) {
		base, _ := policyGateway(t, "policy: {audit: none, bundle: "+dir+"}\n", openaiUS, vllm)
		_, _, err := ask(t, base, "sk-plain", "hi")
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 503, apiErr.StatusCode)
		assert.Equal(t, "policy_error", apiErr.Code)
	})
	t.Run("open keeps sensitive data off proprietary backends", func(t *testing.T) {
		base, _ := policyGateway(t, "policy: {audit: none, on_error: open, bundle: "+dir+"}\n", openaiUS, vllm)
		got, _, err := ask(t, base, "sk-plain", "hi")
		require.NoError(t, err)
		assert.Equal(t, "answered by openai", got.Choices[0].Message.Content, "no sensitive data: configured order")
		got, _, err = ask(t, base, "sk-plain", "my card 4111 1111 1111 1111")
		require.NoError(t, err)
		assert.Equal(t, "answered by vllm", got.Choices[0].Message.Content)
		assert.NotContains(t, bodiesSent(openaiUS), "4111")
	})
}

func TestAdminExplain(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	admin := "sk-admin-secret"
	base, _ := policyGateway(t, "policy: {audit: none}\nadmin:\n  keys:\n    - {id: ops, sha256: "+gateway.HashKey(admin)+"}\n", openaiUS, vllm)
	body := `{"key_id":"eu","headers":{"x-switchyard-data-class":"internal"},"request":{"model":"chat","user":"jane@bank.de","messages":[{"role":"user","content":"IBAN DE89 3704 0044 0532 0130 00, batch 878117765"}]}}`
	post := func(key string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, base+"/switchyard/explain", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}

	status, out := post(admin)
	require.Equal(t, 200, status, out)
	decision := out["decision"].(map[string]any)
	assert.Equal(t, []any{"vllm/m"}, decision["routes"])
	excluded := decision["excluded"].(map[string]any)["openai/m"].([]any)
	codes := []string{}
	for _, r := range excluded {
		codes = append(codes, r.(map[string]any)["code"].(string))
	}
	assert.ElementsMatch(t, []string{"LOCAL_ONLY", "DATA_RESIDENCY", "DATA_RETENTION"}, codes)
	assert.NotEmpty(t, out["fired"])
	input := out["input"].(map[string]any)["request"].(map[string]any)
	assert.Equal(t, map[string]any{"IBAN": 1.0, "EMAIL": 1.0}, input["entities"])
	assert.Equal(t, map[string]any{"US_SSN": 1.0}, input["weak_entities"])
	// Which detector fired on which field: labels and paths, never values.
	assert.Equal(t, []any{
		map[string]any{"label": "EMAIL", "path": "user"},
		map[string]any{"label": "IBAN", "path": "messages.0.content"},
		map[string]any{"label": "US_SSN", "path": "messages.0.content", "weak": true},
	}, out["detections"])
	raw, _ := json.Marshal(out)
	assert.NotContains(t, string(raw), "jane@bank.de")
	assert.NotContains(t, string(raw), "3704")
	assert.Equal(t, "internal", input["data_class"])
	assert.Zero(t, openaiUS.calls.Load()+vllm.calls.Load(), "explaining sends nothing upstream")

	status, _ = post("sk-plain")
	assert.Equal(t, 401, status, "a virtual key is not an admin key")

	// And an admin key is not a virtual key.
	_, _, err := ask(t, base, admin, "hi")
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 401, apiErr.StatusCode)
}

func TestAdminAPIDisabledWithoutKeys(t *testing.T) {
	base, _ := policyGateway(t, "policy: {audit: none}\n", newPolicyBackend(t, "vllm", "selfhosted", "EU"))
	req, _ := http.NewRequest(http.MethodPost, base+"/switchyard/explain", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer sk-plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
}
