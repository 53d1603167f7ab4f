package responses

// These tests prove the output is what the official OpenAI Go SDK
// (github.com/openai/openai-go/v3) reads: Response objects decoded into
// its types, event streams decoded with its SSE decoder, and a test server
// built on this package answering the real client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/respjson"
	"github.com/openai/openai-go/v3/packages/ssestream"
	oai "github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// noInvalidFields fails for a member of v (an SDK type) that was sent but
// did not decode into its type.
func noInvalidFields(t *testing.T, what string, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	meta := rv.FieldByName("JSON")
	require.True(t, meta.IsValid(), "%s has no JSON metadata", what)
	for i := 0; i < meta.NumField(); i++ {
		if !meta.Type().Field(i).IsExported() {
			continue
		}
		f, ok := meta.Field(i).Interface().(respjson.Field)
		if !ok {
			continue
		}
		if f.Raw() != respjson.Omitted && f.Raw() != respjson.Null {
			assert.True(t, f.Valid(), "%s.%s does not decode: %s", what, meta.Type().Field(i).Name, f.Raw())
		}
	}
}

// present fails for a member of v's JSON metadata that was not sent.
func present(t *testing.T, what string, v any, names ...string) {
	t.Helper()
	meta := reflect.ValueOf(v).FieldByName("JSON")
	for _, n := range names {
		f := meta.FieldByName(n).Interface().(respjson.Field)
		assert.NotEqual(t, respjson.Omitted, f.Raw(), "%s.%s is missing", what, n)
	}
}

// checkResponse checks a Response as the SDK decoded it: every member the
// SDK requires is there (access_programs aside), nothing fails to decode.
func checkResponse(t *testing.T, r oai.Response) {
	t.Helper()
	noInvalidFields(t, "Response", r)
	present(t, "Response", r, "ID", "CreatedAt", "Error", "IncompleteDetails", "Instructions", "Metadata", "Model", "Object",
		"Output", "ParallelToolCalls", "Temperature", "ToolChoice", "Tools", "TopP", "Status", "Text")
	assert.Equal(t, "response", string(r.Object))
	for i, it := range r.Output {
		noInvalidFields(t, "Output item", it)
		switch it.Type {
		case "message":
			m := it.AsMessage()
			present(t, "message", m, "ID", "Content", "Role", "Status", "Type")
			for _, c := range m.Content {
				noInvalidFields(t, "content", c)
			}
		case "function_call":
			present(t, "function_call", it.AsFunctionCall(), "Arguments", "CallID", "Name", "Type", "ID", "Status")
		default:
			t.Errorf("output[%d] has type %q", i, it.Type)
		}
	}
	if r.JSON.Usage.Valid() {
		noInvalidFields(t, "Usage", r.Usage)
		present(t, "Usage", r.Usage, "InputTokens", "InputTokensDetails", "OutputTokens", "OutputTokensDetails", "TotalTokens")
		assert.Equal(t, r.Usage.InputTokens+r.Usage.OutputTokens, r.Usage.TotalTokens)
	}
}

func TestSDKDecodesResponses(t *testing.T) {
	for _, c := range []string{"text", "function_calls", "length_incomplete", "usage_cached", "refusal", "echo"} {
		t.Run(c, func(t *testing.T) {
			b := goldenFile(t, "fromchat/"+c+".json")
			var r oai.Response
			require.NoError(t, json.Unmarshal(b, &r))
			checkResponse(t, r)
			assert.Equal(t, "resp_0123", r.ID)
			assert.EqualValues(t, 1700000000, r.CreatedAt)
			switch c {
			case "text":
				assert.Equal(t, oai.ResponseStatusCompleted, r.Status)
				assert.Equal(t, "Hi! <3 & more", r.OutputText())
				assert.EqualValues(t, 9, r.Usage.InputTokens)
				assert.EqualValues(t, 4, r.Usage.OutputTokens)
				assert.EqualValues(t, 1700000100, r.CompletedAt)
				assert.Equal(t, "auto", string(r.ToolChoice.OfToolChoiceMode))
				assert.Equal(t, "text", r.Text.Format.Type)
			case "function_calls":
				require.Len(t, r.Output, 2)
				for i, want := range []struct{ id, args string }{{"call_a", `{"city":"Paris"}`}, {"call_b", `{"city":"Rome"}`}} {
					fc := r.Output[i].AsFunctionCall()
					assert.Equal(t, want.id, fc.CallID)
					assert.Equal(t, "get_weather", fc.Name)
					assert.Equal(t, want.args, fc.Arguments)
					assert.True(t, strings.HasPrefix(fc.ID, "fc_"))
					assert.Equal(t, oai.ResponseFunctionToolCallStatusCompleted, fc.Status)
				}
				assert.Empty(t, r.OutputText())
				require.Len(t, r.Tools, 1)
				assert.Equal(t, "get_weather", r.Tools[0].Name)
				assert.True(t, r.ParallelToolCalls)
			case "length_incomplete":
				assert.Equal(t, oai.ResponseStatusIncomplete, r.Status)
				assert.Equal(t, "max_output_tokens", r.IncompleteDetails.Reason)
				assert.Equal(t, oai.ResponseOutputMessageStatusIncomplete, r.Output[0].AsMessage().Status)
				assert.EqualValues(t, 16, r.MaxOutputTokens)
				assert.False(t, r.JSON.CompletedAt.Valid())
			case "usage_cached":
				assert.EqualValues(t, 120, r.Usage.InputTokens)
				assert.EqualValues(t, 100, r.Usage.InputTokensDetails.CachedTokens)
				assert.EqualValues(t, 8, r.Usage.InputTokensDetails.CacheWriteTokens)
				assert.EqualValues(t, 12, r.Usage.OutputTokensDetails.ReasoningTokens)
				assert.EqualValues(t, 150, r.Usage.TotalTokens)
			case "refusal":
				m := r.Output[0].AsMessage()
				require.Len(t, m.Content, 1)
				assert.Equal(t, "refusal", m.Content[0].Type)
				assert.Equal(t, "I can't help with that.", m.Content[0].Refusal)
			case "echo":
				assert.Equal(t, "Be exact.", r.Instructions.OfString)
				assert.Equal(t, "resp_prev", r.PreviousResponseID)
				assert.Equal(t, 0.3, r.Temperature)
				assert.Equal(t, 0.8, r.TopP)
				assert.EqualValues(t, 500, r.MaxOutputTokens)
				assert.Equal(t, "u-1", r.User)
				assert.Equal(t, "search", r.Metadata["team"])
				assert.Equal(t, "pk", r.PromptCacheKey)
				assert.Equal(t, "function", r.ToolChoice.Type)
				assert.Equal(t, "lookup", r.ToolChoice.Name)
				assert.Equal(t, "Find a record", r.Tools[0].Description)
				assert.False(t, r.ParallelToolCalls)
				assert.Equal(t, "json_schema", r.Text.Format.Type)
				assert.Equal(t, "record", r.Text.Format.Name)
				assert.True(t, r.Text.Format.Strict)
				assert.Equal(t, "{\"id\":1}", r.OutputText())
			}
		})
	}
}

func goldenFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readTestdata(name)
	require.NoError(t, err, "run the golden tests with -update first")
	return b
}

// decodeStream reads an event stream with the SDK's decoder, checking each
// event: it decodes, its type is the SSE event name, its sequence number
// counts from 0. It returns the events.
func decodeStream(t *testing.T, raw []byte) []oai.ResponseStreamEventUnion {
	t.Helper()
	res := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(raw))}
	dec := ssestream.NewDecoder(res)
	var events []oai.ResponseStreamEventUnion
	for dec.Next() {
		ev := dec.Event()
		assert.False(t, gjson.GetBytes(ev.Data, "error").Exists(), "a top-level error member makes the SDK fail the stream")
		var u oai.ResponseStreamEventUnion
		require.NoError(t, json.Unmarshal(ev.Data, &u), "%s", ev.Data)
		assert.Equal(t, ev.Type, u.Type)
		assert.EqualValues(t, len(events), u.SequenceNumber, "sequence_number of %s", u.Type)
		require.NotNil(t, u.AsAny(), "the SDK does not know %q", u.Type)
		noInvalidFields(t, u.Type, u)
		events = append(events, u)
	}
	require.NoError(t, dec.Err())

	// The SDK's stream reads the same events without an error.
	s := ssestream.NewStream[oai.ResponseStreamEventUnion](ssestream.NewDecoder(&http.Response{
		Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(raw))}), nil)
	n := 0
	for s.Next() {
		n++
	}
	require.NoError(t, s.Err())
	assert.Equal(t, len(events), n)
	return events
}

// replay checks what a client reconstructs from events against the
// terminal Response: the text deltas add up to each text's done event
// and to the final text, the argument deltas to each call's arguments,
// and every item added is done once with the final item.
func replay(t *testing.T, events []oai.ResponseStreamEventUnion) oai.Response {
	t.Helper()
	require.GreaterOrEqual(t, len(events), 3)
	assert.Equal(t, "response.created", events[0].Type)
	assert.Equal(t, "response.in_progress", events[1].Type)
	assert.Equal(t, oai.ResponseStatusInProgress, events[0].Response.Status)
	text := map[string]*strings.Builder{}
	args := map[string]*strings.Builder{}
	added := map[int64]string{}
	done := map[int64]oai.ResponseOutputItemUnion{}
	var final oai.Response
	for i, ev := range events {
		key := ev.ItemID + "/" + string(rune('0'+ev.ContentIndex))
		switch ev.Type {
		case "response.output_item.added":
			_, dup := added[ev.OutputIndex]
			assert.False(t, dup, "output_index %d added twice", ev.OutputIndex)
			added[ev.OutputIndex] = ev.Item.ID
			assert.Equal(t, int64(len(added)-1), ev.OutputIndex)
		case "response.output_text.delta", "response.refusal.delta":
			assert.Contains(t, added, ev.OutputIndex)
			assert.NotContains(t, done, ev.OutputIndex, "a delta after the item is done")
			if text[key] == nil {
				text[key] = &strings.Builder{}
			}
			text[key].WriteString(ev.Delta)
		case "response.output_text.done":
			assert.Equal(t, builderString(text[key]), ev.Text)
		case "response.refusal.done":
			assert.Equal(t, builderString(text[key]), ev.Refusal)
		case "response.function_call_arguments.delta":
			assert.NotContains(t, done, ev.OutputIndex, "a delta after the item is done")
			if args[ev.ItemID] == nil {
				args[ev.ItemID] = &strings.Builder{}
			}
			args[ev.ItemID].WriteString(ev.Delta)
		case "response.function_call_arguments.done":
			assert.Equal(t, builderString(args[ev.ItemID]), ev.Arguments)
		case "response.output_item.done":
			assert.Equal(t, added[ev.OutputIndex], ev.Item.ID)
			_, dup := done[ev.OutputIndex]
			assert.False(t, dup, "output_index %d done twice", ev.OutputIndex)
			done[ev.OutputIndex] = ev.Item
		case "response.completed", "response.incomplete", "response.failed":
			assert.Equal(t, len(events)-1, i, "the terminal event is the last")
			final = ev.Response
		}
	}
	checkResponse(t, final)
	if final.Status != oai.ResponseStatusFailed {
		require.Len(t, final.Output, len(added))
		require.Len(t, done, len(added))
		for i, it := range final.Output {
			assert.JSONEq(t, done[int64(i)].RawJSON(), it.RawJSON(), "output[%d] is its done item", i)
		}
	}
	return final
}

func builderString(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

func TestSDKDecodesStreams(t *testing.T) {
	for _, c := range []string{"text", "parallel_tool_calls", "text_then_tool_call", "length_incomplete", "refusal", "empty", "failed"} {
		t.Run(c, func(t *testing.T) {
			events := decodeStream(t, goldenFile(t, "stream/"+c+".sse"))
			final := replay(t, events)
			var deltas strings.Builder
			for _, ev := range events {
				if ev.Type == "response.output_text.delta" {
					deltas.WriteString(ev.Delta)
				}
			}
			switch c {
			case "text":
				assert.Equal(t, "Hello <world>\n!", deltas.String())
				assert.Equal(t, "Hello <world>\n!", final.OutputText())
				assert.Equal(t, oai.ResponseStatusCompleted, final.Status)
				assert.EqualValues(t, 120, final.Usage.InputTokens)
				assert.EqualValues(t, 100, final.Usage.InputTokensDetails.CachedTokens)
				assert.EqualValues(t, 30, final.Usage.OutputTokens)
				assert.EqualValues(t, 12, final.Usage.OutputTokensDetails.ReasoningTokens)
				assert.Equal(t, "Be kind.", final.Instructions.OfString)
			case "parallel_tool_calls":
				require.Len(t, final.Output, 2)
				assert.Equal(t, `{"city":"Paris"}`, final.Output[0].AsFunctionCall().Arguments)
				assert.Equal(t, "call_a", final.Output[0].AsFunctionCall().CallID)
				assert.Equal(t, `{"city":"Rome"}`, final.Output[1].AsFunctionCall().Arguments)
				assert.Equal(t, "call_b", final.Output[1].AsFunctionCall().CallID)
			case "text_then_tool_call":
				require.Len(t, final.Output, 2)
				assert.Equal(t, "Checking.", final.OutputText())
				assert.Equal(t, "call_x", final.Output[1].AsFunctionCall().CallID)
				assert.False(t, final.JSON.Usage.Valid(), "no usage known")
			case "length_incomplete":
				assert.Equal(t, oai.ResponseStatusIncomplete, final.Status)
				assert.Equal(t, "max_output_tokens", final.IncompleteDetails.Reason)
				assert.Equal(t, "Once upon a time", final.OutputText())
			case "refusal":
				assert.Equal(t, "I can't help.", final.Output[0].AsMessage().Content[0].Refusal)
			case "empty":
				require.Len(t, final.Output, 1)
				assert.Equal(t, "", final.OutputText())
			case "failed":
				assert.Equal(t, oai.ResponseStatusFailed, final.Status)
				assert.Equal(t, "server_error", string(final.Error.Code))
				assert.Equal(t, "The upstream stopped answering.", final.Error.Message)
				assert.Equal(t, "Hel", final.OutputText())
			}
		})
	}
}

// fakeGateway is what the gateway does with this package, in miniature:
// parse, continue a stored conversation, translate, answer from a canned
// upstream, translate back, store.
type fakeGateway struct {
	mu      sync.Mutex
	stored  map[string][]Item
	chats   []map[string]any // the chat bodies the upstream received
	counter int
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r, err := Parse(body)
	if err != nil {
		var e *Error
		errors.As(err, &e)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": e.Message, "type": e.Type, "param": e.Param, "code": e.Code}})
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	history := g.stored[r.PreviousResponseID]
	input, _ := r.InputItems()
	chat, err := r.ToChat(history)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var parsed map[string]any
	_ = json.Unmarshal(chat, &parsed)
	g.chats = append(g.chats, parsed)
	g.counter++
	id := NewID("resp")
	store := func(output []Item) {
		if r.Store {
			g.stored[id] = append(append(append([]Item{}, history...), input...), output...)
		}
	}
	msgs := parsed["messages"].([]any)
	last := msgs[len(msgs)-1].(map[string]any)
	toolCall := last["role"] == "user" && parsed["tools"] != nil
	usage := &providers.Usage{PromptTokens: 20, CompletionTokens: 7, CachedTokens: 4}
	if !r.Stream {
		answer := `{"choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}]}`
		if toolCall {
			answer = `{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function",
				"function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}]}`
		}
		out, output, err := FromChat(r, id, 1700000000, []byte(answer), usage)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		store(output)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
		return
	}
	chunks := []string{`{"role":"assistant","content":""}`, `{"content":"hello"}`, `{"content":" there"}`}
	finish := "stop"
	if toolCall {
		chunks = []string{`{"role":"assistant","tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"get_weather","arguments":""}}]}`,
			`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, `{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`}
		finish = "tool_calls"
	}
	w.Header().Set("Content-Type", "text/event-stream")
	s := NewStream(r, id, 1700000000)
	_, _ = w.Write(s.Start())
	for _, c := range chunks {
		b, _ := s.Chunk([]byte(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":`+c+`,"finish_reason":null}]}`), nil)
		_, _ = w.Write(b)
		w.(http.Flusher).Flush()
	}
	b, _ := s.Chunk([]byte(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`), nil)
	_, _ = w.Write(b)
	events, _, output := s.End(usage)
	store(output)
	_, _ = w.Write(events)
}

func TestSDKClient(t *testing.T) {
	g := &fakeGateway{stored: map[string][]Item{}}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	client := openai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := context.Background()
	weather := oai.ToolParamOfFunction("get_weather", map[string]any{"type": "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}}}, false)

	t.Run("new", func(t *testing.T) {
		resp, err := client.Responses.New(ctx, oai.ResponseNewParams{Model: "gpt-4o",
			Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("hi")}, Instructions: openai.String("be brief")})
		require.NoError(t, err)
		checkResponse(t, *resp)
		assert.Equal(t, "hello there", resp.OutputText())
		assert.Equal(t, oai.ResponseStatusCompleted, resp.Status)
		assert.EqualValues(t, 20, resp.Usage.InputTokens)
		assert.EqualValues(t, 4, resp.Usage.InputTokensDetails.CachedTokens)
		assert.Equal(t, "be brief", resp.Instructions.OfString)
		assert.True(t, strings.HasPrefix(resp.ID, "resp_") && len(resp.ID) == 53, resp.ID)
	})

	t.Run("function call round trip", func(t *testing.T) {
		first, err := client.Responses.New(ctx, oai.ResponseNewParams{Model: "gpt-4o",
			Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("weather in Paris?")},
			Tools: []oai.ToolUnionParam{weather}, Instructions: openai.String("first instructions")})
		require.NoError(t, err)
		require.Len(t, first.Output, 1)
		call := first.Output[0].AsFunctionCall()
		assert.Equal(t, "function_call", first.Output[0].Type)
		assert.Equal(t, "call_9", call.CallID)
		assert.Equal(t, "get_weather", call.Name)
		assert.Equal(t, `{"city":"Paris"}`, call.Arguments)

		result := oai.ResponseInputItemParamOfFunctionCallOutput("sunny, 21C")
		result.OfFunctionCallOutput.CallID = openai.String(call.CallID)
		second, err := client.Responses.New(ctx, oai.ResponseNewParams{Model: "gpt-4o", PreviousResponseID: openai.String(first.ID),
			Input: oai.ResponseNewParamsInputUnion{OfInputItemList: oai.ResponseInputParam{result}}})
		require.NoError(t, err)
		assert.Equal(t, "hello there", second.OutputText())
		assert.Equal(t, first.ID, second.PreviousResponseID)

		g.mu.Lock()
		chat := g.chats[len(g.chats)-1]
		g.mu.Unlock()
		msgs, _ := json.Marshal(chat["messages"])
		assert.JSONEq(t, `[
			{"role":"user","content":"weather in Paris?"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
			{"role":"tool","tool_call_id":"call_9","content":"sunny, 21C"}]`, string(msgs), "instructions are not carried over")
	})

	t.Run("streaming", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, oai.ResponseNewParams{Model: "gpt-4o",
			Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		var text strings.Builder
		var types []string
		var completed oai.Response
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
		assert.Equal(t, []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
			"response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
			"response.output_item.done", "response.completed"}, types)
		assert.Equal(t, "hello there", completed.OutputText())
		assert.EqualValues(t, 7, completed.Usage.OutputTokens)
		g.mu.Lock()
		chat := g.chats[len(g.chats)-1]
		g.mu.Unlock()
		assert.Equal(t, true, chat["stream"])
		assert.Equal(t, map[string]any{"include_usage": true}, chat["stream_options"])
	})

	t.Run("streamed function call", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, oai.ResponseNewParams{Model: "gpt-4o",
			Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("weather?")}, Tools: []oai.ToolUnionParam{weather}})
		var args strings.Builder
		var call oai.ResponseOutputItemUnion
		for stream.Next() {
			ev := stream.Current()
			switch ev.Type {
			case "response.function_call_arguments.delta":
				args.WriteString(ev.Delta)
			case "response.output_item.done":
				call = ev.AsResponseOutputItemDone().Item
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, `{"city":"Paris"}`, args.String())
		assert.Equal(t, "function_call", call.Type)
		assert.Equal(t, "call_9", call.AsFunctionCall().CallID)
		assert.Equal(t, `{"city":"Paris"}`, call.AsFunctionCall().Arguments)
	})

	t.Run("refused", func(t *testing.T) {
		_, err := client.Responses.New(ctx, oai.ResponseNewParams{Model: "gpt-4o",
			Input: oai.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			Tools: []oai.ToolUnionParam{{OfWebSearch: &oai.WebSearchToolParam{Type: oai.WebSearchToolTypeWebSearch}}}})
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		assert.Equal(t, "unsupported_value", apiErr.Code)
		assert.Equal(t, "tools[0].type", apiErr.Param)
	})
}
