package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/switchyard/switchyard/providers/chatwire"
)

// The Messages API response.
// https://platform.claude.com/docs/en/api/messages/create

type messageResponse struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Role       string          `json:"role"`
	Model      string          `json:"model"`
	Content    []responseBlock `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      usage           `json:"usage"`
}

// responseBlock is a content block of a response. Only text and tool_use
// are read; thinking, redacted_thinking and server tool blocks are skipped.
type responseBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// usage is the Messages API usage object. input_tokens counts only the
// input after the last cache breakpoint; the cache counts are separate.
// https://platform.claude.com/docs/en/build-with-claude/prompt-caching
type usage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

// merge overwrites u's counts with those o reports. message_delta's usage
// is cumulative, and newer API versions repeat the input counts in it.
func (u *usage) merge(o usage) {
	for _, f := range []struct{ dst, src **int64 }{
		{&u.InputTokens, &o.InputTokens}, {&u.OutputTokens, &o.OutputTokens},
		{&u.CacheCreationInputTokens, &o.CacheCreationInputTokens}, {&u.CacheReadInputTokens, &o.CacheReadInputTokens},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

func val(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// chat is the usage in OpenAI's terms: prompt tokens count every input
// token, cache reads and writes included.
func (u usage) chat() chatwire.Usage {
	read, write := val(u.CacheReadInputTokens), val(u.CacheCreationInputTokens)
	return chatwire.Usage{PromptTokens: val(u.InputTokens) + read + write, CompletionTokens: val(u.OutputTokens),
		CachedTokens: read, CacheWriteTokens: write}
}

// finishReason maps a stop_reason to OpenAI's finish_reason.
// https://platform.claude.com/docs/en/build-with-claude/handling-stop-reasons
func finishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return chatwire.FinishLength
	case "tool_use":
		return chatwire.FinishToolCalls
	case "refusal":
		// A streaming classifier stopped the answer; the text before it
		// stays content, as it was already streamed as such.
		return chatwire.FinishContentFilter
	default: // end_turn, stop_sequence, pause_turn, and any new reason
		return chatwire.FinishStop
	}
}

// completionID is the chat completion id for a message id.
func completionID(msgID string) string { return "chatcmpl-" + msgID }

// parseResponse translates a Messages API response into a chat completion
// created at the given Unix time.
func parseResponse(data []byte, created int64) (*chatwire.Response, error) {
	var m messageResponse
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding the message: %w", err)
	}
	if m.Type != "message" {
		return nil, fmt.Errorf("the response is of type %q, not message", m.Type)
	}
	r := &chatwire.Response{ID: completionID(m.ID), Model: m.Model, Created: created,
		FinishReason: finishReason(m.StopReason), Usage: m.Usage.chat()}
	var text strings.Builder
	for i, b := range m.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args, err := compactInput(b.Input)
			if err != nil {
				return nil, fmt.Errorf("content[%d]: the tool_use input: %w", i, err)
			}
			r.ToolCalls = append(r.ToolCalls, chatwire.ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		}
	}
	r.Content = text.String()
	return r, nil
}

// compactInput re-serialises a tool_use input compactly; a missing input is
// an empty object.
func compactInput(input json.RawMessage) (string, error) {
	input = bytes.TrimSpace(input)
	if len(input) == 0 || string(input) == "null" {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, input); err != nil {
		return "", err
	}
	return buf.String(), nil
}
