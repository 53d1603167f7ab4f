package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/tokens"
)

// claude is the real Anthropic Go SDK pointed at the gateway (its root:
// the SDK adds /v1/messages), without retries.
func claude(base string, opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{
		aoption.WithBaseURL(strings.TrimSuffix(base, "/v1")), aoption.WithAPIKey(testKey), aoption.WithMaxRetries(0),
	}, opts...)...)
}

var weatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "get_weather", Description: anthropic.String("Weather for a city"),
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}}}}

func TestMessagesThroughTheAnthropicSDK(t *testing.T) {
	up := toolUpstream(t)
	base := responsesGateway(t, up)
	client := claude(base)
	ctx := context.Background()
	hello := []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}

	t.Run("plain", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 100, Messages: hello,
			System: []anthropic.TextBlockParam{{Text: "Be brief."}}})
		require.NoError(t, err)
		require.Len(t, msg.Content, 1)
		assert.Equal(t, "hello there", msg.Content[0].Text)
		assert.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
		assert.Equal(t, "chat", string(msg.Model), "the model the client asked for")
		assert.EqualValues(t, 20, msg.Usage.InputTokens)
		assert.EqualValues(t, 7, msg.Usage.OutputTokens)
		sent := up.received()
		last := sent[len(sent)-1].Body
		assert.EqualValues(t, 100, last["max_tokens"])
		assert.Equal(t, "system", last["messages"].([]any)[0].(map[string]any)["role"])
	})

	t.Run("streamed", func(t *testing.T) {
		stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 100, Messages: hello})
		var msg anthropic.Message
		var types []string
		for stream.Next() {
			ev := stream.Current()
			types = append(types, ev.Type)
			require.NoError(t, msg.Accumulate(ev))
		}
		require.NoError(t, stream.Err())
		require.Len(t, msg.Content, 1)
		assert.Equal(t, "hello there", msg.Content[0].Text)
		assert.Equal(t, "message_start", types[0])
		assert.Equal(t, "message_stop", types[len(types)-1])
		assert.Contains(t, types, "content_block_delta")
		assert.EqualValues(t, 7, msg.Usage.OutputTokens)
	})

	t.Run("tool use round trip", func(t *testing.T) {
		for _, streamed := range []bool{false, true} {
			params := anthropic.MessageNewParams{Model: "chat", MaxTokens: 100, Tools: []anthropic.ToolUnionParam{weatherTool},
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris?"))}}
			var first anthropic.Message
			if streamed {
				stream := client.Messages.NewStreaming(ctx, params)
				for stream.Next() {
					require.NoError(t, first.Accumulate(stream.Current()))
				}
				require.NoError(t, stream.Err())
			} else {
				m, err := client.Messages.New(ctx, params)
				require.NoError(t, err)
				first = *m
			}
			require.Equal(t, anthropic.StopReasonToolUse, first.StopReason)
			var use anthropic.ToolUseBlock
			for _, b := range first.Content {
				if b.Type == "tool_use" {
					use = b.AsToolUse()
				}
			}
			require.Equal(t, "get_weather", use.Name)
			assert.JSONEq(t, `{"city":"Paris"}`, string(use.Input))

			params.Messages = append(params.Messages, first.ToParam(),
				anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "sunny", false)))
			second, err := client.Messages.New(ctx, params)
			require.NoError(t, err)
			assert.Equal(t, "it is sunny", second.Content[0].Text)
			sent := up.received()
			msgs := sent[len(sent)-1].Body["messages"].([]any)
			assert.Equal(t, "tool", msgs[len(msgs)-1].(map[string]any)["role"])
			assert.Equal(t, use.ID, msgs[len(msgs)-1].(map[string]any)["tool_call_id"])
		}
	})

	t.Run("count tokens", func(t *testing.T) {
		res, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "chat", Messages: hello})
		require.NoError(t, err)
		chat := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
		assert.Equal(t, tokens.Prompt(tokens.Approx, tokens.OpChat, []byte(chat)), res.InputTokens,
			"the route's estimate (model 'up': no tokenizer known, the approximation)")
	})

	t.Run("errors in Anthropic's shape", func(t *testing.T) {
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 100, Messages: hello,
			Tools: []anthropic.ToolUnionParam{{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{}}}})
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		assert.Equal(t, 400, apiErr.StatusCode)
		assert.Equal(t, "invalid_request_error", string(apiErr.Type()))

		_, err = client.Messages.New(ctx, anthropic.MessageNewParams{Model: "nope", MaxTokens: 100, Messages: hello})
		require.True(t, errors.As(err, &apiErr), "%v", err)
		assert.Equal(t, 404, apiErr.StatusCode)
		assert.Equal(t, "not_found_error", string(apiErr.Type()))

		wrong := claude(base, aoption.WithAPIKey("sk-wrong"))
		_, err = wrong.Messages.New(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 100, Messages: hello})
		require.True(t, errors.As(err, &apiErr), "%v", err)
		assert.Equal(t, 401, apiErr.StatusCode)
		assert.Equal(t, "authentication_error", string(apiErr.Type()))

		// Hostile and malformed bodies are refused before anything else,
		// in the same shape.
		for _, body := range []string{strings.Repeat("[", 50_000), `{"model":"chat"`, `{"model":"chat","max_tokens":-1,"messages":[]}`} {
			req, _ := http.NewRequest(http.MethodPost, base+"/messages", strings.NewReader(body))
			req.Header.Set("x-api-key", testKey)
			req.Header.Set("anthropic-version", "2023-06-01")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, 400, resp.StatusCode, "%s", raw)
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			require.NoError(t, json.Unmarshal(raw, &e), "%s", raw)
			assert.Equal(t, "error", e.Type)
			assert.Equal(t, "invalid_request_error", e.Error.Type)
			assert.NotEmpty(t, e.Error.Message)
		}
	})

	t.Run("thinking is dropped with a note", func(t *testing.T) {
		var resp *http.Response
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 4096, Messages: hello,
			Thinking: anthropic.ThinkingConfigParamOfEnabled(2048)}, aoption.WithResponseInto(&resp))
		require.NoError(t, err)
		assert.Contains(t, resp.Header.Get(gateway.HeaderDropped), "thinking")
		sent := up.received()
		_, has := sent[len(sent)-1].Body["thinking"]
		assert.False(t, has)
	})
}

// Sensitive data anywhere in a Messages request (system blocks, a tool's
// result, an earlier assistant turn) keeps it off the proprietary backend
// under the shipped policy.
func TestMessagesSensitiveDataStaysLocal(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS, vllm)
	client := claude(base, aoption.WithAPIKey("sk-plain"))
	ctx := context.Background()
	const card = "4111 1111 1111 1111"
	user := func(s string) anthropic.MessageParam { return anthropic.NewUserMessage(anthropic.NewTextBlock(s)) }

	cases := map[string]anthropic.MessageNewParams{
		"system block": {Model: "chat", MaxTokens: 50, System: []anthropic.TextBlockParam{{Text: "Card on file: " + card}},
			Messages: []anthropic.MessageParam{user("hello")}},
		"tool result": {Model: "chat", MaxTokens: 50, Tools: []anthropic.ToolUnionParam{weatherTool}, Messages: []anthropic.MessageParam{
			user("look it up"),
			anthropic.NewAssistantMessage(anthropic.NewToolUseBlock("toolu_1", map[string]any{"city": "Paris"}, "get_weather")),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_1", "card "+card, false))}},
		"earlier assistant turn": {Model: "chat", MaxTokens: 50, Messages: []anthropic.MessageParam{
			user("what card do I use?"), anthropic.NewAssistantMessage(anthropic.NewTextBlock("You use " + card + ".")), user("thanks")}},
	}
	for name, params := range cases {
		t.Run(name, func(t *testing.T) {
			msg, err := client.Messages.New(ctx, params)
			require.NoError(t, err)
			assert.Equal(t, "answered by vllm", msg.Content[0].Text)
		})
	}
	assert.NotContains(t, bodiesSent(openaiUS), "4111", "the card number never reached the proprietary backend")
	assert.Zero(t, openaiUS.calls.Load())

	msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 50, Messages: []anthropic.MessageParam{user("capital of France?")}})
	require.NoError(t, err)
	assert.Equal(t, "answered by openai", msg.Content[0].Text, "without sensitive data the first backend answers")
}
