package cache_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/cache"
)

// The golden files are rewritten with go test ./cache -update, as the
// repository's other golden tests are. The flag is registered only where
// no other file of the package has registered it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata")
	}
}

func updatingGoldens() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// streamChunk is a chat.completion.chunk with one choice, as OpenAI sends
// it; finish "" is null.
func streamChunk(index int, delta, finish string) string {
	fr := "null"
	if finish != "" {
		fr = fmt.Sprintf("%q", finish)
	}
	return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}],"usage":null}`,
		index, delta, fr)
}

const streamUsage = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}`

// completionHead is the start of the completion the chunks above make.
const completionHead = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1",`

// assemble adds every chunk and returns the completion.
func assemble(t testing.TB, chunks []string) []byte {
	t.Helper()
	var a cache.Assembler
	for i, c := range chunks {
		require.NoError(t, a.Add([]byte(c)), "chunk %d: %s", i, c)
	}
	require.True(t, a.Complete())
	out, err := a.Completion()
	require.NoError(t, err)
	return out
}

func TestAssembler(t *testing.T) {
	role := `{"role":"assistant","content":""}`
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"plain text", []string{
			streamChunk(0, role, ""),
			streamChunk(0, `{"content":"Hello"}`, ""),
			streamChunk(0, `{"content":", world."}`, ""),
			streamChunk(0, `{}`, "stop"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world."},"finish_reason":"stop"}]}`},
		{"multibyte and escapes", []string{
			streamChunk(0, role, ""),
			streamChunk(0, `{"content":"h\u00e9llo "}`, ""),
			streamChunk(0, `{"content":"👋 世界"}`, ""),
			streamChunk(0, `{"content":"\ud83c\udf89 \"q\"\n<b>&"}`, ""),
			streamChunk(0, `{}`, "length"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"héllo 👋 世界🎉 \"q\"\n<b>&"},"finish_reason":"length"}]}`},
		{"empty content", []string{
			streamChunk(0, role, ""),
			streamChunk(0, `{}`, "stop"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"stop"}]}`},
		{"no role, finish in the content's chunk", []string{
			streamChunk(0, `{"content":"ok"}`, "stop"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`},
		{"two tool calls, arguments split", []string{
			streamChunk(0, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\""}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":1,"function":{"arguments":":\"CET\"}"}}]}`, ""),
			streamChunk(0, `{}`, "tool_calls"),
			streamUsage,
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
			`{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},` +
			`{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"CET\"}"}}]},"finish_reason":"tool_calls"}],` +
			`"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}`},
		{"tool calls interleaved, later name and id ignored", []string{
			streamChunk(0, `{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":"}},{"index":1,"id":"c2","type":"function","function":{"name":"g","arguments":"{"}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":1,"function":{"arguments":"}"}},{"index":0,"id":"other","function":{"name":"other","arguments":"1}"}}]}`, ""),
			streamChunk(0, `{}`, "tool_calls"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
			`{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},` +
			`{"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`},
		{"tool calls without an index, and -1", []string{
			streamChunk(0, `{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{"}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"function":{"arguments":"}"}}]}`, ""),
			streamChunk(0, `{"tool_calls":[{"id":"c2","function":{"name":"g","arguments":"[]"}}]}`, ""),
			streamChunk(0, `{}`, "tool_calls"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
			`{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},` +
			`{"id":"c2","type":"function","function":{"name":"g","arguments":"[]"}}]},"finish_reason":"tool_calls"}]}`},
		{"tool call index -1", []string{
			streamChunk(0, `{"role":"assistant","tool_calls":[{"index":-1,"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}`, "tool_calls"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
			`{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`},
		{"content and a tool call", []string{
			streamChunk(0, `{"role":"assistant","content":"Let me look."}`, ""),
			streamChunk(0, `{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}`, ""),
			streamChunk(0, `{}`, "tool_calls"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"Let me look.","tool_calls":[` +
			`{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`},
		{"refusal", []string{
			streamChunk(0, `{"role":"assistant","content":null,"refusal":""}`, ""),
			streamChunk(0, `{"refusal":"I'm sorry, "}`, ""),
			streamChunk(0, `{"refusal":"I can't help with that."}`, ""),
			streamChunk(0, `{}`, "stop"),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I can't help with that."},"finish_reason":"stop"}]}`},
		{"n=2 interleaved, with usage", []string{
			streamChunk(0, role, ""),
			streamChunk(1, role, ""),
			streamChunk(1, `{"content":"B1"}`, ""),
			streamChunk(0, `{"content":"A1"}`, ""),
			streamChunk(0, `{"content":" A2"}`, ""),
			streamChunk(1, `{"content":" B2"}`, ""),
			streamChunk(1, `{}`, "length"),
			streamChunk(0, `{}`, "stop"),
			streamUsage,
		}, completionHead + `"choices":[` +
			`{"index":0,"message":{"role":"assistant","content":"A1 A2"},"finish_reason":"stop"},` +
			`{"index":1,"message":{"role":"assistant","content":"B1 B2"},"finish_reason":"length"}],` +
			`"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}`},
		{"two choices in one chunk", []string{
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":1,"delta":{"content":"b"},"finish_reason":"stop"},{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`,
		}, completionHead + `"choices":[` +
			`{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"},` +
			`{"index":1,"message":{"role":"assistant","content":"b"},"finish_reason":"stop"}]}`},
		{"usage in every chunk: the last one", []string{
			strings.Replace(streamChunk(0, `{"role":"assistant","content":"x"}`, ""), `"usage":null`, `"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}`, 1),
			strings.Replace(streamChunk(0, `{}`, "stop"), `"usage":null`, `"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}`, 1),
		}, completionHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`},
		{"metadata from the first chunk that has it; unknown fields ignored", []string{
			`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"","annotations":[]},"x":1}],"service_tier":"default","obfuscation":"abc"}`,
			`{"id":"chatcmpl-2","created":5,"model":"m","system_fingerprint":"fp_2","choices":[{"index":0,"delta":{"content":"y"},"logprobs":{"content":[{"token":"y","logprob":-0.1,"bytes":[121],"top_logprobs":[]}]}}]}`,
			`{"id":"chatcmpl-3","created":6,"model":"m2","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		}, `{"id":"chatcmpl-2","object":"chat.completion","created":5,"model":"m","system_fingerprint":"fp_2","choices":[{"index":0,"message":{"role":"assistant","content":"y"},"finish_reason":"stop"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := assemble(t, tc.chunks)
			assert.JSONEq(t, tc.want, string(got))
			assert.NotContains(t, string(got), `\u003c`, "HTML characters kept as they are")
		})
	}
}

func TestAssemblerIncomplete(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
	}{
		{"no finish_reason", []string{
			streamChunk(0, `{"role":"assistant","content":"Hel"}`, ""),
			streamChunk(0, `{"content":"lo"}`, ""),
			streamUsage,
		}},
		{"one of two choices finished", []string{
			streamChunk(0, `{"content":"a"}`, "stop"),
			streamChunk(1, `{"content":"b"}`, ""),
		}},
		{"no chunk", nil},
		{"only usage", []string{streamUsage}},
		{"choices absent or null", []string{`{"id":"x"}`, `{"id":"x","choices":null}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a cache.Assembler
			for _, c := range tc.chunks {
				require.NoError(t, a.Add([]byte(c)))
			}
			assert.False(t, a.Complete())
			_, err := a.Completion()
			assert.Error(t, err)
		})
	}
}

func TestAssemblerMalformed(t *testing.T) {
	good := streamChunk(0, `{"content":"a"}`, "")
	var manyTools strings.Builder
	for i := range 129 {
		if i > 0 {
			manyTools.WriteByte(',')
		}
		fmt.Fprintf(&manyTools, `{"id":"c%d","function":{"name":"f","arguments":"{}"}}`, i)
	}
	for _, bad := range []string{
		``, ` `, `null`, `[]`, `"chunk"`, `42`, `[DONE]`, `{"choices":`, `{"choices":[]}x`,
		`{"choices":{}}`, `{"choices":"a"}`, `{"choices":[1]}`, `{"choices":[null]}`,
		`{"choices":[{"index":"0","delta":{}}]}`,
		`{"choices":[{"index":0.5,"delta":{}}]}`,
		`{"choices":[{"index":-1,"delta":{}}]}`,
		`{"choices":[{"index":64,"delta":{}}]}`,
		`{"choices":[{"index":1e300,"delta":{}}]}`,
		`{"choices":[{"index":0,"delta":[]}]}`,
		`{"choices":[{"index":0,"delta":{"content":5}}]}`,
		`{"choices":[{"index":0,"delta":{"content":["a"]}}]}`,
		`{"choices":[{"index":0,"delta":{"refusal":true}}]}`,
		`{"choices":[{"index":0,"delta":{"role":1}}]}`,
		`{"choices":[{"index":0,"delta":{},"finish_reason":1}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":{}}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":["x"]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":128,"function":{}}]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":-2,"function":{}}]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":"f"}]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":{}}}]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":7}]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[` + manyTools.String() + `]}}]}`,
		`{"id":1,"choices":[]}`,
		`{"model":{},"choices":[]}`,
		`{"created":"now","choices":[]}`,
		`{"usage":[],"choices":[]}`,
		`{"usage":7,"choices":[]}`,
	} {
		t.Run(bad, func(t *testing.T) {
			var a cache.Assembler
			require.NoError(t, a.Add([]byte(good)))
			err := a.Add([]byte(bad))
			require.Error(t, err)
			assert.Equal(t, err, a.Add([]byte(good)), "broken for good")
			assert.False(t, a.Complete())
			_, err = a.Completion()
			assert.Error(t, err)
		})
	}
	t.Run("more than 64 choices", func(t *testing.T) {
		var a cache.Assembler
		for i := range 64 {
			require.NoError(t, a.Add([]byte(streamChunk(i, `{"content":"x"}`, "stop"))))
		}
		require.True(t, a.Complete())
		assert.Error(t, a.Add([]byte(streamChunk(64, `{"content":"x"}`, "stop"))))
	})
}

// Completions to replay: as Completion makes them and as upstreams return
// them (with fields a chunk cannot carry).
var replayCases = []struct {
	name       string
	completion string
}{
	{"text", `{"id":"chatcmpl-9","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_9","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris. It has been the capital since the 10th century, with short interruptions."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":22,"total_tokens":36}}`},
	{"multibyte", `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("日本語のテキスト🎉é", 9) + `"},"finish_reason":"stop"}]}`},
	{"empty content", `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"stop"}]}`},
	{"tool calls", `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
		`{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\",\"days\":[1,2,3,4,5,6,7],\"detail\":\"hourly\"}"}},` +
		`{"id":"call_2","type":"function","function":{"name":"noop","arguments":""}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":50,"completion_tokens":30,"total_tokens":80}}`},
	{"refusal", `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, but I can't assist with that request. It goes against the guidelines I follow."},"finish_reason":"stop"}]}`},
	{"two choices", `{"object":"chat.completion","model":"m","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"One."},"finish_reason":"stop"},` +
		`{"index":1,"message":{"role":"assistant","content":"Two, a little longer."},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`},
	{"upstream extras", `{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default"
}`},
}

// normalized is a completion as Completion would write it, as a map:
// what a replay must give back (id and created aside).
func normalized(t testing.TB, completion []byte, withUsage bool) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(completion, &m))
	delete(m, "id")
	delete(m, "created")
	delete(m, "service_tier")
	if !withUsage {
		delete(m, "usage")
	}
	if m["system_fingerprint"] == nil {
		delete(m, "system_fingerprint")
	}
	for _, c := range m["choices"].([]any) {
		c := c.(map[string]any)
		delete(c, "logprobs")
		msg := c["message"].(map[string]any)
		delete(msg, "annotations")
		if msg["refusal"] == nil || msg["refusal"] == "" {
			delete(msg, "refusal")
		}
		if msg["content"] == nil && msg["tool_calls"] == nil && msg["refusal"] == nil {
			msg["content"] = ""
		}
	}
	return m
}

func TestReplay(t *testing.T) {
	for _, tc := range replayCases {
		for _, includeUsage := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/usage=%v", tc.name, includeUsage), func(t *testing.T) {
				chunks, err := cache.Replay([]byte(tc.completion), "chatcmpl-r", 1800000000, includeUsage)
				require.NoError(t, err)
				orig := gjson.Parse(tc.completion)
				hasUsage := orig.Get("usage").IsObject()

				var content, refusal [2]strings.Builder
				for i, c := range chunks {
					require.True(t, json.Valid(c), "%s", c)
					require.NotContains(t, string(c), "\n", "one SSE data line")
					ch := gjson.ParseBytes(c)
					assert.Equal(t, "chatcmpl-r", ch.Get("id").Str)
					assert.Equal(t, "chat.completion.chunk", ch.Get("object").Str)
					assert.Equal(t, int64(1800000000), ch.Get("created").Int())
					assert.Equal(t, orig.Get("model").Str, ch.Get("model").Str)
					assert.Equal(t, orig.Get("system_fingerprint").Exists() && orig.Get("system_fingerprint").Str != "", ch.Get("system_fingerprint").Exists())
					last := i == len(chunks)-1
					switch {
					case !includeUsage:
						assert.False(t, ch.Get("usage").Exists(), "no usage field without include_usage")
					case last && hasUsage:
						assert.Equal(t, 0, len(ch.Get("choices").Array()))
						assert.JSONEq(t, orig.Get("usage").Raw, ch.Get("usage").Raw)
						continue
					default:
						assert.Equal(t, "null", ch.Get("usage").Raw)
					}
					choices := ch.Get("choices").Array()
					require.Len(t, choices, 1)
					idx := choices[0].Get("index").Int()
					assert.Equal(t, "null", choices[0].Get("logprobs").Raw)
					for _, f := range []string{"content", "refusal"} {
						piece := choices[0].Get("delta." + f).Str
						assert.LessOrEqual(t, len(piece), 64)
						assert.True(t, utf8.ValidString(piece))
					}
					for _, tcall := range choices[0].Get("delta.tool_calls").Array() {
						assert.LessOrEqual(t, len(tcall.Get("function.arguments").Str), 64)
					}
					content[idx].WriteString(choices[0].Get("delta.content").Str)
					refusal[idx].WriteString(choices[0].Get("delta.refusal").Str)
				}
				for i, c := range orig.Get("choices").Array() {
					assert.Equal(t, c.Get("message.content").Str, content[i].String())
					assert.Equal(t, c.Get("message.refusal").Str, refusal[i].String())
				}
				if includeUsage && hasUsage {
					assert.Equal(t, "[]", gjson.GetBytes(chunks[len(chunks)-1], "choices").Raw)
				}

				// Assembled again: the completion, less what a chunk
				// cannot carry.
				var a cache.Assembler
				for _, c := range chunks {
					require.NoError(t, a.Add(c))
				}
				require.True(t, a.Complete())
				back, err := a.Completion()
				require.NoError(t, err)
				assert.Equal(t, normalized(t, []byte(tc.completion), includeUsage), normalized(t, back, true))
				assert.Equal(t, "chatcmpl-r", gjson.GetBytes(back, "id").Str)
				assert.Equal(t, int64(1800000000), gjson.GetBytes(back, "created").Int())
			})
		}
	}
}

// The OpenAI Go SDK's stream accumulator takes a replay and gives back the
// completion's content, refusal, tool calls, finish reasons and usage.
func TestReplayOpenAIAccumulator(t *testing.T) {
	for _, tc := range replayCases {
		t.Run(tc.name, func(t *testing.T) {
			chunks, err := cache.Replay([]byte(tc.completion), "chatcmpl-r", 1800000000, true)
			require.NoError(t, err)
			var acc openai.ChatCompletionAccumulator
			for _, c := range chunks {
				var chunk openai.ChatCompletionChunk
				require.NoError(t, json.Unmarshal(c, &chunk))
				require.True(t, acc.AddChunk(chunk), "%s", c)
			}
			var want openai.ChatCompletion
			require.NoError(t, json.Unmarshal([]byte(tc.completion), &want))
			assert.Equal(t, "chatcmpl-r", acc.ID)
			assert.Equal(t, want.Model, acc.Model)
			require.Len(t, acc.Choices, len(want.Choices))
			for i, w := range want.Choices {
				got := acc.Choices[i]
				assert.Equal(t, w.Index, got.Index)
				assert.Equal(t, w.FinishReason, got.FinishReason)
				assert.Equal(t, w.Message.Role, got.Message.Role)
				assert.Equal(t, w.Message.Content, got.Message.Content)
				assert.Equal(t, w.Message.Refusal, got.Message.Refusal)
				require.Len(t, got.Message.ToolCalls, len(w.Message.ToolCalls))
				for j, wt := range w.Message.ToolCalls {
					gt := got.Message.ToolCalls[j]
					assert.Equal(t, wt.ID, gt.ID)
					assert.Equal(t, wt.Type, gt.Type)
					assert.Equal(t, wt.Function.Name, gt.Function.Name)
					assert.Equal(t, wt.Function.Arguments, gt.Function.Arguments)
				}
			}
			assert.Equal(t, want.Usage.PromptTokens, acc.Usage.PromptTokens)
			assert.Equal(t, want.Usage.CompletionTokens, acc.Usage.CompletionTokens)
			assert.Equal(t, want.Usage.TotalTokens, acc.Usage.TotalTokens)
		})
	}
}

func TestReplayPieces(t *testing.T) {
	// 63 ASCII bytes then a 4-byte emoji: the first piece stops before it.
	content := strings.Repeat("a", 63) + "🎉" + strings.Repeat("é", 40)
	body := `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` + content + `"},"finish_reason":"stop"}]}`
	chunks, err := cache.Replay([]byte(body), "id", 1, false)
	require.NoError(t, err)
	var got []string
	for _, c := range chunks {
		if p := gjson.GetBytes(c, "choices.0.delta.content"); p.Str != "" {
			got = append(got, p.Str)
		}
	}
	assert.Equal(t, []string{strings.Repeat("a", 63), "🎉" + strings.Repeat("é", 30), strings.Repeat("é", 10)}, got)

	// Exactly 64 bytes: one piece; 65: two.
	for n, want := range map[int]int{64: 1, 65: 2, 128: 2, 129: 3} {
		body := `{"choices":[{"message":{"content":"` + strings.Repeat("x", n) + `"},"finish_reason":"stop"}]}`
		chunks, err := cache.Replay([]byte(body), "id", 1, false)
		require.NoError(t, err)
		assert.Len(t, chunks, want+2, "%d bytes", n)
	}
}

func TestReplayRefuses(t *testing.T) {
	var manyChoices, manyTools []string
	for i := range 65 {
		manyChoices = append(manyChoices, fmt.Sprintf(`{"index":%d,"message":{"content":"x"},"finish_reason":"stop"}`, i))
	}
	for range 129 {
		manyTools = append(manyTools, `{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}`)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{}`,
		`{"choices":[]}`,
		`{"choices":{}}`,
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}`,
		`{"object":"response","output":[]}`,
		`{"type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}`,
		`{"choices":[{"index":0,"message":{"content":"x"}}]}`,
		`{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":"x","finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"content":[{"type":"text","text":"x"}]},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"content":"x","tool_calls":{}},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","type":"custom","custom":{"name":"f","input":"x"}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":{}}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"},{"index":0,"message":{"content":"y"},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":64,"message":{"content":"x"},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}],"usage":5}`,
		`{"model":5,"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}]}`,
		`{"choices":[` + strings.Join(manyChoices, ",") + `]}`,
		`{"choices":[{"index":0,"message":{"tool_calls":[` + strings.Join(manyTools, ",") + `]},"finish_reason":"tool_calls"}]}`,
	} {
		_, err := cache.Replay([]byte(bad), "id", 1, true)
		assert.Error(t, err, bad)
	}
}

// randomCompletion is a completion as Completion writes it, with text
// that needs escaping and multibyte runes.
func randomCompletion(r *rand.Rand) []byte {
	alphabet := []rune("ab z.,\"\\\n\t\x01</>&éß日本語🎉👋🏽\u2028")
	text := func(max int) string {
		n := r.IntN(max + 1)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	m := map[string]any{"id": "x", "object": "chat.completion", "created": 0, "model": text(8)}
	if r.IntN(2) == 0 {
		m["system_fingerprint"] = "fp_" + text(4)
	}
	var choices []any
	for i := range 6 {
		if r.IntN(3) != 0 {
			continue
		}
		msg := map[string]any{"role": "assistant"}
		content := text(150)
		if r.IntN(4) == 0 {
			msg["refusal"] = text(100) + "x"
		}
		var tools []any
		for range r.IntN(3) {
			tools = append(tools, map[string]any{"id": "call_" + text(3), "type": "function",
				"function": map[string]any{"name": text(6), "arguments": text(120)}})
		}
		if tools != nil {
			msg["tool_calls"] = tools
		}
		if content == "" && (tools != nil || msg["refusal"] != nil) {
			msg["content"] = nil
		} else {
			msg["content"] = content
		}
		finish := []string{"stop", "length", "tool_calls", "content_filter"}[r.IntN(4)]
		choices = append(choices, map[string]any{"index": i, "message": msg, "finish_reason": finish})
	}
	if choices == nil {
		choices = []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text(10)}, "finish_reason": "stop"}}
	}
	m["choices"] = choices
	if r.IntN(2) == 0 {
		p, c := r.IntN(1000), r.IntN(1000)
		m["usage"] = map[string]any{"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// Property: assembling a replay gives back the completion replayed (id
// and created aside; usage only with include_usage).
func TestReplayRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		x := randomCompletion(r)
		for _, includeUsage := range []bool{true, false} {
			chunks, err := cache.Replay(x, "chatcmpl-rt", 7, includeUsage)
			require.NoError(t, err, "%d: %s", i, x)
			var a cache.Assembler
			for _, c := range chunks {
				require.NoError(t, a.Add(c))
			}
			back, err := a.Completion()
			require.NoError(t, err, "%d: %s", i, x)
			var want, got map[string]any
			require.NoError(t, json.Unmarshal(x, &want))
			require.NoError(t, json.Unmarshal(back, &got))
			for _, m := range []map[string]any{want, got} {
				delete(m, "id")
				delete(m, "created")
			}
			if !includeUsage {
				delete(want, "usage")
			}
			require.Equal(t, want, got, "%d: %s\n%s", i, x, back)
		}
	}
}

// The Assembler's own output replays and assembles to itself.
func TestAssemblerReplayFixedPoint(t *testing.T) {
	chunks := []string{
		streamChunk(0, `{"role":"assistant","content":"Sure: "}`, ""),
		streamChunk(1, `{"role":"assistant","content":null,"refusal":"No."}`, "stop"),
		streamChunk(0, `{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":\"`+strings.Repeat("ü", 50)+`\"}"}}]}`, ""),
		streamChunk(0, `{}`, "tool_calls"),
		streamUsage,
	}
	first := assemble(t, chunks)
	replayed, err := cache.Replay(first, "chatcmpl-1", 1700000000, true)
	require.NoError(t, err)
	var again []string
	for _, c := range replayed {
		again = append(again, string(c))
	}
	assert.JSONEq(t, string(first), string(assemble(t, again)))
}

// sse writes chunks as the gateway sends them.
func sse(chunks [][]byte) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		b.WriteString("data: ")
		b.Write(c)
		b.WriteString("\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// The wire format of a replay, byte for byte (go test ./cache -update
// rewrites the files).
func TestReplayGolden(t *testing.T) {
	for _, tc := range []struct {
		file         string
		completion   string
		includeUsage bool
	}{
		{"text_usage.golden", `{"id":"chatcmpl-orig","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_50cad350e4","choices":[{"index":0,"message":{"role":"assistant","content":"Grüße aus Köln! 🎉 东京から。This answer is long enough to need a second and a third piece of text."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":0}}}`, true},
		{"tools.golden", `{"id":"chatcmpl-orig","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"San Francisco, CA\",\"unit\":\"fahrenheit\",\"include_forecast\":true}"}},{"id":"call_def","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			chunks, err := cache.Replay([]byte(tc.completion), "chatcmpl-replay", 1767225600, tc.includeUsage)
			require.NoError(t, err)
			got := sse(chunks)
			path := filepath.Join("testdata", "chunks", tc.file)
			if updatingGoldens() {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "missing golden file; run go test ./cache -run TestReplayGolden -update")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func BenchmarkReplayAssemble(b *testing.B) {
	body := []byte(`{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("Some text with ünïcödé and 🎉. ", 64) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	b.ReportAllocs()
	for b.Loop() {
		chunks, err := cache.Replay(body, "id", 1, true)
		if err != nil {
			b.Fatal(err)
		}
		var a cache.Assembler
		for _, c := range chunks {
			if err := a.Add(c); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := a.Completion(); err != nil {
			b.Fatal(err)
		}
	}
}
