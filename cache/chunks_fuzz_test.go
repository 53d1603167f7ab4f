package cache_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/cache"
)

// seedStreams are streams of the tests, one chunk a line.
func seedStreams() [][]byte {
	role := `{"role":"assistant","content":""}`
	streams := [][]string{
		{streamChunk(0, role, ""), streamChunk(0, `{"content":"Hello"}`, ""), streamChunk(0, `{}`, "stop"), streamUsage},
		{streamChunk(0, `{"content":"h\u00e9llo 👋 世界"}`, "length")},
		{streamChunk(0, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":0,"function":{"arguments":"1}"}},{"id":"c2","function":{"name":"g"}}]}`, ""),
			streamChunk(0, `{}`, "tool_calls")},
		{streamChunk(0, `{"role":"assistant","content":null,"refusal":"No."}`, "stop")},
		{streamChunk(1, `{"content":"b"}`, "stop"), streamChunk(0, `{"content":"a"}`, ""), streamChunk(0, `{}`, "stop")},
		{streamChunk(0, `{"content":"a"}`, "")},
		{`{"choices":[{"index":63,"delta":{"tool_calls":[{"index":127,"function":{"arguments":"x"}}]},"finish_reason":"stop"}]}`},
	}
	var out [][]byte
	for _, s := range streams {
		out = append(out, []byte(strings.Join(s, "\n")))
	}
	return out
}

// FuzzAssembler: arbitrary chunk sequences (one a line) never make the
// Assembler panic; what it keeps is bounded by what it was given (no
// sparse index or choice count makes it grow past a small multiple); a
// completion it returns is a chat.completion that Replay accepts and that
// assembles to itself.
func FuzzAssembler(f *testing.F) {
	for _, s := range seedStreams() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		var a cache.Assembler
		failed := false
		for line := range bytes.SplitSeq(stream, []byte("\n")) {
			if err := a.Add(line); err != nil {
				failed = true
			}
		}
		complete := a.Complete()
		out, err := a.Completion()
		if failed {
			require.False(t, complete)
			require.Error(t, err)
			return
		}
		require.Equal(t, complete, err == nil)
		if err != nil {
			return
		}
		require.True(t, json.Valid(out), "%s", out)
		require.LessOrEqual(t, len(out), 256+16*len(stream), "a completion far larger than its stream")
		root := gjson.ParseBytes(out)
		require.Equal(t, "chat.completion", root.Get("object").Str)
		require.NotEmpty(t, root.Get("choices").Array())

		chunks, err := cache.Replay(out, root.Get("id").Str, root.Get("created").Int(), true)
		require.NoError(t, err, "%s", out)
		var again cache.Assembler
		for _, c := range chunks {
			require.NoError(t, again.Add(c), "%s", c)
		}
		back, err := again.Completion()
		require.NoError(t, err)
		require.JSONEq(t, string(out), string(back))
	})
}

// FuzzReplay: arbitrary bodies never make Replay panic; for a body it
// accepts, every chunk is one line of JSON, its pieces are valid UTF-8 of
// at most 64 bytes, and assembling the chunks gives back a completion
// with the body's choices, content, refusal, tool calls and finish
// reasons.
func FuzzReplay(f *testing.F) {
	for _, c := range replayCases {
		f.Add([]byte(c.completion), true)
	}
	for _, s := range seedStreams() {
		f.Add(s, false)
	}
	f.Add([]byte(`{"choices":[{"message":{"content":"\u0000\ud800x"},"finish_reason":"stop"}]}`), false)
	f.Add([]byte(`{"choices":[{"index":3,"message":{"tool_calls":[{"function":{}}]},"finish_reason":"x"}],"usage":{}}`), true)
	// Invalid UTF-8, cut into pieces after U+FFFD replaced it.
	f.Add([]byte("{\"choices\":[{\"message\":{\"content\":\"\xa5\x88\xa5\xac\x9e\xae\x80\xad\xb9\x88\x89\xa9\xa5\xac\x9e\xae\x86\xad\xb9\x88\x89\xa9\"},\"finish_reason\":\"0\"}]}"), false)
	f.Fuzz(func(t *testing.T, body []byte, includeUsage bool) {
		chunks, err := cache.Replay(body, "chatcmpl-f", 1, includeUsage)
		if err != nil {
			return
		}
		var a cache.Assembler
		for _, c := range chunks {
			require.True(t, json.Valid(c), "%s", c)
			require.NotContains(t, string(c), "\n")
			require.NoError(t, a.Add(c), "%s", c)
			for _, field := range []string{"choices.0.delta.content", "choices.0.delta.refusal", "choices.0.delta.tool_calls.0.function.arguments"} {
				p := gjson.GetBytes(c, field).Str
				require.LessOrEqual(t, len(p), 64, "%s", c)
				require.True(t, utf8.ValidString(p), "%s", c)
			}
		}
		require.True(t, a.Complete())
		out, err := a.Completion()
		require.NoError(t, err)
		require.True(t, json.Valid(out))

		// What was replayed came back, invalid UTF-8 as U+FFFD.
		valid := func(s string) string { return string([]rune(s)) }
		got := map[int64]gjson.Result{}
		for _, c := range gjson.GetBytes(out, "choices").Array() {
			got[c.Get("index").Int()] = c
		}
		want := gjson.GetBytes(body, "choices").Array()
		require.Len(t, got, len(want))
		for pos, w := range want {
			i := int64(pos)
			if idx := w.Get("index"); idx.Exists() && idx.Type != gjson.Null {
				i = idx.Int()
			}
			g, ok := got[i]
			require.True(t, ok, "choice %d", i)
			require.Equal(t, valid(w.Get("finish_reason").Str), g.Get("finish_reason").Str)
			require.Equal(t, valid(w.Get("message.content").Str), g.Get("message.content").Str)
			require.Equal(t, valid(w.Get("message.refusal").Str), g.Get("message.refusal").Str)
			wt, gt := w.Get("message.tool_calls").Array(), g.Get("message.tool_calls").Array()
			require.Len(t, gt, len(wt))
			for j := range wt {
				require.Equal(t, valid(wt[j].Get("id").Str), gt[j].Get("id").Str)
				require.Equal(t, valid(wt[j].Get("function.name").Str), gt[j].Get("function.name").Str)
				require.Equal(t, valid(wt[j].Get("function.arguments").Str), gt[j].Get("function.arguments").Str)
			}
		}
	})
}
