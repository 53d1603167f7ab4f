package gguf

import (
	"fmt"
	"unicode/utf8"
)

// Token ids of the special tokens of every generated model.
const (
	// TokenUnknown is <unk>.
	TokenUnknown = 0
	// TokenBOS is <s>, added at the start of every tokenized prompt.
	TokenBOS = 1
	// TokenEOS is </s>.
	TokenEOS = 2
	// TokenIMStart is <|im_start|>, the ChatML turn opener.
	TokenIMStart = 3
	// TokenIMEnd is <|im_end|>, the ChatML turn end and end-of-turn token.
	TokenIMEnd = 4
	// NumControlTokens is the number of special tokens, ids 0 to
	// NumControlTokens-1. Their rows of output.weight are zero.
	NumControlTokens = 5
	// FirstByteToken is the id of <0x00>; byte b has id FirstByteToken+b.
	FirstByteToken = NumControlTokens
	// FirstPieceToken is the id of "▁", the first normal piece.
	FirstPieceToken = FirstByteToken + 256
	// MinVocab is the smallest vocabulary a [Shape] may have: the special
	// tokens, the 256 byte tokens and "▁".
	MinVocab = FirstPieceToken + 1
)

// SentencePiece token types (tokenizer.ggml.token_type).
const (
	tokenTypeNormal  int32 = 1
	tokenTypeUnknown int32 = 2
	tokenTypeControl int32 = 3
	tokenTypeByte    int32 = 6
)

// spaceMarker is SentencePiece's word-boundary marker, U+2581.
const spaceMarker = "▁"

// commonWords become "▁"-prefixed pieces, together with all their prefixes so
// that SentencePiece merges can reach them. The first ones matter for tests:
// "hello world" tokenizes to <s> ▁hello ▁world. Read-only.
var commonWords = []string{
	"hello", "world", "the", "and", "of", "to", "in", "is", "you", "that", "it", "he", "was",
	"for", "on", "are", "as", "with", "his", "they", "at", "be", "this", "have", "from", "or",
	"one", "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your",
	"can", "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if",
	"will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
	"her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
	"write", "go", "see", "number", "no", "way", "could", "people", "my", "than", "first",
	"water", "been", "call", "who", "its", "now", "find", "long", "down", "day", "did", "get",
	"come", "made", "may", "part", "user", "assistant", "system", "yes", "please", "thank",
	"question", "answer", "model", "test", "token", "text",
}

// vocab is a generated tokenizer vocabulary.
type vocab struct {
	tokens []string
	scores []float32
	types  []int32
}

// newVocab returns a SentencePiece ("llama") vocabulary of exactly n tokens:
// the control tokens, the 256 byte-fallback tokens, then normal pieces in
// priority order (single characters bare and with "▁", common words, then
// synthesized "▁" + lowercase strings). Every prefix of the piece list is
// closed: each multi-character piece follows all the pieces SentencePiece
// needs to merge into it.
func newVocab(n int) (*vocab, error) {
	if n < MinVocab {
		return nil, fmt.Errorf("gguf: vocabulary of %d tokens is smaller than %d", n, MinVocab)
	}
	v := &vocab{
		tokens: make([]string, 0, n),
		scores: make([]float32, 0, n),
		types:  make([]int32, 0, n),
	}
	add := func(text string, score float32, typ int32) {
		v.tokens = append(v.tokens, text)
		v.scores = append(v.scores, score)
		v.types = append(v.types, typ)
	}
	add("<unk>", 0, tokenTypeUnknown)
	add("<s>", 0, tokenTypeControl)
	add("</s>", 0, tokenTypeControl)
	add("<|im_start|>", 0, tokenTypeControl)
	add("<|im_end|>", 0, tokenTypeControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenTypeByte)
	}

	pieces := pieceList(n - len(v.tokens))
	for i, p := range pieces {
		// Longer pieces score higher; among equal lengths, earlier (more
		// common) pieces score higher. Scores stay within (len-1, len].
		score := float32(utf8.RuneCountInString(p)) - float32(i)/float32(len(pieces))
		add(p, score, tokenTypeNormal)
	}
	return v, nil
}

// pieceList returns the first n normal pieces, without duplicates.
func pieceList(n int) []string {
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	add := func(p string) bool {
		if len(out) == n {
			return false
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
		return len(out) < n
	}
	var chars []string
	for c := 'a'; c <= 'z'; c++ {
		chars = append(chars, string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		chars = append(chars, string(c))
	}
	for c := '0'; c <= '9'; c++ {
		chars = append(chars, string(c))
	}
	for _, c := range `.,!?'":;-()/` + "`" + `#$%&*+<=>@[\]^_{|}~` {
		chars = append(chars, string(c))
	}

	if !add(spaceMarker) {
		return out
	}
	for _, c := range chars {
		if !add(c) || !add(spaceMarker+c) {
			return out
		}
	}
	for _, w := range commonWords {
		for k := 2; k <= len(w); k++ {
			if !add(spaceMarker + w[:k]) {
				return out
			}
		}
	}
	// Synthesize "▁" + every lowercase string of length 2, then 3, and so on.
	// Each one's prefix came in the previous round, so all are reachable.
	for length := 2; ; length++ {
		idx := make([]int, length)
		buf := make([]byte, length)
		for {
			for i, x := range idx {
				buf[i] = byte('a' + x)
			}
			if !add(spaceMarker + string(buf)) {
				return out
			}
			i := length - 1
			for i >= 0 && idx[i] == 25 {
				idx[i] = 0
				i--
			}
			if i < 0 {
				break
			}
			idx[i]++
		}
	}
}
