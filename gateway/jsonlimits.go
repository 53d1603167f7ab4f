package gateway

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/switchyard/switchyard/config"
)

// The request body is checked in one pass before anything else reads it:
// syntax (RFC 8259, accepting what encoding/json's Valid accepts), the
// configured bounds on its shape, and keys repeated in one object. The scan
// is iterative and linear in the body; it keeps a frame per open array or
// object and a key set per open object, so it allocates in proportion to
// the nesting and the members of the open objects, never to the body, and
// it stops at the first violation: a body nested a million levels deep is
// refused after reading max_depth+1 bytes.

// jsonLimits are config.JSONLimits with the defaults applied.
type jsonLimits struct {
	maxDepth       int // open arrays and objects at once
	maxStringBytes int // bytes between a string's quotes, escapes included; 0: unbounded
	maxItems       int // elements of one array, members of one object
}

// resolveJSONLimits applies the defaults to zero (or negative) fields, so
// a config built without config.Load still gets bounded parsing. A zero
// MaxStringBytes leaves strings bounded by the body limit alone.
func resolveJSONLimits(l config.JSONLimits) jsonLimits {
	r := jsonLimits{maxDepth: l.MaxDepth, maxStringBytes: int(l.MaxStringBytes), maxItems: l.MaxArrayItems}
	if r.maxDepth <= 0 {
		r.maxDepth = config.DefaultJSONMaxDepth
	}
	if r.maxStringBytes < 0 {
		r.maxStringBytes = 0
	}
	if r.maxItems <= 0 {
		r.maxItems = config.DefaultJSONMaxArrayItems
	}
	return r
}

// jsonProblem is what a scan found wrong; jsonOK when nothing.
type jsonProblem uint8

const (
	jsonOK jsonProblem = iota
	jsonSyntax
	jsonTooDeep
	jsonStringTooLong
	jsonTooManyItems
	jsonDuplicateKey
)

// jsonViolation is the first problem of a body and where the scan stopped.
type jsonViolation struct {
	problem jsonProblem
	offset  int    // the byte the scan stopped at
	key     string // the repeated key, decoded (jsonDuplicateKey)
}

// apiError is the 400 the client gets for v. A repeated key is named only
// when it is an identifier: a key may be data ("jane@bank.de"), and errors
// are logged.
func (v jsonViolation) apiError(lim jsonLimits) *APIError {
	switch v.problem {
	case jsonOK:
		return nil
	case jsonTooDeep:
		return invalidRequest("json_too_deep", "", "The request body nests arrays and objects deeper than %d levels (server.json.max_depth).", lim.maxDepth)
	case jsonStringTooLong:
		return invalidRequest("json_string_too_long", "", "The request body holds a string or key longer than %d bytes (server.json.max_string_bytes).", lim.maxStringBytes)
	case jsonTooManyItems:
		return invalidRequest("json_array_too_long", "", "The request body holds an array or object with more than %d items (server.json.max_array_items).", lim.maxItems)
	case jsonDuplicateKey:
		if identifier(v.key) {
			return invalidRequest("invalid_json", "", "The request body repeats the key %q in one object.", v.key)
		}
		return invalidRequest("invalid_json", "", "The request body repeats a key in one object.")
	}
	return invalidRequest("invalid_json", "", "We could not parse the JSON body of your request.")
}

// checkJSON scans b once and reports its first violation of JSON syntax,
// of lim, or of key uniqueness.
func checkJSON(b []byte, lim jsonLimits) jsonViolation {
	c := checkers.Get().(*jsonChecker)
	v := c.check(b, lim)
	c.release()
	checkers.Put(c)
	return v
}

var checkers = sync.Pool{New: func() any { return new(jsonChecker) }}

// keySeed keys the hash of object keys; it is random per process, so a
// body cannot be built to make every key collide.
var keySeed = maphash.MakeSeed()

// jsonChecker is the reusable state of a scan.
type jsonChecker struct {
	stack []jsonFrame
	sets  []keySet // sets[i] holds the keys of the i-th open object
	arena []byte   // decoded keys of the open objects, stack-like
}

type jsonFrame struct {
	object    bool
	items     int
	arenaMark int // len(arena) when the object opened
}

// The scan's states: a value is expected, an object's key is expected, or
// a value has ended.
const (
	scanValue = iota
	scanKey
	scanAfter
)

func (c *jsonChecker) check(b []byte, lim jsonLimits) jsonViolation {
	c.stack, c.arena = c.stack[:0], c.arena[:0]
	objects := 0 // open objects; sets[:objects] are in use
	i := skipSpace(b, 0)
	state := scanValue
	for {
		switch state {
		case scanValue:
			if i >= len(b) {
				return jsonViolation{problem: jsonSyntax, offset: i}
			}
			switch ch := b[i]; ch {
			case '{', '[':
				if len(c.stack) >= lim.maxDepth {
					return jsonViolation{problem: jsonTooDeep, offset: i}
				}
				f := jsonFrame{object: ch == '{'}
				if f.object {
					f.arenaMark = len(c.arena)
					if objects == len(c.sets) {
						c.sets = append(c.sets, keySet{})
					}
					c.sets[objects].reset()
					objects++
				}
				c.stack = append(c.stack, f)
				i = skipSpace(b, i+1)
				if i < len(b) && (b[i] == '}' && f.object || b[i] == ']' && !f.object) {
					objects -= c.pop()
					i++
					state = scanAfter
					continue
				}
				if f.object {
					state = scanKey
					continue
				}
				top := &c.stack[len(c.stack)-1]
				top.items = 1
				if top.items > lim.maxItems {
					return jsonViolation{problem: jsonTooManyItems, offset: i}
				}
			case '"':
				end, _, v := scanString(b, i, lim.maxStringBytes)
				if v.problem != jsonOK {
					return v
				}
				i, state = end, scanAfter
			case 't':
				if !hasLiteral(b, i, "true") {
					return jsonViolation{problem: jsonSyntax, offset: i}
				}
				i, state = i+4, scanAfter
			case 'f':
				if !hasLiteral(b, i, "false") {
					return jsonViolation{problem: jsonSyntax, offset: i}
				}
				i, state = i+5, scanAfter
			case 'n':
				if !hasLiteral(b, i, "null") {
					return jsonViolation{problem: jsonSyntax, offset: i}
				}
				i, state = i+4, scanAfter
			default:
				end, ok := scanNumber(b, i)
				if !ok {
					return jsonViolation{problem: jsonSyntax, offset: end}
				}
				i, state = end, scanAfter
			}

		case scanKey:
			if i >= len(b) || b[i] != '"' {
				return jsonViolation{problem: jsonSyntax, offset: i}
			}
			top := &c.stack[len(c.stack)-1]
			if top.items++; top.items > lim.maxItems {
				return jsonViolation{problem: jsonTooManyItems, offset: i}
			}
			end, plain, v := scanString(b, i, lim.maxStringBytes)
			if v.problem != jsonOK {
				return v
			}
			if key, dup := c.addKey(&c.sets[objects-1], b, i+1, end-1, plain); dup {
				return jsonViolation{problem: jsonDuplicateKey, offset: i, key: string(key)}
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return jsonViolation{problem: jsonSyntax, offset: i}
			}
			i, state = skipSpace(b, i+1), scanValue

		case scanAfter:
			i = skipSpace(b, i)
			n := len(c.stack)
			if n == 0 {
				if i != len(b) {
					return jsonViolation{problem: jsonSyntax, offset: i}
				}
				return jsonViolation{}
			}
			if i >= len(b) {
				return jsonViolation{problem: jsonSyntax, offset: i}
			}
			top := &c.stack[n-1]
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
				if top.object {
					state = scanKey
					continue
				}
				if top.items++; top.items > lim.maxItems {
					return jsonViolation{problem: jsonTooManyItems, offset: i}
				}
				state = scanValue
			case '}', ']':
				if top.object != (b[i] == '}') {
					return jsonViolation{problem: jsonSyntax, offset: i}
				}
				objects -= c.pop()
				i++
			default:
				return jsonViolation{problem: jsonSyntax, offset: i}
			}
		}
	}
}

// pop closes the innermost array or object; it returns 1 for an object.
func (c *jsonChecker) pop() int {
	f := c.stack[len(c.stack)-1]
	c.stack = c.stack[:len(c.stack)-1]
	if !f.object {
		return 0
	}
	c.arena = c.arena[:f.arenaMark]
	return 1
}

// release drops what a scan of an unusually large body left behind, so
// the pool keeps only what typical bodies need.
func (c *jsonChecker) release() {
	const keep = 1 << 12
	for i := range c.sets {
		if len(c.sets[i].slots) > keep {
			c.sets[i] = keySet{}
		}
	}
	if cap(c.arena) > 64<<10 {
		c.arena = nil
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanNumber reads the number at b[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
// It returns the offset after it, or where it went wrong.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// plainByte marks the bytes a string holds as they are: not a quote, not
// a backslash, not a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string whose opening quote is b[i] and returns the
// offset after its closing quote. plain reports a string whose bytes are
// its value: no escape and valid UTF-8. A string longer than max bytes
// between its quotes (max > 0) is refused as soon as that is certain.
// Bytes that are not UTF-8 are accepted, as encoding/json accepts them.
func scanString(b []byte, i, max int) (end int, plain bool, v jsonViolation) {
	j := i + 1
	limit := len(b) // the closing quote must come before limit
	bounded := false
	if max > 0 && j+max+1 < limit {
		limit, bounded = j+max+1, true
	}
	escaped, high := false, false
	for j < limit {
		// Eight bytes at a time up to the next quote, backslash or
		// control character.
		for j+8 <= limit {
			x := binary.LittleEndian.Uint64(b[j:])
			if t := specialBytes(x); t != 0 {
				k := bits.TrailingZeros64(t) / 8
				if x&(1<<(8*k)-1)&hiBits != 0 {
					high = true
				}
				j += k
				break
			}
			if x&hiBits != 0 {
				high = true
			}
			j += 8
		}
		if j >= limit {
			break
		}
		ch := b[j]
		if plainByte[ch] {
			if ch >= utf8.RuneSelf {
				high = true
			}
			j++
			continue
		}
		switch ch {
		case '"':
			plain = !escaped && (!high || utf8.Valid(b[i+1:j]))
			return j + 1, plain, jsonViolation{}
		case '\\':
			escaped = true
			if j+1 >= len(b) {
				return j, false, jsonViolation{problem: jsonSyntax, offset: len(b)}
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(b) || !isHex(b[k]) {
						return k, false, jsonViolation{problem: jsonSyntax, offset: k}
					}
				}
				j += 6
			default:
				return j + 1, false, jsonViolation{problem: jsonSyntax, offset: j + 1}
			}
		default: // a control character
			return j, false, jsonViolation{problem: jsonSyntax, offset: j}
		}
	}
	if bounded {
		return j, false, jsonViolation{problem: jsonStringTooLong, offset: i}
	}
	return j, false, jsonViolation{problem: jsonSyntax, offset: len(b)}
}

const (
	loBits = 0x0101010101010101
	hiBits = 0x8080808080808080
)

// specialBytes has the high bit set of each byte of x that is a quote, a
// backslash or a control character (and maybe of bytes above the first
// one: a borrow propagates only upwards), so its lowest set bit marks the
// first such byte, and it is zero when there is none.
func specialBytes(x uint64) uint64 {
	q := x ^ (loBits * '"')
	s := x ^ (loBits * '\\')
	return (x-loBits*0x20)&^x&hiBits | (q-loBits)&^q&hiBits | (s-loBits)&^s&hiBits
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// keySet is the keys of one open object: an open-addressing hash table of
// references to the keys' bytes, in the body when the raw key is its
// value, else in the checker's arena. A slot is live when its gen is the
// set's, so emptying the set for the next object costs nothing, however
// large an earlier object made it.
type keySet struct {
	slots []keySlot
	gen   uint32
	count int
}

type keySlot struct {
	gen  uint32
	hash uint32
	off  int // where the key starts
	n    int // its length; ^length for a key decoded into the arena
}

func (s *keySet) reset() {
	s.count = 0
	if s.gen++; s.gen == 0 {
		clear(s.slots)
		s.gen = 1
	}
}

// addKey records the key whose raw bytes are b[start:end] in s and
// reports whether s held it already, with its decoded value. Keys are
// compared by value, decoded as encoding/json decodes them: escapes
// resolved, bytes that are not UTF-8 and lone surrogates replaced by
// U+FFFD. Only keys with an escape or such bytes are decoded.
func (c *jsonChecker) addKey(s *keySet, b []byte, start, end int, plain bool) ([]byte, bool) {
	key := b[start:end]
	slot := keySlot{off: start, n: end - start}
	if !plain {
		off := len(c.arena)
		c.arena = appendDecoded(c.arena, key)
		key = c.arena[off:]
		slot = keySlot{off: off, n: ^len(key)}
	}
	slot.hash = uint32(maphash.Bytes(keySeed, key))
	slot.gen = s.gen
	if (s.count+1)*2 > len(s.slots) {
		s.grow()
	}
	mask := uint32(len(s.slots) - 1)
	for h := slot.hash & mask; ; h = (h + 1) & mask {
		t := &s.slots[h]
		if t.gen != s.gen {
			*t = slot
			s.count++
			return nil, false
		}
		if t.hash == slot.hash && string(c.keyBytes(b, t)) == string(key) {
			return key, true
		}
	}
}

func (c *jsonChecker) keyBytes(b []byte, t *keySlot) []byte {
	if t.n < 0 {
		return c.arena[t.off : t.off+^t.n]
	}
	return b[t.off : t.off+t.n]
}

// grow doubles s, keeping its live slots.
func (s *keySet) grow() {
	size := max(2*len(s.slots), 16)
	old := s.slots
	s.slots = make([]keySlot, size)
	mask := uint32(size - 1)
	for _, t := range old {
		if t.gen != s.gen {
			continue
		}
		h := t.hash & mask
		for s.slots[h].gen == s.gen {
			h = (h + 1) & mask
		}
		s.slots[h] = t
	}
}

// appendDecoded appends the value of the raw JSON string content raw (no
// quotes; known to be valid) to dst, as encoding/json decodes it.
func appendDecoded(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		ch := raw[i]
		switch {
		case ch == '\\':
			switch raw[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = hex4(raw[i+2 : i+6])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // " \ /
				dst = append(dst, raw[i+1])
			}
			i += 2
		case ch < utf8.RuneSelf:
			dst = append(dst, ch)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
