package messages

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

const validRequest = `{
  "model": "claude-sonnet-4-5",
  "max_tokens": 100,
  "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
  "messages": [
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
  ]
}`

// edit is a change to validRequest: set path to the raw JSON value, or
// delete it when raw is empty.
type edit struct {
	path, raw string
}

func apply(t *testing.T, edits []edit) []byte {
	t.Helper()
	body := []byte(validRequest)
	var err error
	for _, e := range edits {
		if e.raw == "" {
			body, err = sjson.DeleteBytes(body, e.path)
		} else {
			body, err = sjson.SetRawBytes(body, e.path, []byte(e.raw))
		}
		require.NoError(t, err)
	}
	return body
}

func TestParseValid(t *testing.T) {
	r, err := Parse([]byte(validRequest))
	require.NoError(t, err)
	require.Equal(t, "claude-sonnet-4-5", r.Model)
	require.Equal(t, int64(100), r.MaxTokens)
	require.False(t, r.Stream)
	require.False(t, r.Thinking)
	require.Empty(t, r.Notes())

	// Nulls are absent optional fields; integral floats are integers.
	r, err = Parse(apply(t, []edit{{"max_tokens", "1024.0"}, {"temperature", "null"}, {"system", "null"},
		{"metadata", `{"user_id":null}`}, {"stream", "true"}, {"thinking", `{"type":"adaptive"}`},
		{"mcp_servers", "[]"}, {"container", "null"}, {"unknown_field", `{"x":1}`}}))
	require.NoError(t, err)
	require.Equal(t, int64(1024), r.MaxTokens)
	require.True(t, r.Stream)
	require.True(t, r.Thinking)
	require.Equal(t, []string{NoteThinking}, r.Notes())
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		body  string // instead of edits
		want  string // the error message starts with it
	}{
		{name: "not JSON", body: `{"model":`, want: "the request body is not valid JSON"},
		{name: "not an object", body: `[1]`, want: "the request body must be a JSON object"},
		{name: "model missing", edits: []edit{{"model", ""}}, want: "model: Field required"},
		{name: "model not a string", edits: []edit{{"model", "7"}}, want: "model: must be a string"},
		{name: "model empty", edits: []edit{{"model", `""`}}, want: "model: must not be empty"},
		{name: "max_tokens missing", edits: []edit{{"max_tokens", ""}}, want: "max_tokens: Field required"},
		{name: "max_tokens string", edits: []edit{{"max_tokens", `"100"`}}, want: "max_tokens: must be an integer"},
		{name: "max_tokens fraction", edits: []edit{{"max_tokens", `10.5`}}, want: "max_tokens: must be an integer"},
		{name: "max_tokens zero", edits: []edit{{"max_tokens", `0`}}, want: "max_tokens: must be an integer of at least 1, got 0"},
		{name: "max_tokens huge", edits: []edit{{"max_tokens", `1e30`}}, want: "max_tokens: must be an integer"},
		{name: "max_tokens null", edits: []edit{{"max_tokens", `null`}}, want: "max_tokens: must be an integer"},
		{name: "messages missing", edits: []edit{{"messages", ""}}, want: "messages: Field required"},
		{name: "messages without content", edits: []edit{{"messages", `[{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"s"}]}]`}}, want: "messages: must hold at least one message with content"},
		{name: "messages object", edits: []edit{{"messages", `{}`}}, want: "messages: must be an array"},
		{name: "messages empty", edits: []edit{{"messages", `[]`}}, want: "messages: must hold at least one message"},
		{name: "message not object", edits: []edit{{"messages.0", `"hi"`}}, want: "messages.0: must be an object"},
		{name: "role missing", edits: []edit{{"messages.0.role", ""}}, want: "messages.0.role: Field required"},
		{name: "role system", edits: []edit{{"messages.0.role", `"system"`}}, want: `messages.0.role: must be user or assistant, got "system"`},
		{name: "content missing", edits: []edit{{"messages.0.content", ""}}, want: "messages.0.content: Field required"},
		{name: "content number", edits: []edit{{"messages.0.content", `5`}}, want: "messages.0.content: must be a string or an array"},
		{name: "content empty array", edits: []edit{{"messages.0.content", `[]`}}, want: "messages.0.content: must not be empty"},
		{name: "block not object", edits: []edit{{"messages.0.content", `["x"]`}}, want: "messages.0.content.0: must be a content block object"},
		{name: "block type missing", edits: []edit{{"messages.0.content", `[{"text":"x"}]`}}, want: "messages.0.content.0.type: Field required"},
		{name: "block type unknown", edits: []edit{{"messages.0.content", `[{"type":"video"}]`}}, want: `messages.0.content.0.type: content blocks of type "video" are not supported`},
		{name: "search_result refused", edits: []edit{{"messages.0.content", `[{"type":"search_result","source":"s","title":"t","content":[]}]`}}, want: `messages.0.content.0.type: content blocks of type "search_result" are not supported`},
		{name: "text missing", edits: []edit{{"messages.0.content", `[{"type":"text"}]`}}, want: "messages.0.content.0.text: Field required"},
		{name: "text not string", edits: []edit{{"messages.0.content", `[{"type":"text","text":1}]`}}, want: "messages.0.content.0.text: must be a string"},
		{name: "cache_control not object", edits: []edit{{"messages.0.content", `[{"type":"text","text":"x","cache_control":"yes"}]`}}, want: "messages.0.content.0.cache_control: must be an object"},
		{name: "cache_control type", edits: []edit{{"messages.0.content", `[{"type":"text","text":"x","cache_control":{"type":"forever"}}]`}}, want: `messages.0.content.0.cache_control.type: must be ephemeral`},
		{name: "image without source", edits: []edit{{"messages.0.content", `[{"type":"image"}]`}}, want: "messages.0.content.0.source: Field required"},
		{name: "image source type", edits: []edit{{"messages.0.content", `[{"type":"image","source":{"type":"blob"}}]`}}, want: `messages.0.content.0.source.type: must be base64 or url, got "blob"`},
		{name: "image media type", edits: []edit{{"messages.0.content", `[{"type":"image","source":{"type":"base64","media_type":"image/tiff","data":"AAAA"}}]`}}, want: "messages.0.content.0.source.media_type: must be image/jpeg"},
		{name: "image data missing", edits: []edit{{"messages.0.content", `[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]`}}, want: "messages.0.content.0.source.data: Field required"},
		{name: "image data not base64", edits: []edit{{"messages.0.content", `[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"%%%"}}]`}}, want: "messages.0.content.0.source.data: is not valid base64"},
		{name: "image url scheme", edits: []edit{{"messages.0.content", `[{"type":"image","source":{"type":"url","url":"ftp://x/y.png"}}]`}}, want: "messages.0.content.0.source.url: must be an http(s) URL"},
		{name: "image file refused", edits: []edit{{"messages.0.content", `[{"type":"image","source":{"type":"file","file_id":"file_1"}}]`}}, want: "messages.0.content.0.source.type: image sources of type file"},
		{name: "image in assistant", edits: []edit{{"messages.1.content", `[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]`}}, want: "messages.1.content.0.type: image blocks are only allowed in user messages"},
		{name: "document pdf refused", edits: []edit{{"messages.0.content", `[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]`}}, want: `messages.0.content.0.source.type: document sources of type "base64" (PDF and file documents) are not supported`},
		{name: "document url refused", edits: []edit{{"messages.0.content", `[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]`}}, want: `messages.0.content.0.source.type: document sources of type "url"`},
		{name: "document text media type", edits: []edit{{"messages.0.content", `[{"type":"document","source":{"type":"text","media_type":"text/html","data":"x"}}]`}}, want: "messages.0.content.0.source.media_type: must be text/plain"},
		{name: "document content block", edits: []edit{{"messages.0.content", `[{"type":"document","source":{"type":"content","content":[{"type":"tool_use"}]}}]`}}, want: "messages.0.content.0.source.content.0.type: document content blocks must be text or image"},
		{name: "document title type", edits: []edit{{"messages.0.content", `[{"type":"document","title":5,"source":{"type":"text","data":"x"}}]`}}, want: "messages.0.content.0.title: must be a string"},
		{name: "tool_use in user", edits: []edit{{"messages.0.content", `[{"type":"tool_use","id":"a","name":"b","input":{}}]`}}, want: "messages.0.content.0.type: tool_use blocks are only allowed in assistant messages"},
		{name: "tool_use id missing", edits: []edit{{"messages.1.content.0.id", ""}}, want: "messages.1.content.0.id: Field required"},
		{name: "tool_use name empty", edits: []edit{{"messages.1.content.0.name", `""`}}, want: "messages.1.content.0.name: must not be empty"},
		{name: "tool_use input missing", edits: []edit{{"messages.1.content.0.input", ""}}, want: "messages.1.content.0.input: Field required"},
		{name: "tool_use input array", edits: []edit{{"messages.1.content.0.input", "[1]"}}, want: "messages.1.content.0.input: must be an object"},
		{name: "thinking in user", edits: []edit{{"messages.0.content", `[{"type":"thinking","thinking":"x","signature":"y"}]`}}, want: "messages.0.content.0.type: thinking blocks are only allowed in assistant messages"},
		{name: "tool_result in assistant", edits: []edit{{"messages.1.content", `[{"type":"tool_result","tool_use_id":"toolu_1"}]`}}, want: "messages.1.content.0.type: tool_result blocks are only allowed in user messages"},
		{name: "tool_result id missing", edits: []edit{{"messages.2.content.0.tool_use_id", ""}}, want: "messages.2.content.0.tool_use_id: Field required"},
		{name: "tool_result is_error type", edits: []edit{{"messages.2.content.0.is_error", `"yes"`}}, want: "messages.2.content.0.is_error: must be a boolean"},
		{name: "tool_result content type", edits: []edit{{"messages.2.content.0.content", `{"a":1}`}}, want: "messages.2.content.0.content: must be a string or an array"},
		{name: "tool_result content block", edits: []edit{{"messages.2.content.0.content", `[{"type":"tool_reference","tool_name":"x"}]`}}, want: `messages.2.content.0.content.0.type: tool_result content blocks must be text, image or document, not "tool_reference"`},
		{name: "tool_result unknown id", edits: []edit{{"messages.2.content.0.tool_use_id", `"toolu_9"`}}, want: "messages.2: unexpected tool_use_id found in tool_result blocks: toolu_9"},
		{name: "tool_use unanswered", edits: []edit{{"messages.2.content", `"thanks"`}}, want: "messages.2: tool_use ids were found without tool_result blocks immediately after: toolu_1"},
		{name: "system number", edits: []edit{{"system", `5`}}, want: "system: must be a string or an array of text blocks"},
		{name: "system block type", edits: []edit{{"system", `[{"type":"image"}]`}}, want: `system.0.type: system blocks must be of type text, not "image"`},
		{name: "system block text", edits: []edit{{"system", `[{"type":"text"}]`}}, want: "system.0.text: Field required"},
		{name: "tools object", edits: []edit{{"tools", `{}`}}, want: "tools: must be an array of tools"},
		{name: "server tool refused", edits: []edit{{"tools.1", `{"type":"web_search_20250305","name":"web_search","max_uses":5}`}}, want: `tools.1: tools of type "web_search_20250305" (Anthropic server and built-in tools) are not supported`},
		{name: "bash tool refused", edits: []edit{{"tools.1", `{"type":"bash_20250124","name":"bash"}`}}, want: `tools.1: tools of type "bash_20250124"`},
		{name: "tool name missing", edits: []edit{{"tools.0.name", ""}}, want: "tools.0.name: Field required"},
		{name: "tool name pattern", edits: []edit{{"tools.0.name", `"get weather"`}}, want: "tools.0.name: must match ^[a-zA-Z0-9_-]{1,128}$"},
		{name: "tool name duplicate", edits: []edit{{"tools.1", `{"name":"get_weather","input_schema":{"type":"object"}}`}}, want: `tools.1.name: tool names must be unique`},
		{name: "tool description type", edits: []edit{{"tools.0.description", `1`}}, want: "tools.0.description: must be a string"},
		{name: "input_schema missing", edits: []edit{{"tools.0.input_schema", ""}}, want: "tools.0.input_schema: Field required"},
		{name: "input_schema string", edits: []edit{{"tools.0.input_schema", `"object"`}}, want: "tools.0.input_schema: must be an object"},
		{name: "input_schema type", edits: []edit{{"tools.0.input_schema", `{"type":"array"}`}}, want: "tools.0.input_schema.type: must be object"},
		{name: "tool strict type", edits: []edit{{"tools.0.strict", `"yes"`}}, want: "tools.0.strict: must be a boolean"},
		{name: "tool_choice string", edits: []edit{{"tool_choice", `"auto"`}}, want: "tool_choice: must be an object"},
		{name: "tool_choice type", edits: []edit{{"tool_choice", `{"type":"required"}`}}, want: `tool_choice.type: must be auto, any, tool or none, got "required"`},
		{name: "tool_choice name missing", edits: []edit{{"tool_choice", `{"type":"tool"}`}}, want: "tool_choice.name: Field required"},
		{name: "tool_choice unknown tool", edits: []edit{{"tool_choice", `{"type":"tool","name":"nope"}`}}, want: `tool_choice.name: no tool named "nope" in tools`},
		{name: "tool_choice parallel type", edits: []edit{{"tool_choice", `{"type":"auto","disable_parallel_tool_use":1}`}}, want: "tool_choice.disable_parallel_tool_use: must be a boolean"},
		{name: "stop_sequences string", edits: []edit{{"stop_sequences", `"END"`}}, want: "stop_sequences: must be an array of strings"},
		{name: "stop_sequences item", edits: []edit{{"stop_sequences", `["END", 1]`}}, want: "stop_sequences.1: must be a string"},
		{name: "stream type", edits: []edit{{"stream", `"true"`}}, want: "stream: must be a boolean"},
		{name: "temperature type", edits: []edit{{"temperature", `"hot"`}}, want: "temperature: must be a number"},
		{name: "temperature range", edits: []edit{{"temperature", `1.5`}}, want: "temperature: must be between 0 and 1, got 1.5"},
		{name: "top_p range", edits: []edit{{"top_p", `-0.1`}}, want: "top_p: must be between 0 and 1"},
		{name: "top_k type", edits: []edit{{"top_k", `0.5`}}, want: "top_k: must be an integer"},
		{name: "top_k range", edits: []edit{{"top_k", `-1`}}, want: "top_k: must be an integer of at least 0"},
		{name: "metadata type", edits: []edit{{"metadata", `"u"`}}, want: "metadata: must be an object"},
		{name: "metadata user_id type", edits: []edit{{"metadata", `{"user_id":5}`}}, want: "metadata.user_id: must be a string"},
		{name: "thinking type", edits: []edit{{"thinking", `{"type":"on"}`}}, want: `thinking.type: must be enabled, adaptive, between_tools or disabled, got "on"`},
		{name: "thinking not object", edits: []edit{{"thinking", `true`}}, want: "thinking: must be an object"},
		{name: "thinking budget missing", edits: []edit{{"thinking", `{"type":"enabled"}`}}, want: "thinking.budget_tokens: Field required"},
		{name: "thinking budget small", edits: []edit{{"thinking", `{"type":"enabled","budget_tokens":100}`}}, want: "thinking.budget_tokens: must be an integer of at least 1024, got 100"},
		{name: "service_tier value", edits: []edit{{"service_tier", `"priority"`}}, want: `service_tier: must be auto or standard_only, got "priority"`},
		{name: "output_config format type", edits: []edit{{"output_config", `{"format":{"type":"json_object"}}`}}, want: `output_config.format.type: must be json_schema, got "json_object"`},
		{name: "output_config schema", edits: []edit{{"output_config", `{"format":{"type":"json_schema"}}`}}, want: "output_config.format.schema: Field required"},
		{name: "output_config effort", edits: []edit{{"output_config", `{"effort":3}`}}, want: "output_config.effort: must be a string"},
		{name: "container refused", edits: []edit{{"container", `"container_1"`}}, want: "container: code execution containers are not supported"},
		{name: "mcp_servers refused", edits: []edit{{"mcp_servers", `[{"type":"url","url":"https://mcp.example.com/sse","name":"x"}]`}}, want: "mcp_servers: MCP servers (the MCP connector) are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.body == "" {
				body = apply(t, tt.edits)
			}
			_, err := Parse(body)
			require.Error(t, err)
			var e *Error
			require.True(t, errors.As(err, &e), "a %T, not an *Error", err)
			require.Equal(t, http.StatusBadRequest, e.Status)
			require.Equal(t, TypeInvalidRequest, e.Type)
			require.True(t, strings.HasPrefix(e.Message, tt.want), "got %q, want it to start with %q", e.Message, tt.want)
			// The body an Anthropic SDK reads.
			b := e.Body("req_1")
			require.Equal(t, "error", gjson.GetBytes(b, "type").String())
			require.Equal(t, TypeInvalidRequest, gjson.GetBytes(b, "error.type").String())
			require.Equal(t, e.Message, gjson.GetBytes(b, "error.message").String())
			require.Equal(t, "req_1", gjson.GetBytes(b, "request_id").String())
		})
	}
}

func TestParseFinalAssistantMayBeEmpty(t *testing.T) {
	r, err := Parse([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[]}]}`))
	require.NoError(t, err)
	body, err := r.ToChat()
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, string(body))

	_, err = Parse([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[]},{"role":"user","content":"hi"}]}`))
	require.ErrorContains(t, err, "messages.0.content: must not be empty")
}

// Consecutive messages of one role are one turn, as the Messages API
// combines them: tool calls split over two assistant messages are answered
// by one user turn.
func TestParseMergesConsecutiveTurns(t *testing.T) {
	r, err := Parse([]byte(`{"model":"m","max_tokens":5,"messages":[
		{"role":"user","content":"a"},
		{"role":"assistant","content":[{"type":"text","text":"b"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"x":1}}]},
		{"role":"user","content":"c"},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`))
	require.NoError(t, err)
	body, err := r.ToChat()
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"m","max_tokens":5,"messages":[
		{"role":"user","content":"a"},
		{"role":"assistant","content":"b","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
		{"role":"tool","tool_call_id":"t1","content":"r"},
		{"role":"user","content":"c"}]}`, string(body))
}

func TestCountTokens(t *testing.T) {
	body := apply(t, []edit{{"max_tokens", ""}})
	_, err := Parse(body)
	require.ErrorContains(t, err, "max_tokens: Field required")
	r, err := ParseCountTokens(body)
	require.NoError(t, err)
	require.Zero(t, r.MaxTokens)
	chat, err := r.ToChat()
	require.NoError(t, err)
	require.False(t, gjson.GetBytes(chat, "max_tokens").Exists())

	_, err = ParseCountTokens(apply(t, []edit{{"max_tokens", "0"}}))
	require.ErrorContains(t, err, "max_tokens: must be an integer of at least 1")
	_, err = ParseCountTokens(apply(t, []edit{{"messages", "[]"}}))
	require.ErrorContains(t, err, "messages: must hold at least one message")

	require.JSONEq(t, `{"input_tokens":2095}`, string(CountTokensBody(2095)))
}

func TestErrorType(t *testing.T) {
	for status, want := range map[int]string{
		400: TypeInvalidRequest, 401: TypeAuthentication, 402: TypeBilling, 403: TypePermission, 404: TypeNotFound,
		405: TypeInvalidRequest, 409: TypeInvalidRequest, 413: TypeTooLarge, 422: TypeInvalidRequest, 429: TypeRateLimit,
		500: TypeAPI, 501: TypeAPI, 502: TypeAPI, 503: TypeOverloaded, 504: TypeTimeout, 529: TypeOverloaded, 200: TypeAPI,
	} {
		require.Equal(t, want, ErrorType(status), "status %d", status)
	}
	require.JSONEq(t, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded <now>"}}`,
		string(ErrorBody(TypeOverloaded, "Overloaded <now>")))
	require.Contains(t, string(ErrorBody(TypeAPI, "a < b")), "a < b", "no HTML escaping")
	e := NewError(http.StatusTooManyRequests, "slow down: %d", 3)
	require.Equal(t, &Error{Status: 429, Type: TypeRateLimit, Message: "slow down: 3"}, e)
	require.Equal(t, "rate_limit_error: slow down: 3", e.Error())
	require.JSONEq(t, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down: 3"}}`, string(e.Body("")))
}
