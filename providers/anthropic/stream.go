package anthropic

import (
	"encoding/json"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// The Messages API event stream: message_start, then for each content
// block content_block_start, content_block_delta... and content_block_stop,
// then message_delta (stop reason, cumulative usage) and message_stop; ping
// and error events may come at any point, and new event types may be added.
// https://platform.claude.com/docs/en/build-with-claude/streaming

// streamEvent is the part of an event the translation reads.
type streamEvent struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message struct {
		ID    string `json:"id"`
		Model string `json:"model"`
		Usage usage  `json:"usage"`
	} `json:"message"`
	ContentBlock responseBlock `json:"content_block"`
	Delta        struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage usage `json:"usage"`
}

// toolBlock is a tool_use content block being streamed as a tool call.
type toolBlock struct {
	index   int  // the OpenAI tool call index
	hasArgs bool // some arguments were sent
}

// stream translates the event stream into OpenAI chunks: the role chunk on
// message_start, text and tool call deltas as they come, and on
// message_stop the finish chunk and the usage-only chunk.
type stream struct {
	*upstream.Events
	c *Client

	w          chatwire.StreamWriter
	started    bool // message_start was read
	stopReason string
	usage      usage
	blocks     map[int]*toolBlock // by content block index
	pending    []providers.Event
}

func (s *stream) Recv() (providers.Event, error) {
	for {
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending = s.pending[1:]
			return ev, nil
		}
		ev, err := s.Next()
		if err != nil {
			return providers.Event{}, err
		}
		if err := s.handle(ev); err != nil {
			s.Fail(err)
		}
	}
}

func (s *stream) push(ev providers.Event) { s.pending = append(s.pending, ev) }

// handle translates one event into pending chunks.
func (s *stream) handle(ev sse.Event) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(ev.Data, &head); err != nil {
		return s.c.BadResponse(err, "sent an event that is not a JSON object")
	}
	typ := head.Type
	if typ == "" {
		typ = ev.Name
	}
	switch typ {
	case "ping":
		return nil
	case "error":
		return s.c.eventError(ev.Data)
	case "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
	default:
		return nil // a type added after this was written
	}
	var e streamEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return s.c.BadResponse(err, "sent a %s event that cannot be read", typ)
	}
	if typ == "message_start" {
		if s.started {
			return s.c.BadResponse(nil, "sent a second message_start")
		}
		s.started = true
		s.w = chatwire.StreamWriter{ID: completionID(e.Message.ID), Model: e.Message.Model, Created: s.c.now().Unix()}
		s.usage.merge(e.Message.Usage)
		s.push(s.w.Role())
		return nil
	}
	if !s.started {
		return s.c.BadResponse(nil, "sent %s before message_start", typ)
	}
	switch typ {
	case "content_block_start":
		s.blockStart(e.Index, &e.ContentBlock)
	case "content_block_delta":
		switch e.Delta.Type {
		case "text_delta":
			if e.Delta.Text != "" {
				s.push(s.w.Text(e.Delta.Text))
			}
		case "input_json_delta":
			// Server tool blocks stream their input too; they are not
			// the client's tool calls and have no entry.
			if b := s.blocks[e.Index]; b != nil && e.Delta.PartialJSON != "" {
				b.hasArgs = true
				s.push(s.w.ToolCallArgs(b.index, e.Delta.PartialJSON))
			}
		}
	case "content_block_stop":
		// A call without arguments streams no input_json_delta; OpenAI
		// clients expect "{}" rather than no arguments at all.
		if b := s.blocks[e.Index]; b != nil && !b.hasArgs {
			b.hasArgs = true
			s.push(s.w.ToolCallArgs(b.index, "{}"))
		}
	case "message_delta":
		if e.Delta.StopReason != "" {
			s.stopReason = e.Delta.StopReason
		}
		s.usage.merge(e.Usage)
	case "message_stop":
		s.Finish()
		s.push(s.w.Finish(finishReason(s.stopReason)))
		s.push(s.w.Usage(s.usage.chat()))
	}
	return nil
}

// blockStart opens a content block: a tool_use block starts a tool call,
// a text block is silent unless it already holds text. Other blocks
// (thinking, server tools) are not translated.
func (s *stream) blockStart(index int, b *responseBlock) {
	switch b.Type {
	case "text":
		if b.Text != "" {
			s.push(s.w.Text(b.Text))
		}
	case "tool_use":
		i, ev := s.w.ToolCallStart(b.ID, b.Name)
		tb := &toolBlock{index: i}
		s.blocks[index] = tb
		s.push(ev)
		// The input starts as {} and arrives in input_json_delta events.
		if args, err := compactInput(b.Input); err == nil && args != "{}" {
			tb.hasArgs = true
			s.push(s.w.ToolCallArgs(i, args))
		}
	}
}
