package classify

import (
	"bytes"
	"strconv"
	"strings"
	"unsafe"
)

// jsonToken is one string or number of a JSON document: b[start:end] is
// its raw text, quotes included for a string.
type jsonToken struct {
	start, end int
	key        bool // an object key
	str        bool // a string, not a number
}

type jsonFrame struct {
	object     bool
	wantKey    bool
	index      int
	keyS, keyE int    // the raw current key of an object
	keyLabel   string // what the key itself holds ("EMAIL"): the path names that, not the key
}

// jsonWalker reads a JSON document once, left to right, and reports every
// string (keys included) and number with its path. One pass, whatever the
// nesting: the cost is linear in the body's size, and a deeply nested body
// costs a stack of frames, not a walk per level. The document is assumed
// valid (the gateway checks first); on invalid input the walker stops or
// reports nonsense, never panics or loops.
type jsonWalker struct {
	b     []byte
	stack []jsonFrame
}

func (w *jsonWalker) walk(yield func(jsonToken)) {
	b := w.b
	for i := 0; i < len(b); {
		var top *jsonFrame
		if n := len(w.stack); n > 0 {
			top = &w.stack[n-1]
		}
		switch c := b[i]; {
		case c == '{':
			w.stack = append(w.stack, jsonFrame{object: true, wantKey: true})
			i++
		case c == '[':
			w.stack = append(w.stack, jsonFrame{})
			i++
		case c == '}' || c == ']':
			if top != nil {
				w.stack = w.stack[:len(w.stack)-1]
			}
			i++
		case c == ',':
			if top != nil {
				if top.object {
					top.wantKey = true
				} else {
					top.index++
				}
			}
			i++
		case c == ':':
			if top != nil {
				top.wantKey = false
			}
			i++
		case c == '"':
			e := jsonStringEnd(b, i)
			if e < 0 {
				e = len(b)
			}
			t := jsonToken{start: i, end: e, str: true}
			if top != nil && top.object && top.wantKey {
				t.key = true
				top.keyS, top.keyE, top.keyLabel = i, e, ""
			}
			yield(t)
			i = e
		case c == '-' || isDigit(c):
			e := i + 1
			for e < len(b) && (isDigit(b[e]) || b[e] == '.' || b[e] == 'e' || b[e] == 'E' || b[e] == '+' || b[e] == '-') {
				e++
			}
			yield(jsonToken{start: i, end: e})
			i = e
		default:
			i++
		}
	}
}

// maxPathDepth bounds the levels a path names: a path is built for each
// finding, and a body nested thousands deep must not cost thousands of
// bytes per finding.
const maxPathDepth = 32

// path is the current token's path in gjson/sjson syntax
// ("messages.1.content.0.text"); a key's path names the member it starts.
// A key that holds sensitive data is written as its label ("<EMAIL>"): a
// path is shown to people, and never holds a value. Past maxPathDepth
// levels the path ends in "…".
func (w *jsonWalker) path() string {
	var sb strings.Builder
	for k, f := range w.stack {
		if k > 0 {
			sb.WriteByte('.')
		}
		switch {
		case k == maxPathDepth:
			sb.WriteString("…")
			return sb.String()
		case f.object && f.keyLabel != "":
			sb.WriteString("<" + f.keyLabel + ">")
		case f.object:
			sb.WriteString(escapePathKey(decodeString(w.b[f.keyS:f.keyE])))
		default:
			sb.WriteString(strconv.Itoa(f.index))
		}
	}
	return sb.String()
}

// markKey records what the current key holds.
func (w *jsonWalker) markKey(label string) {
	if n := len(w.stack); n > 0 {
		w.stack[n-1].keyLabel = label
	}
}

// key is the key of the value being read, when it is an object's member.
func (w *jsonWalker) key() string {
	if n := len(w.stack); n > 0 && w.stack[n-1].object && w.stack[n-1].keyE > 0 {
		return decodeString(w.b[w.stack[n-1].keyS:w.stack[n-1].keyE])
	}
	return ""
}

// decodeString returns the text of a raw JSON string token. Without
// escapes it aliases b, so callers must copy what they keep.
func decodeString(raw []byte) string {
	if len(raw) < 2 {
		return ""
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return unsafe.String(unsafe.SliceData(in), len(in))
	}
	if s, ok := decodeJSONString(raw); ok {
		return s
	}
	return string(in)
}

// escapePathKey escapes the characters gjson and sjson give meaning to.
func escapePathKey(k string) string {
	if !strings.ContainsAny(k, ".*?|#@!\\:") {
		return k
	}
	var b strings.Builder
	for _, r := range k {
		if strings.ContainsRune(".*?|#@!\\:", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
