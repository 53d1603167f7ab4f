package classify

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Decoding
//
// Text can hide inside encodings that an upstream model reads as easily as
// plain text. Each text is also scanned as it reads once decoded:
//
//   - percent-encoding ("jane%40bank.de" in a URL or query string);
//   - backslash escapes ("\u0040", "\x40", "\n"), as in JSON written
//     inside a string (tool-call arguments);
//   - base64 runs of 16 characters or more, standard or URL alphabet, with
//     or without padding, bare or as the payload of a data: URL; a payload
//     that is gzip or zlib data is decompressed (1 MiB at most). Only a
//     payload that decodes to text is scanned, so an image costs one small
//     probe.
//
// Decoded text is decoded again (base64 inside a query string…), three
// levels at most, and each field of a request decodes at most eight times
// its own size (at least 64 KiB): the work is linear in the body whatever
// the client sends, and padding one field with encoded text cannot use up
// what another field needs. A span found in
// percent-encoded or escaped text maps back to the encoded bytes exactly;
// one found in base64 covers the whole base64 run, which is what
// redaction replaces.

const (
	maxDecodeDepth  = 3
	maxDecodedBytes = 1 << 20  // for one text given to Find
	fieldDecodeMin  = 64 << 10 // for one field of a request: this, or eight times its size
	maxInflate      = 1 << 20  // decompressed bytes of one payload
	minBase64Run    = 16
	base64Probe     = 1024 // bytes decoded to decide whether a payload is text
)

// budget is what one request may still decode.
type budget struct{ bytes int }

// scanText finds the entities of text and of what it decodes to.
func (c *Classifier) scanText(text, hint string, b *budget, depth int) []Span {
	v := normalize(text)
	spans := c.findView(v.text, hint, nil)
	if v.from != nil {
		for i := range spans {
			spans[i].Start, spans[i].End = v.original(spans[i].Start, spans[i].End)
		}
	}
	if depth < maxDecodeDepth && b.bytes > 0 {
		for _, layer := range [...]func(string) (view, bool){percentDecode, unescape} {
			if d, ok := layer(text); ok {
				b.bytes -= len(d.text)
				for _, s := range c.scanText(d.text, hint, b, depth+1) {
					s.Start, s.End = d.original(s.Start, s.End)
					spans = append(spans, s)
				}
			}
		}
		spans = c.scanBase64(text, hint, b, depth, spans)
	}
	return dropOverlaps(spans, c.rank)
}

// scanBase64 appends a span over each base64 run whose decoded text holds
// an entity: the strongest label found inside.
func (c *Classifier) scanBase64(text, hint string, b *budget, depth int, spans []Span) []Span {
	for i := 0; i < len(text) && b.bytes > 0; {
		if !isBase64(text[i]) {
			i++
			continue
		}
		s := i
		for i < len(text) && isBase64(text[i]) {
			i++
		}
		e := i
		for i < len(text) && text[i] == '=' && i-e < 2 {
			i++
		}
		if e-s < minBase64Run {
			continue
		}
		dec, ok := decodeBase64(text[s:e], b)
		if !ok {
			continue
		}
		inner := c.scanText(dec, hint, b, depth+1)
		if len(inner) == 0 {
			continue
		}
		best := inner[0]
		for _, x := range inner[1:] {
			if (best.Weak && !x.Weak) || (best.Weak == x.Weak && c.rank(x.Label) < c.rank(best.Label)) {
				best = x
			}
		}
		spans = append(spans, Span{Start: s, End: i, Label: best.Label, Weak: best.Weak})
	}
	return spans
}

// decodeBase64 decodes a run when it is text, or compressed text, and the
// budget allows.
func decodeBase64(run string, b *budget) (string, bool) {
	enc := base64.RawStdEncoding
	for k := 0; k < len(run); k++ {
		if run[k] == '-' || run[k] == '_' {
			enc = base64.RawURLEncoding
			break
		}
	}
	if len(run)%4 == 1 {
		run = run[:len(run)-1]
	}
	// Probe a prefix first: most long runs are identifiers or binary.
	probe := run[:min(len(run), base64Probe/3*4)]
	raw, err := enc.DecodeString(probe)
	if err != nil || len(raw) == 0 {
		return "", false
	}
	compressed := len(raw) >= 2 && ((raw[0] == 0x1f && raw[1] == 0x8b) || zlibHeader(raw))
	if !compressed && !textLike(raw, len(probe) < len(run)) {
		return "", false
	}
	if len(probe) < len(run) {
		n := min(enc.DecodedLen(len(run)), b.bytes)
		full := make([]byte, enc.DecodedLen(len(run)))
		m, err := enc.Decode(full, []byte(run))
		if err != nil {
			m = n
		}
		raw = full[:min(m, n)]
	}
	b.bytes -= len(raw)
	if compressed {
		if raw, err = inflate(raw, b); err != nil || !textLike(raw, false) {
			return "", false
		}
	}
	return string(raw), true
}

// zlibHeader reports a zlib stream's header: deflate, a valid check.
func zlibHeader(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// inflate decompresses gzip or zlib data within the budget, and at most
// maxInflate of one payload.
func inflate(raw []byte, b *budget) ([]byte, error) {
	var r io.Reader
	var err error
	if raw[0] == 0x1f {
		r, err = gzip.NewReader(bytes.NewReader(raw))
	} else {
		r, err = zlib.NewReader(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(min(max(b.bytes, 0), maxInflate))))
	b.bytes -= len(out)
	if len(out) > 0 {
		err = nil // a truncated stream still shows its text
	}
	return out, err
}

// textLike reports whether b reads as text: valid UTF-8 (a cut at the end
// is allowed for a prefix) of mostly printable characters.
func textLike(b []byte, prefix bool) bool {
	if len(b) < 4 {
		return false
	}
	bad, n := 0, 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			if prefix && len(b)-i < utf8.UTFMax {
				break
			}
			return false
		}
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			bad++
		}
		n++
		i += size
	}
	return bad*10 <= n
}

// percentDecode decodes %XX escapes; ok is false when there are none.
func percentDecode(s string) (view, bool) {
	found := false
	for off := 0; !found; {
		i := strings.IndexByte(s[off:], '%')
		if i < 0 {
			return view{}, false
		}
		i += off
		found = i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
		off = i + 1
	}
	out := make([]byte, 0, len(s))
	from := make([]int32, 0, len(s))
	to := make([]int32, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			from, to = append(from, int32(i)), append(to, int32(i+3))
			i += 3
			continue
		}
		out = append(out, s[i])
		from, to = append(from, int32(i)), append(to, int32(i+1))
		i++
	}
	return view{text: string(out), from: from, to: to, n: len(s)}, true
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// unescape decodes backslash escapes (\uXXXX with surrogate pairs, \xXX,
// \n, \t, \", \\, \/ …); ok is false when there are none.
func unescape(s string) (view, bool) {
	if strings.IndexByte(s, '\\') < 0 {
		return view{}, false
	}
	out := make([]byte, 0, len(s))
	from := make([]int32, 0, len(s))
	to := make([]int32, 0, len(s))
	emit := func(b []byte, s, e int) {
		out = append(out, b...)
		for range b {
			from, to = append(from, int32(s)), append(to, int32(e))
		}
	}
	changed := false
	var rb [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		if s[i] != '\\' || i+1 >= len(s) {
			emit([]byte{s[i]}, i, i+1)
			i++
			continue
		}
		switch c := s[i+1]; c {
		case 'u':
			r, n := hexRune(s[i+2:], 4)
			if n == 0 {
				emit([]byte{s[i]}, i, i+1)
				i++
				continue
			}
			end := i + 2 + n
			if utf16Surrogate(r) && end+6 <= len(s) && s[end] == '\\' && s[end+1] == 'u' {
				if lo, m := hexRune(s[end+2:], 4); m == 4 {
					r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
					end += 6
				}
			}
			emit(rb[:utf8.EncodeRune(rb[:], r)], i, end)
			i, changed = end, true
		case 'x':
			r, n := hexRune(s[i+2:], 2)
			if n == 0 {
				emit([]byte{s[i]}, i, i+1)
				i++
				continue
			}
			emit(rb[:utf8.EncodeRune(rb[:], r)], i, i+2+n)
			i, changed = i+2+n, true
		case 'n', 't', 'r', '"', '\\', '/', '\'', 'b', 'f':
			m := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', 'b': ' ', 'f': ' '}[c]
			if m == 0 {
				m = c
			}
			emit([]byte{m}, i, i+2)
			i, changed = i+2, true
		default:
			emit([]byte{s[i]}, i, i+1)
			i++
		}
	}
	if !changed {
		return view{}, false
	}
	return view{text: string(out), from: from, to: to, n: len(s)}, true
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }

// hexRune reads n hex digits.
func hexRune(s string, n int) (rune, int) {
	if len(s) < n {
		return 0, 0
	}
	var r rune
	for k := range n {
		if !isHex(s[k]) {
			return 0, 0
		}
		r = r<<4 | rune(unhex(s[k]))
	}
	return r, n
}
