// Package responses translates OpenAI's Responses API (POST /v1/responses)
// to and from the chat-completions format the gateway speaks inside: a
// Responses request, with the stored conversation its
// previous_response_id continues, becomes a chat-completions body
// (Request.ToChat); the chat answer becomes a Response object (FromChat),
// and a stream of chat chunks becomes the Responses event stream
// (Stream).
//
// Parse validates every documented parameter by type and range, with
// OpenAI's error codes and parameter paths. What the chat format cannot
// express is refused with a 400 that says so (built-in tools such as
// web_search, file ids, item references, background mode, stored prompts
// and conversations); what only changes how OpenAI itself would serve the
// request is accepted and dropped, and Notes lists it (reasoning,
// truncation, include, service_tier, ...). Unknown parameters are
// ignored.
//
// Conversation items (Item) are the JSON of input and output items as the
// Responses API shows them, normalised: a message has a role and a list
// of content parts, a function call its call_id, name and arguments, a
// function call's output its call_id and output. They are what the
// gateway stores for previous_response_id.
package responses

import (
	"encoding/json"
	"math"
	"regexp"

	"github.com/tidwall/gjson"
)

// Request is a parsed, validated Responses request.
type Request struct {
	// Model is the model the client asked for.
	Model string
	// Stream is true for a streaming request.
	Stream bool
	// Store is whether the response is to be kept for previous_response_id
	// and GET /v1/responses/{id}; true when the client did not say, as
	// OpenAI's default.
	Store bool
	// PreviousResponseID is the response this one continues; "" for none.
	PreviousResponseID string
	// Instructions is the system message of this request only: OpenAI does
	// not carry instructions over from previous responses.
	Instructions string
	// MaxOutputTokens is max_output_tokens; 0 when not sent.
	MaxOutputTokens int64
	// Temperature and TopP are nil when not sent.
	Temperature *float64
	TopP        *float64
	// ParallelToolCalls is nil when not sent.
	ParallelToolCalls *bool
	// User is the end-user id; "" when not sent.
	User string
	// Metadata is the client's metadata (at most 16 string pairs); nil
	// when not sent.
	Metadata map[string]string

	hasInstructions  bool
	tools            []tool
	toolChoice       toolChoice
	format           *textFormat
	promptCacheKey   *string
	safetyIdentifier *string
	maxToolCalls     *int64
	items            []Item
	notes            []string
}

// tool is a function tool.
type tool struct {
	Name        string
	Description *string
	Parameters  json.RawMessage // nil when not sent
	Strict      *bool
}

// toolChoice is tool_choice: Mode "" (not sent), none, auto, required,
// or function with Name.
type toolChoice struct {
	Mode string
	Name string
}

// textFormat is text.format when it is not plain text.
type textFormat struct {
	Type        string // json_object or json_schema
	Name        string
	Description *string
	Schema      json.RawMessage
	Strict      *bool
}

// Limits of the documented parameters.
const (
	minOutputTokens   = 16 // OpenAI refuses fewer
	maxOutputTokens   = math.MaxInt32
	maxMetadataPairs  = 16
	maxMetadataKey    = 64
	maxMetadataValue  = 512
	maxNameLength     = 64
	maxTopLogprobs    = 20
	maxUserIDLength   = 512
	maxPreviousIDSize = 256
)

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// builtinTools are OpenAI's hosted tools, which only OpenAI runs.
var builtinTools = map[string]bool{
	"web_search": true, "web_search_preview": true, "web_search_2025_08_26": true, "web_search_preview_2025_03_11": true,
	"file_search": true, "computer": true, "computer_use": true, "computer_use_preview": true, "code_interpreter": true,
	"image_generation": true, "mcp": true, "local_shell": true, "shell": true, "apply_patch": true,
	"tool_search": true, "namespace": true,
}

// Parse reads and validates a Responses request body. Errors are *Error
// with status 400.
func Parse(body []byte) (*Request, error) {
	if !gjson.ValidBytes(body) {
		return nil, newError("invalid_json", "", "We could not parse the JSON body of your request. The body must be a JSON object.")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, newError("invalid_type", "", "The request body must be a JSON object, not %s.", jsonKind(root))
	}
	r := &Request{Store: true}
	var input gjson.Result
	var err *Error
	root.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		err = r.member(k.Str, v, &input)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !root.Get("model").Exists() || root.Get("model").Type == gjson.Null:
		return nil, missing("model")
	case !input.Exists():
		return nil, missing("input")
	}
	if r.items, err = parseInput(input, &r.notes); err != nil {
		return nil, err
	}
	if r.toolChoice.Mode == "function" && !r.hasTool(r.toolChoice.Name) {
		return nil, newError("invalid_value", "tool_choice", "Tool choice '%s' not found in 'tools' parameter.", "function")
	}
	return r, nil
}

// member validates one top-level member (not null).
func (r *Request) member(k string, v gjson.Result, input *gjson.Result) *Error {
	var err *Error
	switch k {
	case "model":
		if err = wantString(k, v); err == nil && v.Str == "" {
			err = newError("invalid_value", k, "Invalid 'model': empty string. Expected a model name.")
		}
		r.Model = v.Str
	case "input":
		if v.Type != gjson.String && !v.IsArray() {
			return invalidType(k, "a string or an array of input items", v)
		}
		*input = v
	case "instructions":
		err = wantString(k, v)
		r.Instructions, r.hasInstructions = v.Str, true
	case "stream":
		err = wantBool(k, v)
		r.Stream = v.Type == gjson.True
	case "store":
		err = wantBool(k, v)
		r.Store = v.Type == gjson.True
	case "background":
		if err = wantBool(k, v); err == nil && v.Type == gjson.True {
			err = unsupported(k, "background responses are not available on this gateway; send the request without background, or with stream.")
		}
	case "previous_response_id":
		err = wantString(k, v)
		if err == nil && len(v.Str) > maxPreviousIDSize {
			err = newError("invalid_value", k, "Invalid 'previous_response_id': not a response id.")
		}
		r.PreviousResponseID = v.Str
	case "conversation":
		err = unsupported(k, "conversations are not available on this gateway; continue a conversation with previous_response_id.")
	case "prompt":
		err = unsupported(k, "stored prompt templates are not available on this gateway; send the prompt in instructions and input.")
	case "max_output_tokens":
		r.MaxOutputTokens, err = wantInt(k, v, minOutputTokens, maxOutputTokens)
	case "max_tool_calls":
		var n int64
		if n, err = wantInt(k, v, 0, maxOutputTokens); err == nil {
			r.maxToolCalls = &n // it bounds built-in tools, which are refused: echoed only
		}
	case "temperature":
		var f float64
		if f, err = wantNumber(k, v, 0, 2); err == nil {
			r.Temperature = &f
		}
	case "top_p":
		var f float64
		if f, err = wantNumber(k, v, 0, 1); err == nil {
			r.TopP = &f
		}
	case "top_logprobs":
		var n int64
		if n, err = wantInt(k, v, 0, maxTopLogprobs); err == nil && n > 0 {
			r.note(k)
		}
	case "parallel_tool_calls":
		if err = wantBool(k, v); err == nil {
			b := v.Type == gjson.True
			r.ParallelToolCalls = &b
		}
	case "user":
		if err = wantString(k, v); err == nil && len(v.Str) > maxUserIDLength {
			err = newError("string_above_max_length", k, "Invalid 'user': string too long. Expected a string with maximum length %d.", maxUserIDLength)
		}
		r.User = v.Str
	case "safety_identifier", "prompt_cache_key":
		if err = wantString(k, v); err == nil {
			s := v.Str
			if k == "safety_identifier" {
				r.safetyIdentifier = &s
			} else {
				r.promptCacheKey = &s
			}
			r.note(k)
		}
	case "prompt_cache_retention":
		if err = wantEnum(k, v, "in_memory", "24h"); err == nil {
			r.note(k)
		}
	case "metadata":
		r.Metadata, err = parseMetadata(k, v)
	case "tools":
		r.tools, err = parseTools(k, v)
	case "tool_choice":
		r.toolChoice, err = parseToolChoice(k, v)
	case "text":
		err = r.parseText(k, v)
	case "reasoning":
		err = eachMember(k, v, func(mk, mp string, x gjson.Result) *Error {
			switch mk {
			case "effort":
				return wantEnum(mp, x, "none", "minimal", "low", "medium", "high", "xhigh")
			case "summary", "generate_summary":
				return wantEnum(mp, x, "auto", "concise", "detailed")
			}
			return nil
		})
		if err == nil && (v.Get("effort").Type == gjson.String || v.Get("summary").Type == gjson.String || v.Get("generate_summary").Type == gjson.String) {
			r.note(k)
		}
	case "truncation":
		if err = wantEnum(k, v, "auto", "disabled"); err == nil && v.Str == "auto" {
			r.note(k)
		}
	case "include":
		n := 0
		err = eachElement(k, v, func(ep string, x gjson.Result) *Error {
			n++
			return wantString(ep, x)
		})
		if err == nil && n > 0 {
			r.note(k)
		}
	case "service_tier":
		if err = wantEnum(k, v, "auto", "default", "flex", "scale", "priority", "fast", "ultrafast"); err == nil {
			if v.Str != "auto" && v.Str != "default" {
				r.note(k)
			}
		}
	case "stream_options":
		err = eachMember(k, v, func(mk, mp string, x gjson.Result) *Error {
			if mk == "include_obfuscation" {
				return wantBool(mp, x)
			}
			return nil
		})
	}
	return err
}

func (r *Request) note(name string) {
	for _, n := range r.notes {
		if n == name {
			return
		}
	}
	r.notes = append(r.notes, name)
}

// Notes lists what translating the request to chat completions left out,
// by parameter name (reasoning, truncation, include, service_tier,
// top_logprobs, text.verbosity, input.reasoning, ...), in the order met.
func (r *Request) Notes() []string { return append([]string(nil), r.notes...) }

func (r *Request) hasTool(name string) bool {
	for _, t := range r.tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

func parseMetadata(p string, v gjson.Result) (map[string]string, *Error) {
	if !v.IsObject() {
		return nil, invalidType(p, "an object", v)
	}
	m := map[string]string{}
	var err *Error
	v.ForEach(func(k, x gjson.Result) bool {
		mp := join(p, k.Str)
		switch {
		case len(m) == maxMetadataPairs:
			err = newError("object_above_max_properties", p, "Invalid '%s': too many properties. Expected an object with at most %d properties.", p, maxMetadataPairs)
		case len(k.Str) > maxMetadataKey:
			err = newError("invalid_value", p, "Invalid '%s': a key is too long. Expected keys with maximum length %d.", p, maxMetadataKey)
		case x.Type != gjson.String:
			err = invalidType(mp, "a string", x)
		case len(x.Str) > maxMetadataValue:
			err = newError("string_above_max_length", mp, "Invalid '%s': string too long. Expected a string with maximum length %d.", mp, maxMetadataValue)
		default:
			m[k.Str] = x.Str
		}
		return err == nil
	})
	return m, err
}

func parseTools(p string, v gjson.Result) ([]tool, *Error) {
	var tools []tool
	err := eachElement(p, v, func(ep string, x gjson.Result) *Error {
		if !x.IsObject() {
			return invalidType(ep, "an object", x)
		}
		typ := x.Get("type")
		switch {
		case !typ.Exists() || typ.Type == gjson.Null:
			return missing(ep + ".type")
		case typ.Type != gjson.String:
			return invalidType(ep+".type", "a string", typ)
		case typ.Str == "custom":
			return unsupported(ep+".type", "custom (free-form) tools are not supported on this gateway; declare a function tool.")
		case builtinTools[typ.Str]:
			return unsupported(ep+".type", "'%s' is one of OpenAI's built-in tools, which this gateway cannot run; only function tools are supported.", typ.Str)
		case typ.Str != "function":
			return newError("invalid_value", ep+".type", "Invalid value for '%s'. Supported values are: 'function'.", ep+".type")
		}
		t := tool{}
		var name bool
		err := eachMember(ep, x, func(k, mp string, y gjson.Result) *Error {
			switch k {
			case "name":
				name = true
				if err := wantString(mp, y); err != nil {
					return err
				}
				if !namePattern.MatchString(y.Str) || len(y.Str) > maxNameLength {
					return newError("invalid_value", mp, "Invalid '%s': a function name must match '^[a-zA-Z0-9_-]+$' and be at most %d characters long.", mp, maxNameLength)
				}
				t.Name = y.Str
			case "description":
				if err := wantString(mp, y); err != nil {
					return err
				}
				s := y.Str
				t.Description = &s
			case "parameters":
				if err := wantObject(mp, y); err != nil {
					return err
				}
				t.Parameters = json.RawMessage(y.Raw)
			case "strict":
				if err := wantBool(mp, y); err != nil {
					return err
				}
				b := y.Type == gjson.True
				t.Strict = &b
			case "defer_loading", "async":
				if err := wantBool(mp, y); err != nil {
					return err
				}
				if y.Type == gjson.True {
					return unsupported(mp, "this gateway calls every function directly; send the tool without %s.", k)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !name {
			return missing(ep + ".name")
		}
		tools = append(tools, t)
		return nil
	})
	return tools, err
}

func parseToolChoice(p string, v gjson.Result) (toolChoice, *Error) {
	if v.Type == gjson.String {
		if err := wantEnum(p, v, "none", "auto", "required"); err != nil {
			return toolChoice{}, err
		}
		return toolChoice{Mode: v.Str}, nil
	}
	if !v.IsObject() {
		return toolChoice{}, invalidType(p, "a string or an object", v)
	}
	typ := v.Get("type")
	switch {
	case !typ.Exists() || typ.Type == gjson.Null:
		return toolChoice{}, missing(p + ".type")
	case typ.Type != gjson.String:
		return toolChoice{}, invalidType(p+".type", "a string", typ)
	case typ.Str == "allowed_tools" || builtinTools[typ.Str] || typ.Str == "custom":
		return toolChoice{}, unsupported(p+".type", "only 'none', 'auto', 'required' or a function ({\"type\": \"function\", \"name\": ...}) can be chosen on this gateway.")
	case typ.Str != "function":
		return toolChoice{}, newError("invalid_value", p+".type", "Invalid value for '%s'. Supported values are: 'function'.", p+".type")
	}
	name := v.Get("name")
	switch {
	case !name.Exists() || name.Type == gjson.Null:
		return toolChoice{}, missing(p + ".name")
	case name.Type != gjson.String:
		return toolChoice{}, invalidType(p+".name", "a string", name)
	}
	return toolChoice{Mode: "function", Name: name.Str}, nil
}

func (r *Request) parseText(p string, v gjson.Result) *Error {
	return eachMember(p, v, func(k, mp string, x gjson.Result) *Error {
		switch k {
		case "verbosity":
			if err := wantEnum(mp, x, "low", "medium", "high"); err != nil {
				return err
			}
			r.note("text.verbosity")
		case "format":
			f, err := parseFormat(mp, x)
			if err != nil {
				return err
			}
			r.format = f
		}
		return nil
	})
}

func parseFormat(p string, v gjson.Result) (*textFormat, *Error) {
	if !v.IsObject() {
		return nil, invalidType(p, "an object", v)
	}
	typ := v.Get("type")
	if !typ.Exists() || typ.Type == gjson.Null {
		return nil, missing(p + ".type")
	}
	if err := wantEnum(p+".type", typ, "text", "json_object", "json_schema"); err != nil {
		return nil, err
	}
	switch typ.Str {
	case "text":
		return nil, nil
	case "json_object":
		return &textFormat{Type: typ.Str}, nil
	}
	f := &textFormat{Type: typ.Str}
	var name, schema bool
	err := eachMember(p, v, func(k, mp string, x gjson.Result) *Error {
		switch k {
		case "name":
			name = true
			if err := wantString(mp, x); err != nil {
				return err
			}
			if !namePattern.MatchString(x.Str) || len(x.Str) > maxNameLength {
				return newError("invalid_value", mp, "Invalid '%s': a format name must match '^[a-zA-Z0-9_-]+$' and be at most %d characters long.", mp, maxNameLength)
			}
			f.Name = x.Str
		case "schema":
			schema = true
			if err := wantObject(mp, x); err != nil {
				return err
			}
			f.Schema = json.RawMessage(x.Raw)
		case "description":
			if err := wantString(mp, x); err != nil {
				return err
			}
			s := x.Str
			f.Description = &s
		case "strict":
			if err := wantBool(mp, x); err != nil {
				return err
			}
			b := x.Type == gjson.True
			f.Strict = &b
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !name:
		return nil, missing(p + ".name")
	case !schema:
		return nil, missing(p + ".schema")
	}
	return f, nil
}
