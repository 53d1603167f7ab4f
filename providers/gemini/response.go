package gemini

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
)

// The GenerateContentResponse, which is also each chunk of a stream.
// https://ai.google.dev/api/generate-content#generatecontentresponse

type generateResponse struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback"`
	UsageMetadata  *usageMetadata  `json:"usageMetadata"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
	// Error is set on an error inside a stream.
	Error *googleError `json:"error"`
}

// https://ai.google.dev/api/generate-content#candidate
type candidate struct {
	Content      *content `json:"content"`
	FinishReason string   `json:"finishReason"`
	Index        int      `json:"index"`
}

// https://ai.google.dev/api/generate-content#PromptFeedback
type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

// usageMetadata counts tokens. promptTokenCount includes the cached
// content's tokens ("When cachedContent is set, this is still the total
// effective prompt size meaning this includes the number of tokens in the
// cached content"); thoughts and tool-use prompt tokens are counted apart
// from candidates and prompt (totalTokenCount is the sum of all four).
// https://ai.google.dev/api/generate-content#UsageMetadata
type usageMetadata struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
}

// usage is the usage in OpenAI's terms: every input token (prompt, cached
// included, and tool-use prompt) is a prompt token; thoughts are
// completion tokens, reported as reasoning tokens too.
func (u *usageMetadata) usage() chatwire.Usage {
	if u == nil {
		return chatwire.Usage{}
	}
	return chatwire.Usage{
		PromptTokens:     u.PromptTokenCount + u.ToolUsePromptTokenCount,
		CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		CachedTokens:     u.CachedContentTokenCount,
		ReasoningTokens:  u.ThoughtsTokenCount,
	}
}

// finishReason maps a Gemini finish reason; calls reports whether the
// answer has function calls. Every reason that withholds output (safety,
// recitation, blocklist, prohibited content, SPII, image safety, Model
// Armor, unsupported language) is content_filter; a natural stop with
// function calls is tool_calls; what OpenAI cannot name (OTHER,
// MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL...) is stop, or tool_calls
// when there are calls.
// https://ai.google.dev/api/generate-content#FinishReason
func finishReason(reason string, calls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return chatwire.FinishLength
	case "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR":
		return chatwire.FinishContentFilter
	}
	if calls {
		return chatwire.FinishToolCalls
	}
	return chatwire.FinishStop
}

// callID names the n-th function call of a response: Gemini gives calls
// no ids, and these are stable, so the same answer always reads the same.
func callID(n int) string { return "call_" + strconv.Itoa(n) }

// callArgsJSON is a functionCall's args as OpenAI's arguments string.
func callArgsJSON(args json.RawMessage) string {
	var out bytes.Buffer
	if len(bytes.TrimSpace(args)) == 0 || json.Compact(&out, args) != nil || out.String() == "null" {
		return "{}"
	}
	return out.String()
}

// answerText reports whether a part is answer text: not a thought summary.
func answerText(p *part) bool { return !p.Thought && p.FunctionCall == nil }

// parseResponse translates a generateContent answer. A prompt Gemini
// blocked (promptFeedback.blockReason, no candidate) is an empty answer
// finished by content_filter, as OpenAI reports filtered output, not an
// error.
func (c *Client) parseResponse(data []byte, req *providers.Request) (*chatwire.Response, error) {
	var g generateResponse
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, c.BadResponse(err, "sent a response that is not a GenerateContentResponse")
	}
	if g.Error != nil {
		return nil, c.eventError(g.Error)
	}
	r := &chatwire.Response{ID: completionID(g.ResponseID, req), Model: g.ModelVersion, Created: c.now().Unix(), Usage: g.UsageMetadata.usage()}
	if r.Model == "" {
		r.Model = req.Model
	}
	if len(g.Candidates) == 0 {
		if g.PromptFeedback == nil || g.PromptFeedback.BlockReason == "" {
			return nil, c.BadResponse(nil, "answered without a candidate")
		}
		r.FinishReason = chatwire.FinishContentFilter
		return r, nil
	}
	cand := g.Candidates[0]
	var text strings.Builder
	if cand.Content != nil {
		for i := range cand.Content.Parts {
			p := &cand.Content.Parts[i]
			switch {
			case p.FunctionCall != nil:
				r.ToolCalls = append(r.ToolCalls, chatwire.ToolCall{ID: callID(len(r.ToolCalls)), Name: p.FunctionCall.Name,
					Arguments: callArgsJSON(p.FunctionCall.Args)})
			case answerText(p):
				text.WriteString(p.Text)
			}
		}
	}
	r.Content = text.String()
	r.FinishReason = finishReason(cand.FinishReason, len(r.ToolCalls) > 0)
	return r, nil
}
