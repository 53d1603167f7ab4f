package classify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

var restoreValues = map[string]string{
	"[EMAIL_1]":           "ann@example.com",
	"[EMAIL_12]":          "bob@example.org",
	"[CREDIT_CARD_2]":     "4111 1111 1111 1111",
	"[US_SSN_1]":          "123-45-6789",
	"[PHONE_3]":           "+1 555 0100",
	"[MY_CUSTOM_LABEL_1]": `quote " backslash \ café ✓ 日本`,
	"[NESTED_1]":          "[EMAIL_1]", // a value that looks like a placeholder is not restored again
}

func TestRestorerText(t *testing.T) {
	r := NewRestorer(restoreValues)
	for _, tc := range []struct{ name, in, want string }{
		{"none", "hello world", "hello world"},
		{"one", "mail [EMAIL_1] now", "mail ann@example.com now"},
		{"adjacent", "[EMAIL_1][PHONE_3]", "ann@example.com+1 555 0100"},
		{"longer label number", "[EMAIL_12] and [EMAIL_1]", "bob@example.org and ann@example.com"},
		{"unknown passes", "[EMAIL_9] [FOO] [email_1]", "[EMAIL_9] [FOO] [email_1]"},
		{"bare brackets", "a [ b ] [] [[ ]]", "a [ b ] [] [[ ]]"},
		{"incomplete", "see [EMAIL", "see [EMAIL"},
		{"bracket before", "[[EMAIL_1]]", "[ann@example.com]"},
		{"special value", "x[MY_CUSTOM_LABEL_1]y", `xquote " backslash \ café ✓ 日本y`},
		{"not rescanned", "[NESTED_1]", "[EMAIL_1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, r.Text(tc.in))
		})
	}
	require.Equal(t, "[EMAIL_1]", NewRestorer(nil).Text("[EMAIL_1]"))
	require.Equal(t, "[EMAIL_1]", NewRestorer(map[string]string{"EMAIL_1": "x", "[a b]": "y"}).Text("[EMAIL_1]"))
}

func TestRestorerJSON(t *testing.T) {
	r := NewRestorer(restoreValues)
	special := restoreValues["[MY_CUSTOM_LABEL_1]"]
	for _, tc := range []struct {
		name string
		body string
		want map[string]string // gjson path -> decoded value after restore
	}{
		{
			name: "content",
			body: `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Write to [EMAIL_1] or call [PHONE_3]."},"finish_reason":"stop"}]}`,
			want: map[string]string{"choices.0.message.content": "Write to ann@example.com or call +1 555 0100."},
		},
		{
			name: "escaping",
			body: `{"choices":[{"message":{"content":"a [MY_CUSTOM_LABEL_1] b\n\"q\""}}]}`,
			want: map[string]string{"choices.0.message.content": "a " + special + " b\n\"q\""},
		},
		{
			name: "tool call arguments",
			body: `{"choices":[{"message":{"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send","arguments":"{\"to\":\"[EMAIL_1]\",\"note\":\"[MY_CUSTOM_LABEL_1]\"}"}}]}}]}`,
			want: map[string]string{"choices.0.message.tool_calls.0.function.arguments": `{"to":"ann@example.com","note":"` +
				strings.ReplaceAll(strings.ReplaceAll(special, `\`, `\\`), `"`, `\"`) + `"}`},
		},
		{
			name: "escaped placeholder",
			body: `{"text":"\u005bEMAIL_1\u005d and \u00e9 [US_SSN_1]"}`,
			want: map[string]string{"text": "ann@example.com and é 123-45-6789"},
		},
		{
			name: "object key",
			body: `{"[EMAIL_1]":"[US_SSN_1]"}`,
			want: map[string]string{"ann@example\\.com": "123-45-6789"},
		},
		{
			name: "unknown and partial",
			body: `{"choices":[{"message":{"content":"[EMAIL_9] [EMAIL [ ]"}}]}`,
			want: map[string]string{"choices.0.message.content": "[EMAIL_9] [EMAIL [ ]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := r.JSON([]byte(tc.body))
			require.True(t, json.Valid(out), "%s", out)
			for path, want := range tc.want {
				require.Equal(t, want, gjson.GetBytes(out, path).String(), "%s in %s", path, out)
			}
			if tc.name == "tool call arguments" {
				args := gjson.GetBytes(out, "choices.0.message.tool_calls.0.function.arguments").String()
				var a map[string]string
				require.NoError(t, json.Unmarshal([]byte(args), &a))
				require.Equal(t, map[string]string{"to": "ann@example.com", "note": special}, a)
			}
		})
	}

	t.Run("unchanged bytes", func(t *testing.T) {
		for _, body := range []string{
			`{"choices":[{"message":{"content":"nothing here"}}]}`,
			`{"choices":[{"message":{"content":"[EMAIL_9] [x]"}}]}`,
			`not json [EMAIL_9]`,
		} {
			in := []byte(body)
			out := r.JSON(in)
			require.Equal(t, body, string(out))
			require.Same(t, &in[0], &out[0])
		}
		in := []byte(`{"content":"[EMAIL_1]"}`)
		require.Same(t, &in[0], &NewRestorer(nil).JSON(in)[0])
	})
}

// chatChunk is a chat.completion.chunk with one choice.
func chatChunk(t testing.TB, index int, content *string, finish string) []byte {
	b := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":null}]}`)
	var err error
	b, err = sjson.SetBytes(b, "choices.0.index", index)
	require.NoError(t, err)
	if content != nil {
		b, err = sjson.SetBytes(b, "choices.0.delta.content", *content)
		require.NoError(t, err)
	}
	if finish != "" {
		b, err = sjson.SetBytes(b, "choices.0.finish_reason", finish)
		require.NoError(t, err)
	}
	return b
}

func ptr(s string) *string { return &s }

// streamed gathers the text of each (choice, field) from the chunks out:
// keys are "0.content", "1.text", "0.tool.2" and the like.
func streamed(t testing.TB, out ...[]byte) map[string]string {
	got := map[string]*strings.Builder{}
	add := func(k, v string) {
		if got[k] == nil {
			got[k] = &strings.Builder{}
		}
		got[k].WriteString(v)
	}
	for _, o := range out {
		if o == nil {
			continue
		}
		require.True(t, json.Valid(o), "invalid chunk %s", o)
		gjson.GetBytes(o, "choices").ForEach(func(_, c gjson.Result) bool {
			i := c.Get("index").String()
			if v := c.Get("text"); v.Exists() {
				add(i+".text", v.String())
			}
			for _, f := range []string{"content", "refusal", "reasoning_content"} {
				if v := c.Get("delta." + f); v.Type == gjson.String {
					add(i+"."+f, v.String())
				}
			}
			c.Get("delta.tool_calls").ForEach(func(_, tc gjson.Result) bool {
				if v := tc.Get("function.arguments"); v.Exists() {
					add(i+".tool."+tc.Get("index").String(), v.String())
				}
				return true
			})
			return true
		})
	}
	res := map[string]string{}
	for k, b := range got {
		res[k] = b.String()
	}
	return res
}

func TestStreamRestorerSplitEverywhere(t *testing.T) {
	r := NewRestorer(restoreValues)
	text := "Contact [EMAIL_12] or [MY_CUSTOM_LABEL_1], not [EMAIL_9] [EMAIL."
	want := r.Text(text)
	require.Contains(t, want, "bob@example.org")
	require.Contains(t, want, "café")

	run := func(t *testing.T, parts []string, finish bool) {
		s := r.Stream()
		var out [][]byte
		var last []byte
		for _, p := range parts {
			last = chatChunk(t, 0, ptr(p), "")
			o := s.Chunk(last)
			for _, h := range s.held {
				require.Less(t, len(h), r.maxLen)
			}
			out = append(out, o)
		}
		if finish {
			last = chatChunk(t, 0, nil, "stop")
			out = append(out, s.Chunk(last))
		}
		out = append(out, s.Flush(last))
		require.Nil(t, s.Flush(last))
		require.Equal(t, want, streamed(t, out...)["0.content"], "parts %q", parts)
		if finish {
			require.Nil(t, out[len(out)-1], "finish_reason must carry all held text")
		}
	}
	for _, finish := range []bool{false, true} {
		t.Run(fmt.Sprintf("two chunks finish=%v", finish), func(t *testing.T) {
			for i := 0; i <= len(text); i++ {
				run(t, []string{text[:i], text[i:]}, finish)
			}
		})
		t.Run(fmt.Sprintf("three chunks finish=%v", finish), func(t *testing.T) {
			for i := 0; i <= len(text); i++ {
				for j := i; j <= len(text); j++ {
					run(t, []string{text[:i], text[i:j], text[j:]}, finish)
				}
			}
		})
		t.Run(fmt.Sprintf("one byte chunks finish=%v", finish), func(t *testing.T) {
			parts := make([]string, len(text))
			for i := range text {
				parts[i] = text[i : i+1]
			}
			run(t, parts, finish)
		})
	}
}

func TestStreamRestorerHoldsOnlyKnownPrefixes(t *testing.T) {
	r := NewRestorer(restoreValues)
	for _, tc := range []struct {
		name, in, emitted, held string
	}{
		{"plain", "hello", "hello", ""},
		{"bracket", "a [", "a ", "["},
		{"prefix", "mail [EMA", "mail ", "[EMA"},
		{"longest label", "x [MY_CUSTOM_LABEL_", "x ", "[MY_CUSTOM_LABEL_"},
		{"not a prefix", "list [1, 2", "list [1, 2", ""},
		{"unknown label", "[EMAIL_9", "[EMAIL_9", ""},
		{"lower case", "[email", "[email", ""},
		{"complete", "[EMAIL_1", "", "[EMAIL_1"}, // could still be [EMAIL_12]
		{"closed", "[EMAIL_1]", "ann@example.com", ""},
		{"bracket in value not held", "[NESTED_1]", "[EMAIL_1]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := r.Stream()
			out := s.Chunk(chatChunk(t, 0, ptr(tc.in), ""))
			require.Equal(t, tc.emitted, gjson.GetBytes(out, "choices.0.delta.content").String())
			require.Equal(t, tc.held, s.held[streamKey{0, fieldContent, 0}])
			require.Less(t, len(s.held[streamKey{0, fieldContent, 0}]), r.maxLen)
		})
	}
}

func TestStreamRestorerChoicesInterleaved(t *testing.T) {
	r := NewRestorer(restoreValues)
	s := r.Stream()
	steps := []struct {
		choice  int
		content string
	}{
		{0, "Zero: [EM"}, {1, "One: [US_"}, {1, "SSN"}, {0, "AIL_1] and [PHO"},
		{1, "_1] ok [CREDIT_CARD"}, {0, "NE_3]."}, {1, "_2]"},
	}
	var out [][]byte
	for _, st := range steps {
		out = append(out, s.Chunk(chatChunk(t, st.choice, ptr(st.content), "")))
	}
	// Two choices in one chunk, listed out of order.
	both := []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":1,"delta":{"content":" [EMAIL_1"},"finish_reason":null},{"index":0,"delta":{"content":" [EMAIL_1"},"finish_reason":null}]}`)
	out = append(out, s.Chunk(both))
	both2 := []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"2]"},"finish_reason":null},{"index":1,"delta":{"content":"]"},"finish_reason":null}]}`)
	out = append(out, s.Chunk(both2))
	out = append(out, s.Flush(both2))
	got := streamed(t, out...)
	require.Equal(t, "Zero: ann@example.com and +1 555 0100. bob@example.org", got["0.content"])
	require.Equal(t, "One: 123-45-6789 ok 4111 1111 1111 1111 ann@example.com", got["1.content"])
}

func TestStreamRestorerToolArguments(t *testing.T) {
	r := NewRestorer(restoreValues)
	args := `{"to":"[EMAIL_1]","cc":"[EMAIL_12]","note":"[MY_CUSTOM_LABEL_1]"}`
	wantArgs := r.textArgs(args)
	toolChunk := func(tool int, frag string, first bool) []byte {
		b := []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":""}}]},"finish_reason":null}]}`)
		b, _ = sjson.SetBytes(b, "choices.0.delta.tool_calls.0.index", tool)
		b, _ = sjson.SetBytes(b, "choices.0.delta.tool_calls.0.function.arguments", frag)
		if first {
			b, _ = sjson.SetBytes(b, "choices.0.delta.tool_calls.0.id", fmt.Sprintf("call_%d", tool))
			b, _ = sjson.SetBytes(b, "choices.0.delta.tool_calls.0.function.name", "send_[EMAIL_1]")
		}
		return b
	}
	for i := 0; i < len(args); i++ {
		s := r.Stream()
		out := [][]byte{
			s.Chunk(toolChunk(0, args[:i], true)),
			s.Chunk(toolChunk(1, args[:i], true)),
			s.Chunk(toolChunk(0, args[i:], false)),
			s.Chunk(toolChunk(1, args[i:len(args)-1], false)), // tool 1 ends without its last byte
		}
		require.Equal(t, "send_ann@example.com", gjson.GetBytes(out[0], "choices.0.delta.tool_calls.0.function.name").String())
		// The finish chunk carries no tool call: held arguments get one.
		fin := []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`)
		out = append(out, s.Chunk(fin))
		require.Nil(t, s.Flush(fin))
		got := streamed(t, out...)
		require.Equal(t, wantArgs, got["0.tool.0"], "split at %d", i)
		require.Equal(t, r.textArgs(args[:len(args)-1]), got["0.tool.1"], "split at %d", i)
		var a map[string]string
		require.NoError(t, json.Unmarshal([]byte(got["0.tool.0"]), &a))
		require.Equal(t, restoreValues["[MY_CUSTOM_LABEL_1]"], a["note"])
	}
}

func TestStreamRestorerFinishFlushes(t *testing.T) {
	r := NewRestorer(restoreValues)
	for _, tc := range []struct {
		name   string
		chunks []string
		want   map[string]string // field -> text from the last chunk's choice 0
	}{
		{
			name:   "empty delta",
			chunks: []string{`{"id":"c","choices":[{"index":0,"delta":{"content":"end [EMA"},"finish_reason":null}]}`, `{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`},
			want:   map[string]string{"delta.content": "[EMA", "finish_reason": "stop"},
		},
		{
			name:   "content in finish chunk",
			chunks: []string{`{"choices":[{"index":0,"delta":{"content":"[EMA"},"finish_reason":null}]}`, `{"choices":[{"index":0,"delta":{"content":"IL_1] [PHONE"},"finish_reason":"length"}]}`},
			want:   map[string]string{"delta.content": "ann@example.com [PHONE"},
		},
		{
			name:   "null content",
			chunks: []string{`{"choices":[{"index":0,"delta":{"content":"x ["},"finish_reason":null}]}`, `{"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]}`},
			want:   map[string]string{"delta.content": "["},
		},
		{
			name:   "no delta",
			chunks: []string{`{"choices":[{"index":0,"delta":{"refusal":"no [US"},"finish_reason":null}]}`, `{"choices":[{"index":0,"finish_reason":"stop"}]}`},
			want:   map[string]string{"delta.refusal": "[US"},
		},
		{
			name: "reasoning and content",
			chunks: []string{`{"choices":[{"index":0,"delta":{"reasoning_content":"think [EMAIL_1","content":"say [PHONE_"},"finish_reason":null}]}`,
				`{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"stop"}]}`},
			want: map[string]string{"delta.reasoning_content": "[EMAIL_1", "delta.content": "[PHONE_", "delta.role": "assistant"},
		},
		{
			name:   "legacy text",
			chunks: []string{`{"object":"text_completion","choices":[{"text":"a [CRED","index":0,"logprobs":null,"finish_reason":null}]}`, `{"object":"text_completion","choices":[{"index":0,"logprobs":null,"finish_reason":"stop"}]}`},
			want:   map[string]string{"text": "[CRED"},
		},
		{
			name: "tool call without arguments",
			chunks: []string{`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"arguments":"{\"a\":\"[EMAIL_1"}}]},"finish_reason":null}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"type":"function"}]},"finish_reason":"tool_calls"}]}`},
			want: map[string]string{"delta.tool_calls.0.function.arguments": "[EMAIL_1", "delta.tool_calls.0.index": "2", "delta.tool_calls.0.type": "function"},
		},
		{
			name: "other tool call present",
			chunks: []string{`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"[EMAIL_1"}}]},"finish_reason":null}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`},
			want: map[string]string{"delta.tool_calls.0.function.arguments": "{}", "delta.tool_calls.1.index": "0", "delta.tool_calls.1.function.arguments": "[EMAIL_1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := r.Stream()
			var out []byte
			for _, c := range tc.chunks {
				out = s.Chunk([]byte(c))
				require.True(t, json.Valid(out), "%s", out)
			}
			for path, want := range tc.want {
				require.Equal(t, want, gjson.GetBytes(out, "choices.0."+path).String(), "%s in %s", path, out)
			}
			require.Empty(t, s.held)
			require.Nil(t, s.Flush(out))
		})
	}
}

func TestStreamRestorerFlush(t *testing.T) {
	r := NewRestorer(restoreValues)

	t.Run("chat", func(t *testing.T) {
		s := r.Stream()
		c1 := chatChunk(t, 0, ptr("Reach me at [EMA"), "")
		out := s.Chunk(c1)
		require.Equal(t, "Reach me at ", gjson.GetBytes(out, "choices.0.delta.content").String())
		c2 := chatChunk(t, 1, ptr("[US_SSN"), "")
		s.Chunk(c2)
		f := s.Flush(c2)
		require.True(t, json.Valid(f), "%s", f)
		require.Equal(t, "chatcmpl-1", gjson.GetBytes(f, "id").String())
		require.Equal(t, "chat.completion.chunk", gjson.GetBytes(f, "object").String())
		require.Equal(t, int64(1700000000), gjson.GetBytes(f, "created").Int())
		require.Equal(t, "gpt-4o", gjson.GetBytes(f, "model").String())
		require.Equal(t, "[EMA", gjson.GetBytes(f, "choices.#(index==0).delta.content").String())
		require.Equal(t, "[US_SSN", gjson.GetBytes(f, "choices.#(index==1).delta.content").String())
		require.Equal(t, gjson.Null, gjson.GetBytes(f, "choices.0.finish_reason").Type)
		require.True(t, gjson.GetBytes(f, "choices.0.finish_reason").Exists())
		require.Nil(t, s.Flush(c2))
	})

	t.Run("text completion", func(t *testing.T) {
		s := r.Stream()
		c := []byte(`{"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"ok [PHONE_3","index":0,"logprobs":null,"finish_reason":null}]}`)
		out := s.Chunk(c)
		require.Equal(t, "ok ", gjson.GetBytes(out, "choices.0.text").String())
		f := s.Flush(c)
		require.True(t, json.Valid(f), "%s", f)
		require.Equal(t, "text_completion", gjson.GetBytes(f, "object").String())
		require.Equal(t, "[PHONE_3", gjson.GetBytes(f, "choices.0.text").String())
		require.False(t, gjson.GetBytes(f, "choices.0.delta").Exists())
	})

	t.Run("no last chunk", func(t *testing.T) {
		s := r.Stream()
		s.Chunk(chatChunk(t, 0, ptr("["), ""))
		f := s.Flush(nil)
		require.True(t, json.Valid(f), "%s", f)
		require.Equal(t, "[", gjson.GetBytes(f, "choices.0.delta.content").String())
	})

	t.Run("nothing held", func(t *testing.T) {
		s := r.Stream()
		s.Chunk(chatChunk(t, 0, ptr("[EMAIL_1]"), ""))
		require.Nil(t, s.Flush(nil))
	})
}

func TestStreamRestorerPassThrough(t *testing.T) {
	r := NewRestorer(restoreValues)
	s := r.Stream()
	for _, tc := range []struct{ name, in, want string }{
		{"done marker", `[DONE]`, `[DONE]`},
		{"not json", `oops [EMAIL_1] {`, `oops ann@example.com {`},
		{"usage only", `{"id":"c","choices":[],"usage":{"prompt_tokens":1}}`, `{"id":"c","choices":[],"usage":{"prompt_tokens":1}}`},
		{"usage only restored", `{"id":"[EMAIL_1]","choices":[]}`, `{"id":"ann@example.com","choices":[]}`},
		{"unknown placeholder", `{"choices":[{"index":0,"delta":{"content":"[EMAIL_9] [x"}}]}`, `{"choices":[{"index":0,"delta":{"content":"[EMAIL_9] [x"}}]}`},
		{"other strings restored", `{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_[PHONE_3]","function":{"name":"f_[EMAIL_1]"}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_+1 555 0100","function":{"name":"f_ann@example.com"}}]}}]}`},
		{"escaped value", `{"choices":[{"index":0,"delta":{"content":"<[MY_CUSTOM_LABEL_1]>"}}]}`,
			`{"choices":[{"index":0,"delta":{"content":"<quote \" backslash \\ café ✓ 日本>"}}]}`},
		{"whitespace kept", "{ \"choices\" : [ { \"index\" : 0 , \"delta\" : { \"content\" : \"[EMAIL_1] \" } } ] }",
			"{ \"choices\" : [ { \"index\" : 0 , \"delta\" : { \"content\" : \"ann@example.com \" } } ] }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(s.Chunk([]byte(tc.in))))
		})
	}
	require.Empty(t, s.held)

	in := []byte(`{"choices":[{"index":0,"delta":{"content":"[EMAIL_1]"}}]}`)
	require.Same(t, &in[0], &NewRestorer(nil).Stream().Chunk(in)[0])
	require.Nil(t, NewRestorer(map[string]string{}).Stream().Flush(in))
}

func TestStreamRestorerCleanChunkNoAlloc(t *testing.T) {
	s := NewRestorer(restoreValues).Stream()
	in := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello, world! No brackets here."},"logprobs":null,"finish_reason":null}]}`)
	var out []byte
	allocs := testing.AllocsPerRun(100, func() { out = s.Chunk(in) })
	require.Zero(t, allocs)
	require.Same(t, &in[0], &out[0])
}

func BenchmarkStreamRestorerChunk(b *testing.B) {
	r := NewRestorer(restoreValues)
	clean := chatChunk(b, 0, ptr("Hello, world! No brackets here."), "")
	split := [][]byte{chatChunk(b, 0, ptr("Mail [EMA"), ""), chatChunk(b, 0, ptr("IL_1] now"), "")}
	b.Run("clean", func(b *testing.B) {
		s := r.Stream()
		b.ReportAllocs()
		for b.Loop() {
			s.Chunk(clean)
		}
	})
	b.Run("split placeholder", func(b *testing.B) {
		s := r.Stream()
		b.ReportAllocs()
		for b.Loop() {
			s.Chunk(split[0])
			s.Chunk(split[1])
		}
	})
}
