package gateway

import (
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// The documented parameters of each operation are checked by type and
// range, as OpenAI checks them, so a request the upstream would refuse is
// refused before it is classified, routed, reserved against a quota or
// billed. Errors have OpenAI's shape and codes (invalid_type,
// invalid_value, missing_required_parameter, empty_array,
// integer_below_min_value, ...) and name the parameter by its path, such
// as messages[0].content. Unknown members pass untouched, and the body is
// never rewritten. A parameter set to null is treated as unset.
//
// Messages never quote the value that was sent: a value may be data, and
// errors are logged.
//
// The walk is one pass over the top-level members and one over each
// documented structure below them; checkJSON has bounded depth and sizes
// before it runs.

// paramPath is the path of a parameter, a few members and indexes deep,
// built into a string only for an error. It is a value, so walking the
// body allocates nothing for it.
type paramPath struct {
	segs [maxPathDepth]pathSeg
	n    int
}

type pathSeg struct {
	name  string // a member; "" for an index
	index int
}

// maxPathDepth is deeper than any documented parameter
// (messages[0].content[0].image_url.url is five).
const maxPathDepth = 8

func param(name string) paramPath { return paramPath{segs: [maxPathDepth]pathSeg{{name: name}}, n: 1} }

func (p paramPath) key(name string) paramPath { return p.push(pathSeg{name: name}) }
func (p paramPath) at(i int) paramPath        { return p.push(pathSeg{index: i}) }

func (p paramPath) push(s pathSeg) paramPath {
	if p.n < maxPathDepth {
		p.segs[p.n] = s
		p.n++
	}
	return p
}

func (p paramPath) String() string {
	var sb strings.Builder
	for _, s := range p.segs[:p.n] {
		switch {
		case s.name == "":
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.index))
			sb.WriteByte(']')
		default:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(s.name)
		}
	}
	return sb.String()
}

// Limits of the documented integer parameters.
const (
	maxTokensLimit = math.MaxInt32 // max_tokens, max_completion_tokens, dimensions
	maxChoices     = 128           // n
	maxStops       = 4             // stop
)

// Roles of chat messages.
var messageRoles = []string{"system", "developer", "user", "assistant", "tool", "function"}

// validateParams checks root, the body of op (an object with a valid
// model), and fills c's maxTokens, temperature and includeUsage.
func validateParams(op providers.Operation, root gjson.Result, c *call) *APIError {
	switch op {
	case providers.OpChat:
		return validateChat(root, c)
	case providers.OpCompletion:
		return validateCompletion(root, c)
	case providers.OpEmbeddings:
		return validateEmbeddings(root)
	}
	return nil
}

func validateChat(root gjson.Result, c *call) *APIError {
	var err *APIError
	messages := false
	var maxTokens, maxCompletionTokens int64
	root.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		p := param(k.Str)
		switch k.Str {
		case "messages":
			messages = true
			err = validateMessages(p, v)
		case "max_tokens":
			maxTokens, err = wantInt(p, v, 1, maxTokensLimit)
		case "max_completion_tokens":
			maxCompletionTokens, err = wantInt(p, v, 1, maxTokensLimit)
		case "n":
			_, err = wantInt(p, v, 1, maxChoices)
		case "top_logprobs":
			_, err = wantInt(p, v, 0, 20)
		case "seed":
			_, err = wantInt(p, v, math.MinInt64, math.MaxInt64)
		case "temperature":
			err = c.setTemperature(p, v)
		case "top_p":
			err = wantNumber(p, v, 0, 1)
		case "presence_penalty", "frequency_penalty":
			err = wantNumber(p, v, -2, 2)
		case "stream_options":
			err = c.setStreamOptions(p, v)
		case "stop":
			err = validateStop(p, v)
		case "logit_bias":
			err = validateLogitBias(p, v)
		case "metadata":
			err = validateMetadata(p, v)
		case "tools":
			err = validateTools(p, v)
		case "tool_choice":
			err = validateToolChoice(p, v)
		case "functions":
			err = validateFunctions(p, v)
		case "function_call":
			err = validateFunctionChoice(p, v)
		case "response_format":
			err = validateResponseFormat(p, v)
		case "modalities":
			err = wantStringArray(p, v)
		case "logprobs", "parallel_tool_calls", "store":
			err = wantBool(p, v)
		case "user", "reasoning_effort", "service_tier", "verbosity", "prompt_cache_key", "prompt_cache_retention", "safety_identifier":
			err = wantString(p, v)
		case "audio", "prediction", "web_search_options", "prompt_cache_options", "moderation":
			err = wantObject(p, v)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if !messages {
		return missing(param("messages"))
	}
	// max_completion_tokens, else max_tokens, as before validation.
	if c.maxTokens = maxCompletionTokens; c.maxTokens == 0 {
		c.maxTokens = maxTokens
	}
	return nil
}

func validateCompletion(root gjson.Result, c *call) *APIError {
	var err *APIError
	prompt := false
	var maxTokens, maxCompletionTokens int64
	root.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		p := param(k.Str)
		switch k.Str {
		case "prompt":
			prompt = true
			err = validatePrompt(p, v, false)
		case "max_tokens":
			// 0 is documented: with echo, it scores the prompt.
			maxTokens, err = wantInt(p, v, 0, maxTokensLimit)
		case "max_completion_tokens":
			// Not a parameter of completions, so not checked; but the
			// estimate has always read it first.
			maxCompletionTokens, _ = wantInt(p, v, 1, maxTokensLimit)
		case "n":
			_, err = wantInt(p, v, 1, maxChoices)
		case "best_of":
			_, err = wantInt(p, v, 0, 20)
		case "logprobs":
			_, err = wantInt(p, v, 0, 5)
		case "seed":
			_, err = wantInt(p, v, math.MinInt64, math.MaxInt64)
		case "temperature":
			err = c.setTemperature(p, v)
		case "top_p":
			err = wantNumber(p, v, 0, 1)
		case "presence_penalty", "frequency_penalty":
			err = wantNumber(p, v, -2, 2)
		case "stream_options":
			err = c.setStreamOptions(p, v)
		case "stop":
			err = validateStop(p, v)
		case "logit_bias":
			err = validateLogitBias(p, v)
		case "echo":
			err = wantBool(p, v)
		case "suffix", "user":
			err = wantString(p, v)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if !prompt {
		return missing(param("prompt"))
	}
	if c.maxTokens = maxCompletionTokens; c.maxTokens == 0 {
		c.maxTokens = maxTokens
	}
	return nil
}

func validateEmbeddings(root gjson.Result) *APIError {
	var err *APIError
	input := false
	root.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		p := param(k.Str)
		switch k.Str {
		case "input":
			input = true
			err = validatePrompt(p, v, true)
		case "encoding_format":
			err = wantEnum(p, v, "float", "base64")
		case "dimensions":
			_, err = wantInt(p, v, 1, maxTokensLimit)
		case "user":
			err = wantString(p, v)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if !input {
		return missing(param("input"))
	}
	return nil
}

func (c *call) setTemperature(p paramPath, v gjson.Result) *APIError {
	if err := wantNumber(p, v, 0, 2); err != nil {
		return err
	}
	t := v.Float()
	c.temperature = &t
	return nil
}

func (c *call) setStreamOptions(p paramPath, v gjson.Result) *APIError {
	return eachMember(p, v, func(k string, mp paramPath, m gjson.Result) *APIError {
		switch k {
		case "include_usage":
			c.includeUsage = m.Type == gjson.True
			return wantBool(mp, m)
		case "include_obfuscation":
			return wantBool(mp, m)
		}
		return nil
	})
}

// validatePrompt checks a completion's prompt or an embedding's input: a
// string, an array of strings, of integers (tokens) or of non-empty
// arrays of integers. An embedding's input must not be empty, nor any of
// its strings.
func validatePrompt(p paramPath, v gjson.Result, embedding bool) *APIError {
	const expected = "a string, an array of strings, an array of integers or an array of arrays of integers"
	switch {
	case v.Type == gjson.String:
		if embedding && v.Str == "" {
			return invalidValue(p, "Invalid '%s': empty string. Expected a non-empty string.")
		}
		return nil
	case !v.IsArray():
		return invalidType(p, expected, v)
	}
	var err *APIError
	var first gjson.Type
	var firstArray bool
	n := 0
	v.ForEach(func(_, e gjson.Result) bool {
		ep := p.at(n)
		if n == 0 {
			first, firstArray = e.Type, e.IsArray()
		}
		n++
		switch {
		case firstArray:
			if !e.IsArray() {
				err = invalidType(ep, "an array of integers", e)
				return false
			}
			m := 0
			e.ForEach(func(_, t gjson.Result) bool {
				tp := ep.at(m)
				m++
				_, err = wantInt(tp, t, 0, math.MaxInt64)
				return err == nil
			})
			if err == nil && m == 0 {
				err = emptyArray(ep)
			}
		case first == gjson.String:
			if e.Type != gjson.String {
				err = invalidType(ep, "a string", e)
			} else if embedding && e.Str == "" {
				err = invalidValue(ep, "Invalid '%s': empty string. Expected a non-empty string.")
			}
		case first == gjson.Number:
			_, err = wantInt(ep, e, 0, math.MaxInt64)
		default:
			err = invalidType(ep, "a string, an integer or an array of integers", e)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if embedding && n == 0 {
		return emptyArray(p)
	}
	return nil
}

// validateMessages checks a chat's messages: a non-empty array of
// message objects.
func validateMessages(p paramPath, v gjson.Result) *APIError {
	if !v.IsArray() {
		return invalidType(p, "an array", v)
	}
	var err *APIError
	n := 0
	v.ForEach(func(_, m gjson.Result) bool {
		mp := p.at(n)
		n++
		err = validateMessage(mp, m)
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return emptyArray(p)
	}
	return nil
}

// message is the members of a chat message that decide what else it
// needs.
type message struct {
	role, content, toolCalls, functionCall, audio gjson.Result
	hasRole, hasContent, hasToolCallID            bool
}

func validateMessage(p paramPath, v gjson.Result) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	var m message
	err := eachMember(p, v, func(k string, mp paramPath, x gjson.Result) *APIError {
		switch k {
		case "role":
			m.role, m.hasRole = x, true
			return wantEnum(mp, x, messageRoles...)
		case "content":
			m.content, m.hasContent = x, true
		case "name", "refusal":
			return wantString(mp, x)
		case "tool_call_id":
			m.hasToolCallID = true
			return wantString(mp, x)
		case "tool_calls":
			m.toolCalls = x
			return validateToolCalls(mp, x)
		case "function_call":
			m.functionCall = x
			return validateFunctionCall(mp, x)
		case "audio":
			m.audio = x
			return wantObject(mp, x)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !m.hasRole {
		return missing(p.key("role"))
	}
	role := m.role.Str
	cp := p.key("content")
	if !m.hasContent {
		// Content may be left out (or null) only by an assistant that
		// calls a tool or a function or answers with audio, and by a
		// function's result.
		if role == "function" || role == "assistant" && (m.toolCalls.Exists() || m.functionCall.Exists() || m.audio.Exists()) {
			return nil
		}
		return missing(cp)
	}
	if err := validateContent(cp, m.content); err != nil {
		return err
	}
	if role == "tool" && !m.hasToolCallID {
		return missing(p.key("tool_call_id"))
	}
	return nil
}

// validateContent checks a message's content: a string or a non-empty
// array of content parts. Parts of a type not known here pass.
func validateContent(p paramPath, v gjson.Result) *APIError {
	if v.Type == gjson.String {
		return nil
	}
	if !v.IsArray() {
		return invalidType(p, "a string or an array of content parts", v)
	}
	var err *APIError
	n := 0
	v.ForEach(func(_, part gjson.Result) bool {
		pp := p.at(n)
		n++
		err = validatePart(pp, part)
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return emptyArray(p)
	}
	return nil
}

func validatePart(p paramPath, v gjson.Result) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	var typ, field gjson.Result
	var wantField string
	err := eachMember(p, v, func(k string, mp paramPath, x gjson.Result) *APIError {
		if k == "type" {
			typ = x
			return wantString(mp, x)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !typ.Exists() {
		return missing(p.key("type"))
	}
	switch typ.Str {
	case "text", "refusal", "image_url", "input_audio", "file":
		wantField = typ.Str
	default:
		return nil // a part type not known here: the upstream judges it
	}
	field = v.Get(wantField)
	fp := p.key(wantField)
	if !field.Exists() || field.Type == gjson.Null {
		return missing(fp)
	}
	switch wantField {
	case "text", "refusal":
		return wantString(fp, field)
	case "image_url":
		if field.Type == gjson.String { // a bare URL, as some clients send it
			return nil
		}
		return wantFields(fp, field, "url")
	case "input_audio":
		return wantFields(fp, field, "data", "format")
	case "file":
		return eachMember(fp, field, func(k string, mp paramPath, x gjson.Result) *APIError {
			switch k {
			case "file_data", "file_id", "filename":
				return wantString(mp, x)
			}
			return nil
		})
	}
	return nil
}

// wantFields checks that v is an object whose members named by names
// (two at most) are present strings.
func wantFields(p paramPath, v gjson.Result, names ...string) *APIError {
	var seen [2]bool
	err := eachMember(p, v, func(k string, mp paramPath, x gjson.Result) *APIError {
		for i, s := range names {
			if k == s {
				seen[i] = true
				return wantString(mp, x)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, s := range names {
		if !seen[i] {
			return missing(p.key(s))
		}
	}
	return nil
}

// validateToolCalls checks an assistant's tool_calls: objects with an id,
// a type, and the function (or custom tool) called.
func validateToolCalls(p paramPath, v gjson.Result) *APIError {
	return eachElement(p, v, func(ep paramPath, call gjson.Result) *APIError {
		if !call.IsObject() {
			return invalidType(ep, "an object", call)
		}
		var id, typ, fn, custom bool
		err := eachMember(ep, call, func(k string, mp paramPath, x gjson.Result) *APIError {
			switch k {
			case "id":
				id = true
				return wantString(mp, x)
			case "type":
				typ = true
				return wantEnum(mp, x, "function", "custom")
			case "function":
				fn = true
				return wantFields(mp, x, "name", "arguments")
			case "custom":
				custom = true
				return wantFields(mp, x, "name", "input")
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case !id:
			return missing(ep.key("id"))
		case !typ:
			return missing(ep.key("type"))
		case call.Get("type").Str == "function" && !fn:
			return missing(ep.key("function"))
		case call.Get("type").Str == "custom" && !custom:
			return missing(ep.key("custom"))
		}
		return nil
	})
}

// validateFunctionCall checks an assistant's deprecated function_call.
func validateFunctionCall(p paramPath, v gjson.Result) *APIError {
	return wantFields(p, v, "name", "arguments")
}

// validateTools checks tools: function tools, whose names OpenAI limits
// to ^[a-zA-Z0-9_-]{1,64}$, and custom tools.
func validateTools(p paramPath, v gjson.Result) *APIError {
	return eachElement(p, v, func(ep paramPath, tool gjson.Result) *APIError {
		if !tool.IsObject() {
			return invalidType(ep, "an object", tool)
		}
		typ := tool.Get("type")
		tp := ep.key("type")
		if !typ.Exists() || typ.Type == gjson.Null {
			return missing(tp)
		}
		if err := wantEnum(tp, typ, "function", "custom"); err != nil {
			return err
		}
		body := tool.Get(typ.Str)
		bp := ep.key(typ.Str)
		if !body.Exists() || body.Type == gjson.Null {
			return missing(bp)
		}
		if typ.Str == "custom" {
			return wantFields(bp, body, "name")
		}
		return validateFunction(bp, body)
	})
}

// validateFunctions checks the deprecated functions.
func validateFunctions(p paramPath, v gjson.Result) *APIError {
	return eachElement(p, v, validateFunction)
}

// validateFunction checks a function definition.
func validateFunction(p paramPath, v gjson.Result) *APIError {
	name := false
	err := eachMember(p, v, func(k string, mp paramPath, x gjson.Result) *APIError {
		switch k {
		case "name":
			name = true
			if err := wantString(mp, x); err != nil {
				return err
			}
			if !functionName(x.Str) {
				return invalidValue(mp, "Invalid '%s': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.")
			}
		case "description":
			return wantString(mp, x)
		case "parameters":
			return wantObject(mp, x)
		case "strict":
			return wantBool(mp, x)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !name {
		return missing(p.key("name"))
	}
	return nil
}

// functionName matches ^[a-zA-Z0-9_-]{1,64}$.
func functionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validateToolChoice checks tool_choice: none, auto, required, or an
// object naming a tool.
func validateToolChoice(p paramPath, v gjson.Result) *APIError {
	switch {
	case v.Type == gjson.String:
		return wantEnum(p, v, "none", "auto", "required")
	case !v.IsObject():
		return invalidType(p, "a string or an object", v)
	}
	typ := v.Get("type")
	tp := p.key("type")
	if !typ.Exists() || typ.Type == gjson.Null {
		return missing(tp)
	}
	if err := wantString(tp, typ); err != nil {
		return err
	}
	switch typ.Str {
	case "function", "custom":
		body := v.Get(typ.Str)
		bp := p.key(typ.Str)
		if !body.Exists() || body.Type == gjson.Null {
			return missing(bp)
		}
		return wantFields(bp, body, "name")
	}
	return nil
}

// validateFunctionChoice checks the deprecated function_call: none, auto
// or {"name": ...}.
func validateFunctionChoice(p paramPath, v gjson.Result) *APIError {
	if v.Type == gjson.String {
		return wantEnum(p, v, "none", "auto")
	}
	if !v.IsObject() {
		return invalidType(p, "a string or an object", v)
	}
	return wantFields(p, v, "name")
}

// validateResponseFormat checks response_format: text, json_object, or
// json_schema with a named schema.
func validateResponseFormat(p paramPath, v gjson.Result) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	typ := v.Get("type")
	tp := p.key("type")
	if !typ.Exists() || typ.Type == gjson.Null {
		return missing(tp)
	}
	if err := wantEnum(tp, typ, "text", "json_object", "json_schema"); err != nil {
		return err
	}
	if typ.Str != "json_schema" {
		return nil
	}
	js := v.Get("json_schema")
	jp := p.key("json_schema")
	if !js.Exists() || js.Type == gjson.Null {
		return missing(jp)
	}
	if err := wantFields(jp, js, "name"); err != nil {
		return err
	}
	return eachMember(jp, js, func(k string, mp paramPath, x gjson.Result) *APIError {
		switch k {
		case "description":
			return wantString(mp, x)
		case "schema":
			return wantObject(mp, x)
		case "strict":
			return wantBool(mp, x)
		}
		return nil
	})
}

// validateStop checks stop: a string or up to four strings.
func validateStop(p paramPath, v gjson.Result) *APIError {
	if v.Type == gjson.String {
		return nil
	}
	if !v.IsArray() {
		return invalidType(p, "a string or an array of strings", v)
	}
	n := 0
	err := eachElement(p, v, func(ep paramPath, s gjson.Result) *APIError {
		n++
		return wantString(ep, s)
	})
	if err != nil {
		return err
	}
	if n > maxStops {
		return &APIError{Status: 400, Type: "invalid_request_error", Code: "array_above_max_length", Param: p.String(),
			Message: "Invalid '" + p.String() + "': array too long. Expected an array with maximum length " + strconv.Itoa(maxStops) + "."}
	}
	return nil
}

// validateLogitBias checks logit_bias: biases from -100 to 100 by token.
// Its keys are data: an error names logit_bias, not the key.
func validateLogitBias(p paramPath, v gjson.Result) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	var err *APIError
	v.ForEach(func(_, b gjson.Result) bool {
		if b.Type != gjson.Null {
			err = wantNumber(p, b, -100, 100)
		}
		return err == nil
	})
	return err
}

// validateMetadata checks metadata: string values. Its keys are data.
func validateMetadata(p paramPath, v gjson.Result) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	var err *APIError
	v.ForEach(func(_, s gjson.Result) bool {
		if s.Type != gjson.String {
			err = invalidType(p, "an object of strings", s)
		}
		return err == nil
	})
	return err
}

// eachMember calls f with each member of the object v that is not null,
// and its path; it stops at f's first error. v must be an object.
func eachMember(p paramPath, v gjson.Result, f func(k string, mp paramPath, x gjson.Result) *APIError) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	var err *APIError
	v.ForEach(func(k, x gjson.Result) bool {
		if x.Type == gjson.Null {
			return true
		}
		mp := p.key(k.Str)
		err = f(k.Str, mp, x)
		return err == nil
	})
	return err
}

// eachElement calls f with each element of the array v and its path; it
// stops at f's first error. v must be an array.
func eachElement(p paramPath, v gjson.Result, f func(ep paramPath, x gjson.Result) *APIError) *APIError {
	if !v.IsArray() {
		return invalidType(p, "an array", v)
	}
	var err *APIError
	i := 0
	v.ForEach(func(_, x gjson.Result) bool {
		ep := p.at(i)
		i++
		err = f(ep, x)
		return err == nil
	})
	return err
}

func wantString(p paramPath, v gjson.Result) *APIError {
	if v.Type != gjson.String {
		return invalidType(p, "a string", v)
	}
	return nil
}

func wantBool(p paramPath, v gjson.Result) *APIError {
	if v.Type != gjson.True && v.Type != gjson.False {
		return invalidType(p, "a boolean", v)
	}
	return nil
}

func wantObject(p paramPath, v gjson.Result) *APIError {
	if !v.IsObject() {
		return invalidType(p, "an object", v)
	}
	return nil
}

func wantStringArray(p paramPath, v gjson.Result) *APIError {
	return eachElement(p, v, wantString)
}

func wantEnum(p paramPath, v gjson.Result, values ...string) *APIError {
	if err := wantString(p, v); err != nil {
		return err
	}
	for _, s := range values {
		if v.Str == s {
			return nil
		}
	}
	var sb strings.Builder
	for i, s := range values {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("'" + s + "'")
	}
	return invalidValue(p, "Invalid value for '%s'. Supported values are: "+sb.String()+".")
}

// wantInt checks an integer written as one (no fraction, no exponent)
// within [lo, hi], and returns it.
func wantInt(p paramPath, v gjson.Result, lo, hi int64) (int64, *APIError) {
	if v.Type != gjson.Number || strings.ContainsAny(v.Raw, ".eE") {
		return 0, invalidType(p, "an integer", v)
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	switch {
	case err != nil && v.Raw[0] == '-', err == nil && n < lo:
		return 0, rangeError(p, "integer_below_min_value", "integer below minimum value", ">=", strconv.FormatInt(lo, 10))
	case err != nil, n > hi:
		return 0, rangeError(p, "integer_above_max_value", "integer above maximum value", "<=", strconv.FormatInt(hi, 10))
	}
	return n, nil
}

// wantNumber checks a number within [lo, hi].
func wantNumber(p paramPath, v gjson.Result, lo, hi float64) *APIError {
	if v.Type != gjson.Number {
		return invalidType(p, "a number", v)
	}
	switch f := v.Float(); {
	case f < lo:
		return rangeError(p, "decimal_below_min_value", "decimal below minimum value", ">=", strconv.FormatFloat(lo, 'g', -1, 64))
	case f > hi:
		return rangeError(p, "decimal_above_max_value", "decimal above maximum value", "<=", strconv.FormatFloat(hi, 'g', -1, 64))
	}
	return nil
}

func rangeError(p paramPath, code, what, op, bound string) *APIError {
	path := p.String()
	return &APIError{Status: 400, Type: "invalid_request_error", Code: code, Param: path,
		Message: "Invalid '" + path + "': " + what + ". Expected a value " + op + " " + bound + "."}
}

func invalidType(p paramPath, expected string, got gjson.Result) *APIError {
	path := p.String()
	return invalidRequest("invalid_type", path, "Invalid type for '%s': expected %s, but got %s instead.", path, expected, jsonKind(got))
}

// invalidValue is an invalid_value error; message has one %s, the path.
func invalidValue(p paramPath, message string) *APIError {
	path := p.String()
	return invalidRequest("invalid_value", path, message, path)
}

func missing(p paramPath) *APIError {
	path := p.String()
	return invalidRequest("missing_required_parameter", path, "Missing required parameter: '%s'.", path)
}

func emptyArray(p paramPath) *APIError {
	path := p.String()
	return invalidRequest("empty_array", path, "Invalid '%s': empty array. Expected an array with minimum length 1, but got an empty array instead.", path)
}

// jsonKind names the type of v as OpenAI's messages do.
func jsonKind(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	case gjson.Number:
		if strings.ContainsAny(v.Raw, ".eE") {
			return "a decimal"
		}
		return "an integer"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}
