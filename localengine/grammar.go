package localengine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Grammars in GBNF (llama.cpp's grammar format), for tool_choice
// "required" and a named function (one or more <tool_call> blocks, each
// naming a tool of the request and holding arguments that follow its JSON
// schema) and for response_format (format.go), from JSON schemas as far as
// the converter below understands them:
//
//   - type (a name or a list), nullable, enum, const, anyOf and oneOf;
//     allOf of one schema (as pydantic writes a described $ref);
//   - $ref to a place in the same schema ("#", "#/$defs/Name", any JSON
//     pointer after "#"), recursion included;
//   - strings with minLength and maxLength;
//   - integers and numbers (at most 16 digits, and an exponent of at most
//     two, so that every number fits a float64; minimum, maximum and
//     multipleOf are not enforced);
//   - arrays of items with minItems and maxItems (items false: empty);
//   - objects: the declared properties, in the declared order, the required
//     ones always and the others optionally; a required name that is not
//     declared, with any value, after them; no other properties. Without
//     properties, an additionalProperties schema is followed; otherwise any
//     object.
//
// Everything else ($ref to another document, allOf of several schemas,
// not, pattern, format, prefixItems, bounds above maxBound) leaves that
// part of the value any JSON value of the type. JSON whitespace is allowed
// between tokens but bounded, as in llama.cpp's own converter, so a model
// cannot fill its answer with it.

// maxBound is the largest length or item bound written into a grammar
// (llama.cpp expands a bounded repetition into that many rules).
const maxBound = 256

// maxDepth bounds how deep a schema is followed.
const maxDepth = 16

const genericRules = `json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
json-object ::= "{" ws ( json-string ws ":" ws json-value ( ws "," ws json-string ws ":" ws json-value )* )? ws "}"
json-array ::= "[" ws ( json-value ( ws "," ws json-value )* )? ws "]"
json-string ::= "\"" json-char* "\""
json-char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
json-number ::= "-"? ([0] | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?
json-integer ::= "-"? ([0] | [1-9] [0-9]{0,15})
json-boolean ::= "true" | "false"
json-null ::= "null"
ws ::= | " " | "\n" [ \t]{0,20}
`

// toolGrammar is the grammar of an answer that is only tool calls: one
// when parallel_tool_calls is false, else one or more separated by a
// newline; for a named function, calls of that function.
func toolGrammar(ts *toolSet) string {
	g := &grammar{}
	call := g.callRule(ts)
	var b strings.Builder
	b.WriteString("root ::= " + callsExpr(ts) + "\n")
	b.WriteString(call)
	g.write(&b)
	return b.String()
}

// callsExpr is the tool calls an answer may hold: one call when
// parallel_tool_calls is false, else one or more.
func callsExpr(ts *toolSet) string {
	if ts.parallel {
		return `call ( "\n" call )*`
	}
	return "call"
}

// callRule returns the definition of the rule "call": one <tool_call>
// block calling a tool of ts (for a named function, that function) with
// arguments that follow its schema; the arguments' rules go into g.
func (g *grammar) callRule(ts *toolSet) string {
	var alts []string
	for i, t := range ts.tools {
		if ts.choice == choiceFunction && t.Name != ts.forced {
			continue
		}
		prefix := fmt.Sprintf("t%d", i)
		var args string
		if t.Parameters == nil {
			args = `"{" ws "}"` // no parameters: no arguments
		} else {
			g.document(t.Parameters)
			if refCycle(t.Parameters) != nil {
				g.document(nil) // its $refs are not followed: any value
			}
			args = g.schema(t.Parameters, prefix+"-args", 0)
		}
		alts = append(alts, g.add(prefix, gbnfLiteral(jsonString(t.Name)+`, "arguments": `)+" "+args))
	}
	return `call ::= ` + gbnfLiteral(callOpen+"\n{\"name\": ") + " ( " + strings.Join(alts, " | ") + " ) " + gbnfLiteral("}\n"+callClose) + "\n"
}

// write appends the collected rules and the generic JSON rules.
func (g *grammar) write(b *strings.Builder) {
	for _, r := range g.rules {
		b.WriteString(r)
		b.WriteString("\n")
	}
	b.WriteString(genericRules)
}

// grammar collects the rules a schema needs.
type grammar struct {
	rules []string
	names map[string]bool
	// doc is the schema document $refs point into; refs are the rules of
	// the pointers followed in it so far.
	doc  json.RawMessage
	refs map[string]string
}

// document makes doc the schema that "#..." $refs point into.
func (g *grammar) document(doc json.RawMessage) {
	g.doc, g.refs = doc, nil
}

// add defines a rule and returns its name.
func (g *grammar) add(name, body string) string {
	name = g.reserve(name)
	g.define(name, body)
	return name
}

// reserve returns a rule name not used yet, name or name-N, and marks it
// used; define gives it its body later.
func (g *grammar) reserve(name string) string {
	if g.names == nil {
		g.names = map[string]bool{}
	}
	base, n := name, 1
	for g.names[name] {
		n++
		name = base + "-" + strconv.Itoa(n)
	}
	g.names[name] = true
	return name
}

func (g *grammar) define(name, body string) {
	g.rules = append(g.rules, name+" ::= "+body)
}

// ref returns the rule for the values of the schema a "#..." $ref points
// to in the document, defining it the first time (a recursive schema
// refers to its rule by name); ok is false when ptr does not resolve.
func (g *grammar) ref(ptr string, depth int) (rule string, ok bool) {
	if r, ok := g.refs[ptr]; ok {
		return r, true
	}
	target, ok := resolvePointer(g.doc, ptr)
	if !ok {
		return "", false
	}
	if g.refs == nil {
		g.refs = map[string]string{}
	}
	rule = g.reserve("ref" + strconv.Itoa(len(g.refs)+1))
	g.refs[ptr] = rule
	g.define(rule, g.schema(target, rule+"-v", depth+1))
	return rule, true
}

// resolvePointer finds the value a "#..." reference names in doc: "#" is
// doc itself, "#/a/b" a JSON pointer (RFC 6901) in URI fragment form.
func resolvePointer(doc json.RawMessage, ref string) (json.RawMessage, bool) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok || doc == nil {
		return nil, false
	}
	frag, err := url.PathUnescape(frag)
	if err != nil {
		return nil, false
	}
	cur := doc
	if frag == "" {
		return cur, true
	}
	if frag[0] != '/' {
		return nil, false // an anchor ("#name"), not a pointer
	}
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		trimmed := bytes.TrimSpace(cur)
		switch {
		case len(trimmed) > 0 && trimmed[0] == '{':
			obj, err := decodeObject(trimmed)
			if err != nil {
				return nil, false
			}
			v, ok := obj.vals[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case len(trimmed) > 0 && trimmed[0] == '[':
			var list []json.RawMessage
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || json.Unmarshal(trimmed, &list) != nil || i >= len(list) || tok != strconv.Itoa(i) {
				return nil, false
			}
			cur = list[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// schema returns a grammar expression for values of a JSON schema.
func (g *grammar) schema(raw json.RawMessage, name string, depth int) string {
	obj, err := decodeObject(raw)
	if err != nil || depth > maxDepth {
		return "json-value"
	}
	if r, ok := obj.vals["$ref"]; ok {
		var ptr string
		if json.Unmarshal(r, &ptr) == nil {
			if rule, ok := g.ref(ptr, depth); ok {
				return rule
			}
		}
	}
	if c, ok := obj.vals["const"]; ok {
		return g.literalValue(c)
	}
	if e, ok := obj.vals["enum"]; ok {
		var vals []json.RawMessage
		if json.Unmarshal(e, &vals) == nil && len(vals) > 0 {
			alts := make([]string, len(vals))
			for i, v := range vals {
				alts[i] = g.literalValue(v)
			}
			return g.add(name, strings.Join(alts, " | "))
		}
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		var subs []json.RawMessage
		if json.Unmarshal(obj.vals[key], &subs) == nil && len(subs) > 0 {
			alts := make([]string, len(subs))
			for i, s := range subs {
				alts[i] = g.schema(s, fmt.Sprintf("%s-%d", name, i), depth+1)
			}
			return g.add(name, strings.Join(alts, " | "))
		}
	}
	if one, ok := soleAllOf(obj); ok {
		return g.schema(one, name, depth+1)
	}
	var types []string
	if t, ok := obj.vals["type"]; ok {
		var one string
		if json.Unmarshal(t, &one) == nil {
			types = []string{one}
		} else if json.Unmarshal(t, &types) != nil {
			return "json-value"
		}
	} else if _, ok := obj.vals["properties"]; ok {
		types = []string{"object"}
	} else if _, ok := obj.vals["items"]; ok {
		types = []string{"array"}
	}
	if len(types) == 0 {
		return "json-value"
	}
	var nullable bool
	_ = json.Unmarshal(obj.vals["nullable"], &nullable)
	if nullable {
		types = append(types, "null")
	}
	alts := make([]string, 0, len(types))
	for _, t := range types {
		alts = append(alts, g.typed(obj, t, name, depth))
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return g.add(name, strings.Join(alts, " | "))
}

func (g *grammar) typed(obj *jsonObject, typ, name string, depth int) string {
	switch typ {
	case "string":
		lo, hi, ok := bounds(obj, "minLength", "maxLength")
		if !ok {
			return "json-string"
		}
		return g.add(name+"-string", `"\"" `+repeat("json-char", lo, hi)+` "\""`)
	case "integer":
		return "json-integer"
	case "number":
		return "json-number"
	case "boolean":
		return "json-boolean"
	case "null":
		return "json-null"
	case "array":
		return g.array(obj, name, depth)
	case "object":
		return g.object(obj, name, depth)
	}
	return "json-value"
}

func (g *grammar) array(obj *jsonObject, name string, depth int) string {
	item := "json-value"
	if raw, ok := obj.vals["items"]; ok {
		raw = bytes.TrimSpace(raw)
		switch {
		case bytes.HasPrefix(raw, []byte("{")):
			item = g.schema(raw, name+"-item", depth+1)
		case string(raw) == "false": // no items at all
			return g.add(name+"-array", `"[" ws "]"`)
		}
	}
	lo, hi, ok := bounds(obj, "minItems", "maxItems")
	if !ok {
		lo, hi = 0, -1
	}
	next := `( ws "," ws ` + item + ` )`
	var body string
	switch {
	case hi == 0:
		body = `"[" ws "]"`
	case lo == 0:
		body = `"[" ws ( ` + item + " " + repeat(next, 0, decr(hi)) + ` )? ws "]"`
	default:
		body = `"[" ws ` + item + " " + repeat(next, lo-1, decr(hi)) + ` ws "]"`
	}
	return g.add(name+"-array", body)
}

func decr(hi int) int {
	if hi < 0 {
		return -1
	}
	return hi - 1
}

func (g *grammar) object(obj *jsonObject, name string, depth int) string {
	propsRaw, hasProps := obj.vals["properties"]
	if !hasProps {
		if extra, ok := obj.vals["additionalProperties"]; ok {
			extra = bytes.TrimSpace(extra)
			switch {
			case string(extra) == "false":
				return g.add(name+"-object", `"{" ws "}"`)
			case bytes.HasPrefix(extra, []byte("{")):
				kv := g.add(name+"-kv", `json-string ws ":" ws `+g.schema(extra, name+"-value", depth+1))
				return g.add(name+"-object", `"{" ws ( `+kv+` ( ws "," ws `+kv+` )* )? ws "}"`)
			}
		}
		return "json-object"
	}
	props, err := decodeObject(propsRaw)
	if err != nil {
		return "json-object"
	}
	required := map[string]bool{}
	var req []string
	if json.Unmarshal(obj.vals["required"], &req) == nil {
		for _, r := range req {
			required[r] = true
			// Required but not declared: any value, after the declared.
			if _, ok := props.vals[r]; !ok {
				props.keys = append(props.keys, r)
				props.vals[r] = json.RawMessage(`{}`)
			}
		}
	}
	kvs := make([]string, len(props.keys))
	for i, k := range props.keys {
		v := g.schema(props.vals[k], fmt.Sprintf("%s-p%d", name, i), depth+1)
		kvs[i] = g.add(fmt.Sprintf("%s-p%d-kv", name, i), gbnfLiteral(jsonString(k))+` ws ":" ws `+v)
	}
	// seq(i, first): properties i.. in order, the required ones always,
	// the others optionally; first says no property came before (no comma).
	type key struct {
		i     int
		first bool
	}
	memo := map[key]string{}
	var seq func(i int, first bool) string
	seq = func(i int, first bool) string {
		if i == len(kvs) {
			return ""
		}
		if r, ok := memo[key{i, first}]; ok {
			return r
		}
		this := kvs[i]
		if !first {
			this = `ws "," ws ` + this
		}
		present := strings.TrimSpace(this + " " + seq(i+1, false))
		var body string
		if required[props.keys[i]] {
			body = present
		} else if absent := seq(i+1, first); absent == "" {
			body = "( " + present + " )?"
		} else {
			body = "( " + present + " | " + absent + " )"
		}
		r := g.add(fmt.Sprintf("%s-s%d%s", name, i, map[bool]string{true: "f", false: "c"}[first]), body)
		memo[key{i, first}] = r
		return r
	}
	return g.add(name+"-object", strings.TrimSpace(`"{" ws `+seq(0, true))+` ws "}"`)
}

// soleAllOf returns the schema of an allOf of one schema beside no
// keyword that constrains the type (pydantic writes a described $ref so);
// allOf of several schemas is not followed.
func soleAllOf(obj *jsonObject) (json.RawMessage, bool) {
	var subs []json.RawMessage
	if json.Unmarshal(obj.vals["allOf"], &subs) != nil || len(subs) != 1 {
		return nil, false
	}
	for _, k := range []string{"type", "properties", "items", "additionalProperties"} {
		if _, ok := obj.vals[k]; ok {
			return nil, false
		}
	}
	return subs[0], true
}

// literalValue matches one JSON value exactly, as compact JSON.
func (g *grammar) literalValue(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return "json-value"
	}
	// Re-encode strings without HTML escaping, as a model writes them.
	var s string
	if buf.Len() > 0 && buf.Bytes()[0] == '"' && json.Unmarshal(buf.Bytes(), &s) == nil {
		return gbnfLiteral(jsonString(s))
	}
	return gbnfLiteral(buf.String())
}

// bounds reads a pair of length or item bounds; ok is false when neither
// is usable. hi is -1 for no upper bound.
func bounds(obj *jsonObject, minKey, maxKey string) (lo, hi int, ok bool) {
	hi = -1
	var f float64
	if json.Unmarshal(obj.vals[minKey], &f) == nil && f >= 1 && f <= maxBound {
		lo, ok = int(f), true
	}
	if json.Unmarshal(obj.vals[maxKey], &f) == nil && f >= 0 && f <= maxBound && int(f) >= lo {
		hi, ok = int(f), true
	}
	return lo, hi, ok
}

// repeat is expr repeated lo to hi times (hi -1: no upper bound); "" for
// none at all.
func repeat(expr string, lo, hi int) string {
	switch {
	case hi == 0:
		return ""
	case hi == 1 && lo == 0:
		return expr + "?"
	case hi == 1 && lo == 1:
		return expr
	case hi < 0 && lo == 0:
		return expr + "*"
	case hi < 0:
		return fmt.Sprintf("%s{%d,}", expr, lo)
	case lo == hi:
		return fmt.Sprintf("%s{%d}", expr, lo)
	}
	return fmt.Sprintf("%s{%d,%d}", expr, lo, hi)
}

// gbnfLiteral quotes s as a GBNF string literal.
func gbnfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// jsonObject is a JSON object with its keys in order.
type jsonObject struct {
	keys []string
	vals map[string]json.RawMessage
}

func decodeObject(raw json.RawMessage) (*jsonObject, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not an object")
	}
	obj := &jsonObject{vals: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("not an object")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := obj.vals[k]; !dup {
			obj.keys = append(obj.keys, k)
		}
		obj.vals[k] = v
	}
	return obj, nil
}
