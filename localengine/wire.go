package localengine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
)

// The OpenAI wire format, as much of it as the local engine serves.

type genBody struct {
	Messages            []wireMessage     `json:"messages"`
	Prompt              json.RawMessage   `json:"prompt"`
	MaxTokens           *int              `json:"max_tokens"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Temperature         *float32          `json:"temperature"`
	TopP                *float32          `json:"top_p"`
	TopK                *int32            `json:"top_k"` // llama-server's extension
	MinP                *float32          `json:"min_p"` // llama-server's extension
	Seed                *int64            `json:"seed"`
	Stop                json.RawMessage   `json:"stop"`
	FrequencyPenalty    *float32          `json:"frequency_penalty"`
	PresencePenalty     *float32          `json:"presence_penalty"`
	RepeatPenalty       *float32          `json:"repeat_penalty"` // llama-server's extension
	N                   *int              `json:"n"`
	Tools               []json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	Functions           json.RawMessage   `json:"functions"`     // deprecated; refused
	FunctionCall        json.RawMessage   `json:"function_call"` // deprecated; refused
	Logprobs            json.RawMessage   `json:"logprobs"`      // a bool for chat, an integer for completions
	ResponseFormat      json.RawMessage   `json:"response_format"`
}

type wireMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	ToolCalls    []wireToolCall  `json:"tool_calls"`    // assistant
	FunctionCall *wireFunction   `json:"function_call"` // assistant, deprecated
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func decodeBody(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return invalid("", "the request body is not valid JSON for this operation: "+err.Error())
	}
	return nil
}

// request reads the generation parameters, checked as OpenAI checks them.
func (b *genBody) request(op providers.Operation) (Request, error) {
	r := Request{Sampling: DefaultSampling()}
	if b.N != nil && *b.N != 1 {
		return r, invalid("n", "the local engine returns one choice per request (n must be 1)")
	}
	switch string(bytes.TrimSpace(b.Logprobs)) {
	case "", "null", "false", "0":
	default:
		return r, invalid("logprobs", "the local engine does not return logprobs")
	}
	if op == providers.OpCompletion && len(b.Tools) > 0 && string(bytes.TrimSpace(b.ToolChoice)) != `"none"` {
		return r, invalid("tools", "completions take no tools; use /v1/chat/completions")
	}
	max := b.MaxCompletionTokens
	if max == nil {
		max = b.MaxTokens
	}
	if max != nil {
		if *max < 1 {
			return r, invalid("max_tokens", "max_tokens must be at least 1")
		}
		r.MaxTokens = *max
	} else if op == providers.OpCompletion {
		r.MaxTokens = 16 // OpenAI's default for completions
	}
	if t := b.Temperature; t != nil {
		if *t < 0 || *t > 2 || math.IsNaN(float64(*t)) {
			return r, invalid("temperature", "temperature must be between 0 and 2")
		}
		r.Sampling.Temperature = *t
	}
	if p := b.TopP; p != nil {
		if *p <= 0 || *p > 1 {
			return r, invalid("top_p", "top_p must be greater than 0 and at most 1")
		}
		r.Sampling.TopP = *p
	}
	if k := b.TopK; k != nil {
		if *k < 0 {
			return r, invalid("top_k", "top_k must be >= 0")
		}
		r.Sampling.TopK = *k
	}
	if p := b.MinP; p != nil {
		if *p < 0 || *p > 1 {
			return r, invalid("min_p", "min_p must be between 0 and 1")
		}
		r.Sampling.MinP = *p
	}
	for _, pen := range []struct {
		name string
		v    *float32
		dst  *float32
		lo   float32
		hi   float32
	}{
		{"frequency_penalty", b.FrequencyPenalty, &r.Sampling.FrequencyPenalty, -2, 2},
		{"presence_penalty", b.PresencePenalty, &r.Sampling.PresencePenalty, -2, 2},
		{"repeat_penalty", b.RepeatPenalty, &r.Sampling.RepeatPenalty, 0, 10},
	} {
		if pen.v != nil {
			if *pen.v < pen.lo || *pen.v > pen.hi {
				return r, invalid(pen.name, fmt.Sprintf("%s must be between %g and %g", pen.name, pen.lo, pen.hi))
			}
			*pen.dst = *pen.v
		}
	}
	if b.Seed != nil {
		// Any int64 to a uint32 other than 0xFFFFFFFF, which llama.cpp
		// reads as "pick a random seed".
		r.Sampling.Seed = uint32(uint64(*b.Seed) % 0xFFFFFFFF)
	} else {
		r.Sampling.Seed = randomSeed()
	}
	stops, err := chatwire.StringOrList(b.Stop, "stop")
	if err != nil {
		return r, err
	}
	if len(stops) > 4 {
		return r, invalid("stop", "at most 4 stop sequences")
	}
	r.Stop = stops
	if op == providers.OpCompletion {
		prompts, err := chatwire.StringOrList(b.Prompt, "prompt")
		if err != nil {
			return r, err
		}
		if len(prompts) != 1 {
			return r, invalid("prompt", "the local engine takes one prompt string per request")
		}
		r.Prompt = prompts[0]
	}
	return r, nil
}

// contentText reads a message's content: a string, null, or text parts.
func contentText(raw json.RawMessage, i int) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", invalid(fmt.Sprintf("messages[%d].content", i), "content must be a string or an array of parts")
		}
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(fmt.Sprintf("messages[%d].content", i), "content must be a string or an array of parts")
	}
	var buf bytes.Buffer
	for k, p := range parts {
		if p.Type != "text" {
			return "", invalid(fmt.Sprintf("messages[%d].content[%d].type", i, k), fmt.Sprintf("the local engine reads text only, not %q parts", p.Type))
		}
		buf.WriteString(p.Text)
	}
	return buf.String(), nil
}

type embeddingsBody struct {
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

func (b *embeddingsBody) texts() ([]string, error) {
	list, err := chatwire.StringOrList(b.Input, "input")
	if err != nil {
		return nil, invalid("input", "the local engine embeds strings (a string or an array of strings), not token arrays")
	}
	if len(list) == 0 {
		return nil, invalid("input", "input must not be empty")
	}
	for _, s := range list {
		if s == "" {
			return nil, invalid("input", "input strings must not be empty")
		}
	}
	return list, nil
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usageBody   `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int          `json:"index"`
	Message      *chatMessage `json:"message,omitempty"`
	Delta        *chatDelta   `json:"delta,omitempty"`
	Logprobs     *struct{}    `json:"logprobs"`
	FinishReason *string      `json:"finish_reason"`
}

type chatMessage struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content"` // null only beside tool calls
	ToolCalls []toolCall `json:"tool_calls,omitempty"`
}

type toolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// chatDelta is a stream chunk's delta: the role first, then text or tool
// calls, then nothing ({}) beside the finish reason.
type chatDelta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	ToolCalls []toolCallDelta `json:"tool_calls,omitempty"`
}

// toolCallDelta is a piece of a streamed call: the first for an index has
// its id, type and name (arguments ""), the next its arguments.
type toolCallDelta struct {
	Index    int          `json:"index"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function functionCall `json:"function"`
}

type textCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []textChoice `json:"choices"`
	Usage   *usageBody   `json:"usage,omitempty"`
}

type textChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type usageBody struct {
	PromptTokens        int            `json:"prompt_tokens"`
	CompletionTokens    int            `json:"completion_tokens"`
	TotalTokens         int            `json:"total_tokens"`
	PromptTokensDetails *promptDetails `json:"prompt_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageJSON(u Usage) usageBody {
	return usageBody{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens,
		PromptTokensDetails: &promptDetails{CachedTokens: u.CachedTokens}}
}

func (u usageBody) normalised() *providers.Usage {
	pu := &providers.Usage{PromptTokens: int64(u.PromptTokens), CompletionTokens: int64(u.CompletionTokens)}
	if u.PromptTokensDetails != nil {
		pu.CachedTokens = int64(u.PromptTokensDetails.CachedTokens)
	}
	return pu
}

type embeddingList struct {
	Object string         `json:"object"`
	Data   []embedding    `json:"data"`
	Model  string         `json:"model"`
	Usage  embeddingUsage `json:"usage"`
}

type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}
