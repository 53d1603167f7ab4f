package tokens

import (
	"encoding/base64"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Approx counts tokens for a tokenizer we do not have (Claude, Gemini,
// Llama, Mistral, …), and stands in for the exact encodings on text too
// large to count exactly (see ExactBytes). It aims to over-estimate, never
// to under-estimate: on every sample of testdata/corpus, and every line of
// the samples of real text, it is at least the larger of the cl100k_base
// and o200k_base counts; it is 1.4–1.65 times that for English, code,
// JSON and markup, 1.1–1.4 for other European languages, 1.0–1.2 for
// Chinese, Japanese, Korean and Hindi (TestApproxCorpus -v shows the
// figures). The margin is meant for tokenizers with smaller vocabularies,
// which need more tokens than cl100k_base; none of them is measured here.
//
// It is one pass over the bytes, with no allocation. It adds up, in
// twentieths of a token:
//
//   - ASCII letters: 1 for the first letter of each piece, where pieces
//     are split where a lowercase letter meets an uppercase one (camelCase)
//     and at letter pairs that are rare inside cl100k_base tokens (so that
//     random strings such as base64 or hashes cost about 1 per 2 letters);
//     then 0.05 for each further letter up to the 5th of the piece and 0.4
//     beyond it (long and compound words: cl100k_base cuts German compounds
//     every ~3 letters); uppercase after uppercase 0.15 and 0.3.
//   - Digits: 1 each. tiktoken groups up to 3 digits in a token, but
//     Llama 2, Mistral and Gemma take one token per digit.
//   - ASCII punctuation: 1 for the first of a run, 0.7 for each further
//     one; control characters 1.
//   - Whitespace: a single space before a word is free (tokenizers join
//     it to the word); any other run costs 1, then 0.15 for each further
//     character, or 0.75 where it differs from the one before (" \n \n").
//   - Other characters: the tokens the rune takes on its own in
//     cl100k_base or o200k_base, whichever is more (a generated table:
//     tables_gen.go), but 80% of it for a 2-byte letter after another from
//     the same 256-rune block (Cyrillic, Greek, Arabic words), plus 0.5
//     after a space; runes outside the BMP 4 (their bytes), 3 for emoji.
//
// Known limits, both far from real prompts: text made to look like words
// without being words (a random walk over common letter pairs, "abab…")
// counts as little as half its tokens, and long runs of random letters of
// one non-Latin script 0.8 of them.
var Approx Encoding = approx{}

// unit is what Approx's costs count in: twentieths of a token.
const unit = 20

// Approx's costs, in units.
const (
	costWordStart  = 20 // first letter of a piece
	costWordRare   = 20 // letter after a rare pair: a new piece
	costLowerShort = 1  // further letters, up to shortWord
	costLowerLong  = 8  // further letters beyond shortWord
	costUpperShort = 3  // uppercase after uppercase, up to shortWord
	costUpperLong  = 6  // uppercase after uppercase beyond shortWord
	shortWord      = 5
	costDigit      = 20
	costPunct      = 20 // first of a punctuation run
	costPunctRun   = 14 // each further one
	costControl    = 20
	costSpace      = 20 // a whitespace run other than a single space
	costSpaceRun   = 3  // each further whitespace character, same as the last
	costSpaceMix   = 15 // each further whitespace character, not the same
	runeRunPercent = 80 // of a 2-byte letter after one from the same block
	costRuneSpace  = 10 // a non-ASCII rune after a space
	costAstral     = 80 // a rune outside the BMP
	costEmoji      = 60 // U+1F000–U+1FBFF
)

type approx struct{}

func (approx) Count(text string) int { return int((approxUnits(text) + unit - 1) / unit) }

func (approx) String() string { return "approx" }

var runeCosts = sync.OnceValue(func() []byte {
	b, err := base64.StdEncoding.DecodeString(runeCostPacked)
	if err != nil || len(b) != 0x10000/4 {
		panic("tokens: corrupt runeCostPacked")
	}
	return b
})

// Character classes, for what came before.
const (
	clNone = iota
	clLetter
	clDigit
	clSpace
	clPunct
	clRune   // a 2-byte non-ASCII letter
	clSymbol // anything else
)

func approxUnits(s string) int64 {
	rc := runeCosts()
	var (
		total    int64
		prev     = clNone
		last     byte // the previous ASCII letter or whitespace
		seg      int  // letters in the current piece
		ws       int  // length of the current whitespace run
		wsSpace  bool // it began with a space
		lastRune rune // the previous 2-byte letter
	)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c|0x20 >= 'a' && c|0x20 <= 'z':
				switch {
				case prev != clLetter || last >= 'a' && c <= 'Z':
					total += costWordStart
					seg = 1
				case commonBigram[last|0x20-'a']>>(c|0x20-'a')&1 == 0:
					total += costWordRare
					seg = 1
				default:
					seg++
					upper := c <= 'Z' && last <= 'Z'
					switch {
					case seg <= shortWord && upper:
						total += costUpperShort
					case seg <= shortWord:
						total += costLowerShort
					case upper:
						total += costUpperLong
					default:
						total += costLowerLong
					}
				}
				last, prev = c, clLetter
			case c >= '0' && c <= '9':
				total += costDigit
				prev = clDigit
			case c == ' ' || c >= '\t' && c <= '\r':
				ws++
				switch {
				case prev != clSpace:
					ws, wsSpace = 1, c == ' '
					if !wsSpace {
						total += costSpace
					}
				case ws == 2 && wsSpace:
					total += costSpace
				case c != last:
					total += costSpaceMix
				default:
					total += costSpaceRun
				}
				last, prev = c, clSpace
			case c < ' ' || c == 0x7f:
				total += costControl
				prev = clSymbol
			default:
				if prev == clPunct {
					total += costPunctRun
				} else {
					total += costPunct
				}
				prev = clPunct
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1: // a stray byte: a token at most
			total += unit
			prev = clSymbol
		case n == 4:
			if r >= 0x1F000 && r < 0x1FC00 {
				total += costEmoji
			} else {
				total += costAstral
			}
			prev = clSymbol
		default:
			k := int64(rc[r/4]>>(2*(r%4))&3) * unit
			if prev == clSpace && last == ' ' {
				k += costRuneSpace
			}
			if n == 2 && unicode.IsLetter(r) {
				if prev == clRune && r>>8 == lastRune>>8 {
					k = k * runeRunPercent / 100
				}
				prev, lastRune = clRune, r
			} else {
				prev = clSymbol
			}
			total += k
		}
	}
	return total
}
