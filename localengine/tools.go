package localengine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Tool use, served the way llama-server serves models without native
// tool-call support: the tools are rendered into the system message in the
// Hermes/Qwen convention, the model answers a call as
//
//	<tool_call>
//	{"name": <function-name>, "arguments": <args-json-object>}
//	</tool_call>
//
// and the provider parses those blocks back into OpenAI tool_calls. The
// chat template is still the model's own, for the roles; llama.cpp's
// llama_chat_apply_template (the only template API the binding exposes)
// takes no tools and runs no Jinja, so this text rendering is used for
// every model. See docs/localengine.md#tools.

const (
	callOpen      = "<tool_call>"
	callClose     = "</tool_call>"
	responseOpen  = "<tool_response>"
	responseClose = "</tool_response>"
)

// The tool section, as Qwen2.5's and Hermes 2 Pro's templates write it.
const (
	toolsHeader = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
	toolsFooter = "\n</tools>\n\nFor each function call, return a json object with function name and arguments " +
		"within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
)

// Tool choices.
const (
	choiceNone     = "none"
	choiceAuto     = "auto"
	choiceRequired = "required"
	choiceFunction = "function" // one named function
)

// toolDef is one function tool of a request.
type toolDef struct {
	Name        string
	Description *string
	// Parameters is the JSON schema, compacted with its key order kept;
	// nil when the tool declares none (it then takes no arguments).
	Parameters json.RawMessage
}

// toolSet is a request's tools and how they may be used.
type toolSet struct {
	tools    []toolDef
	index    map[string]int
	choice   string // choiceNone, choiceAuto, choiceRequired, choiceFunction
	forced   string // the function's name for choiceFunction
	parallel bool   // parallel_tool_calls
}

// active reports whether the tools are offered to the model (rendered into
// the prompt and parsed out of its answer).
func (t *toolSet) active() bool { return t != nil && len(t.tools) > 0 && t.choice != choiceNone }

// constrained reports whether the answer must be a tool call, enforced
// with a grammar.
func (t *toolSet) constrained() bool {
	return t.active() && (t.choice == choiceRequired || t.choice == choiceFunction)
}

func (t *toolSet) known(name string) bool {
	_, ok := t.index[name]
	return ok
}

var functionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

type wireTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description *string         `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// toolSet reads tools, tool_choice and parallel_tool_calls, checked as
// OpenAI checks them. The deprecated functions and function_call are
// refused rather than ignored.
func (b *genBody) toolSet() (*toolSet, error) {
	if !isNull(b.Functions) || !isNull(b.FunctionCall) {
		param := "functions"
		if isNull(b.Functions) {
			param = "function_call"
		}
		return nil, invalid(param, "the local engine takes tools and tool_choice, not the deprecated functions and function_call")
	}
	ts := &toolSet{index: map[string]int{}, parallel: true}
	if b.ParallelToolCalls != nil {
		ts.parallel = *b.ParallelToolCalls
	}
	for i, raw := range b.Tools {
		var w wireTool
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, invalid(fmt.Sprintf("tools[%d]", i), "a tool must be an object {\"type\": \"function\", \"function\": {...}}")
		}
		if w.Type != "function" && w.Type != "" {
			return nil, invalid(fmt.Sprintf("tools[%d].type", i), fmt.Sprintf("the local engine calls function tools only, not %q tools", w.Type))
		}
		if w.Function == nil {
			return nil, invalid(fmt.Sprintf("tools[%d].function", i), "a function tool needs its function")
		}
		name := w.Function.Name
		if !functionName.MatchString(name) {
			return nil, invalid(fmt.Sprintf("tools[%d].function.name", i), "a function name must match ^[a-zA-Z0-9_-]{1,64}$")
		}
		if _, dup := ts.index[name]; dup {
			return nil, invalid(fmt.Sprintf("tools[%d].function.name", i), fmt.Sprintf("two tools are named %q", name))
		}
		def := toolDef{Name: name, Description: w.Function.Description}
		if !isNull(w.Function.Parameters) {
			p := bytes.TrimSpace(w.Function.Parameters)
			if p[0] != '{' {
				return nil, invalid(fmt.Sprintf("tools[%d].function.parameters", i), "parameters must be a JSON schema object")
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, p); err != nil {
				return nil, invalid(fmt.Sprintf("tools[%d].function.parameters", i), "parameters must be a JSON schema object")
			}
			def.Parameters = buf.Bytes()
		}
		ts.index[name] = len(ts.tools)
		ts.tools = append(ts.tools, def)
	}
	raw := bytes.TrimSpace(b.ToolChoice)
	switch {
	case isNull(raw):
		ts.choice = choiceAuto
		if len(ts.tools) == 0 {
			ts.choice = choiceNone
		}
	case raw[0] == '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case choiceNone, choiceAuto, choiceRequired:
			ts.choice = s
		default:
			return nil, invalid("tool_choice", `tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}`)
		}
	default:
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if err := json.Unmarshal(raw, &named); err != nil || named.Type != "function" || named.Function.Name == "" {
			return nil, invalid("tool_choice", `the local engine takes tool_choice "none", "auto", "required" or {"type": "function", "function": {"name": ...}}`)
		}
		if !ts.known(named.Function.Name) {
			return nil, invalid("tool_choice", fmt.Sprintf("tool_choice names the function %q, which is not in tools", named.Function.Name))
		}
		ts.choice, ts.forced = choiceFunction, named.Function.Name
	}
	if (ts.choice == choiceRequired || ts.choice == choiceFunction) && len(ts.tools) == 0 {
		return nil, invalid("tool_choice", "tool_choice "+ts.choice+" needs tools")
	}
	return ts, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// section is the text added to the system message: the tools' signatures
// inside <tools></tools>, one JSON object a line, and the call format.
func (t *toolSet) section() string {
	var b strings.Builder
	b.WriteString(toolsHeader)
	for _, tool := range t.tools {
		b.WriteString("\n")
		b.WriteString(toolSignature(tool))
	}
	b.WriteString(toolsFooter)
	return b.String()
}

// toolSignature is a tool as the templates' `tool | tojson` writes it:
// {"type": "function", "function": {"name": ..., "description": ...,
// "parameters": ...}}, with Python's separators.
func toolSignature(t toolDef) string {
	var b strings.Builder
	b.WriteString(`{"type": "function", "function": {"name": `)
	b.WriteString(jsonString(t.Name))
	if t.Description != nil {
		b.WriteString(`, "description": `)
		b.WriteString(jsonString(*t.Description))
	}
	if t.Parameters != nil {
		b.WriteString(`, "parameters": `)
		b.WriteString(spaced(t.Parameters))
	}
	b.WriteString("}}")
	return b.String()
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// spaced rewrites compact JSON with Python json.dumps' separators (", "
// and ": "), the form chat templates' tojson produces and models are
// trained on.
func spaced(compact []byte) string {
	var b strings.Builder
	b.Grow(len(compact) + len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		b.WriteByte(c)
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ',' || c == ':':
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// wireToolCall is a tool call in an assistant message of the history.
type wireToolCall struct {
	ID       string        `json:"id"`
	Type     string        `json:"type"`
	Function *wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // a JSON string, as OpenAI sends it; an object is taken too
}

// renderCall writes one call of the history as the model is asked to
// write it.
func renderCall(name string, args json.RawMessage) string {
	return callOpen + "\n{\"name\": " + jsonString(name) + ", \"arguments\": " + renderArguments(args) + "}\n" + callClose
}

// renderArguments is a call's arguments as JSON: OpenAI sends them as a
// string holding JSON; valid JSON is written as such (Python-spaced),
// anything else as the string it is.
func renderArguments(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "{}"
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "{}"
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(s)); err != nil || buf.Len() == 0 {
			return jsonString(s)
		}
		return spaced(buf.Bytes())
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "{}"
	}
	return spaced(buf.Bytes())
}

// chatMessages turns the request's messages into the chat template's:
// developer becomes system; the tool section (when tools are offered)
// ends the first system message, which is created when there is none; an
// assistant's tool_calls become <tool_call> blocks after its text; and a
// run of tool (or function) results becomes one user turn of
// <tool_response> blocks, since most small templates know no tool role.
func (b *genBody) chatMessages(ts *toolSet) ([]Message, error) {
	if len(b.Messages) == 0 {
		return nil, invalid("messages", "messages must not be empty")
	}
	out := make([]Message, 0, len(b.Messages)+1)
	inResults := false // the last message out is a turn of tool results
	for i, m := range b.Messages {
		if m.Role == "" {
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "every message needs a role")
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		text, err := contentText(m.Content, i)
		if err != nil {
			return nil, err
		}
		switch role {
		case "tool", "function":
			block := responseOpen + "\n" + text + "\n" + responseClose
			if inResults {
				out[len(out)-1].Content += "\n" + block
			} else {
				out = append(out, Message{Role: "user", Content: block})
			}
			inResults = true
			continue
		case "assistant":
			parts := make([]string, 0, 1+len(m.ToolCalls))
			if text != "" {
				parts = append(parts, text)
			}
			for k, tc := range m.ToolCalls {
				p := fmt.Sprintf("messages[%d].tool_calls[%d]", i, k)
				if tc.Type != "function" && tc.Type != "" {
					return nil, invalid(p+".type", fmt.Sprintf("the local engine calls function tools only, not %q tools", tc.Type))
				}
				if tc.Function == nil || tc.Function.Name == "" {
					return nil, invalid(p+".function", "a tool call needs its function's name")
				}
				parts = append(parts, renderCall(tc.Function.Name, tc.Function.Arguments))
			}
			if fc := m.FunctionCall; fc != nil && fc.Name != "" {
				parts = append(parts, renderCall(fc.Name, fc.Arguments))
			}
			text = strings.Join(parts, "\n")
		}
		inResults = false
		out = append(out, Message{Role: role, Content: text})
	}
	if ts.active() {
		section := ts.section()
		if out[0].Role == "system" {
			if out[0].Content == "" {
				out[0].Content = section
			} else {
				out[0].Content += "\n\n" + section
			}
		} else {
			out = append([]Message{{Role: "system", Content: section}}, out...)
		}
	}
	return out, nil
}
