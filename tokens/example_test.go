package tokens_test

import (
	"fmt"
	"strings"

	"github.com/switchyard/switchyard/tokens"
)

func ExamplePrompt() {
	body := []byte(`{"model":"gpt-4o","messages":[
		{"role":"system","content":"You are a helpful assistant."},
		{"role":"user","content":"tiktoken is great!"}]}`)
	enc := tokens.For("gpt-4o")
	fmt.Println(enc, tokens.Prompt(enc, tokens.OpChat, body))
	// Output: o200k_base 23
}

func ExampleFor() {
	for _, m := range []string{"gpt-4o-mini", "gpt-4-turbo", "text-embedding-3-small", "claude-sonnet-4-5"} {
		fmt.Println(m, tokens.For(m))
	}
	// Output:
	// gpt-4o-mini o200k_base
	// gpt-4-turbo cl100k_base
	// text-embedding-3-small cl100k_base
	// claude-sonnet-4-5 approx
}

// A local model counts with its own tokenizer; with a localengine.Model m:
//
//	enc := tokens.Func(func(s string) int { return len(m.Tokenize(s, false)) })
func ExampleFunc() {
	enc := tokens.Func(func(s string) int { return len(strings.Fields(s)) }) // a stand-in tokenizer
	fmt.Println(tokens.Prompt(enc, tokens.OpCompletion, []byte(`{"prompt":"one two three"}`)))
	// Output: 3
}
