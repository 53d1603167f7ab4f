package classify

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalisation
//
// Detectors read a normalised copy of each text, so that the same value
// written another way is still the same value:
//
//   - Unicode NFKC, applied rune by rune: fullwidth digits and letters,
//     compatibility forms (①, ﬁ, ＠) become their plain equivalents;
//   - decimal digits of every script (Arabic-Indic, Devanagari…) become
//     ASCII digits;
//   - dashes of every kind and the minus sign become '-', and every space
//     separator (no-break, thin, ideographic) becomes ' ';
//   - format characters (zero-width space and joiners, soft hyphen, word
//     joiner, byte-order mark, bidi controls) and variation selectors are
//     removed.
//
// Separators between digit groups are folded by the number scanner
// (numbers.go) and case is folded by the detectors of case-insensitive
// formats (IBAN, spelled-out emails), so the view keeps them as written.
//
// Every byte of the normalised text remembers the byte range of the
// original it came from, so a span found in the view maps back to exactly
// the bytes the client sent (view.original), which is what redaction
// replaces.

// view is a normalised text and its map back to the original.
type view struct {
	text string
	// from[i], to[i] are the original byte range that produced text[i];
	// both nil when text is the original itself (pure ASCII without
	// format characters: the common case, which costs no allocation).
	from, to []int32
	n        int // the original's length
}

// original maps a span of the view to the original text's byte range.
func (v *view) original(s, e int) (int, int) {
	if v.from == nil {
		return s, e
	}
	if s >= e {
		if s < len(v.from) {
			return int(v.from[s]), int(v.from[s])
		}
		return v.n, v.n
	}
	return int(v.from[s]), int(v.to[e-1])
}

// normalize returns the view detectors read.
func normalize(s string) view {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return view{text: s}
	}
	out := make([]byte, 0, len(s))
	from := make([]int32, 0, len(s))
	to := make([]int32, 0, len(s))
	out = append(out, s[:i]...)
	for k := range i {
		from = append(from, int32(k))
		to = append(to, int32(k+1))
	}
	var buf [32]byte
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			from = append(from, int32(i))
			to = append(to, int32(i+1))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		start, end := int32(i), int32(i+size)
		i += size
		emit := func(b []byte) {
			out = append(out, b...)
			for range b {
				from = append(from, start)
				to = append(to, end)
			}
		}
		switch {
		case r == utf8.RuneError && size == 1:
			emit([]byte{0xEF, 0xBF, 0xBD}) // keep the byte's place; detectors see U+FFFD
		case removed(r):
		case unicode.Is(unicode.Nd, r):
			emit([]byte{'0' + byte(digitValue(r))})
		case unicode.Is(unicode.Pd, r) || r == '\u2212' || r == '\uFE63' || r == '\uFF0D':
			emit([]byte{'-'})
		case unicode.Is(unicode.Zs, r):
			emit([]byte{' '})
		default:
			n := norm.NFKC.AppendString(buf[:0], string(r))
			// A compatibility form may decompose to digits of another
			// script or to spaces (⑴ → "(1)"): map those too.
			for j := 0; j < len(n); {
				q, qs := utf8.DecodeRune(n[j:])
				switch {
				case q >= utf8.RuneSelf && unicode.Is(unicode.Nd, q):
					emit([]byte{'0' + byte(digitValue(q))})
				case q >= utf8.RuneSelf && unicode.Is(unicode.Zs, q):
					emit([]byte{' '})
				case q >= utf8.RuneSelf && removed(q):
				default:
					emit(n[j : j+qs])
				}
				j += qs
			}
		}
	}
	return view{text: string(out), from: from, to: to, n: len(s)}
}

// removed reports the runes normalisation drops: format characters
// (zero-width space, joiners, soft hyphen, bidi controls, BOM) and
// variation selectors, which are invisible and split a value for a
// pattern matcher without changing it for a reader.
func removed(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) || r == '\u034F'
}

// digitValue is the value of a decimal digit of any script. Unicode lays
// out every script's digits as contiguous runs of ten from zero, and Go's
// table keeps each run (or several adjacent runs) as one range.
func digitValue(r rune) int {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return 0
}
