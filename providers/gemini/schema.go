package gemini

import (
	"errors"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// Gemini's function parameters and responseSchema are a Schema: a subset
// of OpenAPI 3.0's schema object, which refuses unknown fields
// ("Invalid JSON payload received. Unknown name \"additionalProperties\"").
// Its fields are type, format, title, description, nullable, enum,
// properties, required, propertyOrdering, minProperties, maxProperties,
// items, minItems, maxItems, minLength, maxLength, pattern, minimum,
// maximum, anyOf, default and example.
// https://ai.google.dev/api/caching#Schema
//
// A client's JSON Schema is rewritten into that subset:
//   - kept as they are: type, title, description, nullable, properties,
//     required (less names that are not properties), items, anyOf,
//     pattern, the min/max bounds, default, example;
//   - format is kept where Gemini accepts it (enum and date-time for
//     strings, float/double, int32/int64) and dropped otherwise;
//   - type ["x","null"] becomes type x with nullable; several types become
//     anyOf; a missing type is inferred (properties: object, items: array,
//     enum: string);
//   - anyOf [X, {"type":"null"}] becomes X with nullable; oneOf is read as
//     anyOf; allOf is merged into one schema;
//   - const becomes a one-value enum; enums are kept when every value is a
//     string (null marks nullable) and dropped otherwise;
//   - local $refs (#/$defs/..., #/definitions/...) are inlined, to a depth
//     of maxRefDepth (a recursive schema ends in a bare object);
//   - everything else is dropped: $schema, $id, $defs, definitions,
//     additionalProperties, patternProperties, unevaluatedProperties,
//     propertyNames, dependencies, if/then/else, not, exclusiveMinimum,
//     exclusiveMaximum, multipleOf, uniqueItems, contains, prefixItems,
//     examples, readOnly, writeOnly, deprecated, $comment, strict...;
//   - an empty properties map is left out: Gemini answers "properties:
//     should be non-empty for OBJECT type".

const (
	maxRefDepth    = 3
	maxSchemaDepth = 64
)

// toolParameters rewrites a tool's parameters. It returns nil for a
// function without parameters, which Gemini wants without a parameters
// field.
func toolParameters(raw []byte) (any, error) {
	s, err := convertSchema(raw, false)
	if err != nil || s == nil {
		return nil, err
	}
	if t, typed := s["type"]; s["properties"] == nil && s["anyOf"] == nil && (!typed || t == "object") {
		return nil, nil
	}
	return s, nil
}

// responseSchema rewrites a json_schema response format. Objects get a
// propertyOrdering in the client's order, so the answer's keys come in the
// order the client declared them.
// https://ai.google.dev/gemini-api/docs/structured-output
func responseSchema(raw []byte) (any, error) {
	s, err := convertSchema(raw, true)
	if err != nil || s == nil {
		return nil, err
	}
	return s, nil
}

func convertSchema(raw []byte, ordering bool) (map[string]any, error) {
	if !gjson.ValidBytes(raw) {
		return nil, errors.New("the schema is not valid JSON")
	}
	root := gjson.ParseBytes(raw)
	if !root.IsObject() {
		if root.Type == gjson.True || root.Type == gjson.Null {
			return nil, nil
		}
		return nil, errors.New("the schema must be a JSON object")
	}
	c := &schemaConv{root: root, ordering: ordering}
	return c.conv(root, 0, 0), nil
}

type schemaConv struct {
	root     gjson.Result
	ordering bool
}

// conv rewrites one schema object; depth bounds nesting, refs the $refs
// followed on the way down.
func (c *schemaConv) conv(s gjson.Result, depth, refs int) map[string]any {
	out := map[string]any{}
	if !s.IsObject() || depth > maxSchemaDepth {
		return out
	}
	if ref := s.Get("$ref"); ref.Type == gjson.String {
		target, ok := c.resolve(ref.Str)
		if !ok || refs >= maxRefDepth {
			out["type"] = "object"
		} else {
			out = c.conv(target, depth+1, refs+1)
		}
		for _, k := range []string{"description", "title"} {
			if v := s.Get(k); v.Type == gjson.String {
				out[k] = v.Str
			}
		}
		return out
	}

	nullable := s.Get("nullable").Type == gjson.True
	var types []string
	switch t := s.Get("type"); {
	case t.Type == gjson.String:
		types = []string{t.Str}
	case t.IsArray():
		for _, v := range t.Array() {
			if v.Type != gjson.String {
				continue
			}
			if v.Str == "null" {
				nullable = true
			} else {
				types = append(types, v.Str)
			}
		}
		if len(types) == 0 && nullable {
			types = []string{"null"}
		}
	}

	for _, k := range []string{"title", "description", "pattern"} {
		if v := s.Get(k); v.Type == gjson.String {
			out[k] = v.Str
		}
	}
	for _, k := range []string{"minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"} {
		if v := s.Get(k); v.Type == gjson.Number {
			out[k] = v.Value()
		}
	}
	for _, k := range []string{"default", "example"} {
		if v := s.Get(k); v.Exists() {
			out[k] = v.Value()
		}
	}

	if enum, null, ok := stringEnum(s); ok {
		out["enum"] = enum
		nullable = nullable || null
	}

	if props := s.Get("properties"); props.IsObject() {
		m := map[string]any{}
		var order []string
		props.ForEach(func(k, v gjson.Result) bool {
			m[k.Str] = c.conv(v, depth+1, refs)
			order = append(order, k.Str)
			return true
		})
		if len(m) > 0 {
			out["properties"] = m
			if c.ordering {
				out["propertyOrdering"] = order
			}
			var req []string
			for _, r := range s.Get("required").Array() {
				if _, ok := m[r.Str]; ok && r.Type == gjson.String {
					req = append(req, r.Str)
				}
			}
			if len(req) > 0 {
				out["required"] = req
			}
		}
	}
	switch items := s.Get("items"); {
	case items.IsObject():
		out["items"] = c.conv(items, depth+1, refs)
	case items.IsArray() && len(items.Array()) > 0:
		out["items"] = c.conv(items.Array()[0], depth+1, refs)
	}

	// anyOf / oneOf, with a {"type":"null"} alternative read as nullable.
	var alts []map[string]any
	for _, k := range []string{"anyOf", "oneOf"} {
		for _, v := range s.Get(k).Array() {
			if v.Get("type").Str == "null" && len(v.Map()) == 1 {
				nullable = true
				continue
			}
			alts = append(alts, c.conv(v, depth+1, refs))
		}
	}
	if len(types) > 1 {
		for _, t := range types {
			alts = append(alts, map[string]any{"type": t})
		}
		types = nil
	}
	switch {
	case len(alts) == 1:
		merge(out, alts[0])
	case len(alts) > 1:
		list := make([]any, len(alts))
		for i, a := range alts {
			list[i] = a
		}
		out["anyOf"] = list
	}
	for _, v := range s.Get("allOf").Array() {
		merge(out, c.conv(v, depth+1, refs))
	}

	if len(types) == 1 {
		out["type"] = types[0]
	}
	if _, ok := out["type"]; !ok && out["anyOf"] == nil {
		switch {
		case out["properties"] != nil:
			out["type"] = "object"
		case out["items"] != nil:
			out["type"] = "array"
		case out["enum"] != nil:
			out["type"] = "string"
		}
	}
	if f := s.Get("format"); f.Type == gjson.String && formatAllowed(out["type"], f.Str) {
		out["format"] = f.Str
	}
	if nullable {
		out["nullable"] = true
	}
	return out
}

// resolve finds a local $ref's target.
func (c *schemaConv) resolve(ref string) (gjson.Result, bool) {
	if ref == "#" {
		return c.root, true
	}
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return gjson.Result{}, false
	}
	cur := c.root
	for _, seg := range strings.Split(p, "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		var next gjson.Result
		found := false
		cur.ForEach(func(k, v gjson.Result) bool {
			if k.Str == seg {
				next, found = v, true
				return false
			}
			return true
		})
		if !found {
			return gjson.Result{}, false
		}
		cur = next
	}
	return cur, cur.IsObject()
}

// stringEnum reads enum (or const) when every value is a string; null
// reports a null value, which Gemini expresses as nullable.
func stringEnum(s gjson.Result) (enum []string, null, ok bool) {
	vals := s.Get("enum").Array()
	if c := s.Get("const"); c.Exists() && len(vals) == 0 {
		vals = []gjson.Result{c}
	}
	if len(vals) == 0 {
		return nil, false, false
	}
	for _, v := range vals {
		switch v.Type {
		case gjson.String:
			enum = append(enum, v.Str)
		case gjson.Null:
			null = true
		default:
			return nil, false, false
		}
	}
	return enum, null, len(enum) > 0
}

// formatAllowed reports whether Gemini accepts a format on a type.
func formatAllowed(typ any, format string) bool {
	switch typ {
	case "string":
		return format == "enum" || format == "date-time"
	case "number":
		return format == "float" || format == "double"
	case "integer":
		return format == "int32" || format == "int64"
	}
	return false
}

// merge folds src into dst: properties and required are united, other
// fields of dst win.
func merge(dst, src map[string]any) {
	for k, v := range src {
		switch k {
		case "properties":
			if d, ok := dst[k].(map[string]any); ok {
				for pk, pv := range v.(map[string]any) {
					if _, exists := d[pk]; !exists {
						d[pk] = pv
					}
				}
				continue
			}
		case "required", "propertyOrdering":
			if d, ok := dst[k].([]string); ok {
				dst[k] = union(d, v.([]string))
				continue
			}
		}
		if _, exists := dst[k]; !exists {
			dst[k] = v
		}
	}
}

// union appends to a the strings of b it lacks.
func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}
