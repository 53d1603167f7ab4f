package responses

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// NewID returns a random id with the prefix, as OpenAI's look: "resp"
// gives "resp_" and 48 hex digits; "msg" and "fc" are output items'.
func NewID(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	if !strings.HasSuffix(prefix, "_") {
		prefix += "_"
	}
	return prefix + hex.EncodeToString(b[:])
}

// newItemID and now are replaced by tests, for stable golden files.
var (
	newItemID = NewID
	now       = func() int64 { return time.Now().Unix() }
)

// Response statuses.
const (
	statusInProgress = "in_progress"
	statusCompleted  = "completed"
	statusIncomplete = "incomplete"
	statusFailed     = "failed"
)

// responseObject is a Response object, its members in OpenAI's order.
type responseObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	Background         bool              `json:"background"`
	CompletedAt        *int64            `json:"completed_at"`
	Error              *responseError    `json:"error"`
	IncompleteDetails  *incomplete       `json:"incomplete_details"`
	Instructions       *string           `json:"instructions"`
	MaxOutputTokens    *int64            `json:"max_output_tokens"`
	MaxToolCalls       *int64            `json:"max_tool_calls"`
	Model              string            `json:"model"`
	Output             []Item            `json:"output"`
	ParallelToolCalls  bool              `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	PromptCacheKey     *string           `json:"prompt_cache_key"`
	Reasoning          reasoningEcho     `json:"reasoning"`
	SafetyIdentifier   *string           `json:"safety_identifier"`
	ServiceTier        string            `json:"service_tier"`
	Store              bool              `json:"store"`
	Temperature        float64           `json:"temperature"`
	Text               textEcho          `json:"text"`
	ToolChoice         any               `json:"tool_choice"`
	Tools              []toolEcho        `json:"tools"`
	TopLogprobs        int64             `json:"top_logprobs"`
	TopP               float64           `json:"top_p"`
	Truncation         string            `json:"truncation"`
	Usage              *usageObject      `json:"usage"`
	User               *string           `json:"user"`
	Metadata           map[string]string `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incomplete struct {
	Reason string `json:"reason"`
}

type reasoningEcho struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

type textEcho struct {
	Format any `json:"format"`
}

type formatEcho struct {
	Type        string    `json:"type"`
	Name        string    `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Schema      rawOrNull `json:"schema,omitempty"`
	Strict      *bool     `json:"strict,omitempty"`
}

type toolEcho struct {
	Type        string    `json:"type"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	Parameters  rawOrNull `json:"parameters"`
	Strict      bool      `json:"strict"`
}

// rawOrNull is raw JSON, null when empty.
type rawOrNull []byte

func (r rawOrNull) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

type usageObject struct {
	InputTokens         int64               `json:"input_tokens"`
	InputTokensDetails  inputTokensDetails  `json:"input_tokens_details"`
	OutputTokens        int64               `json:"output_tokens"`
	OutputTokensDetails outputTokensDetails `json:"output_tokens_details"`
	TotalTokens         int64               `json:"total_tokens"`
}

type inputTokensDetails struct {
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
}

type outputTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// response is the Response object for r with no output yet, status
// in_progress: what every event and the final object echo of the
// request. Parameters that were dropped are echoed as applied
// (truncation disabled, service tier default, no reasoning settings).
func (r *Request) response(id string, created int64) responseObject {
	o := responseObject{ID: id, Object: "response", CreatedAt: created, Status: statusInProgress, Model: r.Model,
		Output: []Item{}, ParallelToolCalls: true, PromptCacheKey: r.promptCacheKey, SafetyIdentifier: r.safetyIdentifier,
		ServiceTier: "default", Store: r.Store, Temperature: 1, TopP: 1, Truncation: "disabled", MaxToolCalls: r.maxToolCalls,
		Tools: []toolEcho{}, ToolChoice: "auto", Text: textEcho{Format: formatEcho{Type: "text"}}, Metadata: map[string]string{}}
	if r.hasInstructions {
		s := r.Instructions
		o.Instructions = &s
	}
	if r.MaxOutputTokens > 0 {
		n := r.MaxOutputTokens
		o.MaxOutputTokens = &n
	}
	if r.ParallelToolCalls != nil {
		o.ParallelToolCalls = *r.ParallelToolCalls
	}
	if r.PreviousResponseID != "" {
		s := r.PreviousResponseID
		o.PreviousResponseID = &s
	}
	if r.Temperature != nil {
		o.Temperature = *r.Temperature
	}
	if r.TopP != nil {
		o.TopP = *r.TopP
	}
	if r.User != "" {
		s := r.User
		o.User = &s
	}
	for k, v := range r.Metadata {
		o.Metadata[k] = v
	}
	for _, t := range r.tools {
		o.Tools = append(o.Tools, toolEcho{Type: "function", Name: t.Name, Description: t.Description,
			Parameters: rawOrNull(t.Parameters), Strict: t.Strict != nil && *t.Strict})
	}
	switch r.toolChoice.Mode {
	case "":
	case "function":
		o.ToolChoice = struct {
			Type string `json:"type"`
			Name string `json:"name"`
		}{"function", r.toolChoice.Name}
	default:
		o.ToolChoice = r.toolChoice.Mode
	}
	if f := r.format; f != nil {
		fe := formatEcho{Type: f.Type}
		if f.Type == "json_schema" {
			strict := f.Strict != nil && *f.Strict
			fe.Name, fe.Description, fe.Schema, fe.Strict = f.Name, f.Description, rawOrNull(f.Schema), &strict
		}
		o.Text.Format = fe
	}
	return o
}

// finish sets the terminal status, from the chat finish reason, and
// completed_at.
func (o *responseObject) finish(finishReason string) {
	switch finishReason {
	case "length":
		o.Status, o.IncompleteDetails = statusIncomplete, &incomplete{Reason: "max_output_tokens"}
	case "content_filter":
		o.Status, o.IncompleteDetails = statusIncomplete, &incomplete{Reason: "content_filter"}
	default:
		o.Status = statusCompleted
		t := now()
		o.CompletedAt = &t
	}
}

// usageOf is the Response usage: u as the gateway settled it, else the
// chat usage (raw, as gjson found it); reasoning tokens, which u does not
// carry, come from the chat usage. Nil when neither is known.
func usageOf(u *providers.Usage, chatUsage gjson.Result) *usageObject {
	if u == nil {
		if !chatUsage.IsObject() {
			return nil
		}
		u = &providers.Usage{PromptTokens: chatUsage.Get("prompt_tokens").Int(), CompletionTokens: chatUsage.Get("completion_tokens").Int(),
			CachedTokens:     chatUsage.Get("prompt_tokens_details.cached_tokens").Int(),
			CacheWriteTokens: chatUsage.Get("prompt_tokens_details.cache_write_tokens").Int()}
	}
	return &usageObject{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens,
		InputTokensDetails:  inputTokensDetails{CachedTokens: u.CachedTokens, CacheWriteTokens: u.CacheWriteTokens},
		OutputTokensDetails: outputTokensDetails{ReasoningTokens: chatUsage.Get("completion_tokens_details.reasoning_tokens").Int()}}
}

// errNotCompletion is FromChat's error for a body that is not a chat
// completion.
var errNotCompletion = errors.New("responses: the answer is not a chat completion")

// FromChat builds the Response object from a chat completion (its first
// choice): the assistant's text (and refusal) as a message item, then one
// function_call item per tool call, in order; status completed, or
// incomplete (max_output_tokens, content_filter) by the finish reason.
// usage is the usage the gateway settled (nil: the completion's own). It
// also returns the output items, for the stored conversation.
func FromChat(r *Request, respID string, created int64, chat []byte, usage *providers.Usage) ([]byte, []Item, error) {
	if !gjson.ValidBytes(chat) {
		return nil, nil, errNotCompletion
	}
	root := gjson.ParseBytes(chat)
	choices := root.Get("choices")
	if !root.IsObject() || !choices.IsArray() {
		return nil, nil, errNotCompletion
	}
	choice := choices.Get("0")
	msg := choice.Get("message")
	var text string
	if c := msg.Get("content"); c.IsArray() {
		var sb strings.Builder
		c.ForEach(func(_, p gjson.Result) bool {
			if t := p.Get("text"); t.Type == gjson.String {
				sb.WriteString(t.Str)
			}
			return true
		})
		text = sb.String()
	} else {
		text = c.String()
	}
	refusal := msg.Get("refusal").Str
	var calls []functionCallItem
	msg.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		calls = append(calls, functionCallItem{Type: typeFunctionCall, ID: newItemID("fc"), CallID: tc.Get("id").Str,
			Name: tc.Get("function.name").Str, Arguments: tc.Get("function.arguments").Str, Status: statusCompleted})
		return true
	})
	if fc := msg.Get("function_call"); fc.IsObject() && len(calls) == 0 {
		calls = append(calls, functionCallItem{Type: typeFunctionCall, ID: newItemID("fc"), Name: fc.Get("name").Str,
			Arguments: fc.Get("arguments").Str, Status: statusCompleted})
	}
	o := r.response(respID, created)
	o.finish(choice.Get("finish_reason").Str)
	var output []Item
	if text != "" || refusal != "" || len(calls) == 0 {
		m := messageItem{Type: typeMessage, ID: newItemID("msg"), Status: statusCompleted, Role: "assistant", Content: []any{}}
		if text != "" || refusal == "" {
			m.Content = append(m.Content, outputText(text))
		}
		if refusal != "" {
			m.Content = append(m.Content, refusalPart{Type: partRefusal, Refusal: refusal})
		}
		if o.Status == statusIncomplete && len(calls) == 0 {
			m.Status = statusIncomplete
		}
		output = append(output, mustJSON(m))
	}
	for i, c := range calls {
		if c.CallID == "" {
			c.CallID = NewID("call")
		}
		if o.Status == statusIncomplete && i == len(calls)-1 {
			c.Status = statusIncomplete
		}
		output = append(output, mustJSON(c))
	}
	o.Output = append(o.Output, output...)
	o.Usage = usageOf(usage, root.Get("usage"))
	body, err := marshal(o)
	return body, output, err
}
