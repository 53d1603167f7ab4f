package responses

import (
	"bytes"
	"errors"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// Stream translates one stream of OpenAI chat chunks into the Responses
// event stream: Server-Sent Events "event: <type>\ndata: <json>\n\n", each
// with its type and a sequence_number that counts from 0.
//
// Start gives response.created and response.in_progress. The assistant's
// text opens a message item (response.output_item.added,
// response.content_part.added) and streams as response.output_text.delta
// (a refusal as response.refusal.delta, in a part of its own); each tool
// call opens a function_call item (response.output_item.added) whose
// arguments stream as response.function_call_arguments.delta. An item is
// closed (response.output_text.done, response.content_part.done,
// response.function_call_arguments.done, response.output_item.done) when
// the next one opens, as OpenAI streams them one after the other, or at
// the end. End closes what is open and gives response.completed, or
// response.incomplete when the model stopped at the token limit or a
// content filter, with the whole Response and its usage; Fail gives
// response.failed. Nothing follows the terminal event: no "[DONE]".
//
// A Stream is used by one goroutine at a time.
type Stream struct {
	r       *Request
	base    responseObject
	seq     int64
	started bool
	done    bool
	buf     bytes.Buffer

	items     []*streamItem
	msg       *streamItem           // the open message, nil when none
	call      *streamItem           // the open function call, nil when none
	calls     map[int64]*streamItem // function calls by chat tool-call index
	finish    string
	usage     *providers.Usage
	chatUsage string // the last usage object the chunks carried, as JSON
}

type streamItem struct {
	index  int
	id     string
	kind   string // message or function_call
	status string // in_progress until closed
	parts  []*streamPart
	callID string
	name   string
	args   strings.Builder
}

type streamPart struct {
	kind string // output_text or refusal
	text strings.Builder
	done bool
}

// NewStream starts translating the stream of respID, created at created
// (Unix seconds), for r.
func NewStream(r *Request, respID string, created int64) *Stream {
	return &Stream{r: r, base: r.response(respID, created), calls: map[int64]*streamItem{}}
}

// Events.
type responseEvent struct {
	Type           string         `json:"type"`
	SequenceNumber int64          `json:"sequence_number"`
	Response       responseObject `json:"response"`
}

type itemEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	OutputIndex    int    `json:"output_index"`
	Item           Item   `json:"item"`
}

type partEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	ContentIndex   int    `json:"content_index"`
	Part           any    `json:"part"`
}

type textDeltaEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	ContentIndex   int    `json:"content_index"`
	Delta          string `json:"delta"`
	Logprobs       []any  `json:"logprobs"`
}

type textDoneEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	ContentIndex   int    `json:"content_index"`
	Text           string `json:"text"`
	Logprobs       []any  `json:"logprobs"`
}

type refusalDeltaEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	ContentIndex   int    `json:"content_index"`
	Delta          string `json:"delta"`
}

type refusalDoneEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	ContentIndex   int    `json:"content_index"`
	Refusal        string `json:"refusal"`
}

type argsDeltaEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	Delta          string `json:"delta"`
}

type argsDoneEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	Name           string `json:"name"`
	Arguments      string `json:"arguments"`
}

// emit writes one event; seq is the event's sequence number, which the
// event's struct already carries.
func (s *Stream) emit(typ string, ev any) {
	b, err := marshal(ev)
	if err != nil { // the package's own types always marshal
		return
	}
	s.seq++
	s.buf.WriteString("event: ")
	s.buf.WriteString(typ)
	s.buf.WriteString("\ndata: ")
	s.buf.Write(b)
	s.buf.WriteString("\n\n")
}

func (s *Stream) take() []byte {
	if s.buf.Len() == 0 {
		return nil
	}
	out := bytes.Clone(s.buf.Bytes())
	s.buf.Reset()
	return out
}

// Start returns response.created and response.in_progress, once.
func (s *Stream) Start() []byte {
	s.start()
	return s.take()
}

func (s *Stream) start() {
	if s.started {
		return
	}
	s.started = true
	s.emit("response.created", responseEvent{Type: "response.created", SequenceNumber: s.seq, Response: s.base})
	s.emit("response.in_progress", responseEvent{Type: "response.in_progress", SequenceNumber: s.seq, Response: s.base})
}

// errNotChunk is Chunk's error for data that is not JSON.
var errNotChunk = errors.New("responses: a stream chunk is not JSON")

// Chunk translates one chat chunk (its first choice), usage set when the
// chunk carried usage. It returns the events to send, none for a chunk
// that adds nothing (the role, a finish reason, usage).
func (s *Stream) Chunk(data []byte, usage *providers.Usage) ([]byte, error) {
	if s.done {
		return nil, nil
	}
	s.start()
	if usage != nil {
		u := *usage
		s.usage = &u
	}
	if !gjson.ValidBytes(data) {
		return s.take(), errNotChunk
	}
	root := gjson.ParseBytes(data)
	if u := root.Get("usage"); u.IsObject() {
		s.chatUsage = u.Raw
	}
	choice := root.Get("choices.0")
	delta := choice.Get("delta")
	if c := delta.Get("content"); c.Type == gjson.String && c.Str != "" {
		s.text(partOutputText, c.Str)
	}
	if c := delta.Get("refusal"); c.Type == gjson.String && c.Str != "" {
		s.text(partRefusal, c.Str)
	}
	if tcs := delta.Get("tool_calls"); tcs.IsArray() {
		tcs.ForEach(func(_, tc gjson.Result) bool {
			if tc.IsObject() {
				s.toolCall(tc)
			}
			return true
		})
	}
	if f := choice.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		s.finish = f.Str
	}
	return s.take(), nil
}

// text appends a text or refusal delta to the open message, opening the
// message (closing a function call) and the part as needed.
func (s *Stream) text(kind, delta string) {
	if s.msg == nil {
		s.openMessage()
	}
	m := s.msg
	var p *streamPart
	if n := len(m.parts); n > 0 && m.parts[n-1].kind == kind {
		p = m.parts[n-1]
	} else {
		p = s.openPart(kind)
	}
	p.text.WriteString(delta)
	ci := len(m.parts) - 1
	if kind == partRefusal {
		s.emit("response.refusal.delta", refusalDeltaEvent{Type: "response.refusal.delta", SequenceNumber: s.seq, ItemID: m.id,
			OutputIndex: m.index, ContentIndex: ci, Delta: delta})
		return
	}
	s.emit("response.output_text.delta", textDeltaEvent{Type: "response.output_text.delta", SequenceNumber: s.seq, ItemID: m.id,
		OutputIndex: m.index, ContentIndex: ci, Delta: delta, Logprobs: []any{}})
}

func (s *Stream) openMessage() {
	s.closeCall(statusCompleted)
	m := &streamItem{index: len(s.items), id: newItemID("msg"), kind: typeMessage, status: statusInProgress}
	s.items = append(s.items, m)
	s.msg = m
	s.emit("response.output_item.added", itemEvent{Type: "response.output_item.added", SequenceNumber: s.seq, OutputIndex: m.index, Item: m.json()})
}

// openPart closes the open message's last part and opens one of kind.
func (s *Stream) openPart(kind string) *streamPart {
	m := s.msg
	if n := len(m.parts); n > 0 {
		s.closePart(m, n-1)
	}
	p := &streamPart{kind: kind}
	m.parts = append(m.parts, p)
	s.emit("response.content_part.added", partEvent{Type: "response.content_part.added", SequenceNumber: s.seq, ItemID: m.id,
		OutputIndex: m.index, ContentIndex: len(m.parts) - 1, Part: p.json()})
	return p
}

func (s *Stream) closePart(m *streamItem, ci int) {
	p := m.parts[ci]
	if p.done {
		return
	}
	p.done = true
	if p.kind == partRefusal {
		s.emit("response.refusal.done", refusalDoneEvent{Type: "response.refusal.done", SequenceNumber: s.seq, ItemID: m.id,
			OutputIndex: m.index, ContentIndex: ci, Refusal: p.text.String()})
	} else {
		s.emit("response.output_text.done", textDoneEvent{Type: "response.output_text.done", SequenceNumber: s.seq, ItemID: m.id,
			OutputIndex: m.index, ContentIndex: ci, Text: p.text.String(), Logprobs: []any{}})
	}
	s.emit("response.content_part.done", partEvent{Type: "response.content_part.done", SequenceNumber: s.seq, ItemID: m.id,
		OutputIndex: m.index, ContentIndex: ci, Part: p.json()})
}

func (s *Stream) closeMessage(status string) {
	m := s.msg
	if m == nil {
		return
	}
	s.msg = nil
	if len(m.parts) == 0 { // a message item always has its text part
		s.msg = m
		s.openPart(partOutputText)
		s.msg = nil
	}
	s.closePart(m, len(m.parts)-1)
	m.status = status
	s.emit("response.output_item.done", itemEvent{Type: "response.output_item.done", SequenceNumber: s.seq, OutputIndex: m.index, Item: m.json()})
}

// toolCall applies one entry of a chunk's delta.tool_calls: the first
// entry of a call (a new index, or a new id) opens a function_call item,
// closing the open item; arguments stream into the call the entry names.
// Arguments for a call already closed (an upstream that interleaves
// calls) are kept for the final response but not streamed.
func (s *Stream) toolCall(tc gjson.Result) {
	id := tc.Get("id").Str
	var c *streamItem
	idx := int64(-1)
	if ix := tc.Get("index"); ix.Type == gjson.Number {
		idx = ix.Int()
		c = s.calls[idx]
	} else if id == "" {
		c = s.call
	}
	if c != nil && id != "" && c.callID != id {
		c = nil // a new call at an index already used
	}
	name := tc.Get("function.name").Str
	if c == nil {
		s.closeMessage(statusCompleted)
		s.closeCall(statusCompleted)
		if id == "" {
			id = newItemID("call")
		}
		c = &streamItem{index: len(s.items), id: newItemID("fc"), kind: typeFunctionCall, status: statusInProgress, callID: id, name: name}
		s.items = append(s.items, c)
		if idx >= 0 {
			s.calls[idx] = c
		}
		s.call = c
		s.emit("response.output_item.added", itemEvent{Type: "response.output_item.added", SequenceNumber: s.seq, OutputIndex: c.index, Item: c.json()})
	} else if c.name == "" {
		c.name = name
	}
	args := tc.Get("function.arguments")
	if args.Type != gjson.String || args.Str == "" {
		return
	}
	c.args.WriteString(args.Str)
	if c.status == statusInProgress {
		s.emit("response.function_call_arguments.delta", argsDeltaEvent{Type: "response.function_call_arguments.delta", SequenceNumber: s.seq,
			ItemID: c.id, OutputIndex: c.index, Delta: args.Str})
	}
}

func (s *Stream) closeCall(status string) {
	c := s.call
	if c == nil {
		return
	}
	s.call = nil
	c.status = status
	s.emit("response.function_call_arguments.done", argsDoneEvent{Type: "response.function_call_arguments.done", SequenceNumber: s.seq,
		ItemID: c.id, OutputIndex: c.index, Name: c.name, Arguments: c.args.String()})
	s.emit("response.output_item.done", itemEvent{Type: "response.output_item.done", SequenceNumber: s.seq, OutputIndex: c.index, Item: c.json()})
}

func (it *streamItem) json() Item {
	if it.kind == typeFunctionCall {
		return mustJSON(functionCallItem{Type: typeFunctionCall, ID: it.id, CallID: it.callID, Name: it.name, Arguments: it.args.String(), Status: it.status})
	}
	m := messageItem{Type: typeMessage, ID: it.id, Status: it.status, Role: "assistant", Content: []any{}}
	for _, p := range it.parts {
		m.Content = append(m.Content, p.json())
	}
	return mustJSON(m)
}

func (p *streamPart) json() any {
	if p.kind == partRefusal {
		return refusalPart{Type: partRefusal, Refusal: p.text.String()}
	}
	return outputText(p.text.String())
}

// output is the output items as they stand; open ones get status.
func (s *Stream) output(status string) []Item {
	out := make([]Item, 0, len(s.items))
	for _, it := range s.items {
		if it.status == statusInProgress {
			it.status = status
		}
		out = append(out, it.json())
	}
	return out
}

func (s *Stream) usageObject() *usageObject {
	return usageOf(s.usage, gjson.Parse(s.chatUsage))
}

// End closes the stream after its last chunk: it closes the open item
// (an answer with nothing in it is one empty message, as FromChat makes
// it) and gives response.completed, or response.incomplete. usage is the
// usage the gateway settled (nil: the chunks' own). It also returns the
// Response object and its output items, for the stored conversation. It
// returns nothing after End or Fail.
func (s *Stream) End(usage *providers.Usage) (events []byte, response []byte, output []Item) {
	if s.done {
		return nil, nil, nil
	}
	s.start()
	s.done = true
	if usage != nil {
		u := *usage
		s.usage = &u
	}
	o := s.base
	o.finish(s.finish)
	status := statusCompleted
	if o.Status == statusIncomplete {
		status = statusIncomplete
	}
	if len(s.items) == 0 {
		s.openMessage()
	}
	s.closeMessage(status)
	s.closeCall(status)
	output = s.output(status)
	o.Output = output
	o.Usage = s.usageObject()
	typ := "response.completed"
	if o.Status == statusIncomplete {
		typ = "response.incomplete"
	}
	s.emit(typ, responseEvent{Type: typ, SequenceNumber: s.seq, Response: o})
	response, _ = marshal(o)
	return s.take(), response, output
}

// Fail ends a stream that failed after it started with response.failed:
// the Response with status failed, its error (code, message; code
// server_error when empty) and the output so far, items left open marked
// incomplete. It returns nothing after End or Fail.
func (s *Stream) Fail(code, message string) []byte {
	if s.done {
		return nil
	}
	s.start()
	s.done = true
	if code == "" {
		code = "server_error"
	}
	o := s.base
	o.Status = statusFailed
	o.Error = &responseError{Code: code, Message: message}
	o.Output = s.output(statusIncomplete)
	o.Usage = s.usageObject()
	s.emit("response.failed", responseEvent{Type: "response.failed", SequenceNumber: s.seq, Response: o})
	return s.take()
}
