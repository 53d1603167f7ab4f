package classify

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/sjson"
)

var placeholderRE = regexp.MustCompile(`\[[A-Z0-9_]+\]`)

// restoreReference is Restorer.Text done the slow, obvious way.
func restoreReference(values map[string]string, s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		if v, ok := values[p]; ok {
			return v
		}
		return p
	})
}

// fuzzPieces are what the fuzzer's ops bytes build text from.
var fuzzPieces = []string{
	"[EMAIL_1]", "[EMAIL_12]", "[EMA", "IL_1]", "[", "]", "[EMAIL_9]",
	"[MY_CUSTOM_LABEL_1]", "[NESTED_1]", "[US_SSN_", "1]", "2]", "[[", "_",
	"x", " ", "é", "日本", `"`, `\`, "\n", "[CREDIT_CARD_2]", "[PHONE_3]",
}

// fuzzSplit cuts s into pieces whose lengths come from cuts (at rune
// boundaries, as a real stream's JSON strings are valid UTF-8).
func fuzzSplit(s string, cuts []byte) []string {
	var parts []string
	for _, c := range cuts {
		if s == "" {
			break
		}
		n := min(int(c%13), len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n++
		}
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return append(parts, s)
}

func FuzzStreamRestorer(f *testing.F) {
	f.Add("hello [EMAIL_1] world", []byte{2, 0, 4, 1}, []byte{3, 1, 7, 0, 2})
	f.Add("", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []byte{1, 1, 1, 1, 1, 1, 1, 1})
	f.Add("[EMA", []byte{3}, []byte{2, 2, 2})
	f.Add("a[b]c", []byte{7, 8, 9, 19, 18, 17, 2}, []byte{5, 0, 0, 12})
	f.Fuzz(func(t *testing.T, raw string, ops, cuts []byte) {
		r := NewRestorer(restoreValues)
		var b strings.Builder
		b.WriteString(strings.ToValidUTF8(raw, ""))
		for _, op := range ops {
			b.WriteString(fuzzPieces[int(op)%len(fuzzPieces)])
		}
		text := b.String()
		require.Equal(t, restoreReference(restoreValues, text), r.Text(text))

		// Choice 0 streams the text as content, choice 1 as tool-call
		// arguments, cut differently, in alternating chunks.
		content := fuzzSplit(text, cuts)
		rev := make([]byte, len(cuts))
		for i, c := range cuts {
			rev[len(cuts)-1-i] = c
		}
		args := fuzzSplit(text, rev)
		finish := len(ops) > 0 && ops[0]%2 == 1

		s := r.Stream()
		var out [][]byte
		var last []byte
		for i := 0; i < max(len(content), len(args)); i++ {
			if i < len(content) {
				last = chatChunk(t, 0, &content[i], "")
				out = append(out, s.Chunk(last))
			}
			if i < len(args) {
				c := []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":""}}]},"finish_reason":null}]}`)
				c, err := sjson.SetBytes(c, "choices.0.delta.tool_calls.0.function.arguments", args[i])
				require.NoError(t, err)
				last = c
				out = append(out, s.Chunk(c))
			}
			for _, h := range s.held {
				require.Less(t, len(h), r.maxLen)
			}
		}
		if finish {
			last = []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"tool_calls"}]}`)
			out = append(out, s.Chunk(last))
		}
		flushed := s.Flush(last)
		if finish {
			require.Nil(t, flushed)
		}
		out = append(out, flushed)
		for _, o := range out {
			require.True(t, o == nil || json.Valid(o), "%s", o)
		}
		got := streamed(t, out...)
		require.Equal(t, r.Text(text), got["0.content"])
		require.Equal(t, r.textArgs(text), got["1.tool.0"])
		require.Nil(t, s.Flush(last))
	})
}
