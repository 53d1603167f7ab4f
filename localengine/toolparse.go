package localengine

import (
	"bytes"
	"encoding/json"
	"strings"
)

// parsedCall is one tool call the model wrote.
type parsedCall struct {
	Name      string
	Arguments string // a compact JSON object
}

// toolEvent is what the call parser gives back, in order: text that is
// content, or a complete call.
type toolEvent struct {
	Text string
	Call *parsedCall
}

// callParser finds <tool_call> blocks in the model's text as it streams.
//
// Text is passed on at once, except a suffix that may be the start of
// "<tool_call>" and the whitespace before it, held until the next text
// decides. A block is held until "</tool_call>" closes it; it is a call
// when it holds one JSON object with "name" (a tool of the request) and
// "arguments" (an object, a JSON string of an object, or left out or
// null for {}). Anything else (invalid JSON, an unknown name, a block
// never closed, a block opened again before it closed) is passed on
// unchanged as text. The whitespace that separates a valid call from
// another call, from the end of the output, or from the text before it
// is dropped (text after a call keeps its leading whitespace unless it is
// the first text); nothing else is: without valid calls the text out is
// exactly the text in.
type callParser struct {
	known func(name string) bool
	max   int // calls after which the rest is dropped; 0: no limit

	inside  bool
	buf     string // outside: text held; inside: the block's body so far
	scanned int    // inside: how much of buf holds no tag
	ws      string // inside: whitespace that came before the block's tag
	after   bool   // a valid call was the last thing
	emitted bool   // some text was passed on
	calls   int
	done    bool // max calls reached
	out     []toolEvent
}

func newCallParser(ts *toolSet) *callParser {
	p := &callParser{known: ts.known}
	if !ts.parallel {
		p.max = 1
	}
	return p
}

// push takes the next text and returns what is decided.
func (p *callParser) push(s string) []toolEvent {
	if p.done {
		return nil
	}
	p.buf += s
	p.scan()
	return p.take()
}

// flush ends the text: what is held is text.
func (p *callParser) flush() []toolEvent {
	if p.done {
		return nil
	}
	if p.inside {
		p.text(p.ws + callOpen + p.buf)
	} else {
		p.text(p.buf)
	}
	p.buf, p.ws, p.inside = "", "", false
	return p.take()
}

func (p *callParser) take() []toolEvent {
	out := p.out
	p.out = nil
	return out
}

// text passes on content, merged with the content just before it. Text
// ends in non-space except at the end of the output; whitespace only,
// after a call, is dropped, and so is the leading whitespace of text after
// a call that nothing came before.
func (p *callParser) text(s string) {
	if p.after {
		if !p.emitted {
			s = strings.TrimLeft(s, " \t\r\n")
		}
		if strings.TrimLeft(s, " \t\r\n") == "" {
			return
		}
	}
	if s == "" {
		return
	}
	p.after, p.emitted = false, true
	if n := len(p.out); n > 0 && p.out[n-1].Call == nil {
		p.out[n-1].Text += s
		return
	}
	p.out = append(p.out, toolEvent{Text: s})
}

func (p *callParser) scan() {
	for !p.done {
		if !p.inside {
			if i := strings.Index(p.buf, callOpen); i >= 0 {
				text, ws := trailingSpace(p.buf[:i])
				p.text(text)
				p.ws, p.buf, p.scanned, p.inside = ws, p.buf[i+len(callOpen):], 0, true
				continue
			}
			keep := len(p.buf) - partialPrefix(p.buf, callOpen)
			text, ws := trailingSpace(p.buf[:keep])
			p.text(text)
			p.buf = ws + p.buf[keep:]
			return
		}
		// Inside a block: look for its end, or a new block opening first.
		from := max(0, p.scanned-len(callClose)+1)
		j := strings.Index(p.buf[from:], callClose)
		k := strings.Index(p.buf[from:], callOpen)
		if j >= 0 {
			j += from
		}
		if k >= 0 {
			k += from
		}
		if k >= 0 && (j < 0 || k < j) {
			// Never closed: that block is text; the new one starts.
			text, ws := trailingSpace(p.ws + callOpen + p.buf[:k])
			p.text(text)
			p.ws, p.buf, p.scanned = ws, p.buf[k+len(callOpen):], 0
			continue
		}
		if j < 0 {
			p.scanned = len(p.buf)
			return
		}
		body, rest := p.buf[:j], p.buf[j+len(callClose):]
		if call, ok := parseCall(body, p.known); ok {
			p.out = append(p.out, toolEvent{Call: call})
			p.after = true
			p.calls++
			if p.max > 0 && p.calls >= p.max {
				p.done = true
				p.buf, p.ws, p.inside = "", "", false
				return
			}
		} else {
			p.text(p.ws + callOpen + body + callClose)
		}
		p.ws, p.buf, p.inside = "", rest, false
	}
}

// trailingSpace splits s into its text and its trailing whitespace.
func trailingSpace(s string) (string, string) {
	t := strings.TrimRight(s, " \t\r\n")
	return t, s[len(t):]
}

// partialPrefix is the length of the longest suffix of s that is a proper
// prefix of tag.
func partialPrefix(s, tag string) int {
	for n := min(len(tag)-1, len(s)); n > 0; n-- {
		if strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}

// parseCall reads a block's body: one JSON object with a known "name" and
// "arguments".
func parseCall(body string, known func(string) bool) (*parsedCall, bool) {
	body = strings.TrimSpace(body)
	if !strings.HasPrefix(body, "{") {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &obj); err != nil {
		return nil, false
	}
	var name string
	if raw, ok := obj["name"]; !ok || json.Unmarshal(raw, &name) != nil || known == nil || !known(name) {
		return nil, false
	}
	args := bytes.TrimSpace(obj["arguments"])
	if isNull(args) {
		return &parsedCall{Name: name, Arguments: "{}"}, true
	}
	if args[0] == '"' {
		var s string
		if json.Unmarshal(args, &s) != nil {
			return nil, false
		}
		args = bytes.TrimSpace([]byte(s))
		if len(args) == 0 || args[0] != '{' || !json.Valid(args) {
			return nil, false
		}
	}
	if args[0] != '{' {
		return nil, false
	}
	var buf bytes.Buffer
	if json.Compact(&buf, args) != nil {
		return nil, false
	}
	return &parsedCall{Name: name, Arguments: buf.String()}, true
}
