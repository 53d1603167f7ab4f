package anthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/switchyard/switchyard/providers/chatwire"
)

// The Messages API request, as far as an OpenAI chat request can fill it.
// https://platform.claude.com/docs/en/api/messages/create

type messagesRequest struct {
	Model         string        `json:"model"`
	System        any           `json:"system,omitempty"` // string or []block
	Messages      []message     `json:"messages"`
	MaxTokens     int           `json:"max_tokens"`
	Metadata      *metadata     `json:"metadata,omitempty"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
	Temperature   *float64      `json:"temperature,omitempty"`
	TopP          *float64      `json:"top_p,omitempty"`
	Tools         []tool        `json:"tools,omitempty"`
	ToolChoice    *toolChoice   `json:"tool_choice,omitempty"`
	OutputConfig  *outputConfig `json:"output_config,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is a request content block: text, image, tool_use or tool_result.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   any             `json:"content,omitempty"` // tool_result: string or []block
}

type imageSource struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type outputConfig struct {
	Format outputFormat `json:"format"`
}

type outputFormat struct {
	Type   string          `json:"type"` // json_schema
	Schema json.RawMessage `json:"schema"`
}

// buildRequest translates a parsed chat request into a Messages API body
// for model. Whatever the Messages API cannot express is refused with a 400
// naming the parameter.
func buildRequest(r *chatwire.Request, model string, defaultMaxTokens int, stream bool) ([]byte, error) {
	out := messagesRequest{Model: model, MaxTokens: r.MaxTokens, StopSequences: r.Stop, Stream: stream,
		Temperature: r.Temperature, TopP: r.TopP}
	if out.MaxTokens == 0 {
		out.MaxTokens = defaultMaxTokens
	}
	if r.User != "" {
		out.Metadata = &metadata{UserID: r.User}
	}
	system, err := systemPrompt(r.Messages)
	if err != nil {
		return nil, err
	}
	out.System = system
	if out.Messages, err = conversation(r.Messages); err != nil {
		return nil, err
	}
	if len(out.Messages) == 0 {
		return nil, chatwire.Invalid("messages", "messages must hold at least one user or assistant message with content")
	}
	for _, t := range r.Tools {
		out.Tools = append(out.Tools, tool{Name: t.Name, Description: t.Description, InputSchema: t.Parameters})
	}
	out.ToolChoice = mapToolChoice(r)
	if out.OutputConfig, err = mapResponseFormat(r.ResponseFormat); err != nil {
		return nil, err
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the Messages API request: %w", err)
	}
	return body, nil
}

// systemPrompt gathers the system (and developer) messages, wherever they
// stand, into the top-level system parameter: a string for one message,
// text blocks for several.
func systemPrompt(msgs []chatwire.Message) (any, error) {
	var blocks []block
	for i := range msgs {
		m := &msgs[i]
		if m.Role != "system" {
			continue
		}
		for k, p := range m.Parts {
			if p.Image != nil {
				return nil, chatwire.Invalid(fmt.Sprintf("messages[%d].content[%d]", i, k), "a system message can only hold text")
			}
		}
		if text := m.Text(); text != "" {
			blocks = append(blocks, block{Type: "text", Text: text})
		}
	}
	switch len(blocks) {
	case 0:
		return nil, nil
	case 1:
		return blocks[0].Text, nil
	}
	return blocks, nil
}

// turn is a user or assistant turn being assembled from one or more
// messages. The Messages API wants a user turn's tool_result blocks ahead
// of its other content, and an assistant turn's tool_use blocks after its
// text, so merged messages keep those groups apart: head, then tail.
type turn struct {
	role       string
	head, tail []block
}

func (t *turn) blocks() []block {
	return append(t.head, t.tail...)
}

// conversation translates the user, assistant and tool messages into
// alternating turns: consecutive messages of one role are merged, and tool
// messages become tool_result blocks of a user turn.
func conversation(msgs []chatwire.Message) ([]message, error) {
	var turns []*turn
	add := func(role string) *turn {
		if n := len(turns); n > 0 && turns[n-1].role == role {
			return turns[n-1]
		}
		t := &turn{role: role}
		turns = append(turns, t)
		return t
	}
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case "user":
			if content := contentBlocks(m.Parts); len(content) > 0 {
				t := add("user")
				t.tail = append(t.tail, content...)
			}
		case "assistant":
			content := contentBlocks(m.Parts)
			var calls []block
			for k, tc := range m.ToolCalls {
				input, err := toolInput(tc.Arguments)
				if err != nil {
					return nil, chatwire.Invalid(fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, k),
						"the arguments of tool call %q are not a JSON object: %v", tc.ID, err)
				}
				calls = append(calls, block{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input})
			}
			if len(content)+len(calls) > 0 {
				t := add("assistant")
				t.head = append(t.head, content...)
				t.tail = append(t.tail, calls...)
			}
		case "tool":
			t := add("user")
			t.head = append(t.head, toolResult(m))
		}
	}
	out := make([]message, 0, len(turns))
	for _, t := range turns {
		out = append(out, message{Role: t.role, Content: t.blocks()})
	}
	return out, nil
}

// contentBlocks translates text and image parts. Empty text parts are
// dropped: the Messages API refuses empty text blocks.
func contentBlocks(parts []chatwire.Part) []block {
	var out []block
	for _, p := range parts {
		switch {
		case p.Image != nil:
			out = append(out, imageBlock(p.Image))
		case p.Text != "":
			out = append(out, block{Type: "text", Text: p.Text})
		}
	}
	return out
}

func imageBlock(img *chatwire.Image) block {
	if img.URL != "" {
		return block{Type: "image", Source: &imageSource{Type: "url", URL: img.URL}}
	}
	return block{Type: "image", Source: &imageSource{Type: "base64", MediaType: img.MediaType,
		Data: base64.StdEncoding.EncodeToString(img.Data)}}
}

// toolResult is a tool message as a tool_result block: its text as a
// string, or text and image blocks when it holds images.
func toolResult(m *chatwire.Message) block {
	b := block{Type: "tool_result", ToolUseID: m.ToolCallID}
	hasImage := false
	for _, p := range m.Parts {
		hasImage = hasImage || p.Image != nil
	}
	switch {
	case hasImage:
		b.Content = contentBlocks(m.Parts)
	case m.Text() != "":
		b.Content = m.Text()
	}
	return b
}

// toolInput parses a tool call's arguments into the tool_use input, which
// must be a JSON object. Empty arguments are an empty object.
func toolInput(args string) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace([]byte(args))
	if len(trimmed) == 0 {
		return json.RawMessage(`{}`), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("got null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mapToolChoice translates tool_choice and parallel_tool_calls. It is nil
// without tools: the Messages API has nothing to choose from then.
func mapToolChoice(r *chatwire.Request) *toolChoice {
	if len(r.Tools) == 0 {
		return nil
	}
	noParallel := r.ParallelToolCalls != nil && !*r.ParallelToolCalls
	var tc toolChoice
	switch r.ToolChoice.Mode {
	case "none":
		// {"type":"none"} takes no disable_parallel_tool_use.
		return &toolChoice{Type: "none"}
	case "required":
		tc = toolChoice{Type: "any"}
	case "function":
		tc = toolChoice{Type: "tool", Name: r.ToolChoice.Name}
	case "auto":
		tc = toolChoice{Type: "auto"}
	default:
		if !noParallel {
			return nil // Anthropic's default is auto
		}
		tc = toolChoice{Type: "auto"}
	}
	tc.DisableParallelToolUse = noParallel
	return &tc
}

// mapResponseFormat translates response_format json_schema into
// output_config.format (structured outputs). json_object has no
// counterpart: the Messages API constrains output only to a schema.
func mapResponseFormat(rf *chatwire.ResponseFormat) (*outputConfig, error) {
	if rf == nil {
		return nil, nil
	}
	switch rf.Type {
	case "json_schema":
		if len(bytes.TrimSpace(rf.Schema)) == 0 {
			return nil, chatwire.Invalid("response_format.json_schema.schema", "a json_schema response format needs a schema")
		}
		return &outputConfig{Format: outputFormat{Type: "json_schema", Schema: rf.Schema}}, nil
	case "json_object":
		return nil, chatwire.Invalid("response_format", "this provider cannot force a JSON object without a schema; use response_format json_schema")
	}
	return nil, chatwire.Invalid("response_format.type", "response_format type %q is not supported by this provider", rf.Type)
}
