package classify

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
)

// Stream returns a StreamRestorer for one streamed answer.
func (r *Restorer) Stream() *StreamRestorer {
	return &StreamRestorer{r: r}
}

// StreamRestorer restores placeholders in a stream of OpenAI chunks
// (chat.completion.chunk, or text_completion for legacy completions),
// where a placeholder may be split across chunks ("[EMA" then "IL_1]").
//
// The streamed text fields are, per choice (by the choice's index field):
// delta.content, delta.refusal, delta.reasoning_content, text, and
// delta.tool_calls[].function.arguments per tool call (by its index
// field). Each keeps its own held-back text: the end of the text so far
// when it is a proper prefix of a known placeholder, so at most the
// longest placeholder's length. Values restored into tool-call arguments
// (JSON text) are JSON-escaped once more, as in Restorer.JSON. Every other
// string in a chunk has its complete placeholders restored in place.
//
// A chunk with a non-null finish_reason for a choice carries all of that
// choice's held text: appended to the field in the chunk, or added to the
// chunk where the field is absent (delta.content and the like inside delta,
// text beside it, held tool-call arguments as function.arguments of the
// delta.tool_calls entry with that index, added when missing). Text still
// held at the end of the stream comes out of Flush.
//
// A StreamRestorer is not safe for concurrent use.
type StreamRestorer struct {
	r    *Restorer
	held map[streamKey]string
}

type streamField uint8

const (
	fieldText streamField = iota
	fieldContent
	fieldRefusal
	fieldReasoning
	fieldArguments
)

// streamDeltaFields are the streamed strings of a chat chunk's delta.
var streamDeltaFields = [...]struct {
	id   streamField
	name string
}{{fieldContent, "content"}, {fieldRefusal, "refusal"}, {fieldReasoning, "reasoning_content"}}

type streamKey struct {
	choice int
	field  streamField
	tool   int // tool call index for fieldArguments, else 0
}

func (a streamKey) less(b streamKey) bool {
	if a.choice != b.choice {
		return a.choice < b.choice
	}
	if a.field != b.field {
		return a.field < b.field
	}
	return a.tool < b.tool
}

// Chunk takes one chunk's JSON and returns the chunk to send on. It
// returns data itself when nothing changes, without allocating when no
// string in data holds a '[' and nothing is held. Data that is not a JSON
// object has its complete placeholders restored as plain text; a broken
// object, or one without choices (a usage-only chunk), has them restored
// in its strings, as by Restorer.JSON. Held text stays held.
func (s *StreamRestorer) Chunk(data []byte) []byte {
	r := s.r
	if r.values == nil {
		return data
	}
	if !startsObject(data) {
		return r.textBytes(data)
	}
	if len(s.held) == 0 && !stringsMayContainBracket(data) {
		return data
	}
	root, ok := parseJSON(data)
	if !ok {
		return r.JSON(data)
	}
	var choices *jnode
	if root.kind == '{' {
		choices = root.get(data, "choices")
	}
	if choices == nil || choices.kind != '[' || len(choices.elems) == 0 {
		return r.JSON(data)
	}
	e := &chunkEditor{}
	for pos, ch := range choices.elems {
		if ch.kind == '{' {
			s.choice(data, ch, pos, e)
		}
	}
	r.restoreTree(data, root, false, e)
	return e.apply(data)
}

func startsObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return c == '{'
		}
	}
	return false
}

// stringsMayContainBracket reports whether any JSON string in b may hold a
// '[', or b is not JSON and has a '[' that could start a placeholder,
// without allocating.
func stringsMayContainBracket(b []byte) bool {
	if !mayContainBracket(b) {
		return false
	}
	for i := 0; i < len(b); {
		k := bytes.IndexByte(b[i:], '"')
		if k < 0 {
			k = len(b) - i
		}
		if bracketOutsideString(b[i : i+k]) {
			return true
		}
		if i+k == len(b) {
			return false
		}
		start := i + k
		end := jsonStringEnd(b, start)
		if end < 0 {
			return true // not JSON: let the slow path decide
		}
		if tokenMayContainBracket(b[start:end]) {
			return true
		}
		i = end
	}
	return false
}

// bracketOutsideString reports whether b, JSON outside strings, has a '['
// that JSON does not allow there but a placeholder would start with.
func bracketOutsideString(b []byte) bool {
	for {
		k := bytes.IndexByte(b, '[')
		if k < 0 || k+1 >= len(b) {
			return false
		}
		if c := b[k+1]; c >= 'A' && c <= 'Z' || c == '_' {
			return true
		}
		b = b[k+1:]
	}
}

func (s *StreamRestorer) choice(b []byte, ch *jnode, pos int, e *chunkEditor) {
	idx := pos
	if n := ch.get(b, "index"); n != nil {
		if v, ok := jsonInt(b, n); ok {
			idx = v
		}
	}
	fin := ch.get(b, "finish_reason")
	finishing := fin != nil && !jsonIsNull(b, fin)

	if n := ch.get(b, "text"); n != nil && n.kind == '"' {
		s.field(b, n, streamKey{idx, fieldText, 0}, finishing, e)
	}
	delta := ch.get(b, "delta")
	if delta != nil && delta.kind != '{' {
		delta = nil
	}
	var toolCalls *jnode
	if delta != nil {
		for _, f := range streamDeltaFields {
			if n := delta.get(b, f.name); n != nil && n.kind == '"' {
				s.field(b, n, streamKey{idx, f.id, 0}, finishing, e)
			}
		}
		if tc := delta.get(b, "tool_calls"); tc != nil && tc.kind == '[' {
			toolCalls = tc
			for tpos, t := range tc.elems {
				if t.kind != '{' {
					continue
				}
				fn := t.get(b, "function")
				if fn == nil || fn.kind != '{' {
					continue
				}
				if args := fn.get(b, "arguments"); args != nil && args.kind == '"' {
					s.field(b, args, streamKey{idx, fieldArguments, toolIndex(b, t, tpos)}, finishing, e)
				}
			}
		}
	}
	if !finishing {
		return
	}

	// Held text of fields this chunk lacks goes into it now.
	var newDelta, newTools [][]byte
	for _, k := range s.heldKeys(idx) {
		v := appendJSONString(nil, s.held[k])
		delete(s.held, k)
		switch k.field {
		case fieldText:
			e.setMember(b, ch, "text", v)
		case fieldArguments:
			if el := toolCallAt(b, toolCalls, k.tool); el != nil {
				if fn := el.get(b, "function"); fn != nil && fn.kind == '{' {
					e.setMember(b, fn, "arguments", v)
				} else {
					e.setMember(b, el, "function", jsonObject(jsonMember("arguments", v)))
				}
				continue
			}
			call := jsonObject(jsonMember("index", strconv.AppendInt(nil, int64(k.tool), 10)),
				jsonMember("function", jsonObject(jsonMember("arguments", v))))
			if toolCalls != nil {
				e.add(toolCalls, call)
			} else {
				newTools = append(newTools, call)
			}
		default:
			name := deltaFieldName(k.field)
			if delta != nil {
				e.setMember(b, delta, name, v)
			} else {
				newDelta = append(newDelta, jsonMember(name, v))
			}
		}
	}
	if len(newTools) > 0 {
		arr := jsonArray(newTools...)
		if delta != nil {
			e.setMember(b, delta, "tool_calls", arr)
		} else {
			newDelta = append(newDelta, jsonMember("tool_calls", arr))
		}
	}
	if len(newDelta) > 0 {
		e.setMember(b, ch, "delta", jsonObject(newDelta...))
	}
}

// field handles one streamed string n of a chunk.
func (s *StreamRestorer) field(b []byte, n *jnode, k streamKey, finishing bool, e *chunkEditor) {
	held, isHeld := s.held[k]
	tok := b[n.start:n.end]
	if !isHeld && !finishing && !tokenMayContainBracket(tok) {
		n.streamed = true
		return
	}
	frag, ok := decodeJSONString(tok)
	if !ok {
		return // not a proper string: restored in place like any other
	}
	n.streamed = true
	text := held + frag
	p := len(text)
	if !finishing {
		p = s.r.holdFrom(text)
	}
	out := s.r.Text(text[:p])
	if k.field == fieldArguments {
		out = s.r.textArgs(text[:p])
	}
	if p < len(text) {
		if s.held == nil {
			s.held = map[streamKey]string{}
		}
		s.held[k] = text[p:]
	} else if isHeld {
		delete(s.held, k)
	}
	if out != frag {
		e.replace(n, appendJSONString(nil, out))
	}
}

// heldKeys are the keys of the text held for choice (all choices when
// choice is -1), in order.
func (s *StreamRestorer) heldKeys(choice int) []streamKey {
	var keys []streamKey
	for k := range s.held {
		if choice < 0 || k.choice == choice {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b streamKey) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	return keys
}

func deltaFieldName(f streamField) string {
	for _, d := range streamDeltaFields {
		if d.id == f {
			return d.name
		}
	}
	return "content"
}

func toolIndex(b []byte, t *jnode, pos int) int {
	if n := t.get(b, "index"); n != nil {
		if v, ok := jsonInt(b, n); ok {
			return v
		}
	}
	return pos
}

func toolCallAt(b []byte, toolCalls *jnode, index int) *jnode {
	if toolCalls == nil {
		return nil
	}
	for pos, t := range toolCalls.elems {
		if t.kind == '{' && toolIndex(b, t, pos) == index {
			return t
		}
	}
	return nil
}

// Flush ends the stream: it returns a chunk carrying all text still held
// back, or nil when none is. The chunk keeps id, object, created and model
// of last, the last chunk seen; its choices hold the text as it came
// (delta.content, delta.refusal, delta.reasoning_content,
// delta.tool_calls[].function.arguments, or text for text_completion),
// with finish_reason null. Held text is never a complete placeholder, so
// it comes out as it went in.
func (s *StreamRestorer) Flush(last []byte) []byte {
	if len(s.held) == 0 {
		return nil
	}
	keys := s.heldKeys(-1)
	out := []byte{'{'}
	var root *jnode
	if n, ok := parseJSON(last); ok && n.kind == '{' {
		root = n
	}
	hasObject := false
	for _, name := range [...]string{"id", "object", "created", "model"} {
		if root == nil {
			break
		}
		n := root.get(last, name)
		if n == nil {
			continue
		}
		hasObject = hasObject || name == "object"
		raw := last[n.start:n.end]
		if n.kind == '"' {
			if rep, ok := s.r.restoreToken(raw, false); ok {
				raw = rep
			}
		}
		out = append(append(out, jsonMember(name, raw)...), ',')
	}
	if !hasObject {
		obj := `"chat.completion.chunk"`
		if keys[0].field == fieldText {
			obj = `"text_completion"`
		}
		out = append(out, `"object":`+obj+`,`...)
	}
	out = append(out, `"choices":[`...)
	for i := 0; i < len(keys); {
		choice := keys[i].choice
		var text []byte
		var delta, tools [][]byte
		for ; i < len(keys) && keys[i].choice == choice; i++ {
			k := keys[i]
			v := appendJSONString(nil, s.held[k])
			switch k.field {
			case fieldText:
				text = v
			case fieldArguments:
				tools = append(tools, jsonObject(jsonMember("index", strconv.AppendInt(nil, int64(k.tool), 10)),
					jsonMember("function", jsonObject(jsonMember("arguments", v)))))
			default:
				delta = append(delta, jsonMember(deltaFieldName(k.field), v))
			}
		}
		if len(tools) > 0 {
			delta = append(delta, jsonMember("tool_calls", jsonArray(tools...)))
		}
		if out[len(out)-1] != '[' {
			out = append(out, ',')
		}
		m := [][]byte{jsonMember("index", strconv.AppendInt(nil, int64(choice), 10))}
		if text != nil {
			m = append(m, jsonMember("text", text))
		}
		if len(delta) > 0 {
			m = append(m, jsonMember("delta", jsonObject(delta...)))
		}
		m = append(m, jsonMember("finish_reason", []byte("null")))
		out = append(out, jsonObject(m...)...)
	}
	clear(s.held)
	return append(out, "]}"...)
}

// jsonMember is `"key":value` for a key that needs no escaping.
func jsonMember(key string, value []byte) []byte {
	m := make([]byte, 0, len(key)+3+len(value))
	m = append(append(append(m, '"'), key...), '"', ':')
	return append(m, value...)
}

func jsonObject(members ...[]byte) []byte {
	return append(append([]byte{'{'}, bytes.Join(members, []byte{','})...), '}')
}

func jsonArray(elems ...[]byte) []byte {
	return append(append([]byte{'['}, bytes.Join(elems, []byte{','})...), ']')
}

// restoreTree restores placeholders in every string of n, keys included,
// except the streamed fields already handled. args says n is the value of
// an "arguments" key.
func (r *Restorer) restoreTree(b []byte, n *jnode, args bool, e *chunkEditor) {
	switch n.kind {
	case '"':
		if !n.streamed {
			if rep, ok := r.restoreToken(b[n.start:n.end], args); ok {
				e.replace(n, rep)
			}
		}
	case '{':
		for _, m := range n.members {
			r.restoreTree(b, m.key, false, e)
			r.restoreTree(b, m.val, m.key.textEquals(b, "arguments"), e)
		}
	case '[':
		for _, el := range n.elems {
			r.restoreTree(b, el, false, e)
		}
	}
}

// chunkEditor collects changes to a chunk as byte ranges of the original, so
// that everything it does not touch is sent exactly as it came.
type chunkEditor struct {
	edits []chunkEdit
	adds  map[*jnode][][]byte // members or elements to add to a container
	order []*jnode
}

type chunkEdit struct {
	start, end int
	text       []byte
}

func (e *chunkEditor) replace(n *jnode, text []byte) {
	n.streamed = true // final: not to be restored again
	e.edits = append(e.edits, chunkEdit{n.start, n.end, text})
}

// add appends a member (`"k":v`) to object n or an element to array n.
func (e *chunkEditor) add(n *jnode, raw []byte) {
	if e.adds == nil {
		e.adds = map[*jnode][][]byte{}
	}
	if _, ok := e.adds[n]; !ok {
		e.order = append(e.order, n)
	}
	e.adds[n] = append(e.adds[n], raw)
}

// setMember sets key of object obj to value, replacing what is there.
func (e *chunkEditor) setMember(b []byte, obj *jnode, key string, value []byte) {
	for _, m := range obj.members {
		if m.key.textEquals(b, key) {
			e.replace(m.val, value)
			return
		}
	}
	e.add(obj, jsonMember(key, value))
}

func (e *chunkEditor) apply(b []byte) []byte {
	for _, n := range e.order {
		var t []byte
		if len(n.members)+len(n.elems) > 0 {
			t = append(t, ',')
		}
		t = append(t, bytes.Join(e.adds[n], []byte{','})...)
		e.edits = append(e.edits, chunkEdit{n.end - 1, n.end - 1, t})
	}
	if len(e.edits) == 0 {
		return b
	}
	sort.SliceStable(e.edits, func(i, j int) bool { return e.edits[i].start < e.edits[j].start })
	size := len(b)
	for _, ed := range e.edits {
		size += len(ed.text) - (ed.end - ed.start)
	}
	out := make([]byte, 0, size)
	last := 0
	for _, ed := range e.edits {
		out = append(out, b[last:ed.start]...)
		out = append(out, ed.text...)
		last = ed.end
	}
	return append(out, b[last:]...)
}
