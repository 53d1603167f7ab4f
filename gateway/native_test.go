package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// anthropicBackend is a fake Anthropic API answering with the provider
// fixtures, recording each request's body and anthropic-beta header.
type anthropicBackend struct {
	*upstream
	mu     sync.Mutex
	bodies [][]byte
	betas  []string
}

func newAnthropicBackend(t *testing.T) *anthropicBackend {
	b := &anthropicBackend{}
	b.upstream = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, raw)
		b.betas = append(b.betas, r.Header.Get("anthropic-beta"))
		b.mu.Unlock()
		if gjson.GetBytes(raw, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write(fixture(t, "anthropic.sse"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture(t, "anthropic.json"))
	})
	return b
}

func (b *anthropicBackend) last() ([]byte, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bodies[len(b.bodies)-1], b.betas[len(b.betas)-1]
}

// A Messages request routed to an Anthropic backend goes as the client
// sent it (model rewritten): cache_control, thinking blocks and the
// client's beta features arrive, and the answer comes back as Anthropic
// wrote it, with usage and cost exact.
func TestMessagesNativeToAnthropic(t *testing.T) {
	up := newAnthropicBackend(t)
	y := "server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n" +
		"  - {name: anthropic, kind: proprietary, provider: anthropic, base_url: " + up.URL + ", api_key: k, beta: [configured-beta]}\n" +
		"models:\n  - {name: claude, deployments: [{backend: anthropic, model: claude-sonnet-4-5-20250929}]}\n" +
		"keys:\n  - {id: test, sha256: " + gateway.HashKey(testKey) + ", tenant: acme, team: search}\n"
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)
	client := claude(base, aoption.WithHeader("anthropic-beta", "interleaved-thinking-2025-05-14"))
	ctx := context.Background()
	params := anthropic.MessageNewParams{Model: "claude", MaxTokens: 4096,
		System:   []anthropic.TextBlockParam{{Text: "Be brief.", CacheControl: anthropic.NewCacheControlEphemeralParam()}},
		Thinking: anthropic.ThinkingConfigParamOfEnabled(2048),
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?")),
			anthropic.NewAssistantMessage(anthropic.NewThinkingBlock("sig-abc", "The user wants weather."), anthropic.NewTextBlock("Let me check.")),
			anthropic.NewUserMessage(anthropic.NewTextBlock("Go on.")),
		}}

	check := func(t *testing.T, m anthropic.Message) {
		sent, beta := up.last()
		assert.Equal(t, "claude-sonnet-4-5-20250929", gjson.GetBytes(sent, "model").Str, "the upstream model")
		assert.Equal(t, "ephemeral", gjson.GetBytes(sent, "system.0.cache_control.type").Str, "cache_control kept")
		assert.Equal(t, "sig-abc", gjson.GetBytes(sent, "messages.1.content.0.signature").Str, "thinking block kept")
		assert.Equal(t, int64(2048), gjson.GetBytes(sent, "thinking.budget_tokens").Int())
		assert.Contains(t, beta, "interleaved-thinking-2025-05-14")
		assert.Contains(t, beta, "configured-beta")
		assert.Equal(t, "Checking the weather.", m.Content[0].Text)
		assert.Equal(t, "get_weather", m.Content[1].Name)
		assert.EqualValues(t, 100, m.Usage.InputTokens)
		assert.EqualValues(t, 20, m.Usage.CacheReadInputTokens)
		assert.EqualValues(t, 40, m.Usage.OutputTokens)
	}

	var resp *http.Response
	m, err := client.Messages.New(ctx, params, aoption.WithResponseInto(&resp))
	require.NoError(t, err)
	check(t, *m)
	assert.Equal(t, "msg_01", m.ID, "Anthropic's own answer")
	assert.Equal(t, "0.000906", resp.Header.Get("X-Switchyard-Cost-Usd"), "100 × 3 + 20 × 0.30 + 40 × 15 micro-USD")
	assert.Empty(t, resp.Header.Get(gateway.HeaderDropped), "nothing was dropped")

	stream := client.Messages.NewStreaming(ctx, params)
	var acc anthropic.Message
	for stream.Next() {
		require.NoError(t, acc.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	check(t, acc)
	sent, _ := up.last()
	assert.True(t, gjson.GetBytes(sent, "stream").Bool())
}

// The client's own request goes out only when the policy's decision
// covered all of it: data the translation drops (an unknown member) or a
// redaction obligation sends the translation instead, and the sensitive
// data never leaves.
func TestMessagesNativeOnlyWhenTheDecisionCoversIt(t *testing.T) {
	up := newAnthropicBackend(t)
	y := "server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n" +
		"  - {name: anthropic, kind: proprietary, provider: anthropic, base_url: " + up.URL + ", api_key: k}\n" +
		"models:\n  - {name: claude, deployments: [{backend: anthropic, model: claude-sonnet-4-5}]}\n" +
		"keys:\n  - {id: redact, sha256: " + gateway.HashKey("sk-redact") + ", tenant: acme, team: t}\n" +
		"  - {id: plain, sha256: " + gateway.HashKey("sk-plain") + ", tenant: t, team: t}\n"
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)
	post := func(key, body string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Logf("%d %s", resp.StatusCode, raw)
		}
		return resp.StatusCode
	}

	// An unknown member carrying a card number: the translation drops it,
	// so the native request (which would carry it) is not sent.
	require.Equal(t, 200, post("sk-plain", `{"model":"claude","max_tokens":50,"x_notes":"card 4111 1111 1111 1111","messages":[{"role":"user","content":"hello"}]}`))
	sent, _ := up.last()
	assert.NotContains(t, string(sent), "4111")
	assert.False(t, gjson.GetBytes(sent, "x_notes").Exists())

	// Without anything extra, the native request goes.
	require.Equal(t, 200, post("sk-plain", `{"model":"claude","max_tokens":50,"x_notes":"hello","messages":[{"role":"user","content":"hello"}]}`))
	sent, _ = up.last()
	assert.Equal(t, "hello", gjson.GetBytes(sent, "x_notes").Str, "the client's own request, unknown members included")

	// A tenant whose policy redacts for proprietary backends: the redacted
	// translation goes, never the client's own request.
	require.Equal(t, 200, post("sk-redact", `{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"mail jane.doe@example.com"}]}`))
	sent, _ = up.last()
	assert.NotContains(t, string(sent), "jane.doe")
	assert.True(t, bytes.Contains(sent, []byte("[EMAIL_1]")), "%s", sent)
	var v map[string]any
	require.NoError(t, json.Unmarshal(sent, &v))
}
