package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The OpenAI chat-completions request, as far as a Messages request fills it.

type chatRequest struct {
	Model             string          `json:"model"`
	Messages          []chatMessage   `json:"messages"`
	MaxTokens         int64           `json:"max_tokens,omitempty"`
	Stop              []string        `json:"stop,omitempty"`
	Temperature       json.RawMessage `json:"temperature,omitempty"`
	TopP              json.RawMessage `json:"top_p,omitempty"`
	User              string          `json:"user,omitempty"`
	Tools             []chatTool      `json:"tools,omitempty"`
	ToolChoice        any             `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat    *responseFormat `json:"response_format,omitempty"`
	Stream            bool            `json:"stream,omitempty"`
	StreamOptions     *streamOptions  `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatMessage is a message; Content is a string, []chatPart, or nil (null,
// for an assistant message with only tool calls).
type chatMessage struct {
	Role       string         `json:"role"`
	Content    any            `json:"content"`
	ToolCalls  []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type chatPart struct {
	Type     string    `json:"type"` // text or image_url
	Text     *string   `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL string `json:"url"`
}

type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"` // function
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string       `json:"type"` // function
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict,omitempty"`
}

type namedChoice struct {
	Type     string `json:"type"` // function
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type responseFormat struct {
	Type       string `json:"type"` // json_schema
	JSONSchema struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict bool            `json:"strict"`
	} `json:"json_schema"`
}

// ToChat renders the OpenAI chat-completions body for the request.
//
//   - system (a string, or text blocks joined with a blank line) is a
//     leading system message;
//   - a user turn's tool_result blocks become tool messages, ahead of a user
//     message with the rest of the turn (text and image parts; one text
//     block is a plain string); images a tool returned, which tool messages
//     cannot hold, open that user message, each group after a text part
//     naming its tool call;
//   - an assistant turn is one assistant message: its text, and its
//     tool_use blocks as tool_calls;
//   - tools, tool_choice, max_tokens, stop_sequences, temperature, top_p,
//     metadata.user_id and output_config.format map to their OpenAI
//     counterparts; a stream asks for usage in its last chunk.
func (r *Request) ToChat() ([]byte, error) {
	out := chatRequest{Model: r.Model, MaxTokens: r.MaxTokens, Stop: r.stop, Temperature: r.temperature,
		TopP: r.topP, User: r.userID, Messages: []chatMessage{}}
	if len(r.system) > 0 {
		out.Messages = append(out.Messages, chatMessage{Role: "system", Content: strings.Join(r.system, "\n\n")})
	}
	out.Messages = append(out.Messages, r.chatMessages()...)
	for _, t := range r.tools {
		out.Tools = append(out.Tools, chatTool{Type: "function", Function: chatFunction{Name: t.name,
			Description: t.description, Parameters: t.schema, Strict: t.strict}})
	}
	if tc := r.toolChoice; tc != nil && len(r.tools) > 0 {
		switch tc.typ {
		case "auto":
			out.ToolChoice = "auto"
		case "any":
			out.ToolChoice = "required"
		case "none":
			out.ToolChoice = "none"
		case "tool":
			var nc namedChoice
			nc.Type, nc.Function.Name = "function", tc.name
			out.ToolChoice = nc
		}
		if tc.noParallel && tc.typ != "none" {
			f := false
			out.ParallelToolCalls = &f
		}
	}
	if r.schema != nil {
		rf := &responseFormat{Type: "json_schema"}
		rf.JSONSchema.Name, rf.JSONSchema.Schema, rf.JSONSchema.Strict = "output", r.schema, true
		out.ResponseFormat = rf
	}
	if r.Stream {
		out.Stream = true
		out.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return marshalErr(out)
}

// chatMessages translates the conversation.
func (r *Request) chatMessages() []chatMessage {
	var out []chatMessage
	for _, t := range r.turns {
		if t.role == "assistant" {
			if m, ok := assistantMessage(t.blocks); ok {
				out = append(out, m)
			}
			continue
		}
		out = append(out, userMessages(t.blocks)...)
	}
	return out
}

func textPart(s string) chatPart { return chatPart{Type: "text", Text: &s} }

func imagePart(url string) chatPart {
	return chatPart{Type: "image_url", ImageURL: &imageURL{URL: url}}
}

// partsContent is the content of a message with these parts: a plain
// string for one text part (or none), else the parts.
func partsContent(parts []chatPart) any {
	switch {
	case len(parts) == 0:
		return ""
	case len(parts) == 1 && parts[0].Type == "text":
		return *parts[0].Text
	}
	return parts
}

// contentParts translates text and image blocks; empty text blocks are
// dropped unless they are all there is.
func contentParts(blocks []block) []chatPart {
	var parts []chatPart
	for _, b := range blocks {
		switch b.kind {
		case "text":
			if b.text != "" {
				parts = append(parts, textPart(b.text))
			}
		case "image":
			parts = append(parts, imagePart(b.url))
		}
	}
	return parts
}

// userMessages translates a user turn: a tool message per tool_result, in
// order, then one user message with the images the tools returned and the
// turn's other content, if there is any.
func userMessages(blocks []block) []chatMessage {
	var msgs []chatMessage
	var toolImages, rest []chatPart
	hasRest := false
	for _, b := range blocks {
		if b.kind != "tool_result" {
			hasRest = true
			continue
		}
		var texts []chatPart
		var images []chatPart
		for _, c := range b.content {
			switch c.kind {
			case "text":
				if c.text != "" {
					texts = append(texts, textPart(c.text))
				}
			case "image":
				images = append(images, imagePart(c.url))
			}
		}
		if b.isError {
			texts = errorNote(texts)
		}
		msgs = append(msgs, chatMessage{Role: "tool", ToolCallID: b.id, Content: partsContent(texts)})
		if len(images) > 0 {
			toolImages = append(toolImages, textPart(fmt.Sprintf("(images returned by tool call %s)", b.id)))
			toolImages = append(toolImages, images...)
		}
	}
	if hasRest {
		rest = contentParts(blocks)
	}
	parts := append(toolImages, rest...)
	if len(parts) > 0 || (hasRest && len(msgs) == 0) {
		msgs = append(msgs, chatMessage{Role: "user", Content: partsContent(parts)})
	}
	return msgs
}

// errorNote marks a failed tool's result, which OpenAI's tool message has
// no flag for, with "Error: " unless its text already says so.
func errorNote(texts []chatPart) []chatPart {
	if len(texts) == 0 {
		return []chatPart{textPart("Error")}
	}
	first := strings.TrimSpace(*texts[0].Text)
	if strings.HasPrefix(strings.ToLower(first), "error") {
		return texts
	}
	texts[0] = textPart("Error: " + *texts[0].Text)
	return texts
}

// assistantMessage translates an assistant turn; ok is false when nothing
// is left of it (only thinking blocks, or an empty prefill).
func assistantMessage(blocks []block) (chatMessage, bool) {
	m := chatMessage{Role: "assistant"}
	for _, b := range blocks {
		if b.kind == "tool_use" {
			var tc chatToolCall
			tc.ID, tc.Type = b.id, "function"
			tc.Function.Name, tc.Function.Arguments = b.name, string(b.input)
			m.ToolCalls = append(m.ToolCalls, tc)
		}
	}
	parts := contentParts(blocks)
	switch {
	case len(parts) > 0:
		m.Content = partsContent(parts)
	case len(m.ToolCalls) == 0:
		return m, false
	}
	return m, true
}

// marshal encodes v as compact JSON without escaping <, > and &, as
// Anthropic and OpenAI write them.
func marshal(v any) []byte {
	b, err := marshalErr(v)
	if err != nil {
		panic(fmt.Sprintf("messages: encoding %T: %v", v, err))
	}
	return b
}

func marshalErr(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
