package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// One answer, in every provider's wire format (testdata/providers): the
// text "Checking the weather.", two parallel tool calls, 120 prompt tokens
// of which 20 were read from the provider's cache, 40 completion tokens.
// Through the gateway the openai-go SDK must assemble the same message,
// JSON or streamed, from every one of them, and the cost must be the
// price table's.

type providerCase struct {
	route    string
	provider string
	model    string // upstream model; its default price applies
	cost     string // X-Switchyard-Cost-Usd, computed by hand from pricing.Defaults
	// stream reports whether an upstream request asked for a stream.
	stream func(r *http.Request, body map[string]any) bool
	extra  string // more backend fields, as ", key: value"
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "providers", name))
	require.NoError(t, err)
	return b
}

func streamFlag(_ *http.Request, body map[string]any) bool { return body["stream"] == true }

var providerCases = []providerCase{
	// gpt-4o-mini: 100 × 0.15 + 20 × 0.075 + 40 × 0.60 = 40.5 micro-USD.
	{route: "via-openai", provider: "openai", model: "gpt-4o-mini", cost: "0.0000405", stream: streamFlag},
	{route: "via-azure", provider: "azure", model: "gpt-4o-mini", cost: "0.0000405", stream: streamFlag, extra: ", api_version: 2024-10-21"},
	// claude-sonnet-4-5: 100 × 3 + 20 × 0.30 + 40 × 15 = 906 micro-USD.
	{route: "via-anthropic", provider: "anthropic", model: "claude-sonnet-4-5-20250929", cost: "0.000906", stream: streamFlag},
	// gemini-2.5-flash: 100 × 0.30 + 20 × 0.075 + 40 × 2.50 = 131.5 micro-USD.
	{route: "via-gemini", provider: "gemini", model: "gemini-2.5-flash", cost: "0.0001315",
		stream: func(r *http.Request, _ map[string]any) bool {
			return strings.Contains(r.URL.Path, ":streamGenerateContent")
		}},
	// claude-3-5-haiku: 100 × 0.80 + 20 × 0.08 + 40 × 4 = 241.6 micro-USD.
	{route: "via-bedrock", provider: "bedrock", model: "anthropic.claude-3-5-haiku-20241022-v1:0", cost: "0.0002416",
		stream: func(r *http.Request, _ map[string]any) bool { return strings.HasSuffix(r.URL.Path, "/converse-stream") },
		extra:  ", region: us-east-1, aws: {access_key_id: AKIDEXAMPLE, secret_access_key: secret}"},
}

// eventStream frames testdata/providers/NAME.events.json as an AWS event
// stream, with the AWS SDK's own encoder.
func eventStream(t *testing.T, name string) []byte {
	var events []struct {
		Event   string          `json:"event"`
		Payload json.RawMessage `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(fixture(t, name+".events.json"), &events))
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, ev := range events {
		var msg eventstream.Message
		msg.Headers.Set(":event-type", eventstream.StringValue(ev.Event))
		msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Payload = ev.Payload
		require.NoError(t, enc.Encode(&buf, msg))
	}
	return buf.Bytes()
}

func providerFixture(c providerCase) string {
	switch c.provider {
	case "azure":
		return "openai"
	}
	return c.provider
}

// providersGateway serves every providerCase's route from a fake upstream
// answering with that provider's fixtures; received records the paths
// each upstream was called on.
func providersGateway(t *testing.T) (string, func() map[string][]string) {
	var y strings.Builder
	y.WriteString("server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n")
	var mu sync.Mutex
	received := map[string][]string{}
	for _, c := range providerCases {
		name := providerFixture(c)
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			received[c.provider] = append(received[c.provider], r.URL.Path)
			mu.Unlock()
			switch {
			case c.stream(r, body) && c.provider == "bedrock":
				w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
				_, _ = w.Write(eventStream(t, name))
				return
			case c.stream(r, body):
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = w.Write(fixture(t, name+".sse"))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(fixture(t, name+".json"))
		})
		base := up.URL
		if c.provider == "openai" {
			base += "/v1"
		}
		if c.provider == "azure" {
			base += "/openai"
		}
		y.WriteString("  - {name: " + c.provider + ", kind: proprietary, provider: " + c.provider + ", base_url: " + base + ", api_key: k" + c.extra + "}\n")
	}
	y.WriteString("models:\n")
	for _, c := range providerCases {
		y.WriteString("  - {name: " + c.route + ", deployments: [{backend: " + c.provider + ", model: " + c.model + "}]}\n")
	}
	y.WriteString("keys:\n  - {id: test, sha256: " + gateway.HashKey(testKey) + ", tenant: acme, team: search}\n")
	cfg, err := config.Parse([]byte(y.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err, y.String())
	base, _ := startGateway(t, cfg)
	return base, func() map[string][]string {
		mu.Lock()
		defer mu.Unlock()
		out := map[string][]string{}
		for k, v := range received {
			out[k] = append([]string(nil), v...)
		}
		return out
	}
}

func TestProvidersAssembleTheSameAnswer(t *testing.T) {
	base, receivedPaths := providersGateway(t)
	client := sdk(base)

	params := func(route string) openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{
			Model:    route,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather and time in Paris?")},
			Tools: []openai.ChatCompletionToolUnionParam{
				openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather", Parameters: openai.FunctionParameters{"type": "object"}}),
				openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_time", Parameters: openai.FunctionParameters{"type": "object"}}),
			},
		}
	}
	type call struct {
		Name string
		Args map[string]any
	}
	calls := func(tcs []openai.ChatCompletionMessageToolCallUnion) []call {
		var out []call
		for _, tc := range tcs {
			var args map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.Function.Arguments), &args), tc.Function.Arguments)
			assert.NotEmpty(t, tc.ID)
			out = append(out, call{tc.Function.Name, args})
		}
		return out
	}
	want := []call{
		{"get_weather", map[string]any{"city": "Paris", "unit": "celsius"}},
		{"get_time", map[string]any{"timezone": "Europe/Paris"}},
	}
	for _, c := range providerCases {
		t.Run(c.route, func(t *testing.T) {
			var resp *http.Response
			got, err := client.Chat.Completions.New(context.Background(), params(c.route), option.WithResponseInto(&resp))
			require.NoError(t, err)
			msg := got.Choices[0].Message
			assert.Equal(t, "Checking the weather.", msg.Content)
			assert.Equal(t, want, calls(msg.ToolCalls))
			assert.Equal(t, "tool_calls", got.Choices[0].FinishReason)
			assert.EqualValues(t, 120, got.Usage.PromptTokens)
			assert.EqualValues(t, 20, got.Usage.PromptTokensDetails.CachedTokens)
			assert.EqualValues(t, 40, got.Usage.CompletionTokens)
			assert.Equal(t, c.cost, resp.Header.Get("X-Switchyard-Cost-Usd"))
			assert.Equal(t, c.provider, resp.Header.Get("X-Switchyard-Backend"))

			p := params(c.route)
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := client.Chat.Completions.NewStreaming(context.Background(), p)
			acc := openai.ChatCompletionAccumulator{}
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			require.NoError(t, stream.Err())
			require.Len(t, acc.Choices, 1)
			smsg := acc.Choices[0].Message
			assert.Equal(t, "Checking the weather.", smsg.Content)
			assert.Equal(t, want, calls(smsg.ToolCalls))
			assert.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
			assert.EqualValues(t, 120, acc.Usage.PromptTokens)
			assert.EqualValues(t, 20, acc.Usage.PromptTokensDetails.CachedTokens)
			assert.EqualValues(t, 40, acc.Usage.CompletionTokens)
		})
	}
	received := receivedPaths()
	require.Len(t, received["anthropic"], 2)
	assert.Equal(t, "/v1/messages", received["anthropic"][0])
	assert.Equal(t, "/openai/deployments/gpt-4o-mini/chat/completions", received["azure"][0])
	assert.Equal(t, []string{"/models/gemini-2.5-flash:generateContent", "/models/gemini-2.5-flash:streamGenerateContent"}, received["gemini"])
	assert.Equal(t, []string{"/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse", "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse-stream"}, received["bedrock"])
}

// An overloaded provider (Anthropic's 529) is retried on the same backend
// with backoff; the client sees one answer, billed once.
func TestProviderRetriesTransientFailures(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(529)
			_, _ = w.Write([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture(t, "anthropic.json"))
	})
	y := "server: {listen: 127.0.0.1:0}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n" +
		"  - {name: anthropic, kind: proprietary, provider: anthropic, base_url: " + up.URL + ", api_key: k, retry: {attempts: 3, base: 10ms, max: 50ms}}\n" +
		"models:\n  - {name: claude, deployments: [{backend: anthropic, model: claude-sonnet-4-5}]}\n" +
		"keys:\n  - {id: test, sha256: " + gateway.HashKey(testKey) + ", tenant: acme, team: search}\n"
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)
	var resp *http.Response
	got, err := sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "claude", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithResponseInto(&resp))
	require.NoError(t, err)
	assert.Equal(t, "Checking the weather.", got.Choices[0].Message.Content)
	assert.Equal(t, "0.000906", resp.Header.Get("X-Switchyard-Cost-Usd"))
	assert.Equal(t, "1", resp.Header.Get("X-Switchyard-Attempts"), "retries stay inside one deployment attempt")
	mu.Lock()
	assert.Equal(t, 2, calls)
	mu.Unlock()
}
