package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Responses API and Anthropic Messages reach the embedded engine: the
// same greedy answer plain and streamed, usage as the engine counted it,
// and count_tokens from the local model's own tokenizer.
func TestLocalEngineThroughEveryIngress(t *testing.T) {
	lib := localLibOrSkip(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		t.Error("the fallback must not be called while the local engine has room")
	})
	base, _ := startGateway(t, localConfig(t, lib, up.URL+"/v1", 4, 8))
	ctx := context.Background()

	t.Run("responses", func(t *testing.T) {
		client := sdk(base)
		params := responses.ResponseNewParams{Model: "chat", Instructions: openai.String("be brief"),
			Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")},
			MaxOutputTokens: openai.Int(16), Temperature: openai.Float(0)}
		var resp *http.Response
		got, err := client.Responses.New(ctx, params, option.WithResponseInto(&resp))
		require.NoError(t, err)
		assert.NotEmpty(t, got.OutputText())
		assert.Equal(t, responses.ResponseStatusIncomplete, got.Status, "16 tokens, all used: incomplete")
		assert.EqualValues(t, 16, got.Usage.OutputTokens)
		assert.Greater(t, got.Usage.InputTokens, int64(5))
		assert.Equal(t, "local", resp.Header.Get("X-Switchyard-Backend"))

		stream := client.Responses.NewStreaming(ctx, params)
		var text strings.Builder
		var final responses.Response
		for stream.Next() {
			switch ev := stream.Current(); ev.Type {
			case "response.output_text.delta":
				text.WriteString(ev.Delta)
			case "response.incomplete", "response.completed":
				final = ev.Response
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, got.OutputText(), text.String(), "greedy: the same answer")
		assert.Equal(t, got.Usage.InputTokens, final.Usage.InputTokens)
		assert.Equal(t, got.Usage.OutputTokens, final.Usage.OutputTokens)
	})

	t.Run("messages", func(t *testing.T) {
		client := claude(base)
		params := anthropic.MessageNewParams{Model: "chat", MaxTokens: 16,
			System:   []anthropic.TextBlockParam{{Text: "be brief"}},
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))}}
		var resp *http.Response
		greedy := aoption.WithJSONSet("temperature", 0)
		got, err := client.Messages.New(ctx, params, aoption.WithResponseInto(&resp), greedy)
		require.NoError(t, err)
		require.NotEmpty(t, got.Content)
		assert.NotEmpty(t, got.Content[0].Text)
		assert.Equal(t, anthropic.StopReasonMaxTokens, got.StopReason)
		assert.EqualValues(t, 16, got.Usage.OutputTokens)
		assert.Equal(t, "local", resp.Header.Get("X-Switchyard-Backend"))

		stream := client.Messages.NewStreaming(ctx, params, greedy)
		var acc anthropic.Message
		for stream.Next() {
			require.NoError(t, acc.Accumulate(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.NotEmpty(t, acc.Content)
		assert.Equal(t, got.Content[0].Text, acc.Content[0].Text, "greedy: the same answer")
		assert.Equal(t, got.Usage.InputTokens, acc.Usage.InputTokens)
		assert.Equal(t, got.Usage.OutputTokens, acc.Usage.OutputTokens)

		// count_tokens counts with the local model's own tokenizer: more
		// text, more tokens, and never zero.
		short, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "chat", Messages: params.Messages})
		require.NoError(t, err)
		long, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "chat",
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("Say hello again. ", 20)))}})
		require.NoError(t, err)
		assert.Positive(t, short.InputTokens)
		assert.Greater(t, long.InputTokens, short.InputTokens)
	})

	t.Run("tool round trips", func(t *testing.T) {
		// tool_choice "any" / "required": the engine's grammar makes the
		// tiny model call the tool; the result goes back as the next turn.
		// An enum keeps the random model's arguments short.
		city := map[string]any{"type": "string", "enum": []string{"Paris", "Tokyo"}}
		cl := claude(base)
		localTool := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": city}, Required: []string{"city"}}}}
		params := anthropic.MessageNewParams{Model: "chat", MaxTokens: 200, Tools: []anthropic.ToolUnionParam{localTool},
			ToolChoice: anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{DisableParallelToolUse: anthropic.Bool(true)}},
			Messages:   []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris?"))}}
		first, err := cl.Messages.New(ctx, params)
		require.NoError(t, err)
		var results []anthropic.ContentBlockParamUnion
		for _, b := range first.Content {
			if b.Type == "tool_use" {
				use := b.AsToolUse()
				assert.Equal(t, "get_weather", use.Name)
				results = append(results, anthropic.NewToolResultBlock(use.ID, "sunny", false))
			}
		}
		require.NotEmpty(t, results, "%+v", first.Content)
		assert.Equal(t, anthropic.StopReasonToolUse, first.StopReason)
		params.ToolChoice = anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{}}
		params.Messages = append(params.Messages, first.ToParam(), anthropic.NewUserMessage(results...))
		second, err := cl.Messages.New(ctx, params)
		require.NoError(t, err)
		assert.Greater(t, second.Usage.InputTokens+second.Usage.CacheReadInputTokens, first.Usage.InputTokens+first.Usage.CacheReadInputTokens,
			"the call and its result were evaluated (the engine's prefix cache serves the earlier turns)")

		oa := sdk(base)
		tool := responses.ToolParamOfFunction("get_weather", map[string]any{
			"type": "object", "properties": map[string]any{"city": city}, "required": []string{"city"}}, false)
		r1, err := oa.Responses.New(ctx, responses.ResponseNewParams{Model: "chat", MaxOutputTokens: openai.Int(200),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in Paris?")},
			Tools: []responses.ToolUnionParam{tool}, ParallelToolCalls: openai.Bool(false),
			ToolChoice: responses.ResponseNewParamsToolChoiceUnion{OfToolChoiceMode: openai.Opt(responses.ToolChoiceOptionsRequired)}})
		require.NoError(t, err)
		var outputs responses.ResponseInputParam
		for _, item := range r1.Output {
			if item.Type == "function_call" {
				call := item.AsFunctionCall()
				assert.Equal(t, "get_weather", call.Name)
				outputs = append(outputs, functionOutput(call.CallID, "sunny"))
			}
		}
		require.NotEmpty(t, outputs)
		r2, err := oa.Responses.New(ctx, responses.ResponseNewParams{Model: "chat", MaxOutputTokens: openai.Int(16), PreviousResponseID: openai.String(r1.ID),
			Tools: []responses.ToolUnionParam{tool},
			Input: responses.ResponseNewParamsInputUnion{OfInputItemList: outputs}})
		require.NoError(t, err)
		assert.Greater(t, r2.Usage.InputTokens, r1.Usage.InputTokens, "the stored conversation was evaluated")
	})
}
