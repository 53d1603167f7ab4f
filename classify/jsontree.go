package classify

import (
	"bytes"
	"strconv"
	"strings"
)

// jnode is a JSON value in a parsed chunk: b[start:end] is its raw text.
type jnode struct {
	kind       byte // '{', '[', '"', or 'v' for numbers, true, false, null
	start, end int
	members    []jmember
	elems      []*jnode
	streamed   bool // a string handled already
}

type jmember struct{ key, val *jnode }

// get is the value of member key of object n, or nil.
func (n *jnode) get(b []byte, key string) *jnode {
	for _, m := range n.members {
		if m.key.textEquals(b, key) {
			return m.val
		}
	}
	return nil
}

// textEquals reports whether string node n decodes to s.
func (n *jnode) textEquals(b []byte, s string) bool {
	inner := b[n.start+1 : n.end-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == s
	}
	d, ok := decodeJSONString(b[n.start:n.end])
	return ok && d == s
}

func jsonIsNull(b []byte, n *jnode) bool {
	return n.kind == 'v' && string(b[n.start:n.end]) == "null"
}

func jsonInt(b []byte, n *jnode) (int, bool) {
	if n.kind != 'v' {
		return 0, false
	}
	v, err := strconv.Atoi(string(b[n.start:n.end]))
	return v, err == nil
}

const maxRestoreDepth = 256

type jparser struct {
	b     []byte
	i     int
	depth int
	block []jnode // nodes are allocated from blocks, not one by one
}

func (p *jparser) node(kind byte, start, end int) *jnode {
	if len(p.block) == cap(p.block) {
		p.block = make([]jnode, 0, 32)
	}
	p.block = append(p.block, jnode{kind: kind, start: start, end: end})
	return &p.block[len(p.block)-1]
}

// parseJSON parses b into nodes; false when b is not one JSON value. It
// checks structure, not the spelling of numbers and literals.
func parseJSON(b []byte) (*jnode, bool) {
	p := jparser{b: b}
	n, ok := p.value()
	if !ok {
		return nil, false
	}
	p.ws()
	return n, p.i == len(b)
}

func (p *jparser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// expect consumes c after whitespace.
func (p *jparser) expect(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jparser) value() (*jnode, bool) {
	p.ws()
	if p.i >= len(p.b) {
		return nil, false
	}
	start := p.i
	switch p.b[p.i] {
	case '"':
		end := jsonStringEnd(p.b, p.i)
		if end < 0 {
			return nil, false
		}
		p.i = end
		return p.node('"', start, end), true
	case '{', '[':
		if p.depth++; p.depth > maxRestoreDepth {
			return nil, false
		}
		n := p.node(p.b[p.i], start, 0)
		closer := byte('}')
		if n.kind == '[' {
			closer = ']'
		}
		p.i++
		if !p.expect(closer) {
			for {
				if n.kind == '{' {
					p.ws()
					if p.i >= len(p.b) || p.b[p.i] != '"' {
						return nil, false
					}
					k, _ := p.value()
					if k == nil || !p.expect(':') {
						return nil, false
					}
					v, ok := p.value()
					if !ok {
						return nil, false
					}
					n.members = append(n.members, jmember{k, v})
				} else {
					v, ok := p.value()
					if !ok {
						return nil, false
					}
					n.elems = append(n.elems, v)
				}
				if p.expect(closer) {
					break
				}
				if !p.expect(',') {
					return nil, false
				}
			}
		}
		p.depth--
		n.end = p.i
		return n, true
	default:
		for p.i < len(p.b) && !strings.ContainsRune(",}]:\"{[ \t\n\r", rune(p.b[p.i])) {
			p.i++
		}
		if p.i == start {
			return nil, false
		}
		return p.node('v', start, p.i), true
	}
}
