package localengine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Structured output: response_format json_object and json_schema are
// honoured by constraining sampling with a grammar (grammar.go), as
// llama-server does; the prompt is not changed. See
// docs/localengine.md#structured-output.
//
//   - json_object: the answer is one JSON object (any keys and values).
//   - json_schema: the answer is one JSON value that follows the schema as
//     far as the schema converter understands it; what it does not enforce
//     (pattern, format, minimum, ...) is left free, the rest is followed.
//     strict changes nothing: the engine always constrains.
//
// The grammar ends with the value, so the model can only end its turn
// there. With tools and tool_choice auto the answer is that value or tool
// calls; with tool_choice required or a named function it is tool calls
// only, and response_format has nothing to shape. A schema is refused with
// a 400 only when it is not a schema (not an object, a keyword the
// converter reads in the wrong form), matches no value (minLength above
// maxLength, false, a required property additionalProperties false
// forbids), or refers to what is not there (a "#..." $ref that does not
// resolve) or cannot be written as a grammar (a $ref that leads back to
// itself before any text).

// Response format types.
const (
	formatJSONObject = "json_object"
	formatJSONSchema = "json_schema"
)

// responseFormat is a request's response_format, when it asks for JSON.
type responseFormat struct {
	typ    string          // formatJSONObject or formatJSONSchema
	name   string          // json_schema.name
	schema json.RawMessage // json_schema.schema; nil: any JSON value
	strict bool            // json_schema.strict; changes nothing here
}

type wireFormat struct {
	Type       json.RawMessage `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema"`
}

type wireJSONSchema struct {
	Name   json.RawMessage `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict json.RawMessage `json:"strict"`
}

// paramFormat and the rest name the parameters in errors.
const (
	paramFormat     = "response_format"
	paramFormatType = "response_format.type"
	paramJSONSchema = "response_format.json_schema"
	paramSchema     = "response_format.json_schema.schema"
)

// responseFormat reads response_format: nil for none (absent, null, or
// type text).
func (b *genBody) responseFormat() (*responseFormat, error) {
	if isNull(b.ResponseFormat) {
		return nil, nil
	}
	var w wireFormat
	if bytes.TrimSpace(b.ResponseFormat)[0] != '{' || json.Unmarshal(b.ResponseFormat, &w) != nil {
		return nil, invalid(paramFormat, `response_format must be an object such as {"type": "json_object"}`)
	}
	var typ string
	if json.Unmarshal(w.Type, &typ) != nil {
		return nil, invalid(paramFormatType, "response_format.type must be text, json_object or json_schema")
	}
	switch typ {
	case "text":
		return nil, nil
	case formatJSONObject:
		return &responseFormat{typ: typ}, nil
	case formatJSONSchema:
	default:
		return nil, invalid(paramFormatType, "response_format.type must be text, json_object or json_schema")
	}
	if isNull(w.JSONSchema) {
		return nil, invalid(paramJSONSchema, "a json_schema response format needs json_schema: {\"name\": ..., \"schema\": {...}}")
	}
	var js wireJSONSchema
	if bytes.TrimSpace(w.JSONSchema)[0] != '{' || json.Unmarshal(w.JSONSchema, &js) != nil {
		return nil, invalid(paramJSONSchema, "json_schema must be an object with name and schema")
	}
	f := &responseFormat{typ: typ}
	if !isNull(js.Name) && json.Unmarshal(js.Name, &f.name) != nil {
		return nil, invalid(paramJSONSchema+".name", "json_schema.name must be a string")
	}
	if !isNull(js.Name) && !schemaName(f.name) {
		return nil, invalid(paramJSONSchema+".name", "json_schema.name must be 1 to 64 letters, digits, underscores or dashes")
	}
	if !isNull(js.Strict) && json.Unmarshal(js.Strict, &f.strict) != nil {
		return nil, invalid(paramJSONSchema+".strict", "json_schema.strict must be a boolean")
	}
	if isNull(js.Schema) {
		return f, nil // no schema: any JSON value
	}
	if bytes.TrimSpace(js.Schema)[0] != '{' {
		return nil, invalid(paramSchema, "the schema must be a JSON schema object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, js.Schema); err != nil {
		return nil, invalid(paramSchema, "the schema must be a JSON schema object")
	}
	f.schema = buf.Bytes()
	if err := checkSchema(f.schema); err != nil {
		return nil, invalid(paramSchema, "the local engine cannot follow this schema: "+err.Error())
	}
	return f, nil
}

// formatGrammar is the grammar of an answer in the format: the JSON value
// alone, or, with tools offered (tool_choice auto), the value or tool
// calls. ts may be nil.
func formatGrammar(f *responseFormat, ts *toolSet) string {
	g := &grammar{}
	answer := "json-value"
	switch {
	case f.typ == formatJSONObject:
		answer = "json-object"
	case f.schema != nil:
		g.document(f.schema)
		answer = g.schema(f.schema, "schema", 0)
	}
	var b strings.Builder
	if ts.active() {
		call := g.callRule(ts)
		b.WriteString("root ::= " + answer + " | " + callsExpr(ts) + "\n")
		b.WriteString(call)
	} else {
		b.WriteString("root ::= " + answer + "\n")
	}
	g.write(&b)
	return b.String()
}

// jsonTypes are JSON Schema's type names.
var jsonTypes = map[string]bool{"string": true, "integer": true, "number": true, "boolean": true, "null": true, "array": true, "object": true}

// checkSchema reports why a response_format schema cannot be followed:
// the keywords the converter reads must have their JSON Schema form, the
// bounds must leave some value, and every "#..." $ref must resolve
// without leading back to itself before any text is written.
func checkSchema(doc json.RawMessage) error {
	c := &schemaCheck{doc: doc, seen: map[string]bool{}}
	if err := c.walk(doc, "", 0); err != nil {
		return err
	}
	return refCycle(doc)
}

type schemaCheck struct {
	doc  json.RawMessage
	seen map[string]bool // $ref targets walked
}

// at names a place in the schema for an error: "the schema" or a path.
func at(path string) string {
	if path == "" {
		return "the schema"
	}
	return path
}

func (c *schemaCheck) walk(raw json.RawMessage, path string, depth int) error {
	if depth > maxDepth {
		return nil // not followed: any value
	}
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "true":
		return nil
	case "false":
		return fmt.Errorf("%s is false, which no value matches", at(path))
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return fmt.Errorf("%s must be a schema object", at(path))
	}
	sub := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	if t, ok := obj.vals["type"]; ok {
		var one string
		var list []string
		switch {
		case json.Unmarshal(t, &one) == nil:
			list = []string{one}
		case json.Unmarshal(t, &list) == nil && len(list) > 0:
		default:
			return fmt.Errorf("%s must be a type name or a non-empty list of them", sub("type"))
		}
		for _, n := range list {
			if !jsonTypes[n] {
				return fmt.Errorf("%s: %q is not a JSON Schema type (string, integer, number, boolean, null, array, object)", sub("type"), n)
			}
		}
	}
	if e, ok := obj.vals["enum"]; ok {
		var vals []json.RawMessage
		if json.Unmarshal(e, &vals) != nil || len(vals) == 0 {
			return fmt.Errorf("%s must be a non-empty array", sub("enum"))
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		v, ok := obj.vals[k]
		if !ok {
			continue
		}
		var subs []json.RawMessage
		if json.Unmarshal(v, &subs) != nil || len(subs) == 0 {
			return fmt.Errorf("%s must be a non-empty array of schemas", sub(k))
		}
		for i, s := range subs {
			if err := c.walk(s, fmt.Sprintf("%s[%d]", sub(k), i), depth+1); err != nil {
				return err
			}
		}
	}
	for _, k := range []string{"properties", "$defs", "definitions"} {
		v, ok := obj.vals[k]
		if !ok {
			continue
		}
		members, err := decodeObject(v)
		if err != nil {
			return fmt.Errorf("%s must be an object of schemas", sub(k))
		}
		for _, name := range members.keys {
			if err := c.walk(members.vals[name], sub(k)+"."+name, depth+1); err != nil {
				return err
			}
		}
	}
	if v, ok := obj.vals["required"]; ok {
		var names []string
		if json.Unmarshal(v, &names) != nil {
			return fmt.Errorf("%s must be an array of property names", sub("required"))
		}
		if string(bytes.TrimSpace(obj.vals["additionalProperties"])) == "false" {
			props, _ := decodeObject(obj.vals["properties"])
			for _, n := range names {
				if props == nil || props.vals[n] == nil {
					return fmt.Errorf("%s names %q, which additionalProperties false forbids", sub("required"), n)
				}
			}
		}
	}
	for _, k := range []string{"additionalProperties", "items"} {
		v, ok := obj.vals[k]
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case string(v) == "true" || string(v) == "false":
		case len(v) > 0 && v[0] == '{':
			if err := c.walk(v, sub(k), depth+1); err != nil {
				return err
			}
		case k == "items" && len(v) > 0 && v[0] == '[': // draft 4 tuples: not followed
		default:
			return fmt.Errorf("%s must be a schema", sub(k))
		}
	}
	for _, pair := range [][2]string{{"minLength", "maxLength"}, {"minItems", "maxItems"}} {
		lo, hi := -1.0, -1.0
		for i, k := range pair {
			v, ok := obj.vals[k]
			if !ok {
				continue
			}
			var f float64
			if json.Unmarshal(v, &f) != nil || f < 0 || f != math.Trunc(f) {
				return fmt.Errorf("%s must be a non-negative integer", sub(k))
			}
			if i == 0 {
				lo = f
			} else {
				hi = f
			}
		}
		if lo >= 0 && hi >= 0 && lo > hi {
			return fmt.Errorf("%s is greater than %s: no value fits", sub(pair[0]), pair[1])
		}
	}
	if v, ok := obj.vals["$ref"]; ok {
		var ptr string
		if json.Unmarshal(v, &ptr) != nil {
			return fmt.Errorf("%s must be a string", sub("$ref"))
		}
		if strings.HasPrefix(ptr, "#") {
			target, ok := resolvePointer(c.doc, ptr)
			if !ok {
				return fmt.Errorf("%s %q does not resolve within the schema", sub("$ref"), ptr)
			}
			if !c.seen[ptr] {
				c.seen[ptr] = true
				if err := c.walk(target, ptr, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// refCycle reports a "#..." $ref of doc that leads back to itself before
// any text: the schema at the pointer is that $ref again, through $ref,
// anyOf, oneOf and sole allOf alone. Its grammar would be left-recursive,
// which llama.cpp refuses. (Recursion inside an object or an array is
// fine.)
func refCycle(doc json.RawMessage) error {
	state := map[string]int{} // 1 on the path, 2 done
	var visit func(ptr string, n int) error
	visit = func(ptr string, n int) error {
		switch state[ptr] {
		case 1:
			return fmt.Errorf("$ref %q refers to itself before any value is written", ptr)
		case 2:
			return nil
		}
		if n > 4*maxDepth {
			return nil
		}
		state[ptr] = 1
		target, _ := resolvePointer(doc, ptr)
		for _, next := range leadingRefs(target, 0) {
			if err := visit(next, n+1); err != nil {
				return err
			}
		}
		state[ptr] = 2
		return nil
	}
	for _, ptr := range allRefs(doc, nil, 0) {
		if err := visit(ptr, 0); err != nil {
			return err
		}
	}
	return nil
}

// allRefs appends the "#..." values of every "$ref" member in raw.
func allRefs(raw json.RawMessage, out []string, depth int) []string {
	raw = bytes.TrimSpace(raw)
	if depth > 4*maxDepth || len(raw) == 0 {
		return out
	}
	switch raw[0] {
	case '{':
		obj, err := decodeObject(raw)
		if err != nil {
			return out
		}
		for _, k := range obj.keys {
			var ptr string
			if k == "$ref" && json.Unmarshal(obj.vals[k], &ptr) == nil && strings.HasPrefix(ptr, "#") {
				out = append(out, ptr)
				continue
			}
			out = allRefs(obj.vals[k], out, depth+1)
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, v := range list {
				out = allRefs(v, out, depth+1)
			}
		}
	}
	return out
}

// leadingRefs are the "#..." $refs a value of the schema may start with,
// before any of its own text: its $ref, and those of its alternatives.
func leadingRefs(raw json.RawMessage, depth int) []string {
	obj, err := decodeObject(raw)
	if err != nil || depth > maxDepth {
		return nil
	}
	var out []string
	var ptr string
	if json.Unmarshal(obj.vals["$ref"], &ptr) == nil && strings.HasPrefix(ptr, "#") {
		return []string{ptr} // the converter follows the $ref alone
	}
	if _, ok := obj.vals["const"]; ok {
		return nil
	}
	if _, ok := obj.vals["enum"]; ok {
		return nil
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		var subs []json.RawMessage
		if json.Unmarshal(obj.vals[k], &subs) == nil && len(subs) > 0 {
			for _, s := range subs {
				out = append(out, leadingRefs(s, depth+1)...)
			}
			return out
		}
	}
	if one, ok := soleAllOf(obj); ok {
		return leadingRefs(one, depth+1)
	}
	return nil
}

// schemaName reports a name OpenAI accepts for a JSON schema response
// format: ^[a-zA-Z0-9_-]{1,64}$.
func schemaName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
