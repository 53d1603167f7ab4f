package chatwire

import (
	"encoding/json"

	"github.com/switchyard/switchyard/providers"
)

// Finish reasons, as OpenAI names them.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Usage is token usage in OpenAI's terms: PromptTokens counts every input
// token, cached and cache-written ones included.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	// CachedTokens were read from the provider's prompt cache.
	CachedTokens int64
	// CacheWriteTokens were written to it (Anthropic's cache creation),
	// billed at the cache-write rate.
	CacheWriteTokens int64
	// ReasoningTokens are the completion tokens spent thinking.
	ReasoningTokens int64
}

// Normalised is the usage the gateway bills.
func (u Usage) Normalised() *providers.Usage {
	return &providers.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		CachedTokens: u.CachedTokens, CacheWriteTokens: u.CacheWriteTokens}
}

type usageJSON struct {
	PromptTokens            int64                   `json:"prompt_tokens"`
	CompletionTokens        int64                   `json:"completion_tokens"`
	TotalTokens             int64                   `json:"total_tokens"`
	PromptTokensDetails     promptTokensDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails completionTokensDetails `json:"completion_tokens_details"`
}

type promptTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
	// CacheWriteTokens is not OpenAI's; SDKs ignore it.
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

type completionTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

func (u Usage) wire() *usageJSON {
	return &usageJSON{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens,
		PromptTokensDetails:     promptTokensDetails{CachedTokens: u.CachedTokens, CacheWriteTokens: u.CacheWriteTokens},
		CompletionTokensDetails: completionTokensDetails{ReasoningTokens: u.ReasoningTokens}}
}

// Response is a complete answer with one choice.
type Response struct {
	ID      string
	Model   string
	Created int64
	Content string
	// Refusal is the model's refusal text, when it refused.
	Refusal      string
	ToolCalls    []ToolCall
	FinishReason string
	Usage        Usage
}

type completion struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	Created           int64      `json:"created"`
	Model             string     `json:"model"`
	Choices           []choice   `json:"choices"`
	Usage             *usageJSON `json:"usage,omitempty"`
	SystemFingerprint *string    `json:"system_fingerprint"`
}

type choice struct {
	Index        int       `json:"index"`
	Message      *message  `json:"message,omitempty"`
	Delta        *delta    `json:"delta,omitempty"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type message struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	Refusal   *string        `json:"refusal"`
	ToolCalls []wireToolCall `json:"tool_calls,omitempty"`
}

type delta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	Refusal   *string         `json:"refusal,omitempty"`
	ToolCalls []deltaToolCall `json:"tool_calls,omitempty"`
}

type deltaToolCall struct {
	Index    int            `json:"index"`
	ID       string         `json:"id,omitempty"`
	Type     string         `json:"type,omitempty"`
	Function *deltaFunction `json:"function,omitempty"`
}

type deltaFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Marshal writes the response as a chat.completion object. Content is
// null when the answer is only tool calls or a refusal, as OpenAI sends it.
func (r *Response) Marshal() []byte {
	m := &message{Role: "assistant"}
	if r.Content != "" || (len(r.ToolCalls) == 0 && r.Refusal == "") {
		c := r.Content
		m.Content = &c
	}
	if r.Refusal != "" {
		ref := r.Refusal
		m.Refusal = &ref
	}
	for _, tc := range r.ToolCalls {
		w := wireToolCall{ID: tc.ID, Type: "function"}
		w.Function.Name, w.Function.Arguments = tc.Name, tc.Arguments
		m.ToolCalls = append(m.ToolCalls, w)
	}
	finish := r.FinishReason
	b, _ := json.Marshal(completion{ID: r.ID, Object: "chat.completion", Created: r.Created, Model: r.Model,
		Choices: []choice{{Message: m, FinishReason: &finish}}, Usage: r.Usage.wire()})
	return b
}

// ProviderResponse is the response as the router takes it.
func (r *Response) ProviderResponse() *providers.Response {
	return &providers.Response{Body: r.Marshal(), Usage: r.Usage.Normalised()}
}

// StreamWriter writes chat.completion.chunk events for one response. Tool
// calls are numbered in the order they start; the first chunk of a call
// carries its index, id, type and name, later ones the arguments as they
// arrive, as OpenAI streams them.
type StreamWriter struct {
	ID      string
	Model   string
	Created int64
	calls   int
}

func (w *StreamWriter) chunk(d *delta, finish *string) providers.Event {
	c := completion{ID: w.ID, Object: "chat.completion.chunk", Created: w.Created, Model: w.Model, Choices: []choice{{Delta: d, FinishReason: finish}}}
	b, _ := json.Marshal(c)
	return providers.Event{Data: b}
}

// Role is the first chunk: the assistant role with empty content.
func (w *StreamWriter) Role() providers.Event {
	empty := ""
	return w.chunk(&delta{Role: "assistant", Content: &empty}, nil)
}

// Text is a content delta.
func (w *StreamWriter) Text(s string) providers.Event { return w.chunk(&delta{Content: &s}, nil) }

// Refusal is a refusal delta.
func (w *StreamWriter) Refusal(s string) providers.Event { return w.chunk(&delta{Refusal: &s}, nil) }

// ToolCallStart opens a tool call and returns its index, which the
// arguments' deltas name.
func (w *StreamWriter) ToolCallStart(id, name string) (int, providers.Event) {
	i := w.calls
	w.calls++
	return i, w.chunk(&delta{ToolCalls: []deltaToolCall{{Index: i, ID: id, Type: "function", Function: &deltaFunction{Name: name}}}}, nil)
}

// ToolCallArgs is a piece of a tool call's arguments.
func (w *StreamWriter) ToolCallArgs(index int, args string) providers.Event {
	return w.chunk(&delta{ToolCalls: []deltaToolCall{{Index: index, Function: &deltaFunction{Arguments: args}}}}, nil)
}

// ToolCalls is how many tool calls were started.
func (w *StreamWriter) ToolCalls() int { return w.calls }

// Finish is the chunk with the finish reason and an empty delta.
func (w *StreamWriter) Finish(reason string) providers.Event {
	return w.chunk(&delta{}, &reason)
}

// Usage is the final chunk stream_options.include_usage asks for: no
// choices, the usage. The gateway drops it when the client did not ask.
func (w *StreamWriter) Usage(u Usage) providers.Event {
	b, _ := json.Marshal(completion{ID: w.ID, Object: "chat.completion.chunk", Created: w.Created, Model: w.Model,
		Choices: []choice{}, Usage: u.wire()})
	return providers.Event{Data: b, Usage: u.Normalised(), UsageOnly: true}
}
