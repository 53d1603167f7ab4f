package chatwire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

func TestParseRequest(t *testing.T) {
	body := `{
	  "model": "m", "max_tokens": 10, "max_completion_tokens": 20, "temperature": 0.5, "top_p": 0.9,
	  "stop": "END", "stream": true, "stream_options": {"include_usage": true}, "seed": 7, "user": "u1",
	  "parallel_tool_calls": false, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
	  "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
	  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
	            {"type": "function", "function": {"name": "noargs"}}],
	  "messages": [
	    {"role": "developer", "content": "be brief"},
	    {"role": "user", "content": [{"type": "text", "text": "look: "}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk=", "detail": "low"}}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
	    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
	    {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
	  ]}`
	r, err := ParseRequest([]byte(body))
	require.NoError(t, err)
	require.Equal(t, 20, r.MaxTokens, "max_completion_tokens wins")
	require.Equal(t, []string{"END"}, r.Stop)
	require.True(t, r.Stream)
	require.True(t, r.IncludeUsage)
	require.Equal(t, ToolChoice{Mode: "function", Name: "get_weather"}, r.ToolChoice)
	require.False(t, *r.ParallelToolCalls)
	require.Equal(t, "json_schema", r.ResponseFormat.Type)
	require.JSONEq(t, `{"type":"object"}`, string(r.ResponseFormat.Schema))
	require.Len(t, r.Tools, 2)
	require.True(t, r.Tools[0].Strict)
	require.JSONEq(t, `{"type":"object","properties":{}}`, string(r.Tools[1].Parameters), "a tool without parameters takes an empty object")
	require.Len(t, r.Messages, 4)
	require.Equal(t, "system", r.Messages[0].Role)
	require.Equal(t, "be brief", r.Messages[0].Text())
	parts := r.Messages[1].Parts
	require.Len(t, parts, 3)
	require.Equal(t, &Image{MediaType: "image/png", Data: []byte("hi"), Detail: "low"}, parts[1].Image)
	require.Equal(t, "https://x/y.png", parts[2].Image.URL)
	require.Equal(t, "look: ", r.Messages[1].Text())
	require.Equal(t, []ToolCall{{ID: "c1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}, r.Messages[2].ToolCalls)
	require.Empty(t, r.Messages[2].Parts)
	require.Equal(t, "c1", r.Messages[3].ToolCallID)
}

func TestParseRequestRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, param string }{
		{"not json", `{`, ""},
		{"no messages", `{"messages":[]}`, "messages"},
		{"n=2", `{"n":2,"messages":[{"role":"user","content":"x"}]}`, "n"},
		{"unknown role", `{"messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
		{"tool without id", `{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0].type"},
		{"file image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"bad base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"custom tool", `{"tools":[{"type":"custom"}],"messages":[{"role":"user","content":"x"}]}`, "tools[0].type"},
		{"bad tool_choice", `{"tool_choice":"sometimes","messages":[{"role":"user","content":"x"}]}`, "tool_choice"},
		{"bad stop", `{"stop":5,"messages":[{"role":"user","content":"x"}]}`, "stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(tc.body))
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, 400, pe.Status)
			require.Equal(t, tc.param, pe.Param)
		})
	}
}

func TestResponseMarshal(t *testing.T) {
	r := &Response{ID: "chatcmpl-1", Model: "m", Created: 5, FinishReason: FinishToolCalls,
		ToolCalls: []ToolCall{{ID: "c1", Name: "f", Arguments: `{"a":1}`}},
		Usage:     Usage{PromptTokens: 100, CompletionTokens: 7, CachedTokens: 40, CacheWriteTokens: 10}}
	require.JSONEq(t, `{"id":"chatcmpl-1","object":"chat.completion","created":5,"model":"m","system_fingerprint":null,
	  "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
	  "usage":{"prompt_tokens":100,"completion_tokens":7,"total_tokens":107,"prompt_tokens_details":{"cached_tokens":40,"cache_write_tokens":10},"completion_tokens_details":{"reasoning_tokens":0}}}`, string(r.Marshal()))
	pr := r.ProviderResponse()
	require.Equal(t, &providers.Usage{PromptTokens: 100, CompletionTokens: 7, CachedTokens: 40, CacheWriteTokens: 10}, pr.Usage)

	text := &Response{ID: "x", Model: "m", FinishReason: FinishStop}
	var got map[string]any
	require.NoError(t, json.Unmarshal(text.Marshal(), &got))
	msg := got["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	require.Equal(t, "", msg["content"], "an empty text answer is an empty string, not null")
}

func TestStreamWriter(t *testing.T) {
	w := &StreamWriter{ID: "chatcmpl-1", Model: "m", Created: 5}
	var lines []string
	add := func(ev providers.Event) { lines = append(lines, string(ev.Data)) }
	add(w.Role())
	add(w.Text("Hi"))
	i, ev := w.ToolCallStart("c1", "f")
	add(ev)
	add(w.ToolCallArgs(i, `{"a":`))
	j, ev := w.ToolCallStart("c2", "g")
	add(ev)
	add(w.ToolCallArgs(j, `{}`))
	add(w.ToolCallArgs(i, `1}`))
	add(w.Finish(FinishToolCalls))
	u := w.Usage(Usage{PromptTokens: 3, CompletionTokens: 2})
	require.True(t, u.UsageOnly)
	add(u)
	want := []string{
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"g","arguments":""}}]},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"logprobs":null,"finish_reason":null}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"system_fingerprint":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":null}`,
	}
	require.Equal(t, want, lines)
	require.Equal(t, 2, w.ToolCalls())
}
