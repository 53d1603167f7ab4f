package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/jsonesc"
)

const (
	// maxChoices and maxToolCalls bound what an Assembler keeps and what
	// Replay accepts: choice indices 0..63, tool call indices 0..127.
	maxChoices   = 64
	maxToolCalls = 128
	// replayPiece is the most bytes of content, refusal or tool call
	// arguments one replayed chunk carries.
	replayPiece = 64
)

// Assembler rebuilds an OpenAI chat completion from the chunks of its
// stream (chat.completion.chunk objects), as a client SDK's accumulator
// does: content and refusal concatenated per choice, tool calls merged
// by index (id, type, function name set once, arguments concatenated),
// each choice's role and finish_reason kept and its logprobs dropped,
// the first chunk's id, created, model and system_fingerprint (where a
// later chunk is the first to carry one, that one's), and the usage of
// the chunk that carries one (the last, where several do). Not safe for
// concurrent use.
//
// The zero value is ready to use. After Add has returned an error the
// Assembler stays broken: every later Add returns that error, Complete
// is false and Completion fails, so a stream cut by a bad chunk is never
// stored.
type Assembler struct {
	id, model, fingerprint string
	created                int64
	haveCreated            bool
	// choices is indexed by the choice's index; nil where none was seen.
	choices []*choiceState
	seen    int
	usage   []byte
	err     error
}

type choiceState struct {
	role             string
	content, refusal strings.Builder
	// tools is indexed by the tool call's index; nil where none was seen.
	tools  []*toolState
	last   int // the index of the tool call last added to, -1 before any
	finish string
}

type toolState struct {
	id, typ, name string
	args          strings.Builder
}

// Add takes one chunk (the JSON of one SSE data line). A chunk that is
// not a JSON object, or whose choices are not an array, is an error;
// unknown fields are ignored, and so are choices that are absent or
// null (a usage-only chunk). Bounded: more than 64 choices or 128 tool
// calls per choice is an error (a cache must not grow without bound), and
// so is a known field of the wrong JSON type.
func (a *Assembler) Add(chunk []byte) error {
	if a.err != nil {
		return a.err
	}
	if err := a.add(chunk); err != nil {
		a.err = err
		return err
	}
	return nil
}

func (a *Assembler) add(chunk []byte) error {
	if !gjson.ValidBytes(chunk) {
		return errors.New("cache: a stream chunk is not JSON")
	}
	root := gjson.ParseBytes(chunk)
	if !root.IsObject() {
		return errors.New("cache: a stream chunk is not a JSON object")
	}
	choices := root.Get("choices")
	if choices.Type != gjson.Null && !choices.IsArray() {
		return errors.New("cache: a stream chunk's choices are not an array")
	}
	if err := setOnce(&a.id, root.Get("id"), "id"); err != nil {
		return err
	}
	if err := setOnce(&a.model, root.Get("model"), "model"); err != nil {
		return err
	}
	if err := setOnce(&a.fingerprint, root.Get("system_fingerprint"), "system_fingerprint"); err != nil {
		return err
	}
	switch c := root.Get("created"); c.Type {
	case gjson.Number:
		if !a.haveCreated {
			a.created, a.haveCreated = c.Int(), true
		}
	case gjson.Null:
	default:
		return errors.New("cache: a stream chunk's created is not a number")
	}
	switch u := root.Get("usage"); {
	case u.IsObject():
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(u.Raw)); err != nil {
			return fmt.Errorf("cache: a stream chunk's usage: %w", err)
		}
		a.usage = buf.Bytes()
	case u.Type != gjson.Null:
		return errors.New("cache: a stream chunk's usage is not an object")
	}
	if !choices.IsArray() {
		return nil // absent or null: a usage-only chunk
	}
	var err error
	choices.ForEach(func(_, c gjson.Result) bool {
		err = a.addChoice(c)
		return err == nil
	})
	return err
}

// setOnce keeps the first non-empty string of a top-level field.
func setOnce(dst *string, r gjson.Result, what string) error {
	s, err := optString(r, what)
	if err == nil && *dst == "" && s != "" {
		*dst = strings.Clone(s)
	}
	return err
}

func (a *Assembler) addChoice(c gjson.Result) error {
	if !c.IsObject() {
		return errors.New("cache: a stream chunk's choice is not an object")
	}
	i, _, err := optIndex(c.Get("index"), maxChoices, "choice")
	if err != nil {
		return err
	}
	finish, err := optString(c.Get("finish_reason"), "finish_reason")
	if err != nil {
		return err
	}
	delta := c.Get("delta")
	if delta.Type != gjson.Null && !delta.IsObject() {
		return errors.New("cache: a stream chunk's delta is not an object")
	}
	role, err := optString(delta.Get("role"), "role")
	if err != nil {
		return err
	}
	content, err := optString(delta.Get("content"), "content")
	if err != nil {
		return err
	}
	refusal, err := optString(delta.Get("refusal"), "refusal")
	if err != nil {
		return err
	}
	tools := delta.Get("tool_calls")
	if tools.Type != gjson.Null && !tools.IsArray() {
		return errors.New("cache: a stream chunk's tool_calls are not an array")
	}

	for len(a.choices) <= i {
		a.choices = append(a.choices, nil)
	}
	ch := a.choices[i]
	if ch == nil {
		ch = &choiceState{last: -1}
		a.choices[i] = ch
		a.seen++
	}
	if ch.role == "" && role != "" {
		ch.role = strings.Clone(role)
	}
	ch.content.WriteString(content)
	ch.refusal.WriteString(refusal)
	if tools.IsArray() {
		tools.ForEach(func(_, t gjson.Result) bool {
			err = ch.addTool(t)
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	if finish != "" {
		ch.finish = strings.Clone(finish)
	}
	return nil
}

func (ch *choiceState) addTool(t gjson.Result) error {
	if !t.IsObject() {
		return errors.New("cache: a stream chunk's tool call is not an object")
	}
	ri := t.Get("index")
	if ri.Type == gjson.Number && ri.Num == -1 {
		// Some servers send -1 for a single call: 0, as the OpenAI SDKs
		// read it.
		ri = gjson.Result{Type: gjson.Number, Num: 0, Raw: "0"}
	}
	i, present, err := optIndex(ri, maxToolCalls, "tool call")
	if err != nil {
		return err
	}
	id, err := optString(t.Get("id"), "tool call id")
	if err != nil {
		return err
	}
	typ, err := optString(t.Get("type"), "tool call type")
	if err != nil {
		return err
	}
	fn := t.Get("function")
	if fn.Type != gjson.Null && !fn.IsObject() {
		return errors.New("cache: a stream chunk's tool call function is not an object")
	}
	name, err := optString(fn.Get("name"), "function name")
	if err != nil {
		return err
	}
	args, err := optString(fn.Get("arguments"), "function arguments")
	if err != nil {
		return err
	}
	if !present {
		// No index (some OpenAI-compatible servers): a new id starts
		// the next call, anything else continues the last one.
		i = ch.last
		if i < 0 || (id != "" && id != ch.tools[i].id) {
			i = len(ch.tools)
		}
		if i >= maxToolCalls {
			return fmt.Errorf("cache: more than %d tool calls in a choice", maxToolCalls)
		}
	}
	for len(ch.tools) <= i {
		ch.tools = append(ch.tools, nil)
	}
	tc := ch.tools[i]
	if tc == nil {
		tc = &toolState{}
		ch.tools[i] = tc
	}
	if tc.id == "" && id != "" {
		tc.id = strings.Clone(id)
	}
	if tc.typ == "" && typ != "" {
		tc.typ = strings.Clone(typ)
	}
	if tc.name == "" && name != "" {
		tc.name = strings.Clone(name)
	}
	tc.args.WriteString(args)
	ch.last = i
	return nil
}

// optString is a string field's value: "" where it is absent or null, an
// error where it is another JSON type.
func optString(r gjson.Result, what string) (string, error) {
	switch r.Type {
	case gjson.String:
		return r.Str, nil
	case gjson.Null:
		return "", nil
	}
	return "", fmt.Errorf("cache: %s is not a string", what)
}

// optIndex is an index field's value, below limit; present is false (and
// the index 0) where it is absent or null.
func optIndex(r gjson.Result, limit int, what string) (i int, present bool, err error) {
	switch r.Type {
	case gjson.Null:
		return 0, false, nil
	case gjson.Number:
	default:
		return 0, false, fmt.Errorf("cache: a %s index is not a number", what)
	}
	f := r.Num
	if f != math.Trunc(f) || f < 0 {
		return 0, false, fmt.Errorf("cache: a %s index is not a valid index", what)
	}
	if f >= float64(limit) {
		return 0, false, fmt.Errorf("cache: more than %d %ss", limit, what)
	}
	return int(f), true, nil
}

// Complete reports whether every choice seen has a finish_reason (and at
// least one was seen, and no chunk was refused).
func (a *Assembler) Complete() bool {
	if a.err != nil || a.seen == 0 {
		return false
	}
	for _, ch := range a.choices {
		if ch != nil && ch.finish == "" {
			return false
		}
	}
	return true
}

// Completion returns the chat.completion JSON ("object":"chat.completion",
// choices with index, message {role, content (null when none and tool
// calls or a refusal exist), refusal if any, tool_calls if any},
// finish_reason, and usage when a chunk carried it). An error when no
// chunk with choices was added, when a chunk was refused, or when the
// stream was not complete.
func (a *Assembler) Completion() ([]byte, error) {
	switch {
	case a.err != nil:
		return nil, fmt.Errorf("cache: the stream had a bad chunk: %w", a.err)
	case a.seen == 0:
		return nil, errors.New("cache: the stream had no choices")
	case !a.Complete():
		return nil, errors.New("cache: the stream ended before every choice's finish_reason")
	}
	b := make([]byte, 0, a.Size())
	b = append(b, `{"id":`...)
	b = appendJSONString(b, a.id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, a.model)
	if a.fingerprint != "" {
		b = append(b, `,"system_fingerprint":`...)
		b = appendJSONString(b, a.fingerprint)
	}
	b = append(b, `,"choices":[`...)
	first := true
	for i, ch := range a.choices {
		if ch == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"message":{"role":`...)
		role := ch.role
		if role == "" {
			role = "assistant"
		}
		b = appendJSONString(b, role)
		b = append(b, `,"content":`...)
		hasTools := slicesContainsNonNil(ch.tools)
		if ch.content.Len() == 0 && (hasTools || ch.refusal.Len() > 0) {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, ch.content.String())
		}
		if ch.refusal.Len() > 0 {
			b = append(b, `,"refusal":`...)
			b = appendJSONString(b, ch.refusal.String())
		}
		if hasTools {
			b = append(b, `,"tool_calls":[`...)
			firstTool := true
			for _, tc := range ch.tools {
				if tc == nil {
					continue
				}
				if !firstTool {
					b = append(b, ',')
				}
				firstTool = false
				typ := tc.typ
				if typ == "" {
					typ = "function"
				}
				b = append(b, `{"id":`...)
				b = appendJSONString(b, tc.id)
				b = append(b, `,"type":`...)
				b = appendJSONString(b, typ)
				b = append(b, `,"function":{"name":`...)
				b = appendJSONString(b, tc.name)
				b = append(b, `,"arguments":`...)
				b = appendJSONString(b, tc.args.String())
				b = append(b, "}}"...)
			}
			b = append(b, ']')
		}
		b = append(b, `},"finish_reason":`...)
		b = appendJSONString(b, ch.finish)
		b = append(b, '}')
	}
	b = append(b, ']')
	if a.usage != nil {
		b = append(b, `,"usage":`...)
		b = append(b, a.usage...)
	}
	return append(b, '}'), nil
}

// Size is about the length of Completion's JSON so far (exact where
// nothing needs escaping): what a recorder bounds, whatever the chunks'
// own overhead.
func (a *Assembler) Size() int {
	n := 128 + len(a.id) + len(a.model) + len(a.fingerprint) + len(a.usage)
	for _, ch := range a.choices {
		if ch == nil {
			continue
		}
		n += 96 + len(ch.role) + ch.content.Len() + ch.refusal.Len() + len(ch.finish)
		for _, tc := range ch.tools {
			if tc != nil {
				n += 80 + len(tc.id) + len(tc.typ) + len(tc.name) + tc.args.Len()
			}
		}
	}
	return n
}

func slicesContainsNonNil(tools []*toolState) bool {
	for _, tc := range tools {
		if tc != nil {
			return true
		}
	}
	return false
}

// replayChoice is one choice of a completion to replay.
type replayChoice struct {
	index            int
	role             string
	content, refusal string
	nullContent      bool
	tools            []replayTool
	finish           string
}

type replayTool struct {
	id, typ, name, args string
}

// Replay returns the chunks of a stream that delivers completion (a
// chat.completion JSON as Completion makes or an upstream returns): for
// each choice a first chunk with the role, the content in pieces of at
// most 64 bytes cut at UTF-8 rune boundaries (in order), the refusal
// likewise, each tool call (a chunk with index, id, type, function name
// and the arguments — arguments longer than 64 bytes continue in further
// chunks), then a chunk with the finish_reason; every chunk has
// "object":"chat.completion.chunk", the given id, created and the
// completion's model (and system_fingerprint if any). When includeUsage,
// every chunk has "usage":null and a final chunk with "choices":[]
// carries the completion's usage, as OpenAI sends with include_usage (no
// final chunk when the completion has no usage); otherwise no chunk has
// a usage field.
//
// Only what a chat.completion.chunk can carry is replayed (logprobs,
// annotations, audio and other extensions are dropped). An error for a
// body that is not a chat completion: not a JSON object, an "object"
// other than "chat.completion", no choices (or more than 64), a choice
// without a message or finish_reason, a content that is not a string, a
// tool call without a function (or more than 128).
func Replay(completion []byte, id string, created int64, includeUsage bool) ([][]byte, error) {
	if !gjson.ValidBytes(completion) {
		return nil, errors.New("cache: the completion to replay is not JSON")
	}
	root := gjson.ParseBytes(completion)
	if !root.IsObject() {
		return nil, errors.New("cache: the completion to replay is not a JSON object")
	}
	if o := root.Get("object"); o.Exists() && (o.Type != gjson.String || o.Str != "chat.completion") {
		return nil, errors.New("cache: the body to replay is not a chat.completion")
	}
	model, err := optString(root.Get("model"), "model")
	if err != nil {
		return nil, err
	}
	fingerprint, err := optString(root.Get("system_fingerprint"), "system_fingerprint")
	if err != nil {
		return nil, err
	}
	var usage []byte
	switch u := root.Get("usage"); {
	case u.IsObject():
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(u.Raw)); err != nil {
			return nil, fmt.Errorf("cache: the completion's usage: %w", err)
		}
		usage = buf.Bytes()
	case u.Type != gjson.Null:
		return nil, errors.New("cache: the completion's usage is not an object")
	}
	choices, err := replayChoices(root.Get("choices"))
	if err != nil {
		return nil, err
	}

	// Every chunk is prefix, one choice (or none), suffix.
	prefix := make([]byte, 0, 96+len(id)+len(model)+len(fingerprint))
	prefix = append(prefix, `{"id":`...)
	prefix = appendJSONString(prefix, id)
	prefix = append(prefix, `,"object":"chat.completion.chunk","created":`...)
	prefix = strconv.AppendInt(prefix, created, 10)
	prefix = append(prefix, `,"model":`...)
	prefix = appendJSONString(prefix, model)
	if fingerprint != "" {
		prefix = append(prefix, `,"system_fingerprint":`...)
		prefix = appendJSONString(prefix, fingerprint)
	}
	prefix = append(prefix, `,"choices":[`...)
	suffix := "]}"
	if includeUsage {
		suffix = `],"usage":null}`
	}

	w := chunkWriter{prefix: prefix, suffix: suffix}
	for _, ch := range choices {
		b := w.start(ch.index)
		b = append(b, `"role":`...)
		b = appendJSONString(b, ch.role)
		if ch.nullContent {
			b = append(b, `,"content":null`...)
		} else {
			b = append(b, `,"content":""`...)
		}
		w.end(b, "")
		for p, rest := cutPiece(ch.content); p != ""; p, rest = cutPiece(rest) {
			b := w.start(ch.index)
			b = append(b, `"content":`...)
			w.end(appendJSONString(b, p), "")
		}
		for p, rest := cutPiece(ch.refusal); p != ""; p, rest = cutPiece(rest) {
			b := w.start(ch.index)
			b = append(b, `"refusal":`...)
			w.end(appendJSONString(b, p), "")
		}
		for i, tc := range ch.tools {
			b := w.start(ch.index)
			b = append(b, `"tool_calls":[{"index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"id":`...)
			b = appendJSONString(b, tc.id)
			b = append(b, `,"type":`...)
			b = appendJSONString(b, tc.typ)
			b = append(b, `,"function":{"name":`...)
			b = appendJSONString(b, tc.name)
			b = append(b, `,"arguments":`...)
			p, rest := cutPiece(tc.args) // "" where there are no arguments
			b = appendJSONString(b, p)
			w.end(append(b, "}}]"...), "")
			for p, rest := cutPiece(rest); p != ""; p, rest = cutPiece(rest) {
				b := w.start(ch.index)
				b = append(b, `"tool_calls":[{"index":`...)
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, `,"function":{"arguments":`...)
				b = appendJSONString(b, p)
				w.end(append(b, "}}]"...), "")
			}
		}
		w.end(w.start(ch.index), ch.finish)
	}
	if includeUsage && usage != nil {
		b := make([]byte, 0, len(prefix)+len(usage)+16)
		b = append(b, prefix...)
		b = append(b, `],"usage":`...)
		b = append(b, usage...)
		w.out = append(w.out, append(b, '}'))
	}
	return w.out, nil
}

// chunkWriter makes Replay's chunks: prefix, one choice, suffix.
type chunkWriter struct {
	prefix []byte
	suffix string
	out    [][]byte
}

// start begins a chunk for the choice at index, up to its delta's fields.
func (w *chunkWriter) start(index int) []byte {
	b := make([]byte, 0, len(w.prefix)+len(w.suffix)+replayPiece*2+160)
	b = append(b, w.prefix...)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	return append(b, `,"delta":{`...)
}

// end closes the delta and the chunk, with finish as its finish_reason
// ("" is null), and adds it to the output.
func (w *chunkWriter) end(b []byte, finish string) {
	b = append(b, `},"logprobs":null,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, finish)
	}
	b = append(b, '}')
	w.out = append(w.out, append(b, w.suffix...))
}

// replayChoices reads and checks a completion's choices.
func replayChoices(choices gjson.Result) ([]replayChoice, error) {
	if !choices.IsArray() {
		return nil, errors.New("cache: the completion to replay has no choices array")
	}
	var out []replayChoice
	var seen [maxChoices]bool
	var err error
	choices.ForEach(func(_, c gjson.Result) bool {
		if len(out) == maxChoices {
			err = fmt.Errorf("cache: the completion to replay has more than %d choices", maxChoices)
			return false
		}
		var rc replayChoice
		rc, err = replayChoiceOf(c, len(out))
		if err == nil && seen[rc.index] {
			err = fmt.Errorf("cache: the completion to replay has two choices with index %d", rc.index)
		}
		if err != nil {
			return false
		}
		seen[rc.index] = true
		out = append(out, rc)
		return true
	})
	if err == nil && len(out) == 0 {
		err = errors.New("cache: the completion to replay has no choices")
	}
	return out, err
}

func replayChoiceOf(c gjson.Result, position int) (replayChoice, error) {
	var rc replayChoice
	if !c.IsObject() {
		return rc, errors.New("cache: a choice to replay is not an object")
	}
	i, present, err := optIndex(c.Get("index"), maxChoices, "choice")
	if err != nil {
		return rc, err
	}
	if !present {
		if position >= maxChoices {
			return rc, fmt.Errorf("cache: more than %d choices", maxChoices)
		}
		i = position
	}
	rc.index = i
	if rc.finish, err = optString(c.Get("finish_reason"), "finish_reason"); err != nil {
		return rc, err
	}
	if rc.finish == "" {
		return rc, errors.New("cache: a choice to replay has no finish_reason")
	}
	m := c.Get("message")
	if !m.IsObject() {
		return rc, errors.New("cache: a choice to replay has no message")
	}
	if rc.role, err = optString(m.Get("role"), "role"); err != nil {
		return rc, err
	}
	if rc.role == "" {
		rc.role = "assistant"
	}
	content := m.Get("content")
	rc.nullContent = content.Type == gjson.Null
	if rc.content, err = optString(content, "content"); err != nil {
		return rc, err
	}
	if rc.refusal, err = optString(m.Get("refusal"), "refusal"); err != nil {
		return rc, err
	}
	rc.content, rc.refusal = validUTF8(rc.content), validUTF8(rc.refusal)
	tools := m.Get("tool_calls")
	if tools.Type != gjson.Null && !tools.IsArray() {
		return rc, errors.New("cache: a message's tool_calls to replay are not an array")
	}
	if !tools.IsArray() {
		return rc, nil
	}
	tools.ForEach(func(_, t gjson.Result) bool {
		if len(rc.tools) == maxToolCalls {
			err = fmt.Errorf("cache: a message to replay has more than %d tool calls", maxToolCalls)
			return false
		}
		var rt replayTool
		rt, err = replayToolOf(t)
		rc.tools = append(rc.tools, rt)
		return err == nil
	})
	return rc, err
}

func replayToolOf(t gjson.Result) (replayTool, error) {
	var rt replayTool
	if !t.IsObject() {
		return rt, errors.New("cache: a tool call to replay is not an object")
	}
	fn := t.Get("function")
	if !fn.IsObject() {
		return rt, errors.New("cache: a tool call to replay has no function")
	}
	var err error
	if rt.id, err = optString(t.Get("id"), "tool call id"); err != nil {
		return rt, err
	}
	if rt.typ, err = optString(t.Get("type"), "tool call type"); err != nil {
		return rt, err
	}
	if rt.typ == "" {
		rt.typ = "function"
	}
	if rt.name, err = optString(fn.Get("name"), "function name"); err != nil {
		return rt, err
	}
	rt.args, err = optString(fn.Get("arguments"), "function arguments")
	rt.args = validUTF8(rt.args)
	return rt, err
}

// validUTF8 is s with each byte of invalid UTF-8 replaced by U+FFFD, as
// appendJSONString writes it, so that pieces cut from it stay within
// replayPiece bytes once written.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// cutPiece splits off the first piece of s (valid UTF-8) to replay: at
// most replayPiece bytes, cut at a rune boundary.
func cutPiece(s string) (piece, rest string) {
	if len(s) <= replayPiece {
		return s, ""
	}
	n := replayPiece
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], s[n:]
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = jsonesc.Append(dst, s)
	return append(dst, '"')
}
