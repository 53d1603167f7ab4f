// Package chatwire is OpenAI's chat-completions wire format as Go types,
// for the providers that translate it (Anthropic, Gemini, Bedrock): the
// client's request parsed once into Request, and the Response and stream
// chunks (StreamWriter) they answer with. Providers for OpenAI-compatible
// upstreams relay bytes and do not need it.
package chatwire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/providers"
)

// Request is a chat-completions request.
type Request struct {
	Model    string
	Messages []Message
	Tools    []Tool
	// ToolChoice is the client's tool_choice; Mode "" means not sent.
	ToolChoice ToolChoice
	// ParallelToolCalls is parallel_tool_calls; nil means not sent.
	ParallelToolCalls *bool
	// MaxTokens is max_completion_tokens, else max_tokens; 0 means not sent.
	MaxTokens   int
	Temperature *float64
	TopP        *float64
	Stop        []string
	Stream      bool
	// IncludeUsage is stream_options.include_usage.
	IncludeUsage bool
	Seed         *int64
	User         string
	// ResponseFormat is response_format; nil means text.
	ResponseFormat *ResponseFormat
}

// Message is one message of the conversation.
type Message struct {
	// Role is system, user, assistant or tool; developer is read as system.
	Role string
	// Parts are the content's text and image parts, in order; a string
	// content is one text part.
	Parts []Part
	// ToolCalls are an assistant message's calls.
	ToolCalls []ToolCall
	// ToolCallID is the call a tool message answers.
	ToolCallID string
	Name       string
}

// Text joins the message's text parts.
func (m *Message) Text() string {
	var b strings.Builder
	for _, p := range m.Parts {
		if p.Image == nil {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// Part is a text part, or an image part when Image is set.
type Part struct {
	Text  string
	Image *Image
}

// Image is an image part: a URL the provider fetches, or inline data from a
// data: URL.
type Image struct {
	URL       string // http(s) URL; empty for inline data
	MediaType string // inline data's type, e.g. image/png
	Data      []byte // inline data, decoded
	Detail    string
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments; {"type":"object"}
	// when the client sent none.
	Parameters json.RawMessage
	Strict     bool
}

// ToolCall is a call the model made.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON text, as the model produced it
}

// ToolChoice is tool_choice: Mode none, auto, required, or function with
// Name.
type ToolChoice struct {
	Mode string
	Name string
}

// ResponseFormat is response_format: Type text, json_object or
// json_schema (with Name and Schema).
type ResponseFormat struct {
	Type   string
	Name   string
	Schema json.RawMessage
}

// Invalid is a 400 in OpenAI's shape naming the offending parameter.
func Invalid(param, format string, args ...any) *providers.Error {
	return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request",
		Param: param, Message: fmt.Sprintf(format, args...)}
}

type wireRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	Tools               []wireTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Seed           *int64 `json:"seed"`
	User           string `json:"user"`
	N              *int   `json:"n"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

type wireMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []wireToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type wirePart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"`
}

type wireTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// ParseRequest reads a chat-completions body. What a translating provider
// cannot express is refused with a 400 naming the parameter (n > 1, a
// non-function tool, an image that is neither a URL nor base64 data).
func ParseRequest(body []byte) (*Request, error) {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, Invalid("", "the request body is not a valid chat completion request: %v", err)
	}
	if w.N != nil && *w.N != 1 {
		return nil, Invalid("n", "this provider returns one choice per request (n must be 1)")
	}
	if len(w.Messages) == 0 {
		return nil, Invalid("messages", "messages must not be empty")
	}
	r := &Request{Model: w.Model, ParallelToolCalls: w.ParallelToolCalls, Temperature: w.Temperature, TopP: w.TopP,
		Stream: w.Stream, Seed: w.Seed, User: w.User}
	if w.StreamOptions != nil {
		r.IncludeUsage = w.StreamOptions.IncludeUsage
	}
	switch {
	case w.MaxCompletionTokens != nil:
		r.MaxTokens = *w.MaxCompletionTokens
	case w.MaxTokens != nil:
		r.MaxTokens = *w.MaxTokens
	}
	if r.MaxTokens < 0 {
		return nil, Invalid("max_tokens", "max_tokens must be positive")
	}
	var err error
	if r.Stop, err = StringOrList(w.Stop, "stop"); err != nil {
		return nil, err
	}
	for i, m := range w.Messages {
		msg, err := parseMessage(m, i)
		if err != nil {
			return nil, err
		}
		r.Messages = append(r.Messages, msg)
	}
	for i, t := range w.Tools {
		if t.Type != "function" {
			return nil, Invalid(fmt.Sprintf("tools[%d].type", i), "only function tools are supported, not %q", t.Type)
		}
		if t.Function.Name == "" {
			return nil, Invalid(fmt.Sprintf("tools[%d].function.name", i), "a tool needs a name")
		}
		params := t.Function.Parameters
		if len(bytes.TrimSpace(params)) == 0 || string(bytes.TrimSpace(params)) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		r.Tools = append(r.Tools, Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: params,
			Strict: t.Function.Strict != nil && *t.Function.Strict})
	}
	if r.ToolChoice, err = parseToolChoice(w.ToolChoice); err != nil {
		return nil, err
	}
	if rf := w.ResponseFormat; rf != nil && rf.Type != "" && rf.Type != "text" {
		r.ResponseFormat = &ResponseFormat{Type: rf.Type}
		if rf.JSONSchema != nil {
			r.ResponseFormat.Name, r.ResponseFormat.Schema = rf.JSONSchema.Name, rf.JSONSchema.Schema
		}
	}
	return r, nil
}

func parseMessage(m wireMessage, i int) (Message, error) {
	msg := Message{Role: m.Role, Name: m.Name, ToolCallID: m.ToolCallID}
	switch m.Role {
	case "developer":
		msg.Role = "system"
	case "system", "user", "assistant", "tool":
	case "":
		return msg, Invalid(fmt.Sprintf("messages[%d].role", i), "every message needs a role")
	default:
		return msg, Invalid(fmt.Sprintf("messages[%d].role", i), "unknown role %q", m.Role)
	}
	if m.Role == "tool" && m.ToolCallID == "" {
		return msg, Invalid(fmt.Sprintf("messages[%d].tool_call_id", i), "a tool message needs the tool_call_id it answers")
	}
	content := bytes.TrimSpace(m.Content)
	switch {
	case len(content) == 0 || string(content) == "null":
	case content[0] == '"':
		var s string
		if err := json.Unmarshal(content, &s); err != nil {
			return msg, Invalid(fmt.Sprintf("messages[%d].content", i), "content must be a string or an array of parts")
		}
		msg.Parts = []Part{{Text: s}}
	default:
		var parts []wirePart
		if err := json.Unmarshal(content, &parts); err != nil {
			return msg, Invalid(fmt.Sprintf("messages[%d].content", i), "content must be a string or an array of parts")
		}
		for k, p := range parts {
			param := fmt.Sprintf("messages[%d].content[%d]", i, k)
			switch p.Type {
			case "text":
				msg.Parts = append(msg.Parts, Part{Text: p.Text})
			case "image_url":
				if p.ImageURL == nil {
					return msg, Invalid(param+".image_url", "an image part needs image_url")
				}
				img, err := parseImage(p.ImageURL.URL, p.ImageURL.Detail, param+".image_url.url")
				if err != nil {
					return msg, err
				}
				msg.Parts = append(msg.Parts, Part{Image: img})
			default:
				return msg, Invalid(param+".type", "content parts of type %q are not supported by this provider", p.Type)
			}
		}
	}
	for k, tc := range m.ToolCalls {
		if tc.Function.Name == "" {
			return msg, Invalid(fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i, k), "a tool call needs a name")
		}
		msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	return msg, nil
}

// parseImage reads an image URL: http(s), or a base64 data: URL.
func parseImage(u, detail, param string) (*Image, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isBase64 || mediaType == "" {
			return nil, Invalid(param, "an inline image must be a base64 data: URL with a media type")
		}
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, Invalid(param, "the inline image is not valid base64")
		}
		return &Image{MediaType: mediaType, Data: b, Detail: detail}, nil
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return nil, Invalid(param, "an image URL must be http(s) or a base64 data: URL")
	}
	return &Image{URL: u, Detail: detail}, nil
}

func parseToolChoice(raw json.RawMessage) (ToolChoice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ToolChoice{}, nil
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case "none", "auto", "required":
			return ToolChoice{Mode: s}, nil
		}
		return ToolChoice{}, Invalid("tool_choice", "tool_choice must be none, auto, required or a function")
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return ToolChoice{}, Invalid("tool_choice", "tool_choice must be none, auto, required or a function")
	}
	return ToolChoice{Mode: "function", Name: obj.Function.Name}, nil
}

// StringOrList reads a parameter OpenAI accepts as a string or an array
// of strings (stop, prompt, input); null or absent is none. A value of
// another type is a 400 naming param.
func StringOrList(raw json.RawMessage, param string) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, Invalid(param, "%s must be a string or an array of strings", param)
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, Invalid(param, "%s must be a string or an array of strings", param)
	}
	return list, nil
}
