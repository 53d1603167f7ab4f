package gemini

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// stream translates streamGenerateContent?alt=sse: every data event is a
// whole GenerateContentResponse holding the next piece of the answer, and
// the stream ends at EOF (there is no [DONE]).
// https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
//
// The first chunk opens the answer (the role chunk); text parts are
// content deltas; a functionCall part arrives whole and becomes a tool
// call's start and its complete arguments; the finishReason becomes the
// finish chunk. Every chunk carries usageMetadata so far; the last one is
// sent as the usage-only chunk at the end. An end before any finish reason
// is a stream cut short.
type stream struct {
	c    *Client
	a    *upstream.Attempt
	body io.ReadCloser
	r    *sse.Reader
	req  *providers.Request
	w    chatwire.StreamWriter

	started  bool
	finished bool
	usage    *usageMetadata
	pending  []providers.Event
	// err ends the stream once pending is drained: io.EOF or a failure.
	err  error
	once sync.Once
}

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
		ev, err := s.r.Next()
		switch {
		case errors.Is(err, io.EOF) && s.a.Ctx.Err() == nil:
			if !s.finished {
				s.err = s.c.BadResponse(io.ErrUnexpectedEOF, "ended the stream without a finish reason")
				continue
			}
			s.pending = append(s.pending, s.w.Usage(s.usage.usage()))
			s.err = io.EOF
			continue
		case err != nil:
			s.err = s.c.TransportError(s.a.Ctx, err)
			continue
		}
		s.a.Progress()
		if err := s.chunk(ev.Data); err != nil {
			s.err = err
		}
	}
}

// chunk queues the events one GenerateContentResponse makes.
func (s *stream) chunk(data []byte) error {
	var g generateResponse
	if err := json.Unmarshal(data, &g); err != nil {
		return s.c.BadResponse(err, "sent an event that is not a GenerateContentResponse")
	}
	if g.Error != nil {
		return s.c.eventError(g.Error)
	}
	if !s.started {
		s.started = true
		s.w.ID = completionID(g.ResponseID, s.req)
		if g.ModelVersion != "" {
			s.w.Model = g.ModelVersion
		}
		s.pending = append(s.pending, s.w.Role())
	}
	if g.UsageMetadata != nil {
		s.usage = g.UsageMetadata
	}
	if s.finished {
		return nil
	}
	if len(g.Candidates) == 0 {
		if g.PromptFeedback != nil && g.PromptFeedback.BlockReason != "" {
			s.pending = append(s.pending, s.w.Finish(chatwire.FinishContentFilter))
			s.finished = true
		}
		return nil
	}
	cand := g.Candidates[0]
	if cand.Content != nil {
		var text strings.Builder
		flush := func() {
			if text.Len() > 0 {
				s.pending = append(s.pending, s.w.Text(text.String()))
				text.Reset()
			}
		}
		for i := range cand.Content.Parts {
			p := &cand.Content.Parts[i]
			switch {
			case p.FunctionCall != nil:
				flush()
				idx, ev := s.w.ToolCallStart(callID(s.w.ToolCalls()), p.FunctionCall.Name)
				s.pending = append(s.pending, ev, s.w.ToolCallArgs(idx, callArgsJSON(p.FunctionCall.Args)))
			case answerText(p):
				text.WriteString(p.Text)
			}
		}
		flush()
	}
	if cand.FinishReason != "" {
		s.pending = append(s.pending, s.w.Finish(finishReason(cand.FinishReason, s.w.ToolCalls() > 0)))
		s.finished = true
	}
	return nil
}

func (s *stream) Close() error {
	s.once.Do(func() {
		s.a.End()
		s.body.Close()
	})
	return nil
}
