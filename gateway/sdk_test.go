package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSDKChatCompletion(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("qwen2.5-7b", "Hello there!", 1000, 500, 400))
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", upstream: "qwen2.5-7b", backends: []string{up.URL + "/v1"}}))
	client := sdk(base)

	var resp *http.Response
	seed := int64(7)
	got, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("Say hello")},
		N:        openai.Int(1),
		Seed:     openai.Int(seed),
		Stop:     openai.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"\n\n"}},
		Logprobs: openai.Bool(true),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONObject: &shared.ResponseFormatJSONObjectParam{},
		},
	}, option.WithResponseInto(&resp))
	require.NoError(t, err)

	assert.Equal(t, "Hello there!", got.Choices[0].Message.Content)
	assert.EqualValues(t, 1000, got.Usage.PromptTokens)
	assert.EqualValues(t, 400, got.Usage.PromptTokensDetails.CachedTokens)

	// Where it went and what it cost: 600 uncached × $1 + 400 cached × $0.5
	// + 500 output × $2, per million tokens.
	assert.Equal(t, "b0", resp.Header.Get("X-Switchyard-Backend"))
	assert.Equal(t, "selfhosted", resp.Header.Get("X-Switchyard-Backend-Kind"))
	assert.Equal(t, "qwen2.5-7b", resp.Header.Get("X-Switchyard-Model"))
	assert.Equal(t, "0.0018", resp.Header.Get("X-Switchyard-Cost-Usd"))
	assert.Equal(t, "1", resp.Header.Get("X-Switchyard-Attempts"))
	assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))

	reqs := up.received()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, "/v1/chat/completions", r.Path)
	assert.Equal(t, "qwen2.5-7b", r.Body["model"], "the public name is rewritten to the deployment's model")
	assert.Equal(t, "Bearer "+backendKey, r.Header.Get("Authorization"), "the backend's key goes upstream, never the client's")
	assert.Equal(t, resp.Header.Get("X-Request-Id"), r.Header.Get("X-Request-Id"))
	// Parameters pass through untouched.
	assert.EqualValues(t, 7, r.Body["seed"])
	assert.EqualValues(t, 1, r.Body["n"])
	assert.Equal(t, true, r.Body["logprobs"])
	assert.Equal(t, []any{"\n\n"}, r.Body["stop"])
	assert.Equal(t, map[string]any{"type": "json_object"}, r.Body["response_format"])
	assert.Len(t, r.Body["messages"], 2)
}

func TestSDKChatStreamWithUsage(t *testing.T) {
	words := []string{"Hel", "lo", ", ", "wor", "ld", "!"}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		events := []string{chunk("m", `{"role":"assistant","content":""}`, "")}
		for _, wd := range words {
			events = append(events, chunk("m", `{"content":"`+wd+`"}`, ""))
		}
		events = append(events, chunk("m", `{}`, "stop"), usageChunk("m", 12, 6))
		writeSSE(w, events...)
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}}))
	client := sdk(base)

	var resp *http.Response
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "chat",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}, option.WithResponseInto(&resp))
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		chunks++
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, len(words)+3, chunks, "every event relayed, usage chunk included")
	assert.Equal(t, "Hello, world!", acc.Choices[0].Message.Content)
	assert.Equal(t, "stop", acc.Choices[0].FinishReason)
	assert.EqualValues(t, 12, acc.Usage.PromptTokens)
	assert.EqualValues(t, 6, acc.Usage.CompletionTokens)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "b0", resp.Header.Get("X-Switchyard-Backend"))
}

// readRawStream posts a streaming request with net/http and returns every
// SSE line, comments included.
func readRawStream(t *testing.T, base, body string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l != ": keep-alive" {
			lines = append(lines, l)
		}
	}
	require.NoError(t, sc.Err())
	return lines
}

func costOf(t *testing.T, lines []string) map[string]any {
	t.Helper()
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, ": x-switchyard-cost "); ok {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(rest), &m))
			return m
		}
	}
	t.Fatalf("no cost comment in %q", lines)
	return nil
}

func TestStreamUsageChunkOnlyWhenAsked(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, chunk("m", `{"content":"hi"}`, ""), chunk("m", `{}`, "stop"), usageChunk("m", 1000, 1000))
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}}))

	lines := readRawStream(t, base, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	for _, l := range lines {
		assert.NotContains(t, l, `"usage"`, "the client did not ask for usage")
	}
	assert.Equal(t, "data: [DONE]", lines[len(lines)-1])
	// The gateway asked the upstream for usage anyway, and billed it.
	assert.Equal(t, map[string]any{"include_usage": true}, up.received()[0].Body["stream_options"])
	cost := costOf(t, lines)
	assert.Equal(t, "0.003", cost["cost_usd"])
	assert.Equal(t, false, cost["usage_estimated"])
	assert.EqualValues(t, 1000, cost["prompt_tokens"])
}

func TestStreamWithoutUpstreamUsageIsEstimated(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, chunk("m", `{"content":"ab"}`, ""), chunk("m", `{"content":"cd"}`, ""), chunk("m", `{"content":"efgh"}`, ""), chunk("m", `{}`, "stop"))
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}}))

	client := sdk(base)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "chat",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, "abcdefgh", acc.Choices[0].Message.Content)
	assert.EqualValues(t, 4, acc.Usage.CompletionTokens, "one token per streamed chunk")
	assert.Positive(t, acc.Usage.PromptTokens)

	lines := readRawStream(t, base, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	assert.Equal(t, true, costOf(t, lines)["usage_estimated"])
}

func TestSDKToolCallRoundTrip(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []map[string]any `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err == nil && len(body.Messages) > 0 && body.Messages[len(body.Messages)-1]["role"] == "tool" {
			writeJSON(w, 200, chatCompletion("m", "It is 21°C in Paris.", 30, 9, 0))
			return
		}
		// The tool call arrives in pieces: id and name first, then the
		// arguments split across chunks.
		writeSSE(w,
			chunk("m", `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]}`, ""),
			chunk("m", `{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}`, ""),
			chunk("m", `{"tool_calls":[{"index":0,"function":{"arguments":"ty\": \"Par"}}]}`, ""),
			chunk("m", `{"tool_calls":[{"index":0,"function":{"arguments":"is\"}"}}]}`, ""),
			chunk("m", `{}`, "tool_calls"),
			usageChunk("m", 50, 12),
		)
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}}))
	client := sdk(base)

	params := openai.ChatCompletionNewParams{
		Model:    "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "get_weather",
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
		})},
		ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")},
	}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		acc.AddChunk(stream.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	require.NoError(t, stream.Err())
	require.Len(t, acc.Choices[0].Message.ToolCalls, 1)
	call := acc.Choices[0].Message.ToolCalls[0]
	assert.Equal(t, "call_abc", call.ID)
	assert.Equal(t, "get_weather", call.Function.Name)
	assert.JSONEq(t, `{"city":"Paris"}`, call.Function.Arguments)
	assert.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
	require.Len(t, finished, 1)

	// Send the tool result back and get the answer.
	params.Messages = append(params.Messages, acc.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temp_c":21}`, call.ID))
	got, err := client.Chat.Completions.New(context.Background(), params)
	require.NoError(t, err)
	assert.Equal(t, "It is 21°C in Paris.", got.Choices[0].Message.Content)

	reqs := up.received()
	require.Len(t, reqs, 2)
	assert.NotEmpty(t, reqs[0].Body["tools"], "tools pass through")
	assert.Equal(t, "auto", reqs[0].Body["tool_choice"])
	msgs := reqs[1].Body["messages"].([]any)
	require.Len(t, msgs, 3)
	assistant := msgs[1].(map[string]any)
	assert.Equal(t, "call_abc", assistant["tool_calls"].([]any)[0].(map[string]any)["id"])
	assert.Equal(t, "call_abc", msgs[2].(map[string]any)["tool_call_id"])
}

func TestSDKEmbeddings(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2,0.3]},{"object":"embedding","index":1,"embedding":[0.4,0.5,-0.6]}],"model":"e5","usage":{"prompt_tokens":8,"total_tokens":8}}`)
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "embed", upstream: "e5", backends: []string{up.URL + "/v1"}}))
	var resp *http.Response
	got, err := sdk(base).Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
	}, option.WithResponseInto(&resp))
	require.NoError(t, err)
	require.Len(t, got.Data, 2)
	assert.Equal(t, []float64{0.4, 0.5, -0.6}, got.Data[1].Embedding)
	assert.EqualValues(t, 8, got.Usage.PromptTokens)
	assert.Equal(t, "0.000008", resp.Header.Get("X-Switchyard-Cost-Usd"))
	r := up.received()[0]
	assert.Equal(t, "/v1/embeddings", r.Path)
	assert.Equal(t, "e5", r.Body["model"])
}

func TestSDKCompletions(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m","choices":[{"text":" world","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}`)
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "base", backends: []string{up.URL + "/v1"}}))
	got, err := sdk(base).Completions.New(context.Background(), openai.CompletionNewParams{
		Model:     "base",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("hello")},
		MaxTokens: openai.Int(1),
	})
	require.NoError(t, err)
	assert.Equal(t, " world", got.Choices[0].Text)
	assert.EqualValues(t, 3, got.Usage.TotalTokens)
	assert.Equal(t, "/v1/completions", up.received()[0].Path)
}

func TestSDKModels(t *testing.T) {
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{"http://127.0.0.1:1/v1"}},
		route{name: "meta-llama/Llama-3.1-8B-Instruct", backends: []string{"http://127.0.0.1:1/v1"}})
	cfg.Models[0].Aliases = []string{"fast"}
	base, _ := startGateway(t, cfg)
	client := sdk(base)

	page, err := client.Models.List(context.Background())
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		assert.Equal(t, "switchyard", m.OwnedBy)
	}
	assert.Equal(t, []string{"chat", "fast", "meta-llama/Llama-3.1-8B-Instruct"}, ids)

	m, err := client.Models.Get(context.Background(), "meta-llama/Llama-3.1-8B-Instruct")
	require.NoError(t, err)
	assert.Equal(t, "meta-llama/Llama-3.1-8B-Instruct", m.ID)

	_, err = client.Models.Get(context.Background(), "nope")
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.Equal(t, "model_not_found", apiErr.Code)
}
