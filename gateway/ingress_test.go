package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Any ingress to any backend: the Responses API and Anthropic Messages,
// plain and streamed through the SDKs' own accumulators, against every
// provider's wire format (OpenAI, Azure, Anthropic, Gemini, Bedrock), give
// the same answer (text and two tool calls), the same usage (120 prompt
// tokens of which 20 cached, 40 completion) and the same cost as chat
// completions do.
func TestIngressesAssembleTheSameAnswerFromEveryProvider(t *testing.T) {
	base, _ := providersGateway(t)
	ctx := context.Background()
	oa := sdk(base)
	cl := claude(base)
	wantCalls := map[string]map[string]any{
		"get_weather": {"city": "Paris", "unit": "celsius"},
		"get_time":    {"timezone": "Europe/Paris"},
	}
	object := map[string]any{"type": "object"}

	for _, c := range providerCases {
		t.Run(c.route, func(t *testing.T) {
			t.Run("responses", func(t *testing.T) {
				params := responses.ResponseNewParams{
					Model: c.route, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is the weather and time in Paris?")},
					Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", object, false), responses.ToolParamOfFunction("get_time", object, false)},
				}
				check := func(t *testing.T, r responses.Response) {
					assert.Equal(t, "Checking the weather.", r.OutputText())
					calls := map[string]map[string]any{}
					for _, item := range r.Output {
						if item.Type == "function_call" {
							fc := item.AsFunctionCall()
							var args map[string]any
							require.NoError(t, json.Unmarshal([]byte(fc.Arguments), &args), fc.Arguments)
							assert.NotEmpty(t, fc.CallID)
							calls[fc.Name] = args
						}
					}
					assert.Equal(t, wantCalls, calls)
					assert.EqualValues(t, 120, r.Usage.InputTokens)
					assert.EqualValues(t, 20, r.Usage.InputTokensDetails.CachedTokens)
					assert.EqualValues(t, 40, r.Usage.OutputTokens)
				}
				var resp *http.Response
				r, err := oa.Responses.New(ctx, params, option.WithResponseInto(&resp))
				require.NoError(t, err)
				check(t, *r)
				assert.Equal(t, c.cost, resp.Header.Get("X-Switchyard-Cost-Usd"))
				assert.Equal(t, c.provider, resp.Header.Get("X-Switchyard-Backend"))

				stream := oa.Responses.NewStreaming(ctx, params)
				var completed responses.Response
				for stream.Next() {
					if ev := stream.Current(); ev.Type == "response.completed" {
						completed = ev.AsResponseCompleted().Response
					}
				}
				require.NoError(t, stream.Err())
				check(t, completed)
			})

			t.Run("messages", func(t *testing.T) {
				params := anthropic.MessageNewParams{
					Model: anthropic.Model(c.route), MaxTokens: 1000,
					Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is the weather and time in Paris?"))},
					Tools: []anthropic.ToolUnionParam{
						{OfTool: &anthropic.ToolParam{Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{}}}},
						{OfTool: &anthropic.ToolParam{Name: "get_time", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{}}}},
					},
				}
				check := func(t *testing.T, m anthropic.Message) {
					var text string
					calls := map[string]map[string]any{}
					for _, b := range m.Content {
						switch b.Type {
						case "text":
							text += b.Text
						case "tool_use":
							var args map[string]any
							require.NoError(t, json.Unmarshal(b.Input, &args), string(b.Input))
							assert.NotEmpty(t, b.ID)
							calls[b.Name] = args
						}
					}
					assert.Equal(t, "Checking the weather.", text)
					assert.Equal(t, wantCalls, calls)
					assert.Equal(t, anthropic.StopReasonToolUse, m.StopReason)
					assert.EqualValues(t, 100, m.Usage.InputTokens, "Anthropic counts cached input apart")
					assert.EqualValues(t, 20, m.Usage.CacheReadInputTokens)
					assert.EqualValues(t, 40, m.Usage.OutputTokens)
				}
				var resp *http.Response
				m, err := cl.Messages.New(ctx, params, aoption.WithResponseInto(&resp))
				require.NoError(t, err)
				check(t, *m)
				assert.Equal(t, c.cost, resp.Header.Get("X-Switchyard-Cost-Usd"))

				stream := cl.Messages.NewStreaming(ctx, params)
				var acc anthropic.Message
				for stream.Next() {
					require.NoError(t, acc.Accumulate(stream.Current()))
				}
				require.NoError(t, stream.Err())
				check(t, acc)
			})
		})
	}
}
