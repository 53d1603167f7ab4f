package tokens

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer/codec"
)

// Encoding counts the tokens of a text. Implementations are safe for
// concurrent use.
type Encoding interface {
	Count(text string) int
}

// Func is an Encoding made of a function, such as a local model's own
// tokenizer.
type Func func(text string) int

// Count returns f(text).
func (f Func) Count(text string) int { return f(text) }

// OpenAI's tiktoken encodings (github.com/tiktoken-go/tokenizer, whose
// vocabularies are compiled in: ~10 MB of binary for the two). Each loads
// on first use, once, and is then shared: o200k_base takes 40–300 ms and
// 6.7 MiB of heap (12 MiB of resident memory), cl100k_base about half.
// They count exactly, but for whitespace runs longer than 64 bytes (see
// spaceChunk), in time linear in the text: about 5–15 MB/s (2–5 MB/s on
// base64 and other long runs without spaces), and 3 µs a call at least.
var (
	O200kBase  Encoding = &bpe{name: "o200k_base", new: codec.NewO200kBase}
	Cl100kBase Encoding = &bpe{name: "cl100k_base", new: codec.NewCl100kBase}
)

// For returns the encoding of a model: O200kBase for gpt-4o, gpt-4.1,
// gpt-4.5, gpt-5 and later gpt-* models, the o-series (o1, o3, o4-mini,
// …), chatgpt-*, codex-* and computer-use-*; Cl100kBase for gpt-4 (and
// gpt-4-turbo, gpt-4-32k, …), gpt-3.5-turbo, text-embedding-3-*,
// text-embedding-ada-002, davinci-002 and babbage-002; Approx for anything
// else (Claude, Gemini, Llama, Mistral, …). It ignores case, a
// fine-tune's "ft:" prefix and a provider prefix such as "openai/" or
// "azure/".
func For(model string) Encoding {
	m := strings.ToLower(model)
	m = strings.TrimPrefix(m, "ft:")
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "gpt-4."):
		return O200kBase
	case m == "gpt-4", strings.HasPrefix(m, "gpt-4-"),
		strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "gpt-35"),
		strings.HasPrefix(m, "text-embedding-3"), strings.HasPrefix(m, "text-embedding-ada-002"),
		strings.HasPrefix(m, "davinci-002"), strings.HasPrefix(m, "babbage-002"):
		return Cl100kBase
	case strings.HasPrefix(m, "gpt-"), strings.HasPrefix(m, "chatgpt-"),
		strings.HasPrefix(m, "codex-"), strings.HasPrefix(m, "computer-use-"),
		oSeries(m):
		return O200kBase
	}
	return Approx
}

// oSeries reports o1, o3-mini, o4-mini-2025-04-16 and the like: "o", digits,
// then the end or a dash.
func oSeries(m string) bool {
	if len(m) < 2 || m[0] != 'o' {
		return false
	}
	i := 1
	for i < len(m) && m[i] >= '0' && m[i] <= '9' {
		i++
	}
	return i > 1 && (i == len(m) || m[i] == '-')
}

// bpe is a tiktoken encoding, loaded on first use. It calls the codec
// package's constructors rather than tokenizer.Get, which would link the
// vocabularies of every encoding into the binary (r50k_base and p50k_base:
// another ~4 MB).
type bpe struct {
	name  string
	new   func() *codec.Codec
	once  sync.Once
	codec *codec.Codec
}

func (b *bpe) String() string { return b.name }

func (b *bpe) load() *codec.Codec {
	b.once.Do(func() { b.codec = b.new() })
	return b.codec
}

// spaceChunk bounds the whitespace runs handed to the tokenizer. Its
// pre-tokenizing regular expression takes time quadratic in the length of
// a whitespace run that mixes newlines with other spaces (" \n \n …": 32
// KB took 2 s, 1 MB 12 minutes), so longer runs are counted in pieces of
// at most this many bytes, each counted as one token more than the
// tokenizer says (cutting a run changes the count by about that much).
const spaceChunk = 64

// Count returns the number of tokens of text. Should the tokenizer fail
// (it does not, on any string), it returns Approx's count.
func (b *bpe) Count(text string) int {
	c := b.load()
	n := 0
	for text != "" {
		i, j := longSpace(text)
		if i < 0 {
			return n + count(c, text)
		}
		n += count(c, text[:i])
		for run := text[i:j]; run != ""; {
			k := min(len(run), spaceChunk)
			for k < len(run) && !utf8.RuneStart(run[k]) {
				k--
			}
			n += count(c, run[:k]) + 1
			run = run[k:]
		}
		text = text[j:]
	}
	return n
}

func count(c *codec.Codec, s string) int {
	if s == "" {
		return 0
	}
	n, err := c.Count(s)
	if err != nil {
		return Approx.Count(s)
	}
	return n
}

// longSpace returns the bounds of the first run of whitespace (as the
// tokenizer's \s sees it) longer than spaceChunk bytes, or -1, -1.
func longSpace(s string) (int, int) {
	start := -1
	for i := 0; i < len(s); {
		c := s[i]
		n, space := 1, false
		if c < utf8.RuneSelf {
			space = c == ' ' || c >= '\t' && c <= '\r'
		} else {
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
		}
		switch {
		case space && start < 0:
			start = i
		case !space && start >= 0:
			if i-start > spaceChunk {
				return start, i
			}
			start = -1
		}
		i += n
	}
	if start >= 0 && len(s)-start > spaceChunk {
		return start, len(s)
	}
	return -1, -1
}
