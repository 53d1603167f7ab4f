package tokens

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// chatBody builds a chat request of about size bytes from the corpus:
// a system prompt, then user and assistant turns of prose, code and JSON.
func chatBody(tb testing.TB, size int) []byte {
	tb.Helper()
	read := func(name string) string {
		b, err := os.ReadFile("testdata/corpus/" + name)
		if err != nil {
			tb.Fatal(err)
		}
		return string(b)
	}
	parts := []string{read("english.txt"), read("code_go.txt"), read("chat.txt"), read("json_pretty.txt"), read("code_python.txt"), read("markup.txt")}
	msgs := []map[string]any{{"role": "system", "content": "You are a helpful assistant. Answer concisely and cite the code you change."}}
	for i := 0; ; i++ {
		body, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": msgs, "temperature": 0.2})
		if len(body) >= size {
			return body
		}
		p := parts[i%len(parts)]
		if room := size - len(body) - 40; room < len(p) {
			p = p[:max(room, 1)]
		}
		msgs = append(msgs, map[string]any{"role": [2]string{"user", "assistant"}[i%2], "content": p})
	}
}

func BenchmarkPrompt(b *testing.B) {
	huge, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": strings.Repeat("aGVsbG8gd29ybGQ ", 7<<20/16)}}})
	for _, bc := range []struct {
		name string
		enc  Encoding
		body []byte
	}{
		{"2KB/o200k", O200kBase, chatBody(b, 2<<10)},
		{"2KB/cl100k", Cl100kBase, chatBody(b, 2<<10)},
		{"2KB/approx", Approx, chatBody(b, 2<<10)},
		{"100KB/o200k", O200kBase, chatBody(b, 100<<10)},
		{"100KB/approx", Approx, chatBody(b, 100<<10)},
		{"7MB-string/o200k", O200kBase, huge},
	} {
		O200kBase.Count("warm")
		Cl100kBase.Count("warm")
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				n = Prompt(bc.enc, OpChat, bc.body)
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}

// BenchmarkCount measures the encodings alone, on text they handle worst:
// long whitespace runs mixing newlines and spaces, which the tokenizer's
// regular expression takes quadratic time on, and one 1 MB word.
func BenchmarkCount(b *testing.B) {
	for _, bc := range []struct {
		name string
		enc  Encoding
		text string
	}{
		{"english-100KB/o200k", O200kBase, strings.Repeat(string(must(os.ReadFile("testdata/corpus/english.txt"))), 40)},
		{"space-newline-1MB/o200k", O200kBase, strings.Repeat(" \n", 1<<19)},
		{"a-1MB/o200k", O200kBase, strings.Repeat("a", 1<<20)},
		{"base64-1MB/o200k", O200kBase, strings.Repeat(strings.TrimSpace(string(must(os.ReadFile("testdata/corpus/base64.txt")))), 1<<20/4000)},
		{"english-100KB/approx", Approx, strings.Repeat(string(must(os.ReadFile("testdata/corpus/english.txt"))), 40)},
		{"chinese-100KB/approx", Approx, strings.Repeat(string(must(os.ReadFile("testdata/corpus/chinese.txt"))), 80)},
	} {
		bc.enc.Count("warm")
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			b.ReportAllocs()
			for b.Loop() {
				bc.enc.Count(bc.text)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
