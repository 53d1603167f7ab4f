package responses

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	Tools               []chatTool    `json:"tools,omitempty"`
	ToolChoice          any           `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool         `json:"parallel_tool_calls,omitempty"`
	MaxCompletionTokens int64         `json:"max_completion_tokens,omitempty"`
	Temperature         *float64      `json:"temperature,omitempty"`
	TopP                *float64      `json:"top_p,omitempty"`
	ResponseFormat      *chatFormat   `json:"response_format,omitempty"`
	User                string        `json:"user,omitempty"`
	Stream              bool          `json:"stream,omitempty"`
	StreamOptions       *chatStreamOp `json:"stream_options,omitempty"`
}

type chatStreamOp struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role       string         `json:"role"`
	Content    any            `json:"content"` // a string, a list of parts, or nil (null) beside tool calls
	ToolCalls  []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type chatTextPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type chatImagePart struct {
	Type     string       `json:"type"`
	ImageURL chatImageURL `json:"image_url"`
}

type chatImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type chatFilePart struct {
	Type string   `json:"type"`
	File chatFile `json:"file"`
}

type chatFile struct {
	Filename string `json:"filename,omitempty"`
	FileData string `json:"file_data"`
}

type chatToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function chatFunctionCall `json:"function"`
}

type chatFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type chatTool struct {
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type chatToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type chatFormat struct {
	Type       string          `json:"type"`
	JSONSchema *chatJSONSchema `json:"json_schema,omitempty"`
}

type chatJSONSchema struct {
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToChat renders the chat-completions body for the request: its
// instructions as the leading system message (instructions of previous
// responses are not carried over, as OpenAI does not), then history (the
// items of the previous responses, earlier inputs and outputs, in order),
// then this request's input. Consecutive function calls (and the
// assistant message right before them) become one assistant message with
// tool_calls, whose ids are the call_ids; a function call's output
// becomes a tool message. Developer messages become system messages.
// Unknown item types in history (reasoning) are skipped.
func (r *Request) ToChat(history []Item) ([]byte, error) {
	c := chatRequest{Model: r.Model, Messages: []chatMessage{}, Temperature: r.Temperature, TopP: r.TopP, User: r.User,
		MaxCompletionTokens: r.MaxOutputTokens}
	if r.Instructions != "" {
		c.Messages = append(c.Messages, chatMessage{Role: "system", Content: r.Instructions})
	}
	b := chatBuilder{messages: c.Messages}
	for _, it := range history {
		b.add(it)
	}
	for _, it := range r.items {
		b.add(it)
	}
	c.Messages = b.messages
	if len(c.Messages) == 0 {
		return nil, newError("invalid_value", "input", "Invalid 'input': the conversation is empty. Send at least one input item.")
	}
	for _, t := range r.tools {
		c.Tools = append(c.Tools, chatTool{Type: "function", Function: chatFunction{Name: t.Name, Description: t.Description,
			Parameters: t.Parameters, Strict: t.Strict}})
	}
	// Chat completions refuse tool_choice and parallel_tool_calls without
	// tools; a continuation that sends none has none to choose from.
	if len(c.Tools) > 0 {
		switch r.toolChoice.Mode {
		case "":
		case "function":
			tc := chatToolChoice{Type: "function"}
			tc.Function.Name = r.toolChoice.Name
			c.ToolChoice = tc
		default:
			c.ToolChoice = r.toolChoice.Mode
		}
		c.ParallelToolCalls = r.ParallelToolCalls
	}
	if f := r.format; f != nil {
		c.ResponseFormat = &chatFormat{Type: f.Type}
		if f.Type == "json_schema" {
			c.ResponseFormat.JSONSchema = &chatJSONSchema{Name: f.Name, Description: f.Description, Schema: f.Schema, Strict: f.Strict}
		}
	}
	if r.Stream {
		c.Stream = true
		c.StreamOptions = &chatStreamOp{IncludeUsage: true}
	}
	return marshal(c)
}

// chatBuilder appends conversation items as chat messages.
type chatBuilder struct {
	messages []chatMessage
	// calls is true when the last message is an assistant's that function
	// calls may join.
	calls bool
}

func (b *chatBuilder) add(it Item) {
	v := gjson.ParseBytes(it)
	switch v.Get("type").Str {
	case typeMessage:
		b.message(v)
	case typeFunctionCall:
		call := chatToolCall{ID: v.Get("call_id").Str, Type: "function",
			Function: chatFunctionCall{Name: v.Get("name").Str, Arguments: v.Get("arguments").Str}}
		if b.calls {
			last := &b.messages[len(b.messages)-1]
			last.ToolCalls = append(last.ToolCalls, call)
			return
		}
		b.messages = append(b.messages, chatMessage{Role: "assistant", ToolCalls: []chatToolCall{call}})
		b.calls = true
	case typeFunctionCallOutput:
		out := v.Get("output")
		content := out.Str
		if out.IsArray() {
			content = joinText(out)
		}
		b.messages = append(b.messages, chatMessage{Role: "tool", ToolCallID: v.Get("call_id").Str, Content: content})
		b.calls = false
	}
}

func (b *chatBuilder) message(v gjson.Result) {
	role := v.Get("role").Str
	content := v.Get("content")
	switch role {
	case "system", "developer":
		b.messages = append(b.messages, chatMessage{Role: "system", Content: joinText(content)})
		b.calls = false
	case "assistant":
		b.messages = append(b.messages, chatMessage{Role: "assistant", Content: joinText(content)})
		b.calls = true
	case "user":
		var parts []any
		text, simple := "", true
		content.ForEach(func(_, p gjson.Result) bool {
			switch p.Get("type").Str {
			case partInputText, partOutputText:
				parts = append(parts, chatTextPart{Type: "text", Text: p.Get("text").Str})
				text = p.Get("text").Str
			case partInputImage:
				u := chatImageURL{URL: p.Get("image_url").Str, Detail: p.Get("detail").Str}
				if u.Detail == "original" {
					u.Detail = ""
				}
				parts = append(parts, chatImagePart{Type: "image_url", ImageURL: u})
				simple = false
			case partInputFile:
				parts = append(parts, chatFilePart{Type: "file", File: chatFile{Filename: p.Get("filename").Str, FileData: p.Get("file_data").Str}})
				simple = false
			}
			return true
		})
		m := chatMessage{Role: "user", Content: parts}
		switch {
		case len(parts) == 0:
			m.Content = ""
		case simple && len(parts) == 1:
			m.Content = text
		}
		b.messages = append(b.messages, m)
		b.calls = false
	}
}

// joinText joins the text of content parts (text, and a refusal's text)
// in order; a string content is itself.
func joinText(content gjson.Result) string {
	if content.Type == gjson.String {
		return content.Str
	}
	var sb strings.Builder
	content.ForEach(func(_, p gjson.Result) bool {
		switch p.Get("type").Str {
		case partInputText, partOutputText:
			sb.WriteString(p.Get("text").Str)
		case partRefusal:
			sb.WriteString(p.Get("refusal").Str)
		}
		return true
	})
	return sb.String()
}

// marshal encodes v as compact JSON without escaping HTML characters.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
