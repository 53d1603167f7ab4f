package localengine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Grammars for tool_choice "required" and a named function: GBNF (llama.cpp's
// grammar format) for one or more <tool_call> blocks, each naming a tool of
// the request and holding arguments that follow its JSON schema, as far as
// the schema converter below understands it:
//
//   - type (a name or a list), nullable, enum, const, anyOf and oneOf;
//   - strings with minLength and maxLength;
//   - integers and numbers (at most 16 digits; minimum, maximum and
//     multipleOf are not enforced);
//   - arrays of items with minItems and maxItems;
//   - objects: the declared properties, in the declared order, the required
//     ones always and the others optionally; no other properties. Without
//     properties, an additionalProperties schema is followed; otherwise any
//     object.
//
// Everything else ($ref, allOf, not, pattern, format, prefixItems, bounds
// above maxBound) leaves that part of the value any JSON value of the type.
// JSON whitespace is allowed between tokens but bounded, as in llama.cpp's
// own converter, so a model cannot fill its answer with it.

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
json-number ::= "-"? ([0] | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
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
			args = g.schema(t.Parameters, prefix+"-args", 0)
		}
		alts = append(alts, g.add(prefix, gbnfLiteral(jsonString(t.Name)+`, "arguments": `)+" "+args))
	}
	var b strings.Builder
	if ts.parallel {
		b.WriteString(`root ::= call ( "\n" call )*` + "\n")
	} else {
		b.WriteString("root ::= call\n")
	}
	b.WriteString(`call ::= ` + gbnfLiteral(callOpen+"\n{\"name\": ") + " ( " + strings.Join(alts, " | ") + " ) " + gbnfLiteral("}\n"+callClose) + "\n")
	for _, r := range g.rules {
		b.WriteString(r)
		b.WriteString("\n")
	}
	b.WriteString(genericRules)
	return b.String()
}

// grammar collects the rules a schema needs.
type grammar struct {
	rules []string
	names map[string]bool
}

// add defines a rule and returns its name.
func (g *grammar) add(name, body string) string {
	if g.names == nil {
		g.names = map[string]bool{}
	}
	base, n := name, 1
	for g.names[name] {
		n++
		name = base + "-" + strconv.Itoa(n)
	}
	g.names[name] = true
	g.rules = append(g.rules, name+" ::= "+body)
	return name
}

// schema returns a grammar expression for values of a JSON schema.
func (g *grammar) schema(raw json.RawMessage, name string, depth int) string {
	obj, err := decodeObject(raw)
	if err != nil || depth > maxDepth {
		return "json-value"
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
	if raw, ok := obj.vals["items"]; ok && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		item = g.schema(raw, name+"-item", depth+1)
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
