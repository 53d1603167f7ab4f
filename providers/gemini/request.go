package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/switchyard/switchyard/providers/chatwire"
)

// The generateContent request body.
// https://ai.google.dev/api/generate-content#request-body

type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

// content is a Content: a turn of the conversation.
// https://ai.google.dev/api/caching#Content
type content struct {
	Role  string `json:"role,omitempty"` // user or model
	Parts []part `json:"parts"`
}

// part is a Part; exactly one of its data fields is set.
// https://ai.google.dev/api/caching#Part
type part struct {
	Text             string            `json:"text,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	// Thought marks a thought summary, which is not part of the answer.
	Thought          bool   `json:"thought,omitempty"`
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

type blob struct {
	MimeType string `json:"mimeType"`
	Data     []byte `json:"data"` // base64 on the wire
}

type fileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type functionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
}

type functionDeclaration struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Parameters  any    `json:"parameters,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode"` // AUTO, ANY, NONE
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// https://ai.google.dev/api/generate-content#generationconfig
type generationConfig struct {
	StopSequences    []string `json:"stopSequences,omitempty"`
	ResponseMimeType string   `json:"responseMimeType,omitempty"`
	ResponseSchema   any      `json:"responseSchema,omitempty"`
	MaxOutputTokens  int      `json:"maxOutputTokens,omitempty"`
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"topP,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
}

// skipThoughtSignature is the placeholder Google documents for a function
// call the model did not produce in this conversation (or whose signature
// was lost): Gemini 3 answers 400 when the first functionCall of a step
// comes back without a thoughtSignature. OpenAI's wire format has nowhere
// to carry the real signature, so every replayed step gets this one.
// https://ai.google.dev/gemini-api/docs/thought-signatures
const skipThoughtSignature = "skip_thought_signature_validator"

// buildRequest translates a parsed chat request into a generateContent
// body.
func buildRequest(r *chatwire.Request) ([]byte, error) {
	g := &generateRequest{}
	var system []part
	// names maps a tool call id to its function's name; a later call with
	// the same id (ids repeat across responses: call_0...) replaces it.
	names := map[string]string{}
	for i, m := range r.Messages {
		switch m.Role {
		case "system":
			for k, p := range m.Parts {
				if p.Image != nil {
					return nil, chatwire.Invalid(fmt.Sprintf("messages[%d].content[%d]", i, k), "Gemini takes text only in system instructions")
				}
				if p.Text != "" {
					system = append(system, part{Text: p.Text})
				}
			}
		case "user":
			g.Contents = appendTurn(g.Contents, "user", userParts(m.Parts))
		case "assistant":
			var parts []part
			if t := m.Text(); t != "" {
				parts = append(parts, part{Text: t})
			}
			for k, tc := range m.ToolCalls {
				args, err := callArgs(tc.Arguments, fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, k))
				if err != nil {
					return nil, err
				}
				p := part{FunctionCall: &functionCall{Name: tc.Name, Args: args}}
				if k == 0 {
					p.ThoughtSignature = skipThoughtSignature
				}
				parts = append(parts, p)
				names[tc.ID] = tc.Name
			}
			g.Contents = appendTurn(g.Contents, "model", parts)
		case "tool":
			name, ok := names[m.ToolCallID]
			if !ok {
				if m.Name == "" {
					return nil, chatwire.Invalid(fmt.Sprintf("messages[%d].tool_call_id", i),
						"no earlier assistant message has a tool call with id %q", m.ToolCallID)
				}
				name = m.Name
			}
			g.Contents = appendTurn(g.Contents, "user", []part{{FunctionResponse: &functionResponse{Name: name, Response: toolResult(m.Text())}}})
		}
	}
	if len(system) > 0 {
		g.SystemInstruction = &content{Parts: system}
	}
	if len(g.Contents) == 0 {
		// Gemini needs a turn; a conversation of system messages only is
		// sent as the user's turn.
		if g.SystemInstruction == nil {
			return nil, chatwire.Invalid("messages", "messages must contain some content")
		}
		g.Contents = []content{{Role: "user", Parts: system}}
		g.SystemInstruction = nil
	}
	if err := addTools(g, r); err != nil {
		return nil, err
	}
	gc, err := genConfig(r)
	if err != nil {
		return nil, err
	}
	g.GenerationConfig = gc
	b, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("encoding the Gemini request: %w", err)
	}
	return b, nil
}

// appendTurn adds parts as a turn, merged into the last one when it has
// the same role: Gemini expects user and model turns to alternate. A turn
// without parts is dropped (Gemini refuses empty turns and empty text).
func appendTurn(turns []content, role string, parts []part) []content {
	if len(parts) == 0 {
		return turns
	}
	if n := len(turns); n > 0 && turns[n-1].Role == role {
		turns[n-1].Parts = append(turns[n-1].Parts, parts...)
		return turns
	}
	return append(turns, content{Role: role, Parts: parts})
}

// userParts translates a user message's text and images. Inline images
// become inlineData; image URLs become fileData, which the Gemini API
// fetches itself (public and signed http(s) URLs, besides Files API and
// YouTube URIs). The URL's media type is guessed from its extension and
// left out when unknown.
func userParts(in []chatwire.Part) []part {
	var out []part
	for _, p := range in {
		switch {
		case p.Image == nil:
			if p.Text != "" {
				out = append(out, part{Text: p.Text})
			}
		case p.Image.URL == "":
			out = append(out, part{InlineData: &blob{MimeType: p.Image.MediaType, Data: p.Image.Data}})
		default:
			out = append(out, part{FileData: &fileData{MimeType: imageType(p.Image.URL), FileURI: p.Image.URL}})
		}
	}
	return out
}

// imageType guesses an image URL's media type from its extension, among
// the image types Gemini accepts.
// https://ai.google.dev/gemini-api/docs/image-understanding#supported-formats
func imageType(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	switch strings.ToLower(path.Ext(u)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".heic":
		return "image/heic"
	case ".heif":
		return "image/heif"
	}
	return ""
}

// callArgs parses a tool call's arguments into the JSON object Gemini's
// functionCall.args is; empty arguments are {}.
func callArgs(args, param string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(args))
	if len(b) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, chatwire.Invalid(param, "tool call arguments must be a JSON object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, chatwire.Invalid(param, "tool call arguments must be a JSON object")
	}
	return out.Bytes(), nil
}

// toolResult is a functionResponse.response: {"content": result}, the
// result parsed when it is JSON and a string otherwise.
func toolResult(text string) json.RawMessage {
	var v json.RawMessage
	if t := bytes.TrimSpace([]byte(text)); len(t) > 0 && json.Valid(t) {
		var out bytes.Buffer
		_ = json.Compact(&out, t)
		v = out.Bytes()
	} else {
		v, _ = json.Marshal(text)
	}
	b, _ := json.Marshal(map[string]json.RawMessage{"content": v})
	return b
}

// addTools translates tools and tool_choice. Strict mode and
// parallel_tool_calls have no Gemini equivalent and are ignored.
func addTools(g *generateRequest, r *chatwire.Request) error {
	if len(r.Tools) == 0 {
		if r.ToolChoice.Mode == "function" {
			return chatwire.Invalid("tool_choice", "tool_choice names a function but no tools were sent")
		}
		return nil
	}
	decls := make([]functionDeclaration, 0, len(r.Tools))
	known := false
	for i, t := range r.Tools {
		params, err := toolParameters(t.Parameters)
		if err != nil {
			return chatwire.Invalid(fmt.Sprintf("tools[%d].function.parameters", i), "%v", err)
		}
		decls = append(decls, functionDeclaration{Name: t.Name, Description: t.Description, Parameters: params})
		known = known || t.Name == r.ToolChoice.Name
	}
	g.Tools = []tool{{FunctionDeclarations: decls}}
	var fc functionCallingConfig
	switch r.ToolChoice.Mode {
	case "":
		return nil
	case "auto":
		fc.Mode = "AUTO"
	case "none":
		fc.Mode = "NONE"
	case "required":
		fc.Mode = "ANY"
	case "function":
		if !known {
			return chatwire.Invalid("tool_choice", "tool_choice names %q, which is not among the tools", r.ToolChoice.Name)
		}
		fc.Mode, fc.AllowedFunctionNames = "ANY", []string{r.ToolChoice.Name}
	}
	g.ToolConfig = &toolConfig{FunctionCallingConfig: fc}
	return nil
}

// genConfig translates the sampling and output settings; nil when none was
// sent.
func genConfig(r *chatwire.Request) (*generationConfig, error) {
	gc := &generationConfig{StopSequences: r.Stop, MaxOutputTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP, Seed: r.Seed}
	if r.Seed != nil && (*r.Seed < math.MinInt32 || *r.Seed > math.MaxInt32) {
		return nil, chatwire.Invalid("seed", "Gemini takes a 32-bit seed")
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			gc.ResponseMimeType = "application/json"
			if len(bytes.TrimSpace(rf.Schema)) > 0 {
				s, err := responseSchema(rf.Schema)
				if err != nil {
					return nil, chatwire.Invalid("response_format.json_schema.schema", "%v", err)
				}
				gc.ResponseSchema = s
			}
		default:
			return nil, chatwire.Invalid("response_format.type", "response_format must be text, json_object or json_schema, not %q", rf.Type)
		}
	}
	if gc.StopSequences == nil && gc.ResponseMimeType == "" && gc.MaxOutputTokens == 0 &&
		gc.Temperature == nil && gc.TopP == nil && gc.Seed == nil {
		return nil, nil
	}
	return gc, nil
}
