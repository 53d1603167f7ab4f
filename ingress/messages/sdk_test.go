package messages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// These tests read the translation with the official Anthropic Go SDK:
// its SSE decoder and Message.Accumulate for streams, its Message type for
// responses, and its client end to end against a test server.

// accumulate decodes SSE output as the SDK does and accumulates the
// message; err is the stream's or the accumulator's error.
func accumulate(out []byte) (msg anthropic.Message, stopped bool, err error) {
	res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bytes.NewReader(out))}
	stream := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(res), nil)
	defer stream.Close()
	for stream.Next() {
		ev := stream.Current()
		if err := msg.Accumulate(ev); err != nil {
			return msg, stopped, err
		}
		stopped = stopped || ev.Type == "message_stop"
	}
	return msg, stopped, stream.Err()
}

type toolUse struct {
	ID, Name, Input string
}

// summary is what a client makes of a message.
type summary struct {
	Text         string
	Tools        []toolUse
	StopReason   string
	StopSequence string
	Usage        [4]int64 // input, cache creation, cache read, output
}

func summarise(t *testing.T, m *anthropic.Message) summary {
	t.Helper()
	var s summary
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			s.Text += b.Text
		case "tool_use":
			var buf bytes.Buffer
			require.NoError(t, json.Compact(&buf, b.Input))
			s.Tools = append(s.Tools, toolUse{b.ID, b.Name, buf.String()})
		default:
			t.Fatalf("unexpected %s block", b.Type)
		}
	}
	s.StopReason, s.StopSequence = string(m.StopReason), m.StopSequence
	s.Usage = [4]int64{m.Usage.InputTokens, m.Usage.CacheCreationInputTokens, m.Usage.CacheReadInputTokens, m.Usage.OutputTokens}
	return s
}

// streamWant is what the SDK must make of each stream fixture.
var streamWant = map[string]summary{
	"text": {Text: "Hello! <Hi> & \"bye\"\n", StopReason: "end_turn", Usage: [4]int64{25, 0, 0, 3}},
	"parallel_tool_calls": {Tools: []toolUse{{"call_paris", "get_weather", `{"location":"Paris"}`}, {"call_tokyo", "get_weather", `{"location":"Tokyo"}`}},
		StopReason: "tool_use", Usage: [4]int64{28, 100, 512, 48}},
	"text_then_tool_no_usage": {Text: "Let me read it.", Tools: []toolUse{{"call_r", "Read", `{"file_path":"/etc/hosts"}`}},
		StopReason: "tool_use", Usage: [4]int64{0, 0, 0, 4}},
	"whole_tool_calls_no_index": {Tools: []toolUse{{"call_a", "Glob", `{"pattern":"**/*.go"}`}, {"call_b", "Grep", `{"pattern":"TODO"}`}},
		StopReason: "tool_use", Usage: [4]int64{100, 0, 0, 20}},
	"length":        {Text: "Once upon a time", StopReason: "max_tokens", Usage: [4]int64{5, 0, 0, 4}},
	"stop_sequence": {Text: "one, two, three", StopReason: "stop_sequence", StopSequence: "END", Usage: [4]int64{0, 0, 0, 2}},
	"refusal":       {Text: "I'm sorry, I can't help with that.", StopReason: "refusal", Usage: [4]int64{0, 0, 0, 2}},
}

func TestSDKAccumulatesStreams(t *testing.T) {
	for _, base := range cases(t, "streams", ".chunks.jsonl") {
		name := filepath.Base(base)
		t.Run(name, func(t *testing.T) {
			msg, stopped, err := accumulate(translateStream(t, base+".chunks.jsonl"))
			require.NoError(t, err)
			require.True(t, stopped)
			want, ok := streamWant[name]
			require.True(t, ok, "add the fixture to streamWant")
			require.Equal(t, want, summarise(t, &msg))
			require.Equal(t, "msg_01TestStream", msg.ID)
			require.Equal(t, "claude-sonnet-4-5", string(msg.Model))
			require.Equal(t, "assistant", string(msg.Role))
		})
	}
}

// Each response fixture reads as an anthropic.Message.
func TestSDKReadsResponses(t *testing.T) {
	want := map[string]summary{
		"text": {Text: "Hello! How can I assist you today? <b>&</b>", StopReason: "end_turn", Usage: [4]int64{19, 0, 0, 10}},
		"tool_calls": {Tools: []toolUse{{"call_abc123", "get_current_weather", `{"location":"Boston, MA"}`},
			{"call_def456", "get_time", `{"timezone":"America/New_York"}`}}, StopReason: "tool_use", Usage: [4]int64{82, 0, 0, 17}},
		"length":        {Text: "The history of the Roman Empire spans", StopReason: "max_tokens", Usage: [4]int64{12, 0, 0, 8}},
		"cached_usage":  {Text: "Cached answer.", StopReason: "end_turn", Usage: [4]int64{200, 300, 1500, 42}},
		"stop_sequence": {Text: "one, two, three", StopReason: "stop_sequence", StopSequence: "END", Usage: [4]int64{20, 0, 0, 6}},
		"refusal":       {Text: "I'm sorry, I can't help with that.", StopReason: "refusal", Usage: [4]int64{30, 0, 0, 9}},
		"odd_arguments": {Text: "Calling tools.", Tools: []toolUse{{"call_1", "Read", `{}`}, {"call_2", "Bash", `{"command":"ls"}`},
			{"call_3", "TodoWrite", `{}`}, {"toolu_gen001", "Glob", `{"pattern":"**/*.go"}`}}, StopReason: "tool_use"},
	}
	for _, base := range cases(t, "responses", ".chat.json") {
		name := filepath.Base(base)
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(base + ".chat.json")
			require.NoError(t, err)
			idCounter.Store(0)
			out, err := FromChat(in, "claude-sonnet-4-5", nil)
			require.NoError(t, err)
			var msg anthropic.Message
			require.NoError(t, json.Unmarshal(out, &msg))
			w, ok := want[name]
			require.True(t, ok, "add the fixture to want")
			require.Equal(t, w, summarise(t, &msg))
			require.Equal(t, "message", string(msg.Type))
			require.Regexp(t, `^msg_`, msg.ID)
		})
	}
}

// TestSDKClient runs the SDK's client against a server that parses what it
// sends and answers with translated fixtures.
func TestSDKClient(t *testing.T) {
	var lastChat []byte
	streamOut := translateStream(t, "testdata/streams/parallel_tool_calls.chunks.jsonl")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fail := func(e *Error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status)
			w.Write(e.Body("req_test"))
		}
		if r.URL.Path == "/v1/messages/count_tokens" {
			req, err := ParseCountTokens(body)
			if err != nil {
				fail(err.(*Error))
				return
			}
			lastChat, _ = req.ToChat()
			w.Header().Set("Content-Type", "application/json")
			w.Write(CountTokensBody(1234))
			return
		}
		req, err := Parse(body)
		if err != nil {
			fail(err.(*Error))
			return
		}
		lastChat, err = req.ToChat()
		if err != nil {
			fail(NewError(500, "%v", err))
			return
		}
		if !req.Stream {
			chat, _ := os.ReadFile("testdata/responses/tool_calls.chat.json")
			out, err := FromChat(chat, req.Model, nil)
			if err != nil {
				fail(NewError(502, "%v", err))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(out)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		out := bytes.Clone(streamOut)
		if gjson.GetBytes(body, "metadata.user_id").String() == "fail-midway" {
			// Cut before the end, then an error event.
			out = out[:bytes.Index(out, []byte("event: message_delta"))]
			out = append(out, NewStream("m", "msg_x").Fail(TypeOverloaded, "Overloaded")...)
		}
		w.Write(out)
	}))
	defer srv.Close()
	client := anthropic.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("sk-switchyard-dev"), option.WithMaxRetries(0))

	params := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 2048,
		System:    []anthropic.TextBlockParam{{Text: "Be brief.", CacheControl: anthropic.NewCacheControlEphemeralParam()}},
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris and Tokyo?"),
				anthropic.NewImageBlockBase64("image/png", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")),
			anthropic.NewAssistantMessage(anthropic.NewTextBlock("Checking."), anthropic.NewToolUseBlock("toolu_1", map[string]any{"location": "Paris"}, "get_weather")),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_1", "15C", false), anthropic.NewTextBlock("And Tokyo?")),
		},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather", Description: anthropic.String("Weather for a city"),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"location": map[string]any{"type": "string"}}, Required: []string{"location"}}}}},
		ToolChoice:  anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{DisableParallelToolUse: anthropic.Bool(false)}},
		Thinking:    anthropic.ThinkingConfigParamOfEnabled(2048),
		Metadata:    anthropic.MetadataParam{UserID: anthropic.String("user-1")},
		ServiceTier: anthropic.MessageNewParamsServiceTierAuto,
	}

	t.Run("stream", func(t *testing.T) {
		stream := client.Messages.NewStreaming(context.Background(), params)
		var msg anthropic.Message
		for stream.Next() {
			require.NoError(t, msg.Accumulate(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.Equal(t, streamWant["parallel_tool_calls"], summarise(t, &msg))

		require.True(t, gjson.GetBytes(lastChat, "stream").Bool())
		require.Equal(t, "user-1", gjson.GetBytes(lastChat, "user").String())
		require.Equal(t, "tool", gjson.GetBytes(lastChat, "messages.3.role").String())
		require.Equal(t, `{"location":"Paris"}`, gjson.GetBytes(lastChat, "messages.2.tool_calls.0.function.arguments").String())
		require.Equal(t, "data:image/png;base64,", gjson.GetBytes(lastChat, "messages.1.content.1.image_url.url").String()[:22])
	})

	t.Run("stream fails midway", func(t *testing.T) {
		p := params
		p.Metadata = anthropic.MetadataParam{UserID: anthropic.String("fail-midway")}
		stream := client.Messages.NewStreaming(context.Background(), p)
		var msg anthropic.Message
		for stream.Next() {
			require.NoError(t, msg.Accumulate(stream.Current()))
		}
		require.Error(t, stream.Err())
		require.Contains(t, stream.Err().Error(), "overloaded_error")
		require.Len(t, msg.Content, 2, "the blocks before the error arrived")
	})

	t.Run("message", func(t *testing.T) {
		msg, err := client.Messages.New(context.Background(), params)
		require.NoError(t, err)
		require.Equal(t, "tool_use", string(msg.StopReason))
		require.Len(t, msg.Content, 2)
		require.Equal(t, "get_current_weather", msg.Content[0].Name)
		require.Equal(t, "claude-sonnet-4-5", string(msg.Model))
	})

	t.Run("invalid request", func(t *testing.T) {
		p := params
		p.Tools = append(p.Tools, anthropic.ToolUnionParam{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{}})
		_, err := client.Messages.New(context.Background(), p)
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 400, apiErr.StatusCode)
		require.Equal(t, "invalid_request_error", string(apiErr.Type()))
		require.Contains(t, apiErr.Message, `tools.1: tools of type "web_search_20250305"`)
	})

	t.Run("count tokens", func(t *testing.T) {
		res, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
			Model:    "claude-sonnet-4-5",
			Messages: params.Messages,
		})
		require.NoError(t, err)
		require.Equal(t, int64(1234), res.InputTokens)
		require.False(t, gjson.GetBytes(lastChat, "max_tokens").Exists())
	})
}
