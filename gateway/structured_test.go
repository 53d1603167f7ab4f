package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Structured output on the embedded engine, through the SDKs: the tiny
// model has random weights, so only the grammar the engine builds from
// response_format makes its answers JSON that follows the schema.

// personSchema has a required field of each kind; its strings and array
// are bounded so that a random model ends its answer.
var personSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"name":  map[string]any{"type": "string", "maxLength": 16},
		"age":   map[string]any{"type": "integer"},
		"color": map[string]any{"type": "string", "enum": []string{"red", "green", "blue"}},
		"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string", "maxLength": 6}, "maxItems": 3},
	},
	"required":             []string{"name", "age", "color", "tags"},
	"additionalProperties": false,
}

// checkPerson requires content to be one JSON object with exactly the
// schema's fields, each of its type, the enum respected.
func checkPerson(t *testing.T, content string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(content))
	dec.UseNumber()
	var obj map[string]any
	require.NoError(t, dec.Decode(&obj), "%q", content)
	_, err := dec.Token()
	require.ErrorIs(t, err, io.EOF, "nothing after the object: %q", content)
	require.Len(t, obj, 4, "%q", content)
	name, ok := obj["name"].(string)
	require.True(t, ok, "name is a string: %q", content)
	assert.LessOrEqual(t, len([]rune(name)), 16)
	age, ok := obj["age"].(json.Number)
	require.True(t, ok, "age is a number: %q", content)
	_, err = age.Int64()
	require.NoError(t, err, "age is an integer: %q", content)
	assert.Contains(t, []any{"red", "green", "blue"}, obj["color"], "%q", content)
	tags, ok := obj["tags"].([]any)
	require.True(t, ok, "tags is an array: %q", content)
	assert.LessOrEqual(t, len(tags), 3)
	for _, tag := range tags {
		s, ok := tag.(string)
		require.True(t, ok, "tags are strings: %q", content)
		assert.LessOrEqual(t, len([]rune(s)), 6)
	}
}

func personFormat() openai.ChatCompletionNewParamsResponseFormatUnion {
	return openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "person", Schema: personSchema, Strict: openai.Bool(true)}}}
}

// chatStream reads a streamed chat completion: its content and finish
// reason.
func chatStream(t *testing.T, client *openai.Client, params openai.ChatCompletionNewParams) (content, finish string) {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var b strings.Builder
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) > 0 {
			b.WriteString(c.Choices[0].Delta.Content)
			if f := c.Choices[0].FinishReason; f != "" {
				finish = f
			}
		}
	}
	require.NoError(t, stream.Err())
	return b.String(), finish
}

func TestLocalEngineStructuredOutput(t *testing.T) {
	lib := localLibOrSkip(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		t.Error("the fallback must not be called: the local engine answers or refuses")
	})
	base, _ := startGateway(t, localConfig(t, lib, up.URL+"/v1", 4, 8))
	client := sdk(base)
	ctx := context.Background()
	ask := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Answer with a person as JSON."), openai.UserMessage("Who?")}

	t.Run("json_schema", func(t *testing.T) {
		for seed := range 4 {
			params := openai.ChatCompletionNewParams{Model: "chat", Messages: ask, MaxTokens: openai.Int(300),
				ResponseFormat: personFormat(), Temperature: openai.Float(1), Seed: openai.Int(int64(seed))}
			if seed == 0 {
				params.Temperature, params.Seed = openai.Float(0), openai.Int(0)
			}
			got, err := client.Chat.Completions.New(ctx, params)
			require.NoError(t, err)
			content := got.Choices[0].Message.Content
			t.Logf("seed %d: %q", seed, content)
			assert.Equal(t, "stop", got.Choices[0].FinishReason, "the grammar ends the answer with the object")
			assert.Less(t, got.Usage.CompletionTokens, int64(300))
			checkPerson(t, content)

			streamed, finish := chatStream(t, client, params)
			assert.Equal(t, "stop", finish)
			assert.Equal(t, content, streamed, "the same seed, the same answer")
		}
	})

	t.Run("json_object", func(t *testing.T) {
		stopped := 0
		for seed := range 4 {
			params := openai.ChatCompletionNewParams{Model: "chat", Messages: ask, MaxTokens: openai.Int(300),
				ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}},
				Temperature:    openai.Float(1), Seed: openai.Int(int64(seed + 1))}
			got, err := client.Chat.Completions.New(ctx, params)
			require.NoError(t, err)
			content := got.Choices[0].Message.Content
			t.Logf("seed %d, %s: %q", seed+1, got.Choices[0].FinishReason, content)
			streamed, finish := chatStream(t, client, params)
			assert.Equal(t, content, streamed, "the same seed, the same answer")
			assert.Equal(t, got.Choices[0].FinishReason, finish)
			if got.Choices[0].FinishReason == "length" {
				// Any object may be longer than max_tokens: it is
				// still the start of one.
				assert.True(t, strings.HasPrefix(content, "{"), "%q", content)
				continue
			}
			stopped++
			assert.Equal(t, "stop", got.Choices[0].FinishReason)
			var obj map[string]any
			require.NoError(t, json.Unmarshal([]byte(content), &obj), "a JSON object: %q", content)
		}
		assert.Positive(t, stopped, "some answer ended with its object")
	})

	t.Run("responses text.format", func(t *testing.T) {
		params := responses.ResponseNewParams{Model: "chat", MaxOutputTokens: openai.Int(300), Temperature: openai.Float(0),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Who?")},
			Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{
				OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{Name: "person", Schema: personSchema, Strict: openai.Bool(true)}}}}
		got, err := client.Responses.New(ctx, params)
		require.NoError(t, err)
		assert.Equal(t, responses.ResponseStatusCompleted, got.Status)
		checkPerson(t, got.OutputText())

		stream := client.Responses.NewStreaming(ctx, params)
		var text strings.Builder
		for stream.Next() {
			if ev := stream.Current(); ev.Type == "response.output_text.delta" {
				text.WriteString(ev.Delta)
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, got.OutputText(), text.String())
	})

	t.Run("messages output_config", func(t *testing.T) {
		cl := claude(base)
		got, err := cl.Messages.New(ctx, anthropic.MessageNewParams{Model: "chat", MaxTokens: 300,
			Messages:     []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Who?"))},
			OutputConfig: anthropic.OutputConfigParam{Format: anthropic.JSONOutputFormatParam{Schema: personSchema}}},
			aoption.WithJSONSet("temperature", 0))
		require.NoError(t, err)
		require.NotEmpty(t, got.Content)
		assert.Equal(t, anthropic.StopReasonEndTurn, got.StopReason)
		checkPerson(t, got.Content[0].Text)
	})

	t.Run("refused", func(t *testing.T) {
		// A schema that is not one is a 400 in OpenAI's shape, naming
		// the schema and saying why; the fallback is not tried.
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "chat", Messages: ask,
			ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "bad", Schema: map[string]any{
					"type": "object", "properties": map[string]any{"n": map[string]any{"type": "wizard"}}}}}}})
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 400, apiErr.StatusCode)
		assert.Equal(t, "invalid_request_error", apiErr.Type)
		assert.Equal(t, "response_format.json_schema.schema", apiErr.Param)
		assert.Contains(t, apiErr.Message, `properties.n.type: "wizard" is not a JSON Schema type`)

		// The same shape on the wire, for any client.
		for body, want := range map[string]string{
			`{"model":"chat","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"$ref":"#/$defs/nowhere"}}}}`:                    `does not resolve within the schema`,
			`{"model":"chat","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"string","minLength":5,"maxLength":2}}}}`: `minLength is greater than maxLength`,
		} {
			req, err := http.NewRequest(http.MethodPost, base+"/chat/completions", bytes.NewReader([]byte(body)))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, 400, resp.StatusCode, "%s", raw)
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(raw, &e), "%s", raw)
			assert.Equal(t, "invalid_request_error", e.Error.Type, "%s", raw)
			require.NotNil(t, e.Error.Param, "%s", raw)
			assert.Equal(t, "response_format.json_schema.schema", *e.Error.Param)
			assert.Contains(t, e.Error.Message, want)
		}

		// Through the Responses API the same refusal arrives as a 400
		// too (its param names the chat request's field: the ingress
		// relays the engine's error as it is).
		_, err = client.Responses.New(ctx, responses.ResponseNewParams{Model: "chat",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{
				OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{Name: "bad", Schema: map[string]any{"enum": []any{}}}}}})
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 400, apiErr.StatusCode)
		assert.Contains(t, apiErr.Message, "enum must be a non-empty array")
	})
	assert.Empty(t, up.received())
}
