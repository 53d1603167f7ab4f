package bedrock

import (
	"errors"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// stream translates ConverseStream events to OpenAI chunks:
//
//	messageStart              -> the role chunk
//	contentBlockStart toolUse -> a tool call's first chunk (id, name)
//	contentBlockDelta text    -> a content chunk
//	contentBlockDelta toolUse -> a tool call's arguments chunk
//	messageStop               -> the stop reason, kept
//	metadata                  -> the finish chunk, then the usage-only chunk
//
// Exceptions in the stream end it with their *providers.Error; a stream
// that ends without messageStop is cut short (c.BadResponse). Reasoning,
// citations and other deltas chat completions cannot carry are dropped.
type stream struct {
	c  *Client
	a  *upstream.Attempt
	es *bedrockruntime.ConverseStreamEventStream
	w  chatwire.StreamWriter

	pending  []providers.Event
	role     bool            // the role chunk was sent
	calls    map[int32]int32 // content block index -> tool call index
	stop     types.StopReason
	stopped  bool // messageStop arrived
	usage    *types.TokenUsage
	finished bool // the finish chunk was queued
	err      error

	closeOnce sync.Once
}

func newStream(c *Client, a *upstream.Attempt, es *bedrockruntime.ConverseStreamEventStream, w chatwire.StreamWriter) *stream {
	return &stream{c: c, a: a, es: es, w: w, calls: map[int32]int32{}}
}

// Recv returns the next chunk, or io.EOF after the last one.
func (s *stream) Recv() (providers.Event, error) {
	for {
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending = s.pending[1:]
			return ev, nil
		}
		if s.err != nil {
			return providers.Event{}, s.err
		}
		ev, ok := <-s.es.Events()
		if !ok {
			s.err = s.end()
			continue
		}
		s.a.Progress()
		if err := s.event(ev); err != nil {
			s.err = err
		}
	}
}

// end handles the end of the event stream: an error the reader met, or the
// stream's natural end.
func (s *stream) end() error {
	if err := s.es.Err(); err != nil {
		return s.c.streamError(s.a.Ctx, err)
	}
	switch {
	case s.stopped:
		// The answer is complete; without metadata it has no usage.
		s.finish()
		return io.EOF
	case s.a.Ctx.Err() != nil:
		// Closed, timed out or canceled before the answer ended.
		return s.c.TransportError(s.a.Ctx, s.a.Ctx.Err())
	}
	return s.c.BadResponse(io.ErrUnexpectedEOF, "ended the event stream without messageStop")
}

// event translates one event into pending chunks.
func (s *stream) event(ev types.ConverseStreamOutput) error {
	switch e := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		s.startRole()
	case *types.ConverseStreamOutputMemberContentBlockStart:
		if tu, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
			s.startRole()
			idx, chunk := s.w.ToolCallStart(deref(tu.Value.ToolUseId), deref(tu.Value.Name))
			s.calls[deref32(e.Value.ContentBlockIndex)] = int32(idx)
			s.pending = append(s.pending, chunk)
		}
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := e.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			if d.Value != "" {
				s.startRole()
				s.pending = append(s.pending, s.w.Text(d.Value))
			}
		case *types.ContentBlockDeltaMemberToolUse:
			idx, ok := s.calls[deref32(e.Value.ContentBlockIndex)]
			if !ok {
				return s.c.BadResponse(errors.New("toolUse delta without contentBlockStart"),
					"sent tool input for content block %d, which it never started", deref32(e.Value.ContentBlockIndex))
			}
			if in := deref(d.Value.Input); in != "" {
				s.pending = append(s.pending, s.w.ToolCallArgs(int(idx), in))
			}
		}
	case *types.ConverseStreamOutputMemberMessageStop:
		s.stop, s.stopped = e.Value.StopReason, true
	case *types.ConverseStreamOutputMemberMetadata:
		s.usage = e.Value.Usage
		if s.stopped {
			s.finish()
		}
	}
	// contentBlockStop and events this SDK version does not know carry
	// nothing a chunk needs.
	return nil
}

func (s *stream) startRole() {
	if !s.role {
		s.role = true
		s.pending = append(s.pending, s.w.Role())
	}
}

// finish queues the finish chunk and, when Bedrock reported usage, the
// usage-only chunk (the gateway drops it unless the client asked for it).
func (s *stream) finish() {
	if s.finished {
		return
	}
	s.finished = true
	s.startRole()
	s.pending = append(s.pending, s.w.Finish(finishReason(s.stop, s.w.ToolCalls() > 0)))
	if s.usage != nil {
		s.pending = append(s.pending, s.w.Usage(usage(s.usage)))
	}
}

// Close ends the attempt, which unblocks a Recv, and releases the stream.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.a.End()
		_ = s.es.Close()
	})
	return nil
}
