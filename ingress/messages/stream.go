package messages

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// The Messages API event stream: message_start, then for each content
// block content_block_start, content_block_delta... and content_block_stop,
// then message_delta (stop reason, usage) and message_stop; ping and error
// events may come at any point.
// https://platform.claude.com/docs/en/build-with-claude/streaming

// Stream translates one stream of OpenAI chat chunks into Messages events.
// Content blocks are written one at a time, in order: text becomes a text
// block, each OpenAI tool call (by its index) a tool_use block whose id and
// name come from the call's first fragments and whose arguments stream as
// input_json_delta; a change from text to a tool call, or from one call to
// the next, closes the open block. A Stream is not safe for concurrent use.
type Stream struct {
	// InputTokens is the input_tokens message_start reports, when no
	// usage is known yet: set it to the gateway's estimate before the
	// first Chunk, or leave it 0. message_delta reports the real count.
	InputTokens int64

	model, id      string
	started, ended bool
	blocks         int    // content blocks started
	open           string // the open block: "", "text" or "tool"
	openTool       int    // the OpenAI index of the open tool call
	lastTool       int    // the last OpenAI tool call index seen
	tools          map[int]*streamTool
	anyTool        bool
	refused        bool
	finish         string
	stopSeq        string
	usage          *providers.Usage
	deltas         int64 // content deltas, the output estimate without usage
}

// streamTool is one OpenAI tool call.
type streamTool struct {
	block   int // its content block, -1 until it starts
	id      string
	name    string
	pending strings.Builder // arguments that came before its name
	closed  bool
}

// NewStream starts the translation of a stream for model (the model the
// client asked for) as message messageID (a new id when empty).
func NewStream(model, messageID string) *Stream {
	if messageID == "" {
		messageID = NewMessageID()
	}
	return &Stream{model: model, id: messageID, tools: map[int]*streamTool{}, openTool: -1, lastTool: -1}
}

// event is one SSE event whose data is v as JSON.
func event(out []byte, name string, v any) []byte {
	out = append(out, "event: "...)
	out = append(out, name...)
	out = append(out, "\ndata: "...)
	out = append(out, marshal(v)...)
	return append(out, "\n\n"...)
}

type messageStartEvent struct {
	Type    string           `json:"type"`
	Message messageStartBody `json:"message"`
}

type messageStartBody struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []any     `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        usageJSON `json:"usage"`
}

type blockStartEvent struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock any    `json:"content_block"`
}

type blockDeltaEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	Delta any    `json:"delta"`
}

type textDelta struct {
	Type string `json:"type"` // text_delta
	Text string `json:"text"`
}

type inputJSONDelta struct {
	Type        string `json:"type"` // input_json_delta
	PartialJSON string `json:"partial_json"`
}

type blockStopEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type messageDeltaEvent struct {
	Type  string `json:"type"`
	Delta struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage deltaUsage `json:"usage"`
}

// deltaUsage is message_delta's usage: the cumulative counts, all of them
// when the usage is known, else only output_tokens.
type deltaUsage struct {
	InputTokens              *int64 `json:"input_tokens,omitempty"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens             int64  `json:"output_tokens"`
}

type typeOnly struct {
	Type string `json:"type"`
}

// Start returns message_start the first time it is called (and nil after):
// the gateway may send it before the first chunk; Chunk and End send it
// when it was not sent.
func (s *Stream) Start() []byte {
	return s.start(nil)
}

func (s *Stream) start(out []byte) []byte {
	if s.started {
		return out
	}
	s.started = true
	u := usageJSON{InputTokens: s.InputTokens, OutputTokens: 1}
	if s.usage != nil {
		u = anthropicUsage(s.usage)
		u.OutputTokens = 1
	}
	return event(out, "message_start", messageStartEvent{Type: "message_start", Message: messageStartBody{
		ID: s.id, Type: "message", Role: "assistant", Model: s.model, Content: []any{}, Usage: u}})
}

// Chunk translates one OpenAI chunk (usage set when the chunk carried a
// usage object, else read from the chunk) into zero or more complete SSE
// events. A chunk that is not a JSON object, or an {"error":...} chunk, is
// an error. So is a fragment of a tool call whose block was closed
// (arguments of parallel calls interleaved), which the event stream cannot
// express; then out holds the events translated before it: write them,
// then Fail. After End or Fail, chunks are ignored.
func (s *Stream) Chunk(data []byte, usage *providers.Usage) (out []byte, err error) {
	if s.ended {
		return nil, nil
	}
	if !gjson.ValidBytes(data) {
		return nil, NewError(502, "the upstream sent a chunk that is not JSON")
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return nil, NewError(502, "the upstream sent a chunk that is not a JSON object")
	}
	if e := root.Get("error"); present(e) && !root.Get("choices").Exists() {
		msg := e.Get("message").String()
		if msg == "" {
			msg = "the upstream failed during the stream"
		}
		return nil, &Error{Status: 502, Type: TypeAPI, Message: msg}
	}
	if usage != nil {
		u := *usage
		s.usage = &u
	} else if u := chatUsage(root.Get("usage")); u != nil {
		s.usage = u
	}
	out = s.start(out)
	var choice gjson.Result
	for _, c := range root.Get("choices").Array() {
		if i := c.Get("index"); !i.Exists() || i.Int() == 0 {
			choice = c
			break
		}
	}
	if !choice.IsObject() {
		return out, nil
	}
	d := choice.Get("delta")
	if c := d.Get("content"); c.Type == gjson.String && c.Str != "" {
		out = s.text(out, c.Str)
	}
	if r := d.Get("refusal"); r.Type == gjson.String && r.Str != "" {
		s.refused = true
		out = s.text(out, r.Str)
	}
	for _, tc := range d.Get("tool_calls").Array() {
		if out, err = s.toolCall(out, tc); err != nil {
			return out, err
		}
	}
	if f := choice.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		s.finish = f.Str
	}
	if sr := choice.Get("stop_reason"); sr.Type == gjson.String && sr.Str != "" {
		s.stopSeq = sr.Str
	}
	return out, nil
}

// closeBlock closes the open block.
func (s *Stream) closeBlock(out []byte) []byte {
	switch s.open {
	case "":
		return out
	case "tool":
		s.tools[s.openTool].closed = true
		s.openTool = -1
	}
	s.open = ""
	return event(out, "content_block_stop", blockStopEvent{Type: "content_block_stop", Index: s.blocks - 1})
}

func (s *Stream) text(out []byte, text string) []byte {
	if s.open != "text" {
		out = s.closeBlock(out)
		s.open = "text"
		s.blocks++
		out = event(out, "content_block_start", blockStartEvent{Type: "content_block_start", Index: s.blocks - 1,
			ContentBlock: textBlock{Type: "text", Text: ""}})
	}
	s.deltas++
	return event(out, "content_block_delta", blockDeltaEvent{Type: "content_block_delta", Index: s.blocks - 1,
		Delta: textDelta{Type: "text_delta", Text: text}})
}

// toolCall translates one fragment of a tool call.
func (s *Stream) toolCall(out []byte, tc gjson.Result) ([]byte, error) {
	id := tc.Get("id").String()
	fn := tc.Get("function")
	name := fn.Get("name").String()
	var args string
	switch a := fn.Get("arguments"); a.Type {
	case gjson.String:
		args = a.Str
	case gjson.JSON: // an object, from backends that send it whole
		args = a.Raw
	}
	// The index says which call a fragment continues; without one, a
	// fragment with a new id starts the next call.
	idx := s.lastTool
	if i := tc.Get("index"); i.Type == gjson.Number {
		idx = int(i.Int())
	} else if t := s.tools[idx]; idx < 0 || (id != "" && t != nil && t.id != "" && t.id != id) {
		idx++
	}
	s.lastTool = idx
	t := s.tools[idx]
	if t == nil {
		t = &streamTool{block: -1}
		s.tools[idx] = t
	}
	if t.closed {
		return out, &Error{Status: 502, Type: TypeAPI, Message: fmt.Sprintf(
			"the upstream interleaved the arguments of parallel tool calls (call %d continued after call %d started), which this API cannot stream", idx, s.openTool)}
	}
	if t.id == "" {
		t.id = id
	}
	if t.name == "" {
		t.name = name
	}
	if t.block < 0 {
		if t.name == "" {
			// Wait for the name, which a tool_use block starts with.
			t.pending.WriteString(args)
			return out, nil
		}
		out = s.startTool(out, idx, t)
	} else if s.open != "tool" || s.openTool != idx {
		return out, &Error{Status: 502, Type: TypeAPI, Message: fmt.Sprintf(
			"the upstream sent arguments for tool call %d after its block closed", idx)}
	}
	if args != "" {
		out = s.args(out, args)
	}
	return out, nil
}

// startTool starts the tool_use block of call idx, closing the open block,
// and sends the arguments that came before the name.
func (s *Stream) startTool(out []byte, idx int, t *streamTool) []byte {
	out = s.closeBlock(out)
	if t.id == "" {
		t.id = newID("toolu_")
	}
	s.open, s.openTool, s.anyTool = "tool", idx, true
	t.block = s.blocks
	s.blocks++
	out = event(out, "content_block_start", blockStartEvent{Type: "content_block_start", Index: t.block,
		ContentBlock: toolUseBlock{Type: "tool_use", ID: t.id, Name: t.name, Input: []byte("{}")}})
	if t.pending.Len() > 0 {
		out = s.args(out, t.pending.String())
		t.pending.Reset()
	}
	return out
}

func (s *Stream) args(out []byte, args string) []byte {
	s.deltas++
	return event(out, "content_block_delta", blockDeltaEvent{Type: "content_block_delta", Index: s.blocks - 1,
		Delta: inputJSONDelta{Type: "input_json_delta", PartialJSON: args}})
}

// End returns the events that close a stream that ended cleanly: the open
// block's content_block_stop (tool calls still waiting for a name are
// started first, nameless), message_delta with the stop reason and the
// usage, and message_stop. usage is the settled usage; nil takes the
// usage a chunk carried, and without one message_delta reports only
// output_tokens, estimated as the number of content deltas.
func (s *Stream) End(usage *providers.Usage) []byte {
	if s.ended {
		return nil
	}
	out := s.start(nil)
	var waiting []int
	for idx, t := range s.tools {
		if t.block < 0 {
			waiting = append(waiting, idx)
		}
	}
	sort.Ints(waiting)
	for _, idx := range waiting {
		out = s.startTool(out, idx, s.tools[idx])
	}
	out = s.closeBlock(out)
	s.ended = true
	if usage == nil {
		usage = s.usage
	}
	var md messageDeltaEvent
	md.Type = "message_delta"
	md.Delta.StopReason = stopReason(s.finish, s.anyTool, s.refused, s.stopSeq)
	if md.Delta.StopReason == stopStopSequence {
		seq := s.stopSeq
		md.Delta.StopSequence = &seq
	}
	if usage != nil {
		u := anthropicUsage(usage)
		md.Usage = deltaUsage{InputTokens: &u.InputTokens, CacheCreationInputTokens: &u.CacheCreationInputTokens,
			CacheReadInputTokens: &u.CacheReadInputTokens, OutputTokens: u.OutputTokens}
	} else {
		md.Usage.OutputTokens = s.deltas
	}
	out = event(out, "message_delta", md)
	return event(out, "message_stop", typeOnly{Type: "message_stop"})
}

// Fail returns the error event for a stream that failed after it started:
// event: error, data {"type":"error","error":{"type":typ,"message":...}}.
// The stream is over then; nil after End or an earlier Fail.
func (s *Stream) Fail(typ, message string) []byte {
	if s.ended {
		return nil
	}
	s.ended = true
	out := append([]byte("event: error\ndata: "), ErrorBody(typ, message)...)
	return append(out, "\n\n"...)
}

// Ping is the ping event Anthropic sends to keep a stream alive.
func Ping() []byte { return []byte("event: ping\ndata: {\"type\": \"ping\"}\n\n") }
