// Package messages is the Anthropic Messages API ingress (POST /v1/messages
// and /v1/messages/count_tokens) as pure translation: a Messages request is
// parsed and validated (Parse), rendered as the OpenAI chat-completions body
// the gateway's pipeline runs on (Request.ToChat), and the OpenAI answer is
// rendered back as a Messages response (FromChat) or as Messages stream
// events (Stream). Errors are Anthropic-shaped (Error, ErrorBody).
//
// What cannot be translated faithfully is refused with a 400 naming the
// field (server tools, PDF documents, containers, MCP servers); what only
// tunes Anthropic's own serving is dropped and listed by Request.Notes
// (thinking, top_k, cache_control, service_tier, effort).
//
// https://platform.claude.com/docs/en/api/messages/create
package messages

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Request is a parsed, validated Messages request.
type Request struct {
	// Model is the model the client asked for.
	Model string
	// Stream is true for a streaming request.
	Stream bool
	// MaxTokens is max_tokens; 0 for a count_tokens request without it.
	MaxTokens int64
	// Thinking is true when the client asked for extended thinking
	// (thinking type enabled or adaptive), which is not translated.
	Thinking bool

	system      []string // the system prompt's text blocks
	turns       []turn   // consecutive messages of one role merged
	tools       []tool
	toolChoice  *toolChoice
	stop        []string
	temperature json.RawMessage // the client's number, as written
	topP        json.RawMessage
	userID      string
	schema      json.RawMessage // output_config.format json_schema
	notes       map[string]bool
}

// turn is a user or assistant turn: one message, or several consecutive
// messages of the same role, which the Messages API combines.
type turn struct {
	role   string
	index  int // the index of its first message, for error messages
	blocks []block
}

// block is a content block kept for translation: text, image, tool_use or
// tool_result. Documents are text by then; thinking blocks are gone.
type block struct {
	kind      string // text, image, tool_use, tool_result
	text      string
	url       string // image: a data: URL or an http(s) URL
	id        string // tool_use id; tool_result tool_use_id
	name      string
	input     json.RawMessage // tool_use input: a compact JSON object
	isError   bool
	content   []block // tool_result: text and image blocks
	toolIndex int     // tool_result: the index of its message, for errors
}

type tool struct {
	name        string
	description string
	schema      json.RawMessage
	strict      bool
}

type toolChoice struct {
	typ        string // auto, any, tool, none
	name       string
	noParallel bool
}

// Notes, in the order Notes lists them.
const (
	NoteThinking     = "thinking"
	NoteTopK         = "top_k"
	NoteCacheControl = "cache_control"
	NoteServiceTier  = "service_tier"
	NoteEffort       = "effort"
)

var noteOrder = []string{NoteThinking, NoteTopK, NoteCacheControl, NoteServiceTier, NoteEffort}

// Notes lists what the translation dropped, for a response header:
// thinking (the thinking parameter, or thinking blocks of earlier turns),
// top_k, cache_control (prompt caching markers), service_tier and effort
// (output_config.effort).
func (r *Request) Notes() []string {
	var out []string
	for _, n := range noteOrder {
		if r.notes[n] {
			out = append(out, n)
		}
	}
	return out
}

// Parse validates a Messages request body: the type and range of every
// documented field. Unknown top-level fields are ignored. Errors are
// *Error values (400 invalid_request_error) whose message names the field.
func Parse(body []byte) (*Request, error) { return parse(body, true) }

// ParseCountTokens validates a count_tokens request body: a Messages
// request whose max_tokens may be missing.
func ParseCountTokens(body []byte) (*Request, error) { return parse(body, false) }

// CountTokensBody is the count_tokens answer: {"input_tokens":n}.
func CountTokensBody(n int64) []byte {
	return marshal(struct {
		InputTokens int64 `json:"input_tokens"`
	}{n})
}

type parser struct {
	r *Request
}

func (p *parser) note(n string) {
	if p.r.notes == nil {
		p.r.notes = map[string]bool{}
	}
	p.r.notes[n] = true
}

// present is true for a field that is there and not null; the API takes an
// optional field's null as its absence.
func present(v gjson.Result) bool { return v.Exists() && v.Type != gjson.Null }

func isString(v gjson.Result) bool { return v.Type == gjson.String }

func isBool(v gjson.Result) bool { return v.Type == gjson.True || v.Type == gjson.False }

func at(path string, key any) string {
	if path == "" {
		return fmt.Sprint(key)
	}
	return fmt.Sprintf("%s.%v", path, key)
}

// str reads a required string.
func str(v gjson.Result, path string) (string, error) {
	if !v.Exists() {
		return "", invalid(path, "Field required")
	}
	if !isString(v) {
		return "", invalid(path, "must be a string")
	}
	return v.Str, nil
}

// optStr reads an optional string.
func optStr(v gjson.Result, path string) (string, error) {
	if !present(v) {
		return "", nil
	}
	if !isString(v) {
		return "", invalid(path, "must be a string")
	}
	return v.Str, nil
}

func optBool(v gjson.Result, path string) (bool, error) {
	if !present(v) {
		return false, nil
	}
	if !isBool(v) {
		return false, invalid(path, "must be a boolean")
	}
	return v.Bool(), nil
}

// integer reads an integer of at least min. A number with a zero fraction
// (1024.0) is taken, as the API takes it.
func integer(v gjson.Result, path string, min int64) (int64, error) {
	if v.Type != gjson.Number {
		return 0, invalid(path, "must be an integer")
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(v.Raw, 64)
		if ferr != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, invalid(path, "must be an integer")
		}
		n = int64(f)
	}
	if n < min {
		return 0, invalid(path, "must be an integer of at least %d, got %d", min, n)
	}
	return n, nil
}

// unit reads an optional number in [0, 1], kept as the client wrote it.
func unit(v gjson.Result, path string) (json.RawMessage, error) {
	if !present(v) {
		return nil, nil
	}
	if v.Type != gjson.Number {
		return nil, invalid(path, "must be a number")
	}
	if f := v.Float(); !(f >= 0 && f <= 1) {
		return nil, invalid(path, "must be between 0 and 1, got %s", v.Raw)
	}
	return json.RawMessage(v.Raw), nil
}

// object reads a JSON object compactly, as raw JSON.
func object(v gjson.Result, path string) (json.RawMessage, error) {
	if !v.Exists() {
		return nil, invalid(path, "Field required")
	}
	if !v.IsObject() {
		return nil, invalid(path, "must be an object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(v.Raw)); err != nil {
		return nil, invalid(path, "must be an object")
	}
	return buf.Bytes(), nil
}

func parse(body []byte, messagesCall bool) (*Request, error) {
	if !gjson.ValidBytes(body) {
		return nil, invalid("", "the request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, invalid("", "the request body must be a JSON object")
	}
	p := &parser{r: &Request{}}
	r := p.r
	var err error

	model := root.Get("model")
	if r.Model, err = str(model, "model"); err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, invalid("model", "must not be empty")
	}

	if mt := root.Get("max_tokens"); messagesCall || present(mt) {
		if !mt.Exists() {
			return nil, invalid("max_tokens", "Field required")
		}
		if r.MaxTokens, err = integer(mt, "max_tokens", 1); err != nil {
			return nil, err
		}
	}

	if err := p.system(root.Get("system")); err != nil {
		return nil, err
	}
	if err := p.messages(root.Get("messages")); err != nil {
		return nil, err
	}
	if len(r.chatMessages()) == 0 {
		// Only an empty prefill, or assistant turns of thinking blocks.
		return nil, invalid("messages", "must hold at least one message with content")
	}
	if err := p.tools(root.Get("tools")); err != nil {
		return nil, err
	}
	if err := p.toolChoice(root.Get("tool_choice")); err != nil {
		return nil, err
	}

	if ss := root.Get("stop_sequences"); present(ss) {
		if !ss.IsArray() {
			return nil, invalid("stop_sequences", "must be an array of strings")
		}
		for i, s := range ss.Array() {
			if !isString(s) {
				return nil, invalid(at("stop_sequences", i), "must be a string")
			}
			r.stop = append(r.stop, s.Str)
		}
	}
	if r.Stream, err = optBool(root.Get("stream"), "stream"); err != nil {
		return nil, err
	}
	if r.temperature, err = unit(root.Get("temperature"), "temperature"); err != nil {
		return nil, err
	}
	if r.topP, err = unit(root.Get("top_p"), "top_p"); err != nil {
		return nil, err
	}
	if tk := root.Get("top_k"); present(tk) {
		if _, err := integer(tk, "top_k", 0); err != nil {
			return nil, err
		}
		p.note(NoteTopK)
	}
	if md := root.Get("metadata"); present(md) {
		if !md.IsObject() {
			return nil, invalid("metadata", "must be an object")
		}
		if r.userID, err = optStr(md.Get("user_id"), "metadata.user_id"); err != nil {
			return nil, err
		}
	}
	if err := p.thinking(root.Get("thinking")); err != nil {
		return nil, err
	}
	if st := root.Get("service_tier"); present(st) {
		s, err := optStr(st, "service_tier")
		if err != nil {
			return nil, err
		}
		if s != "auto" && s != "standard_only" {
			return nil, invalid("service_tier", "must be auto or standard_only, got %q", s)
		}
		p.note(NoteServiceTier)
	}
	if err := p.outputConfig(root.Get("output_config")); err != nil {
		return nil, err
	}
	if err := p.cacheControl(root.Get("cache_control"), "cache_control"); err != nil {
		return nil, err
	}
	if c := root.Get("container"); present(c) {
		return nil, invalid("container", "code execution containers are not supported by this gateway")
	}
	if m := root.Get("mcp_servers"); present(m) && !(m.IsArray() && len(m.Array()) == 0) {
		return nil, invalid("mcp_servers", "MCP servers (the MCP connector) are not supported by this gateway; connect MCP tools on the client side")
	}
	return r, nil
}

func (p *parser) system(v gjson.Result) error {
	if !present(v) {
		return nil
	}
	if isString(v) {
		if v.Str != "" {
			p.r.system = []string{v.Str}
		}
		return nil
	}
	if !v.IsArray() {
		return invalid("system", "must be a string or an array of text blocks")
	}
	for i, b := range v.Array() {
		path := at("system", i)
		if !b.IsObject() {
			return invalid(path, "must be a text block")
		}
		typ, err := str(b.Get("type"), at(path, "type"))
		if err != nil {
			return err
		}
		if typ != "text" {
			return invalid(at(path, "type"), "system blocks must be of type text, not %q", typ)
		}
		text, err := str(b.Get("text"), at(path, "text"))
		if err != nil {
			return err
		}
		if err := p.cacheControl(b.Get("cache_control"), at(path, "cache_control")); err != nil {
			return err
		}
		if text != "" {
			p.r.system = append(p.r.system, text)
		}
	}
	return nil
}

// cacheControl checks a cache_control marker, which is dropped.
func (p *parser) cacheControl(v gjson.Result, path string) error {
	if !present(v) {
		return nil
	}
	if !v.IsObject() {
		return invalid(path, "must be an object")
	}
	if typ, err := str(v.Get("type"), at(path, "type")); err != nil {
		return err
	} else if typ != "ephemeral" {
		return invalid(at(path, "type"), "must be ephemeral, got %q", typ)
	}
	p.note(NoteCacheControl)
	return nil
}

func (p *parser) messages(v gjson.Result) error {
	if !v.Exists() {
		return invalid("messages", "Field required")
	}
	if !v.IsArray() {
		return invalid("messages", "must be an array of messages")
	}
	msgs := v.Array()
	if len(msgs) == 0 {
		return invalid("messages", "must hold at least one message")
	}
	for i, m := range msgs {
		path := at("messages", i)
		if !m.IsObject() {
			return invalid(path, "must be an object with a role and content")
		}
		role, err := str(m.Get("role"), at(path, "role"))
		if err != nil {
			return err
		}
		if role != "user" && role != "assistant" {
			return invalid(at(path, "role"), "must be user or assistant, got %q", role)
		}
		blocks, err := p.content(m.Get("content"), at(path, "content"), role, i, i == len(msgs)-1)
		if err != nil {
			return err
		}
		if n := len(p.r.turns); n > 0 && p.r.turns[n-1].role == role {
			p.r.turns[n-1].blocks = append(p.r.turns[n-1].blocks, blocks...)
			continue
		}
		p.r.turns = append(p.r.turns, turn{role: role, index: i, blocks: blocks})
	}
	return p.pairToolCalls()
}

// pairToolCalls checks what the Messages API checks and OpenAI's format
// needs: the turn after an assistant turn with tool_use blocks holds a
// tool_result for each, and every tool_result answers a tool_use of the
// assistant turn just before it.
func (p *parser) pairToolCalls() error {
	for k, t := range p.r.turns {
		if t.role != "user" {
			continue
		}
		asked := map[string]bool{}
		if k > 0 {
			for _, b := range p.r.turns[k-1].blocks {
				if b.kind == "tool_use" {
					asked[b.id] = true
				}
			}
		}
		for _, b := range t.blocks {
			if b.kind != "tool_result" {
				continue
			}
			if !asked[b.id] {
				return invalid(at("messages", b.toolIndex), "unexpected tool_use_id found in tool_result blocks: %s. Each tool_result block must have a corresponding tool_use block in the previous message", b.id)
			}
			delete(asked, b.id)
		}
		if len(asked) > 0 {
			var missing []string
			for _, b := range p.r.turns[k-1].blocks {
				if b.kind == "tool_use" && asked[b.id] {
					missing = append(missing, b.id)
				}
			}
			return invalid(at("messages", t.index), "tool_use ids were found without tool_result blocks immediately after: %s. Each tool_use block must have a corresponding tool_result block in the next message", strings.Join(missing, ", "))
		}
	}
	return nil
}

// content reads a message's content: a string, or an array of blocks that
// may be empty only in a final assistant message.
func (p *parser) content(v gjson.Result, path, role string, index int, last bool) ([]block, error) {
	if !v.Exists() {
		return nil, invalid(path, "Field required")
	}
	if isString(v) {
		return []block{{kind: "text", text: v.Str}}, nil
	}
	if !v.IsArray() {
		return nil, invalid(path, "must be a string or an array of content blocks")
	}
	items := v.Array()
	if len(items) == 0 && !(last && role == "assistant") {
		return nil, invalid(path, "must not be empty")
	}
	var out []block
	for k, b := range items {
		bs, err := p.block(b, at(path, k), role, index)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// onlyIn is the error for a block in the wrong role's message.
func onlyIn(path, typ, role string) error {
	return invalid(at(path, "type"), "%s blocks are only allowed in %s messages", typ, role)
}

// block reads one content block of a role's message.
func (p *parser) block(b gjson.Result, path, role string, index int) ([]block, error) {
	if !b.IsObject() {
		return nil, invalid(path, "must be a content block object")
	}
	typ, err := str(b.Get("type"), at(path, "type"))
	if err != nil {
		return nil, err
	}
	if err := p.cacheControl(b.Get("cache_control"), at(path, "cache_control")); err != nil {
		return nil, err
	}
	switch typ {
	case "text":
		text, err := str(b.Get("text"), at(path, "text"))
		if err != nil {
			return nil, err
		}
		return []block{{kind: "text", text: text}}, nil
	case "image":
		if role != "user" {
			return nil, onlyIn(path, typ, "user")
		}
		url, err := image(b, path)
		if err != nil {
			return nil, err
		}
		return []block{{kind: "image", url: url}}, nil
	case "document":
		if role != "user" {
			return nil, onlyIn(path, typ, "user")
		}
		return p.document(b, path)
	case "tool_result":
		if role != "user" {
			return nil, onlyIn(path, typ, "user")
		}
		return p.toolResult(b, path, index)
	case "tool_use":
		if role != "assistant" {
			return nil, onlyIn(path, typ, "assistant")
		}
		id, err := str(b.Get("id"), at(path, "id"))
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, invalid(at(path, "id"), "must not be empty")
		}
		name, err := str(b.Get("name"), at(path, "name"))
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, invalid(at(path, "name"), "must not be empty")
		}
		input, err := object(b.Get("input"), at(path, "input"))
		if err != nil {
			return nil, err
		}
		return []block{{kind: "tool_use", id: id, name: name, input: input}}, nil
	case "thinking", "redacted_thinking":
		if role != "assistant" {
			return nil, onlyIn(path, typ, "assistant")
		}
		field := "thinking"
		if typ == "redacted_thinking" {
			field = "data"
		}
		if _, err := optStr(b.Get(field), at(path, field)); err != nil {
			return nil, err
		}
		// Thinking of earlier turns is signed for Anthropic's models
		// only; another model cannot use it.
		p.note(NoteThinking)
		return nil, nil
	}
	return nil, invalid(at(path, "type"), "content blocks of type %q are not supported by this gateway", typ)
}

var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// image reads an image block's source into a URL: a data: URL for base64
// data, or the http(s) URL.
func image(b gjson.Result, path string) (string, error) {
	src := b.Get("source")
	path = at(path, "source")
	if !src.Exists() {
		return "", invalid(path, "Field required")
	}
	if !src.IsObject() {
		return "", invalid(path, "must be an object")
	}
	typ, err := str(src.Get("type"), at(path, "type"))
	if err != nil {
		return "", err
	}
	switch typ {
	case "base64":
		mt, err := str(src.Get("media_type"), at(path, "media_type"))
		if err != nil {
			return "", err
		}
		if !imageTypes[mt] {
			return "", invalid(at(path, "media_type"), "must be image/jpeg, image/png, image/gif or image/webp, got %q", mt)
		}
		data, err := str(src.Get("data"), at(path, "data"))
		if err != nil {
			return "", err
		}
		if data == "" {
			return "", invalid(at(path, "data"), "must not be empty")
		}
		if _, err := io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))); err != nil {
			return "", invalid(at(path, "data"), "is not valid base64")
		}
		if strings.ContainsAny(data, "\r\n") {
			data = strings.NewReplacer("\r", "", "\n", "").Replace(data)
		}
		return "data:" + mt + ";base64," + data, nil
	case "url":
		u, err := str(src.Get("url"), at(path, "url"))
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return "", invalid(at(path, "url"), "must be an http(s) URL")
		}
		return u, nil
	case "file":
		return "", invalid(at(path, "type"), "image sources of type file (the Files API) are not supported by this gateway; send the image as base64 or a URL")
	}
	return "", invalid(at(path, "type"), "must be base64 or url, got %q", typ)
}

// document reads a document block whose source is text (plain text, or
// content blocks) as text: its title, if any, then a blank line and the
// text. PDF sources are refused: the chat format has no counterpart every
// backend reads.
func (p *parser) document(b gjson.Result, path string) ([]block, error) {
	title, err := optStr(b.Get("title"), at(path, "title"))
	if err != nil {
		return nil, err
	}
	if _, err := optStr(b.Get("context"), at(path, "context")); err != nil {
		return nil, err
	}
	src := b.Get("source")
	spath := at(path, "source")
	if !src.Exists() {
		return nil, invalid(spath, "Field required")
	}
	if !src.IsObject() {
		return nil, invalid(spath, "must be an object")
	}
	typ, err := str(src.Get("type"), at(spath, "type"))
	if err != nil {
		return nil, err
	}
	var out []block
	switch typ {
	case "text":
		data, err := str(src.Get("data"), at(spath, "data"))
		if err != nil {
			return nil, err
		}
		if mt, err := optStr(src.Get("media_type"), at(spath, "media_type")); err != nil {
			return nil, err
		} else if mt != "" && mt != "text/plain" {
			return nil, invalid(at(spath, "media_type"), "must be text/plain, got %q", mt)
		}
		out = []block{{kind: "text", text: data}}
	case "content":
		c := src.Get("content")
		cpath := at(spath, "content")
		switch {
		case isString(c):
			out = []block{{kind: "text", text: c.Str}}
		case c.IsArray():
			for k, cb := range c.Array() {
				bpath := at(cpath, k)
				if !cb.IsObject() {
					return nil, invalid(bpath, "must be a content block object")
				}
				ctyp, err := str(cb.Get("type"), at(bpath, "type"))
				if err != nil {
					return nil, err
				}
				if err := p.cacheControl(cb.Get("cache_control"), at(bpath, "cache_control")); err != nil {
					return nil, err
				}
				switch ctyp {
				case "text":
					text, err := str(cb.Get("text"), at(bpath, "text"))
					if err != nil {
						return nil, err
					}
					out = append(out, block{kind: "text", text: text})
				case "image":
					url, err := image(cb, bpath)
					if err != nil {
						return nil, err
					}
					out = append(out, block{kind: "image", url: url})
				default:
					return nil, invalid(at(bpath, "type"), "document content blocks must be text or image, not %q", ctyp)
				}
			}
		default:
			return nil, invalid(cpath, "must be a string or an array of content blocks")
		}
	case "base64", "url", "file":
		return nil, invalid(at(spath, "type"), "document sources of type %q (PDF and file documents) are not supported by this gateway; send the document's text as a text source", typ)
	default:
		return nil, invalid(at(spath, "type"), "must be text, content, base64, url or file, got %q", typ)
	}
	if title != "" {
		if len(out) > 0 && out[0].kind == "text" {
			out[0].text = title + "\n\n" + out[0].text
		} else {
			out = append([]block{{kind: "text", text: title}}, out...)
		}
	}
	return out, nil
}

// toolResult reads a tool_result block: its content is a string, or text,
// image and (text) document blocks.
func (p *parser) toolResult(b gjson.Result, path string, index int) ([]block, error) {
	id, err := str(b.Get("tool_use_id"), at(path, "tool_use_id"))
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalid(at(path, "tool_use_id"), "must not be empty")
	}
	isErr, err := optBool(b.Get("is_error"), at(path, "is_error"))
	if err != nil {
		return nil, err
	}
	res := block{kind: "tool_result", id: id, isError: isErr, toolIndex: index}
	c := b.Get("content")
	cpath := at(path, "content")
	switch {
	case !present(c):
	case isString(c):
		res.content = []block{{kind: "text", text: c.Str}}
	case c.IsArray():
		for k, cb := range c.Array() {
			bpath := at(cpath, k)
			if !cb.IsObject() {
				return nil, invalid(bpath, "must be a content block object")
			}
			ctyp, err := str(cb.Get("type"), at(bpath, "type"))
			if err != nil {
				return nil, err
			}
			switch ctyp {
			case "text", "image", "document":
				bs, err := p.block(cb, bpath, "user", index)
				if err != nil {
					return nil, err
				}
				res.content = append(res.content, bs...)
			default:
				return nil, invalid(at(bpath, "type"), "tool_result content blocks must be text, image or document, not %q", ctyp)
			}
		}
	default:
		return nil, invalid(cpath, "must be a string or an array of content blocks")
	}
	return []block{res}, nil
}

// validToolName is Anthropic's ^[a-zA-Z0-9_-]{1,128}$.
func validToolName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (p *parser) tools(v gjson.Result) error {
	if !present(v) {
		return nil
	}
	if !v.IsArray() {
		return invalid("tools", "must be an array of tools")
	}
	seen := map[string]bool{}
	for i, t := range v.Array() {
		path := at("tools", i)
		if !t.IsObject() {
			return invalid(path, "must be a tool object")
		}
		typ, err := optStr(t.Get("type"), at(path, "type"))
		if err != nil {
			return err
		}
		if typ != "" && typ != "custom" {
			return invalid(path, "tools of type %q (Anthropic server and built-in tools) are not supported by this gateway; only custom tools with an input_schema can be translated", typ)
		}
		name, err := str(t.Get("name"), at(path, "name"))
		if err != nil {
			return err
		}
		if !validToolName(name) {
			return invalid(at(path, "name"), "must match ^[a-zA-Z0-9_-]{1,128}$, got %q", name)
		}
		if seen[name] {
			return invalid(at(path, "name"), "tool names must be unique; %q appears twice", name)
		}
		seen[name] = true
		desc, err := optStr(t.Get("description"), at(path, "description"))
		if err != nil {
			return err
		}
		schema, err := object(t.Get("input_schema"), at(path, "input_schema"))
		if err != nil {
			return err
		}
		if st := gjson.GetBytes(schema, "type"); st.Exists() && st.String() != "object" {
			return invalid(at(path, "input_schema.type"), "must be object")
		}
		strict, err := optBool(t.Get("strict"), at(path, "strict"))
		if err != nil {
			return err
		}
		if err := p.cacheControl(t.Get("cache_control"), at(path, "cache_control")); err != nil {
			return err
		}
		p.r.tools = append(p.r.tools, tool{name: name, description: desc, schema: schema, strict: strict})
	}
	return nil
}

func (p *parser) toolChoice(v gjson.Result) error {
	if !present(v) {
		return nil
	}
	if !v.IsObject() {
		return invalid("tool_choice", "must be an object")
	}
	typ, err := str(v.Get("type"), "tool_choice.type")
	if err != nil {
		return err
	}
	tc := &toolChoice{typ: typ}
	switch typ {
	case "auto", "any", "none":
	case "tool":
		if tc.name, err = str(v.Get("name"), "tool_choice.name"); err != nil {
			return err
		}
		found := false
		for _, t := range p.r.tools {
			found = found || t.name == tc.name
		}
		if !found {
			return invalid("tool_choice.name", "no tool named %q in tools", tc.name)
		}
	default:
		return invalid("tool_choice.type", "must be auto, any, tool or none, got %q", typ)
	}
	if tc.noParallel, err = optBool(v.Get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use"); err != nil {
		return err
	}
	p.r.toolChoice = tc
	return nil
}

func (p *parser) thinking(v gjson.Result) error {
	if !present(v) {
		return nil
	}
	if !v.IsObject() {
		return invalid("thinking", "must be an object")
	}
	typ, err := str(v.Get("type"), "thinking.type")
	if err != nil {
		return err
	}
	switch typ {
	case "enabled":
		bt := v.Get("budget_tokens")
		if !bt.Exists() {
			return invalid("thinking.budget_tokens", "Field required")
		}
		if _, err := integer(bt, "thinking.budget_tokens", 1024); err != nil {
			return err
		}
	case "adaptive", "between_tools":
	case "disabled":
		return nil
	default:
		return invalid("thinking.type", "must be enabled, adaptive, between_tools or disabled, got %q", typ)
	}
	p.r.Thinking = true
	p.note(NoteThinking)
	return nil
}

// outputConfig reads output_config: a json_schema format becomes
// response_format; effort is dropped.
func (p *parser) outputConfig(v gjson.Result) error {
	if !present(v) {
		return nil
	}
	if !v.IsObject() {
		return invalid("output_config", "must be an object")
	}
	if e := v.Get("effort"); present(e) {
		if !isString(e) {
			return invalid("output_config.effort", "must be a string")
		}
		p.note(NoteEffort)
	}
	f := v.Get("format")
	if !present(f) {
		return nil
	}
	if !f.IsObject() {
		return invalid("output_config.format", "must be an object")
	}
	typ, err := str(f.Get("type"), "output_config.format.type")
	if err != nil {
		return err
	}
	if typ != "json_schema" {
		return invalid("output_config.format.type", "must be json_schema, got %q", typ)
	}
	p.r.schema, err = object(f.Get("schema"), "output_config.format.schema")
	return err
}
