package messages

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

func names(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.name
	}
	return out
}

func TestStreamStartAndEmptyEnd(t *testing.T) {
	s := NewStream("claude-haiku-4-5", "msg_1")
	s.InputTokens = 42
	start := s.Start()
	require.Equal(t, "event: message_start\ndata: "+
		`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,`+
		`"usage":{"input_tokens":42,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`+"\n\n", string(start))
	require.Nil(t, s.Start(), "message_start is sent once")

	end := s.End(&providers.Usage{PromptTokens: 50, CachedTokens: 8, CompletionTokens: 0})
	evs := checkSSE(t, end)
	require.Equal(t, []string{"message_delta", "message_stop"}, names(evs))
	require.JSONEq(t, `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},`+
		`"usage":{"input_tokens":42,"cache_creation_input_tokens":0,"cache_read_input_tokens":8,"output_tokens":0}}`, string(evs[0].data))
	require.Nil(t, s.End(nil), "End is once")
	require.Nil(t, s.Fail(TypeAPI, "late"), "no error after the end")
	out, err := s.Chunk([]byte(`{"choices":[{"delta":{"content":"late"}}]}`), nil)
	require.NoError(t, err)
	require.Nil(t, out)
}

// End without any chunk still sends a complete message.
func TestStreamEndOnly(t *testing.T) {
	s := NewStream("m", "")
	evs := checkSSE(t, s.End(nil))
	require.Equal(t, []string{"message_start", "message_delta", "message_stop"}, names(evs))
	require.Regexp(t, `^msg_`, gjson.GetBytes(evs[0].data, "message.id").String())
	require.JSONEq(t, `{"output_tokens":0}`, gjson.GetBytes(evs[1].data, "usage").Raw)
}

func TestStreamFailAndPing(t *testing.T) {
	s := NewStream("m", "msg_1")
	out, err := s.Chunk([]byte(`{"choices":[{"index":0,"delta":{"content":"Hi"}}]}`), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"message_start", "content_block_start", "content_block_delta"}, names(checkSSE(t, out)))
	fail := s.Fail(TypeOverloaded, "Overloaded")
	require.Equal(t, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", string(fail))
	require.Nil(t, s.End(nil), "a failed stream is over")
	require.Equal(t, "event: ping\ndata: {\"type\": \"ping\"}\n\n", string(Ping()))
	checkSSE(t, Ping())
}

func TestStreamBadChunks(t *testing.T) {
	s := NewStream("m", "msg_1")
	for _, data := range []string{`not json`, `[1,2]`, `"x"`} {
		out, err := s.Chunk([]byte(data), nil)
		var e *Error
		require.True(t, errors.As(err, &e), "%s", data)
		require.Equal(t, TypeAPI, e.Type)
		require.Nil(t, out)
	}
	_, err := s.Chunk([]byte(`{"error":{"message":"model crashed","type":"server_error"}}`), nil)
	require.EqualError(t, err, "api_error: model crashed")
	// Chunks without choices (a usage-only one) are fine.
	out, err := s.Chunk([]byte(`{"choices":[]}`), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"message_start"}, names(checkSSE(t, out)))
}

// A backend that interleaves the arguments of parallel calls cannot be
// streamed in order; the stream fails rather than corrupting a call.
func TestStreamInterleavedToolCalls(t *testing.T) {
	s := NewStream("m", "msg_1")
	chunks := []string{
		`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}`,
		`{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}`,
	}
	for _, c := range chunks {
		_, err := s.Chunk([]byte(c), nil)
		require.NoError(t, err)
	}
	out, err := s.Chunk([]byte(`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}`), nil)
	require.ErrorContains(t, err, "interleaved")
	require.Empty(t, out)
	checkSSE(t, s.Fail(TypeAPI, err.Error()))
}

// The usage End is given wins over the usage a chunk carried, and the
// usage known at message_start is reported there.
func TestStreamUsage(t *testing.T) {
	s := NewStream("m", "msg_1")
	out, err := s.Chunk([]byte(`{"choices":[{"delta":{"content":"x"}}]}`), &providers.Usage{PromptTokens: 300, CachedTokens: 100, CacheWriteTokens: 50, CompletionTokens: 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"input_tokens":150,"cache_creation_input_tokens":50,"cache_read_input_tokens":100,"output_tokens":1}`,
		gjson.GetBytes(checkSSE(t, out)[0].data, "message.usage").Raw)
	evs := checkSSE(t, s.End(&providers.Usage{PromptTokens: 310, CachedTokens: 100, CompletionTokens: 7, Estimated: true}))
	require.Equal(t, []string{"content_block_stop", "message_delta", "message_stop"}, names(evs))
	require.JSONEq(t, `{"input_tokens":210,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":7}`,
		gjson.GetBytes(evs[1].data, "usage").Raw)
}
