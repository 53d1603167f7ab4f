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
}
