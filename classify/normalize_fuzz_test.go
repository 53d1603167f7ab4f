package classify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalize checks the normalised view's map: one source range per
// byte, in order, inside the original, on rune boundaries, and a text
// without anything to normalise maps to itself.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"plain ascii 4111", "４５３２\u200b０７３６", "a\u00adb–c\u00a0d", "٤٥٣٢ ﬁ ① ＠", "\xff\xfe bad utf8", "e\u0301 \ufeff\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := normalize(s)
		if v.from == nil {
			if v.text != s {
				t.Fatalf("identity view of %q reads %q", s, v.text)
			}
			return
		}
		if len(v.from) != len(v.text) || len(v.to) != len(v.text) {
			t.Fatalf("map lengths %d/%d for %d bytes", len(v.from), len(v.to), len(v.text))
		}
		prev := int32(0)
		for i := range v.from {
			a, b := v.from[i], v.to[i]
			if a < prev || a >= b || int(b) > len(s) {
				t.Fatalf("byte %d maps to [%d,%d) after %d in %q", i, a, b, prev, s)
			}
			if utf8.ValidString(s) && (!utf8.RuneStart(s[a]) || (int(b) < len(s) && !utf8.RuneStart(s[b]))) {
				t.Fatalf("byte %d maps to [%d,%d), not rune boundaries of %q", i, a, b, s)
			}
			prev = a
		}
		for i := 0; i <= len(v.text); i++ {
			for j := i; j <= len(v.text) && j <= i+8; j++ {
				a, b := v.original(i, j)
				if a < 0 || a > b || b > len(s) {
					t.Fatalf("original(%d,%d) = [%d,%d) for %q", i, j, a, b, s)
				}
			}
		}
	})
}

// disguise writes a value the way an evader might: mode picks the trick.
func disguise(v string, mode byte) string {
	var b strings.Builder
	for i, r := range v {
		switch mode % 7 {
		case 1: // fullwidth digits and '@'
			switch {
			case r >= '0' && r <= '9':
				r = '０' + (r - '0')
			case r == '@':
				r = '＠'
			}
		case 2: // zero-width space after every character
			if i > 0 {
				b.WriteRune('\u200b')
			}
		case 3: // Arabic-Indic digits
			if r >= '0' && r <= '9' {
				r = '٠' + (r - '0')
			}
		case 4: // no-break spaces and en dashes for separators
			switch r {
			case ' ':
				r = '\u00a0'
			case '-':
				r = '–'
			}
		case 5: // percent-encoded '@' and spaces
			switch r {
			case '@':
				b.WriteString("%40")
				continue
			case ' ':
				b.WriteString("%20")
				continue
			}
		case 6: // soft hyphens between characters
			if i > 0 {
				b.WriteRune('\u00ad')
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// FuzzSpansCoverTheValue embeds a sensitive value, disguised, between
// fuzzed words and checks that a strong span covers exactly the bytes the
// value occupies in the text: the mapping back from the normalised and
// decoded views never loses a byte of it.
func FuzzSpansCoverTheValue(f *testing.F) {
	values := []string{
		"4532 0736 2915 0489", "4111-1111-1111-1111", "DE89 3704 0044 0532 0130 00", "jane.doe@bank.de",
		"123-45-6789", "+33 1 74 89 42 77", "GB82WEST12345698765432", "10.20.30.40",
	}
	f.Add("please send", byte(0), byte(1), "today")
	f.Add("", byte(3), byte(2), "")
	f.Add("ref", byte(7), byte(5), "x")
	c, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, before string, which, mode byte, after string) {
		words := func(s string) string { // letters and spaces only: no neighbour that joins the value
			return strings.Map(func(r rune) rune {
				if r == ' ' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
					return r
				}
				return -1
			}, s)
		}
		v := values[int(which)%len(values)]
		if strings.Contains(v, "@") && mode%7 == 2 {
			mode = 1 // a zero-width space before the '@' leaves no word to mail
		}
		d := disguise(v, mode)
		text := words(before) + " : " + d + " ; " + words(after)
		s := len(words(before)) + 3
		e := s + len(d)
		for _, sp := range c.Find(text) {
			if !sp.Weak && sp.Start <= s && sp.End >= e {
				return
			}
		}
		t.Fatalf("no strong span covers %q at [%d,%d) in %q: %+v", d, s, e, text, c.Find(text))
	})
}
