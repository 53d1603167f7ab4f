package bedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/switchyard/switchyard/providers/chatwire"
)

// response translates a Converse answer. Text blocks are joined; toolUse
// blocks become tool calls with their input as compact JSON; reasoning and
// other blocks OpenAI's chat format has no place for are dropped.
func response(out *bedrockruntime.ConverseOutput, id, model string, created int64) (*chatwire.Response, error) {
	r := &chatwire.Response{ID: id, Model: model, Created: created, Usage: usage(out.Usage)}
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return nil, fmt.Errorf("the response has no output message (%T)", out.Output)
	}
	var text strings.Builder
	for _, block := range msg.Value.Content {
		switch b := block.(type) {
		case *types.ContentBlockMemberText:
			text.WriteString(b.Value)
		case *types.ContentBlockMemberToolUse:
			args, err := documentJSON(b.Value.Input)
			if err != nil {
				return nil, fmt.Errorf("tool call %q: %w", deref(b.Value.ToolUseId), err)
			}
			r.ToolCalls = append(r.ToolCalls, chatwire.ToolCall{ID: deref(b.Value.ToolUseId), Name: deref(b.Value.Name), Arguments: args})
		}
	}
	r.Content = text.String()
	r.FinishReason = finishReason(out.StopReason, len(r.ToolCalls) > 0)
	return r, nil
}

// finishReason maps Converse's stopReason to OpenAI's finish_reason. An
// answer with tool calls finishes with tool_calls unless it was cut off or
// filtered, since that is what clients loop on.
func finishReason(s types.StopReason, toolCalls bool) string {
	var reason string
	switch s {
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		reason = chatwire.FinishLength
	case types.StopReasonToolUse:
		reason = chatwire.FinishToolCalls
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		reason = chatwire.FinishContentFilter
	default: // end_turn, stop_sequence, malformed_*, and reasons added later
		reason = chatwire.FinishStop
	}
	if toolCalls && reason == chatwire.FinishStop {
		reason = chatwire.FinishToolCalls
	}
	return reason
}

// usage maps Converse's token usage. Bedrock's inputTokens counts only the
// input that was neither read from nor written to the prompt cache (its
// prompt-caching guide: total input = inputTokens + cacheReadInputTokens +
// cacheWriteInputTokens), so the prompt tokens are the sum of the three.
func usage(u *types.TokenUsage) chatwire.Usage {
	if u == nil {
		return chatwire.Usage{}
	}
	read, write := int64(deref32(u.CacheReadInputTokens)), int64(deref32(u.CacheWriteInputTokens))
	return chatwire.Usage{PromptTokens: int64(deref32(u.InputTokens)) + read + write,
		CompletionTokens: int64(deref32(u.OutputTokens)), CachedTokens: read, CacheWriteTokens: write}
}

// documentJSON writes a document as compact JSON, without the HTML
// escaping of encoding/json, as a model's tool arguments read.
func documentJSON(d document.Interface) (string, error) {
	if d == nil {
		return "{}", nil
	}
	raw, err := d.MarshalSmithyDocument()
	if err != nil {
		return "", fmt.Errorf("reading the tool input: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("reading the tool input: %w", err)
	}
	if v == nil {
		return "{}", nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("writing the tool input: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func deref32(n *int32) int32 {
	if n == nil {
		return 0
	}
	return *n
}
