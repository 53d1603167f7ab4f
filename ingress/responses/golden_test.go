package responses

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

// previousTurn is a stored conversation: a user question, then the
// assistant's answer with a short text and two function calls, as
// FromChat stores them.
func previousTurn(t *testing.T) []Item {
	t.Helper()
	r := mustParse(t, `{"model":"m","input":"What is the weather in Paris and in Rome?","instructions":"old instructions, not carried over",
		"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}`)
	input, err := r.InputItems()
	require.NoError(t, err)
	_, output, err := FromChat(r, "resp_prev", 1700000000, []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",
		"choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","tool_calls":[
			{"id":"call_paris","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
			{"id":"call_rome","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
		"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":30,"completion_tokens":20,"total_tokens":50}}`), nil)
	require.NoError(t, err)
	return append(input, output...)
}

func TestToChatGolden(t *testing.T) {
	stable(t)
	cases := []struct {
		name    string
		body    string
		history bool
	}{
		{"string_input", `{"model":"gpt-4o-mini","input":"Say hi."}`, false},
		{"instructions_and_sampling", `{"model":"gpt-4o-mini","input":"Say hi.","instructions":"Answer in French.",
			"max_output_tokens":256,"temperature":0.2,"top_p":0.9,"user":"user-42","store":false,"metadata":{"k":"v"},
			"reasoning":{"effort":"low"},"truncation":"auto"}`, false},
		{"items_with_images", `{"model":"gpt-4o","input":[
			{"role":"system","content":"You describe images."},
			{"type":"message","role":"developer","content":[{"type":"input_text","text":"Be terse. "},{"type":"input_text","text":"Use lists."}]},
			{"role":"user","content":[{"type":"input_text","text":"What is in these?"},
				{"type":"input_image","image_url":"https://example.com/cat.png","detail":"high"},
				{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"original"},
				{"type":"input_file","filename":"notes.pdf","file_data":"data:application/pdf;base64,JVBERi0x"}]},
			{"role":"assistant","content":"A cat, a pixel and a PDF."},
			{"role":"user","content":[{"type":"input_text","text":"And the <b>colour</b>?"}]}]}`, false},
		{"function_call_round_trip", `{"model":"gpt-4o","previous_response_id":"resp_prev","instructions":"Use Celsius.",
			"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],
			"input":[{"type":"function_call_output","call_id":"call_paris","output":"18C, sunny"},
				{"type":"function_call_output","call_id":"call_rome","output":[{"type":"input_text","text":"24C, "},{"type":"input_text","text":"clear"}]}]}`, true},
		{"client_side_function_calls", `{"model":"gpt-4o","store":false,"input":[
			{"role":"user","content":"Weather in Oslo?"},
			{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
			{"type":"function_call_output","call_id":"call_1","output":"-3C"},
			{"type":"reasoning","id":"rs_1","summary":[]},
			{"role":"user","content":"Thanks. And tomorrow?"}]}`, false},
		{"text_format_json_schema", `{"model":"gpt-4o","input":"Extract the event.","text":{"format":{"type":"json_schema","name":"event",
			"description":"A calendar event","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}},
			"required":["name"],"additionalProperties":false}}}}`, false},
		{"text_format_json_object", `{"model":"gpt-4o","input":"Reply in JSON.","text":{"format":{"type":"json_object"}}}`, false},
		{"text_format_text", `{"model":"gpt-4o","input":"Reply.","text":{"format":{"type":"text"},"verbosity":"low"}}`, false},
		{"tools_choice_function", `{"model":"gpt-4o","input":"Weather?","parallel_tool_calls":false,
			"tools":[{"type":"function","name":"get_weather","description":"Current weather","strict":true,
				"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},
				{"type":"function","name":"no_params","strict":null}],
			"tool_choice":{"type":"function","name":"get_weather"}}`, false},
		{"tools_choice_required", `{"model":"gpt-4o","input":"Weather?","tools":[{"type":"function","name":"get_weather"}],"tool_choice":"required"}`, false},
		{"tool_choice_without_tools", `{"model":"gpt-4o","input":"Hi","tool_choice":"none","parallel_tool_calls":true}`, false},
		{"stream", `{"model":"gpt-4o","input":"Hi","stream":true}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustParse(t, c.body)
			var history []Item
			if c.history {
				history = previousTurn(t)
			}
			chat, err := r.ToChat(history)
			require.NoError(t, err)
			golden(t, "tochat/"+c.name+".json", pretty(t, chat))
		})
	}
}

func TestToChatEmpty(t *testing.T) {
	r := mustParse(t, `{"model":"m","input":[]}`)
	_, err := r.ToChat(nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "input", e.Param)

	// Instructions alone are a conversation; so is a continuation with
	// nothing new.
	r = mustParse(t, `{"model":"m","input":[],"instructions":"Say hi."}`)
	_, err = r.ToChat(nil)
	require.NoError(t, err)
	r = mustParse(t, `{"model":"m","input":[],"previous_response_id":"resp_1"}`)
	_, err = r.ToChat(previousTurn(t))
	require.NoError(t, err)
}

// The stored conversation survives encoding/json (as in Redis) and
// translates the same.
func TestItemsRoundTripJSON(t *testing.T) {
	stable(t)
	history := previousTurn(t)
	stored, err := json.Marshal(history)
	require.NoError(t, err)
	var back []Item
	require.NoError(t, json.Unmarshal(stored, &back))
	r := mustParse(t, `{"model":"m","input":"next"}`)
	a, err := r.ToChat(history)
	require.NoError(t, err)
	b, err := r.ToChat(back)
	require.NoError(t, err)
	assert.Equal(t, string(a), string(b))
}

const chatUsage = `"usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,
	"prompt_tokens_details":{"cached_tokens":100},"completion_tokens_details":{"reasoning_tokens":12}}`

func TestFromChatGolden(t *testing.T) {
	cases := []struct {
		name, request, chat string
		usage               *providers.Usage
	}{
		{"text", `{"model":"gpt-4o-mini","input":"Say hi."}`,
			`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,
			"message":{"role":"assistant","content":"Hi! <3 & more"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, nil},
		{"function_calls", `{"model":"gpt-4o","input":"Weather in Paris and Rome?","tools":[{"type":"function","name":"get_weather",
			"parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}],"tool_choice":"auto","parallel_tool_calls":true}`,
			`{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,
			"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
			{"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},"finish_reason":"tool_calls"}],
			"usage":{"prompt_tokens":50,"completion_tokens":40,"total_tokens":90}}`, nil},
		{"length_incomplete", `{"model":"gpt-4o","input":"Write an essay.","max_output_tokens":16}`,
			`{"id":"chatcmpl-3","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":"Once upon a time"},"finish_reason":"length"}],"usage":{"prompt_tokens":11,"completion_tokens":16,"total_tokens":27}}`, nil},
		{"usage_cached", `{"model":"gpt-4o","input":"Hi again."}`,
			`{"id":"chatcmpl-4","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],` + chatUsage + `}`,
			&providers.Usage{PromptTokens: 120, CompletionTokens: 30, CachedTokens: 100, CacheWriteTokens: 8}},
		{"refusal", `{"model":"gpt-4o","input":"Something bad."}`,
			`{"id":"chatcmpl-5","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`, nil},
		{"echo", `{"model":"gpt-4o","input":"Extract.","instructions":"Be exact.","previous_response_id":"resp_prev","store":false,
			"temperature":0.3,"top_p":0.8,"max_output_tokens":500,"user":"u-1","metadata":{"team":"search","b":"2"},"prompt_cache_key":"pk",
			"tools":[{"type":"function","name":"lookup","description":"Find a record"}],"tool_choice":{"type":"function","name":"lookup"},
			"parallel_tool_calls":false,"text":{"format":{"type":"json_schema","name":"record","strict":true,"schema":{"type":"object"}}}}`,
			`{"id":"chatcmpl-6","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":"{\"id\":1}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`,
			&providers.Usage{PromptTokens: 5, CompletionTokens: 5, Estimated: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stable(t)
			r := mustParse(t, c.request)
			body, output, err := FromChat(r, "resp_0123", 1700000000, []byte(c.chat), c.usage)
			require.NoError(t, err)
			golden(t, "fromchat/"+c.name+".json", pretty(t, body))
			// The output items are the Response's output, as stored.
			var resp struct {
				Output []json.RawMessage `json:"output"`
			}
			require.NoError(t, json.Unmarshal(body, &resp))
			require.Len(t, output, len(resp.Output))
			for i := range output {
				assert.JSONEq(t, string(resp.Output[i]), string(output[i]))
			}
		})
	}
}

func TestFromChatInvalid(t *testing.T) {
	r := mustParse(t, `{"model":"m","input":"hi"}`)
	for _, chat := range []string{``, `{`, `[]`, `{"error":{"message":"x"}}`, `"text"`} {
		_, _, err := FromChat(r, "resp_1", 1, []byte(chat), nil)
		assert.Error(t, err, chat)
	}
	body, output, err := FromChat(r, "resp_1", 1, []byte(`{"choices":[]}`), nil)
	require.NoError(t, err)
	assert.Len(t, output, 1, "an empty answer is one empty message")
	assert.Contains(t, string(body), `"usage":null`)
}

// chunks builds OpenAI chat chunks, JSON each.
func chunk(t *testing.T, delta string, finish string) []byte {
	t.Helper()
	f := "null"
	if finish != "" {
		f = `"` + finish + `"`
	}
	s := `{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + f + `}]}`
	require.True(t, json.Valid([]byte(s)), s)
	return []byte(s)
}

func usageChunk() []byte {
	return []byte(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],` + chatUsage + `}`)
}

type streamStep struct {
	data  []byte
	usage *providers.Usage
}

func runStream(t *testing.T, request string, steps []streamStep, end func(s *Stream) []byte) []byte {
	t.Helper()
	r := mustParse(t, request)
	s := NewStream(r, "resp_0123", 1700000000)
	var out bytes.Buffer
	out.Write(s.Start())
	for _, st := range steps {
		b, err := s.Chunk(st.data, st.usage)
		require.NoError(t, err)
		out.Write(b)
	}
	out.Write(end(s))
	return out.Bytes()
}

func endWith(usage *providers.Usage) func(s *Stream) []byte {
	return func(s *Stream) []byte {
		events, _, _ := s.End(usage)
		return events
	}
}

func streamCases(t *testing.T) []struct {
	name, request string
	steps         []streamStep
	end           func(*Stream) []byte
} {
	settled := &providers.Usage{PromptTokens: 120, CompletionTokens: 30, CachedTokens: 100}
	return []struct {
		name, request string
		steps         []streamStep
		end           func(*Stream) []byte
	}{
		{"text", `{"model":"gpt-4o","input":"Say hi.","stream":true,"instructions":"Be kind."}`, []streamStep{
			{data: chunk(t, `{"role":"assistant","content":"","refusal":null}`, "")},
			{data: chunk(t, `{"content":"Hel"}`, "")},
			{data: chunk(t, `{"content":"lo <world>"}`, "")},
			{data: chunk(t, `{"content":"\n!"}`, "")},
			{data: chunk(t, `{}`, "stop")},
			{data: usageChunk(), usage: settled},
		}, endWith(settled)},
		{"parallel_tool_calls", `{"model":"gpt-4o","input":"Weather in Paris and Rome?","stream":true,
			"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}`, []streamStep{
			{data: chunk(t, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}`, "")},
			{data: chunk(t, `{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\""}}]}`, "")},
			{data: chunk(t, `{"tool_calls":[{"index":0,"function":{"arguments":":\"Paris\"}"}}]}`, "")},
			{data: chunk(t, `{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":""}}]}`, "")},
			{data: chunk(t, `{"tool_calls":[{"index":1,"function":{"arguments":"{\"city\":\"Rome\"}"}}]}`, "")},
			{data: chunk(t, `{}`, "tool_calls")},
			{data: usageChunk(), usage: settled},
		}, endWith(settled)},
		{"text_then_tool_call", `{"model":"gpt-4o","input":"Weather?","stream":true,"tools":[{"type":"function","name":"get_weather"}]}`, []streamStep{
			{data: chunk(t, `{"role":"assistant","content":"Checking."}`, "")},
			// Ollama sends a whole call in one chunk.
			{data: chunk(t, `{"tool_calls":[{"id":"call_x","function":{"name":"get_weather","arguments":"{}"}}]}`, "")},
			{data: chunk(t, `{}`, "tool_calls")},
		}, endWith(nil)},
		{"length_incomplete", `{"model":"gpt-4o","input":"Essay.","stream":true,"max_output_tokens":16}`, []streamStep{
			{data: chunk(t, `{"role":"assistant","content":"Once upon"}`, "")},
			{data: chunk(t, `{"content":" a time"}`, "length")},
		}, endWith(&providers.Usage{PromptTokens: 8, CompletionTokens: 16})},
		{"refusal", `{"model":"gpt-4o","input":"Bad.","stream":true}`, []streamStep{
			{data: chunk(t, `{"role":"assistant","content":null,"refusal":""}`, "")},
			{data: chunk(t, `{"refusal":"I can't "}`, "")},
			{data: chunk(t, `{"refusal":"help."}`, "")},
			{data: chunk(t, `{}`, "stop")},
		}, endWith(&providers.Usage{PromptTokens: 5, CompletionTokens: 4})},
		{"empty", `{"model":"gpt-4o","input":"…","stream":true}`, nil, endWith(&providers.Usage{PromptTokens: 5})},
		{"failed", `{"model":"gpt-4o","input":"Say hi.","stream":true}`, []streamStep{
			{data: chunk(t, `{"role":"assistant","content":"Hel"}`, "")},
		}, func(s *Stream) []byte { return s.Fail("server_error", "The upstream stopped answering.") }},
	}
}

func TestStreamGolden(t *testing.T) {
	for _, c := range streamCases(t) {
		t.Run(c.name, func(t *testing.T) {
			stable(t)
			got := runStream(t, c.request, c.steps, c.end)
			golden(t, "stream/"+c.name+".sse", got)
		})
	}
}

// The Response End returns is the one response.completed carries, and its
// output the stored items.
func TestStreamEndResponse(t *testing.T) {
	stable(t)
	r := mustParse(t, `{"model":"gpt-4o","input":"hi","stream":true}`)
	s := NewStream(r, "resp_1", 1700000000)
	s.Start()
	_, err := s.Chunk(chunk(t, `{"content":"Hi"}`, "stop"), nil)
	require.NoError(t, err)
	events, resp, output := s.End(&providers.Usage{PromptTokens: 3, CompletionTokens: 1})
	require.Len(t, output, 1)
	assert.JSONEq(t, `{"type":"message","id":"msg_001","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]}`, string(output[0]))
	last := events[bytes.LastIndex(events, []byte("data: "))+6:]
	var ev struct {
		Response json.RawMessage `json:"response"`
	}
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(last), &ev))
	assert.JSONEq(t, string(resp), string(ev.Response))

	// Nothing after the end.
	b, err := s.Chunk(chunk(t, `{"content":"more"}`, ""), nil)
	assert.NoError(t, err)
	assert.Nil(t, b)
	e2, r2, o2 := s.End(nil)
	assert.Nil(t, e2)
	assert.Nil(t, r2)
	assert.Nil(t, o2)
	assert.Nil(t, s.Fail("x", "y"))
	assert.Nil(t, s.Start())
}

func TestStreamNotJSON(t *testing.T) {
	r := mustParse(t, `{"model":"gpt-4o","input":"hi","stream":true}`)
	s := NewStream(r, "resp_1", 1)
	_, err := s.Chunk([]byte(`{"choices":`), nil)
	assert.Error(t, err)
}
