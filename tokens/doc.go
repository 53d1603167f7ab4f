// Package tokens counts the prompt tokens of OpenAI-format requests, for
// the gateway's quota and budget reservations.
//
// An Encoding counts the tokens of a text: O200kBase and Cl100kBase are
// OpenAI's tiktoken encodings, exact; Approx is a conservative
// approximation for models whose tokenizer we do not have; Func wraps any
// other counter, such as a local model's own tokenizer:
//
//	enc := tokens.Func(func(s string) int { return len(m.Tokenize(s, false)) })
//
// For picks the encoding for a model name, and Prompt counts a request
// body's prompt tokens the way OpenAI bills them.
package tokens
