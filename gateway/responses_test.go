package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// toolUpstream answers chat completions: with a get_weather call when the
// conversation has no tool result yet, else with text naming the result;
// as JSON or as a stream, as asked.
func toolUpstream(t *testing.T) *upstream {
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream   bool             `json:"stream"`
			Messages []map[string]any `json:"messages"`
			Tools    []any            `json:"tools"`
		}
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		var toolResult string
		for _, m := range req.Messages {
			if m["role"] == "tool" {
				toolResult = fmt.Sprint(m["content"])
			}
		}
		switch {
		case len(req.Tools) > 0 && toolResult == "":
			if req.Stream {
				writeSSE(w,
					chunk("up", `{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}`, ""),
					chunk("up", `{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, ""),
					chunk("up", `{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, "tool_calls"),
					usageChunk("up", 30, 12))
				return
			}
			writeJSON(w, 200, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}`)
		default:
			text := "hello there"
			if toolResult != "" {
				text = "it is " + toolResult
			}
			if req.Stream {
				writeSSE(w, chunk("up", `{"role":"assistant","content":""}`, ""), chunk("up", fmt.Sprintf(`{"content":%q}`, text[:5]), ""),
					chunk("up", fmt.Sprintf(`{"content":%q}`, text[5:]), "stop"), usageChunk("up", 20, 7))
				return
			}
			writeJSON(w, 200, chatCompletion("up", text, 20, 7, 0))
		}
	})
}

// functionOutput is a function_call_output input item.
func functionOutput(callID, output string) responses.ResponseInputItemUnionParam {
	item := responses.ResponseInputItemParamOfFunctionCallOutput(output)
	item.OfFunctionCallOutput.CallID = openai.String(callID)
	return item
}

func responsesGateway(t *testing.T, up *upstream) string {
	t.Helper()
	cfg := gatewayConfig(t, "", route{name: "chat", upstream: "up", backends: []string{up.URL + "/v1"}})
	cfg.Keys = append(cfg.Keys, config.Key{ID: "other", SHA256: gateway.HashKey("sk-other"), Tenant: "other-tenant"})
	base, _ := startGateway(t, cfg)
	return base
}

func TestResponsesThroughTheSDK(t *testing.T) {
	up := toolUpstream(t)
	base := responsesGateway(t, up)
	client := sdk(base)
	ctx := context.Background()

	t.Run("plain", func(t *testing.T) {
		resp, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "chat", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			Instructions: openai.String("be brief"),
		})
		require.NoError(t, err)
		assert.Equal(t, "hello there", resp.OutputText())
		assert.Equal(t, responses.ResponseStatusCompleted, resp.Status)
		assert.EqualValues(t, 20, resp.Usage.InputTokens)
		assert.EqualValues(t, 7, resp.Usage.OutputTokens)
		assert.True(t, strings.HasPrefix(resp.ID, "resp_"), resp.ID)
		sent := up.received()
		msgs := sent[len(sent)-1].Body["messages"].([]any)
		assert.Equal(t, "system", msgs[0].(map[string]any)["role"], "instructions become the system message")
	})

	t.Run("streamed", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{
			Model: "chat", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
		})
		var text strings.Builder
		var types []string
		var completed responses.Response
		for stream.Next() {
			ev := stream.Current()
			types = append(types, ev.Type)
			switch ev.Type {
			case "response.output_text.delta":
				text.WriteString(ev.Delta)
			case "response.completed":
				completed = ev.AsResponseCompleted().Response
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, "hello there", text.String())
		assert.Equal(t, "response.created", types[0])
		assert.Equal(t, "response.completed", types[len(types)-1])
		assert.Contains(t, types, "response.output_item.added")
		assert.Contains(t, types, "response.output_item.done")
		assert.Equal(t, "hello there", completed.OutputText())
		assert.EqualValues(t, 7, completed.Usage.OutputTokens)
	})

	t.Run("function tool round trip with previous_response_id", func(t *testing.T) {
		tool := responses.ToolParamOfFunction("get_weather", map[string]any{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
		}, false)
		first, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "chat", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in Paris?")},
			Tools: []responses.ToolUnionParam{tool}, Store: openai.Bool(true),
		})
		require.NoError(t, err)
		var call responses.ResponseFunctionToolCall
		for _, item := range first.Output {
			if item.Type == "function_call" {
				call = item.AsFunctionCall()
			}
		}
		require.Equal(t, "get_weather", call.Name)
		assert.JSONEq(t, `{"city":"Paris"}`, call.Arguments)

		second, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "chat", PreviousResponseID: openai.String(first.ID), Tools: []responses.ToolUnionParam{tool},
			Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
				functionOutput(call.CallID, "sunny"),
			}},
		})
		require.NoError(t, err)
		assert.Equal(t, "it is sunny", second.OutputText())
		// The upstream saw the whole conversation: the first question, the
		// assistant's call and the tool's result.
		sent := up.received()
		msgs := fmt.Sprint(sent[len(sent)-1].Body["messages"])
		assert.Contains(t, msgs, "weather in Paris?")
		assert.Contains(t, msgs, "call_1")
		assert.Contains(t, msgs, "sunny")

		got, err := client.Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
		require.NoError(t, err)
		assert.Equal(t, "it is sunny", got.OutputText())

		// Another tenant neither reads nor continues it.
		_, err = sdk(base, option.WithAPIKey("sk-other")).Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 404, apiErr.StatusCode)
		_, err = sdk(base, option.WithAPIKey("sk-other")).Responses.New(ctx, responses.ResponseNewParams{
			Model: "chat", PreviousResponseID: openai.String(second.ID),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("and tomorrow?")},
		})
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 404, apiErr.StatusCode)
		assert.Equal(t, "previous_response_id", apiErr.Param)

		require.NoError(t, client.Responses.Delete(ctx, second.ID))
		_, err = client.Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 404, apiErr.StatusCode)
	})

	t.Run("invalid parameters get OpenAI's 400", func(t *testing.T) {
		_, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "chat", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
		}, option.WithJSONSet("temperature", "hot"))
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 400, apiErr.StatusCode)
		assert.Equal(t, "temperature", apiErr.Param)
	})
}

// Sensitive data anywhere in a Responses request (instructions, input
// items, a tool's output, an earlier turn of the stored conversation)
// keeps it off the proprietary backend under the shipped policy.
func TestResponsesSensitiveDataStaysLocal(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS, vllm)
	client := sdk(base, option.WithAPIKey("sk-plain"))
	ctx := context.Background()
	const card = "4111 1111 1111 1111"
	var proprietaryBefore atomic.Int32
	proprietaryBefore.Store(openaiUS.calls.Load())

	cases := sensitiveResponses("chat", card)
	for name, params := range cases {
		t.Run(name, func(t *testing.T) {
			resp, err := client.Responses.New(ctx, params)
			require.NoError(t, err)
			assert.Equal(t, "answered by vllm", resp.OutputText())
		})
	}

	// An earlier turn: the card was in the first request; the follow-up
	// is innocuous but carries the conversation, so it stays local too.
	first, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "chat", Store: openai.Bool(true),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("my card is " + card)}})
	require.NoError(t, err)
	second, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "chat", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is the capital of France?")}})
	require.NoError(t, err)
	assert.Equal(t, "answered by vllm", second.OutputText())

	assert.NotContains(t, bodiesSent(openaiUS), "4111", "the card number never reached the proprietary backend")
	assert.Equal(t, proprietaryBefore.Load(), openaiUS.calls.Load())

	// Without sensitive data, the proprietary backend (first in order) answers.
	plain, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "chat",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is the capital of France?")}})
	require.NoError(t, err)
	assert.Equal(t, "answered by openai", plain.OutputText())
}

// sensitiveResponses are Responses requests to model holding secret in
// each place a client writes: the instructions, an input message, a
// function call's output.
func sensitiveResponses(model, secret string) map[string]responses.ResponseNewParams {
	return map[string]responses.ResponseNewParams{
		"instructions": {Model: model, Instructions: openai.String("The customer's card is " + secret),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")}},
		"input item": {Model: model, Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("charge "+secret, responses.EasyInputMessageRoleUser)}}},
		"function call output": {Model: model, Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("look it up", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfFunctionCall(`{}`, "call_9", "lookup"),
			functionOutput("call_9", "card on file: "+secret)}}},
	}
}
