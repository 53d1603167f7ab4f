package responses

import (
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

// Item is one conversation item, as JSON: an input or output item of the
// Responses API, normalised. The types are:
//
//	{"type":"message","role":"user","content":[{"type":"input_text","text":"..."},
//	    {"type":"input_image","image_url":"https://...","detail":"auto"}]}
//	{"type":"message","id":"msg_...","status":"completed","role":"assistant",
//	    "content":[{"type":"output_text","text":"...","annotations":[]}]}
//	{"type":"function_call","id":"fc_...","call_id":"call_...","name":"...","arguments":"{...}","status":"completed"}
//	{"type":"function_call_output","call_id":"call_...","output":"..."}
//
// A message's content is always a list of parts: input_text (user,
// system and developer messages), output_text and refusal (assistant
// messages), input_image and input_file (user messages). A string content
// is one text part. It is a json.RawMessage, so a list of items is stored
// and read back with encoding/json as it is.
type Item = json.RawMessage

// Conversation item and content part types.
const (
	typeMessage            = "message"
	typeFunctionCall       = "function_call"
	typeFunctionCallOutput = "function_call_output"
	partInputText          = "input_text"
	partOutputText         = "output_text"
	partRefusal            = "refusal"
	partInputImage         = "input_image"
	partInputFile          = "input_file"
)

type messageItem struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Status  string `json:"status,omitempty"`
	Role    string `json:"role"`
	Content []any  `json:"content"`
}

type functionCallItem struct {
	Type      string `json:"type"`
	ID        string `json:"id,omitempty"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Status    string `json:"status,omitempty"`
}

type functionCallOutputItem struct {
	Type   string `json:"type"`
	ID     string `json:"id,omitempty"`
	CallID string `json:"call_id"`
	Output any    `json:"output"` // a string, or a list of parts
}

type textPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type outputTextPart struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

type refusalPart struct {
	Type    string `json:"type"`
	Refusal string `json:"refusal"`
}

type imagePart struct {
	Type     string `json:"type"`
	ImageURL string `json:"image_url"`
	Detail   string `json:"detail"`
}

type filePart struct {
	Type     string `json:"type"`
	Filename string `json:"filename,omitempty"`
	FileData string `json:"file_data"`
}

func outputText(s string) outputTextPart {
	return outputTextPart{Type: partOutputText, Text: s, Annotations: []any{}}
}

// InputItems returns the request's input as normalised items: a string
// input is one user message.
func (r *Request) InputItems() ([]Item, error) {
	out := make([]Item, len(r.items))
	copy(out, r.items)
	return out, nil
}

// parseInput validates input (a string or an array of items) and returns
// it normalised. Reasoning items are dropped (noted as input.reasoning).
func parseInput(v gjson.Result, notes *[]string) ([]Item, *Error) {
	if v.Type == gjson.String {
		return []Item{mustJSON(messageItem{Type: typeMessage, Role: "user", Content: []any{textPart{Type: partInputText, Text: v.Str}}})}, nil
	}
	var items []Item
	err := eachElement("input", v, func(ep string, x gjson.Result) *Error {
		if !x.IsObject() {
			return invalidType(ep, "an object", x)
		}
		typ := x.Get("type")
		if typ.Exists() && typ.Type != gjson.Null && typ.Type != gjson.String {
			return invalidType(ep+".type", "a string", typ)
		}
		switch t := typ.Str; t {
		case "", typeMessage:
			it, err := parseMessage(ep, x)
			if err != nil {
				return err
			}
			items = append(items, it)
		case typeFunctionCall:
			it, err := parseFunctionCall(ep, x)
			if err != nil {
				return err
			}
			items = append(items, it)
		case typeFunctionCallOutput:
			it, err := parseFunctionCallOutput(ep, x)
			if err != nil {
				return err
			}
			items = append(items, it)
		case "reasoning":
			addNote(notes, "input.reasoning")
		case "item_reference":
			return unsupported(ep+".type", "item references are not available on this gateway; send the item itself, or continue with previous_response_id.")
		default:
			if strings.HasSuffix(t, "_call") || strings.HasSuffix(t, "_call_output") || strings.HasPrefix(t, "mcp_") ||
				t == "compaction" || t == "additional_tools" || t == "tool_search_output" || t == "image_generation_call" {
				return unsupported(ep+".type", "'%s' items belong to OpenAI's built-in tools, which this gateway cannot run.", t)
			}
			return newError("invalid_value", ep+".type", "Invalid value for '%s'. Supported values are: 'message', 'function_call', 'function_call_output', 'reasoning', and 'item_reference'.", ep+".type")
		}
		return nil
	})
	return items, err
}

func addNote(notes *[]string, name string) {
	for _, n := range *notes {
		if n == name {
			return
		}
	}
	*notes = append(*notes, name)
}

// parseMessage validates a message item (type message, or no type) and
// normalises it.
func parseMessage(p string, v gjson.Result) (Item, *Error) {
	m := messageItem{Type: typeMessage}
	var content gjson.Result
	err := eachMember(p, v, func(k, mp string, x gjson.Result) *Error {
		switch k {
		case "role":
			if err := wantEnum(mp, x, "user", "assistant", "system", "developer"); err != nil {
				return err
			}
			m.Role = x.Str
		case "content":
			if x.Type != gjson.String && !x.IsArray() {
				return invalidType(mp, "a string or an array of content parts", x)
			}
			content = x
		case "id":
			if err := wantString(mp, x); err != nil {
				return err
			}
			m.ID = x.Str
		case "status":
			return wantEnum(mp, x, "in_progress", "completed", "incomplete")
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case m.Role == "":
		return nil, missing(p + ".role")
	case !content.Exists():
		return nil, missing(p + ".content")
	}
	if content.Type == gjson.String {
		m.Content = []any{textFor(m.Role, content.Str)}
		return mustJSON(m), nil
	}
	m.Content = []any{}
	err = eachElement(p+".content", content, func(ep string, x gjson.Result) *Error {
		part, err := parsePart(ep, m.Role, x)
		if err == nil {
			m.Content = append(m.Content, part)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return mustJSON(m), nil
}

// textFor is a text part as role's messages carry it.
func textFor(role, s string) any {
	if role == "assistant" {
		return outputText(s)
	}
	return textPart{Type: partInputText, Text: s}
}

// parsePart validates one content part of a role's message and
// normalises it. Text parts take the type of the role (input_text, or
// output_text for the assistant) whichever was sent.
func parsePart(p, role string, v gjson.Result) (any, *Error) {
	if !v.IsObject() {
		return nil, invalidType(p, "an object", v)
	}
	typ := v.Get("type")
	switch {
	case !typ.Exists() || typ.Type == gjson.Null:
		return nil, missing(p + ".type")
	case typ.Type != gjson.String:
		return nil, invalidType(p+".type", "a string", typ)
	}
	str := func(k string, required bool) (string, bool, *Error) {
		x := v.Get(k)
		if !x.Exists() || x.Type == gjson.Null {
			if required {
				return "", false, missing(p + "." + k)
			}
			return "", false, nil
		}
		if err := wantString(p+"."+k, x); err != nil {
			return "", false, err
		}
		return x.Str, true, nil
	}
	switch typ.Str {
	case partInputText, partOutputText:
		s, _, err := str("text", true)
		if err != nil {
			return nil, err
		}
		return textFor(role, s), nil
	case partRefusal:
		s, _, err := str("refusal", true)
		if err != nil {
			return nil, err
		}
		if role != "assistant" {
			return nil, newError("invalid_value", p+".type", "Invalid value for '%s': refusal parts belong to assistant messages.", p+".type")
		}
		return refusalPart{Type: partRefusal, Refusal: s}, nil
	case partInputImage:
		if role != "user" {
			return nil, newError("invalid_value", p+".type", "Invalid value for '%s': images are supported in user messages only.", p+".type")
		}
		detail := "auto"
		if d := v.Get("detail"); d.Exists() && d.Type != gjson.Null {
			if err := wantEnum(p+".detail", d, "low", "high", "auto", "original"); err != nil {
				return nil, err
			}
			detail = d.Str
		}
		url, hasURL, err := str("image_url", false)
		if err != nil {
			return nil, err
		}
		if _, hasFile, err := str("file_id", false); err != nil {
			return nil, err
		} else if hasFile && !hasURL {
			return nil, unsupported(p+".file_id", "files uploaded to OpenAI cannot be read by this gateway; send the image as image_url (an https URL or a base64 data: URL).")
		}
		if !hasURL || url == "" {
			return nil, missing(p + ".image_url")
		}
		return imagePart{Type: partInputImage, ImageURL: url, Detail: detail}, nil
	case partInputFile:
		if role != "user" {
			return nil, newError("invalid_value", p+".type", "Invalid value for '%s': files are supported in user messages only.", p+".type")
		}
		data, hasData, err := str("file_data", false)
		if err != nil {
			return nil, err
		}
		name, _, err := str("filename", false)
		if err != nil {
			return nil, err
		}
		if _, hasID, err := str("file_id", false); err != nil {
			return nil, err
		} else if hasID && !hasData {
			return nil, unsupported(p+".file_id", "files uploaded to OpenAI cannot be read by this gateway; send the file inline as file_data with its filename.")
		}
		if _, hasURL, err := str("file_url", false); err != nil {
			return nil, err
		} else if hasURL && !hasData {
			return nil, unsupported(p+".file_url", "this gateway does not fetch files; send the file inline as file_data with its filename.")
		}
		if !hasData || data == "" {
			return nil, missing(p + ".file_data")
		}
		return filePart{Type: partInputFile, Filename: name, FileData: data}, nil
	}
	return nil, newError("invalid_value", p+".type", "Invalid value for '%s'. Supported values are: 'input_text', 'input_image', 'input_file', 'output_text', and 'refusal'.", p+".type")
}

// parseFunctionCall validates a function_call item (a call the model
// made, sent back by the client).
func parseFunctionCall(p string, v gjson.Result) (Item, *Error) {
	c := functionCallItem{Type: typeFunctionCall, Status: "completed"}
	var callID, name, args bool
	err := eachMember(p, v, func(k, mp string, x gjson.Result) *Error {
		switch k {
		case "call_id":
			callID, c.CallID = true, x.Str
			return wantString(mp, x)
		case "name":
			name, c.Name = true, x.Str
			return wantString(mp, x)
		case "arguments":
			args, c.Arguments = true, x.Str
			return wantString(mp, x)
		case "id":
			c.ID = x.Str
			return wantString(mp, x)
		case "status":
			return wantEnum(mp, x, "in_progress", "completed", "incomplete")
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !callID:
		return nil, missing(p + ".call_id")
	case !name:
		return nil, missing(p + ".name")
	case !args:
		return nil, missing(p + ".arguments")
	}
	return mustJSON(c), nil
}

// parseFunctionCallOutput validates a function_call_output item: the
// result of a call, as a string or a list of parts.
func parseFunctionCallOutput(p string, v gjson.Result) (Item, *Error) {
	o := functionCallOutputItem{Type: typeFunctionCallOutput}
	var callID bool
	var output gjson.Result
	err := eachMember(p, v, func(k, mp string, x gjson.Result) *Error {
		switch k {
		case "call_id":
			callID, o.CallID = true, x.Str
			return wantString(mp, x)
		case "output":
			if x.Type != gjson.String && !x.IsArray() {
				return invalidType(mp, "a string or an array of content parts", x)
			}
			output = x
		case "id":
			o.ID = x.Str
			return wantString(mp, x)
		case "status":
			return wantEnum(mp, x, "in_progress", "completed", "incomplete")
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !callID:
		return nil, missing(p + ".call_id")
	case !output.Exists():
		return nil, missing(p + ".output")
	}
	if output.Type == gjson.String {
		o.Output = output.Str
		return mustJSON(o), nil
	}
	parts := []any{}
	err = eachElement(p+".output", output, func(ep string, x gjson.Result) *Error {
		typ := x.Get("type")
		if x.IsObject() && (typ.Str == partInputImage || typ.Str == partInputFile) {
			return unsupported(ep+".type", "a function's output can only be text on this gateway (chat completions' tool messages carry text).")
		}
		part, err := parsePart(ep, "user", x)
		if err == nil {
			parts = append(parts, part)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	o.Output = parts
	return mustJSON(o), nil
}

// mustJSON marshals v, which cannot fail for the package's own types,
// without escaping HTML characters.
func mustJSON(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
