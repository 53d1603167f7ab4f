package classify

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/switchyard/switchyard/internal/jsonesc"
)

// Restorer puts original values back where their placeholders come back
// in an answer. Its mapping lives only in memory for one request: never log it.
//
// A Restorer is not changed after NewRestorer and is safe for concurrent
// use; each stream needs its own StreamRestorer.
type Restorer struct {
	values map[string]string // placeholder -> original value
	keys   []string          // the placeholders, sorted, for prefix look-ups
	maxLen int               // longest placeholder, in bytes
}

// NewRestorer returns a Restorer for values, which maps placeholders
// ([EMAIL_1]: "[", then A-Z, 0-9 and _, then "]") to the original values.
// Keys of another shape cannot have come from a Redactor and are ignored.
// A nil or empty map gives a Restorer that changes nothing.
func NewRestorer(values map[string]string) *Restorer {
	r := &Restorer{}
	for k, v := range values {
		if !isPlaceholderKey(k) {
			continue
		}
		if r.values == nil {
			r.values = make(map[string]string, len(values))
		}
		r.values[k] = v
		r.keys = append(r.keys, k)
		r.maxLen = max(r.maxLen, len(k))
	}
	slices.Sort(r.keys)
	return r
}

func isLabelByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func isPlaceholderKey(k string) bool {
	if len(k) < 3 || k[0] != '[' || k[len(k)-1] != ']' {
		return false
	}
	for i := 1; i < len(k)-1; i++ {
		if !isLabelByte(k[i]) {
			return false
		}
	}
	return true
}

// match reports the known placeholder starting at s[i] (a '['): its value
// and the index just past it.
func (r *Restorer) match(s string, i int) (string, int, bool) {
	limit := min(len(s), i+r.maxLen-1)
	j := i + 1
	for j < limit && isLabelByte(s[j]) {
		j++
	}
	if j < len(s) && s[j] == ']' {
		if v, ok := r.values[s[i:j+1]]; ok {
			return v, j + 1, true
		}
	}
	return "", 0, false
}

// firstMatch is the index of the first known placeholder in s, or -1.
func (r *Restorer) firstMatch(s string) int {
	for i := 0; i < len(s); i++ {
		k := strings.IndexByte(s[i:], '[')
		if k < 0 {
			return -1
		}
		i += k
		if _, _, ok := r.match(s, i); ok {
			return i
		}
	}
	return -1
}

// appendRestored appends s to dst with every known placeholder from index
// from on replaced by its value, JSON-escaped when esc is set (the rest of
// s is copied as it is). s[:from] must hold no placeholder.
func (r *Restorer) appendRestored(dst []byte, s string, from int, esc bool) []byte {
	last := 0
	for i := from; i < len(s); i++ {
		k := strings.IndexByte(s[i:], '[')
		if k < 0 {
			break
		}
		i += k
		v, end, ok := r.match(s, i)
		if !ok {
			continue
		}
		dst = append(dst, s[last:i]...)
		if esc {
			dst = jsonesc.Append(dst, v)
		} else {
			dst = append(dst, v...)
		}
		last, i = end, end-1
	}
	return append(dst, s[last:]...)
}

// Text returns s with every complete known placeholder replaced by its
// value. Replaced values are not scanned again.
func (r *Restorer) Text(s string) string {
	if r.values == nil {
		return s
	}
	i := r.firstMatch(s)
	if i < 0 {
		return s
	}
	return string(r.appendRestored(make([]byte, 0, len(s)+32), s, i, false))
}

// textBytes is Text for bytes that are not JSON; b itself when unchanged.
func (r *Restorer) textBytes(b []byte) []byte {
	if bytes.IndexByte(b, '[') < 0 {
		return b
	}
	s := string(b)
	i := r.firstMatch(s)
	if i < 0 {
		return b
	}
	return r.appendRestored(make([]byte, 0, len(b)+32), s, i, false)
}

// textArgs is Text for tool-call arguments, which are JSON text: values
// are JSON-escaped, as a placeholder there sits inside a JSON string (a
// value that needs no escaping comes out the same either way).
func (r *Restorer) textArgs(s string) string {
	if r.values == nil {
		return s
	}
	i := r.firstMatch(s)
	if i < 0 {
		return s
	}
	return string(r.appendRestored(make([]byte, 0, len(s)+32), s, i, true))
}

// JSON returns a JSON document (an OpenAI response) with the placeholders
// in every string, object keys included, restored and JSON-escaped. In
// the value of an "arguments" key (tool-call arguments, JSON text in a
// string) values are escaped twice, so that the arguments still parse. It
// returns body itself when nothing changes; a body without '[' (or an
// escaped one, \u005b) is returned at once. Bodies that are not valid JSON
// are handled string by string, as far as their quotes allow.
func (r *Restorer) JSON(body []byte) []byte {
	if r.values == nil || !mayContainBracket(body) {
		return body
	}
	var out []byte
	last := 0
	argsKeyEnd := -1 // just past an "arguments" key
	for i := 0; i < len(body); {
		k := bytes.IndexByte(body[i:], '"')
		if k < 0 {
			break
		}
		start := i + k
		end := jsonStringEnd(body, start)
		if end < 0 {
			break
		}
		args := argsKeyEnd >= 0 && onlyColon(body[argsKeyEnd:start])
		argsKeyEnd = -1
		if isKeyAt(body, end) && string(body[start:end]) == `"arguments"` {
			argsKeyEnd = end
		}
		if rep, ok := r.restoreToken(body[start:end], args); ok {
			if out == nil {
				out = make([]byte, 0, len(body)+64)
			}
			out = append(out, body[last:start]...)
			out = append(out, rep...)
			last = end
		}
		i = end
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}

// isKeyAt reports whether b[i:] starts with a colon after whitespace.
func isKeyAt(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// onlyColon reports whether b is one colon and whitespace.
func onlyColon(b []byte) bool {
	colons := 0
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
		case ':':
			colons++
		default:
			return false
		}
	}
	return colons == 1
}

func mayContainBracket(b []byte) bool {
	return bytes.IndexByte(b, '[') >= 0 || hasEscapedBracket(b)
}

func hasEscapedBracket(b []byte) bool {
	return bytes.Contains(b, []byte(`\u005b`)) || bytes.Contains(b, []byte(`\u005B`))
}

// tokenMayContainBracket reports whether the JSON string token tok (with its
// quotes) may hold a '[' once decoded.
func tokenMayContainBracket(tok []byte) bool {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '[') >= 0 {
		return true
	}
	return bytes.IndexByte(inner, '\\') >= 0 && hasEscapedBracket(inner)
}

// jsonStringEnd returns the index just past the JSON string starting at b[i]
// (a '"'), or -1 when it is not closed.
func jsonStringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// decodeJSONString decodes the JSON string token tok (with its quotes).
func decodeJSONString(tok []byte) (string, bool) {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", false
	}
	return s, true
}

// restoreToken returns the JSON string token tok (with its quotes) with
// its placeholders restored, and false when there are none. args says tok
// holds tool-call arguments (see textArgs).
func (r *Restorer) restoreToken(tok []byte, args bool) ([]byte, bool) {
	if !tokenMayContainBracket(tok) {
		return nil, false
	}
	inner := tok[1 : len(tok)-1]
	if !args && bytes.IndexByte(inner, '\\') < 0 {
		// The raw text is the decoded text: keep it, escape only the values.
		s := string(inner)
		i := r.firstMatch(s)
		if i < 0 {
			return nil, false
		}
		out := make([]byte, 1, len(tok)+32)
		out[0] = '"'
		return append(r.appendRestored(out, s, i, true), '"'), true
	}
	s, ok := decodeJSONString(tok)
	if !ok {
		return nil, false
	}
	t := r.Text(s)
	if args {
		t = r.textArgs(s)
	}
	if t == s {
		return nil, false
	}
	return appendJSONString(make([]byte, 0, len(t)+16), t), true
}

// appendJSONString appends s as a JSON string, quotes included.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	return append(jsonesc.Append(dst, s), '"')
}

// holdFrom is where the tail of s that could still grow into a known
// placeholder starts (a '[' and a proper prefix of one), or len(s).
func (r *Restorer) holdFrom(s string) int {
	for i := max(0, len(s)-(r.maxLen-1)); i < len(s); i++ {
		k := strings.IndexByte(s[i:], '[')
		if k < 0 {
			break
		}
		i += k
		if r.isProperPrefix(s[i:]) {
			return i
		}
	}
	return len(s)
}

func (r *Restorer) isProperPrefix(p string) bool {
	i := sort.SearchStrings(r.keys, p)
	if i < len(r.keys) && r.keys[i] == p {
		i++
	}
	return i < len(r.keys) && strings.HasPrefix(r.keys[i], p)
}
