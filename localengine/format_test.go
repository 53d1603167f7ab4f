package localengine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

// Unit tests of response_format: reading it, refusing what cannot be
// followed, and the grammar text. None needs the llama.cpp libraries;
// format_engine_test.go samples with the grammars.

func readFormat(t *testing.T, rf string) (*responseFormat, error) {
	t.Helper()
	b := parseBody(t, `{"response_format":`+rf+`}`)
	return b.responseFormat()
}

func TestResponseFormat(t *testing.T) {
	for _, tc := range []struct {
		rf     string
		typ    string // "" for none
		schema string
		strict bool
	}{
		{rf: `null`},
		{rf: `{"type":"text"}`},
		{rf: `{"type":"json_object"}`, typ: formatJSONObject},
		{rf: `{"type":"json_schema","json_schema":{"name":"a","schema":{ "type" : "object" },"strict":true}}`, typ: formatJSONSchema, schema: `{"type":"object"}`, strict: true},
		{rf: `{"type":"json_schema","json_schema":{"name":"a","strict":null,"schema":null}}`, typ: formatJSONSchema},
		{rf: `{"type":"json_schema","json_schema":{"schema":{}}}`, typ: formatJSONSchema, schema: `{}`},
	} {
		f, err := readFormat(t, tc.rf)
		require.NoError(t, err, tc.rf)
		if tc.typ == "" {
			require.Nil(t, f, tc.rf)
			continue
		}
		require.Equal(t, tc.typ, f.typ, tc.rf)
		require.Equal(t, tc.schema, string(f.schema), tc.rf)
		require.Equal(t, tc.strict, f.strict, tc.rf)
	}
}

// What cannot be followed is a 400 in OpenAI's shape naming the parameter,
// with a message that says why.
func TestResponseFormatRefused(t *testing.T) {
	schema := func(s string) string {
		return `{"type":"json_schema","json_schema":{"name":"s","schema":` + s + `}}`
	}
	for _, tc := range []struct{ rf, param, msg string }{
		{`"json"`, paramFormat, "must be an object"},
		{`[]`, paramFormat, "must be an object"},
		{`{}`, paramFormatType, "text, json_object or json_schema"},
		{`{"type":"xml"}`, paramFormatType, "text, json_object or json_schema"},
		{`{"type":7}`, paramFormatType, "text, json_object or json_schema"},
		{`{"type":"json_schema"}`, paramJSONSchema, "needs json_schema"},
		{`{"type":"json_schema","json_schema":"s"}`, paramJSONSchema, "must be an object"},
		{`{"type":"json_schema","json_schema":{"name":5}}`, paramJSONSchema + ".name", "must be a string"},
		{`{"type":"json_schema","json_schema":{"name":"bad name!"}}`, paramJSONSchema + ".name", "letters, digits, underscores or dashes"},
		{`{"type":"json_schema","json_schema":{"name":""}}`, paramJSONSchema + ".name", "1 to 64"},
		{`{"type":"json_schema","json_schema":{"name":"` + strings.Repeat("n", 65) + `"}}`, paramJSONSchema + ".name", "1 to 64"},
		{`{"type":"json_schema","json_schema":{"strict":"yes"}}`, paramJSONSchema + ".strict", "must be a boolean"},
		{schema(`"object"`), paramSchema, "must be a JSON schema object"},
		{schema(`true`), paramSchema, "must be a JSON schema object"},
		{schema(`{"type":"wizard"}`), paramSchema, `type: "wizard" is not a JSON Schema type`},
		{schema(`{"type":[]}`), paramSchema, "type must be a type name or a non-empty list"},
		{schema(`{"type":["string",3]}`), paramSchema, "type must be a type name"},
		{schema(`{"enum":[]}`), paramSchema, "enum must be a non-empty array"},
		{schema(`{"anyOf":{}}`), paramSchema, "anyOf must be a non-empty array of schemas"},
		{schema(`{"oneOf":[{"type":"string"},7]}`), paramSchema, "oneOf[1] must be a schema object"},
		{schema(`{"properties":[]}`), paramSchema, "properties must be an object of schemas"},
		{schema(`{"properties":{"a":{"properties":{"b":{"type":"nope"}}}}}`), paramSchema, `properties.a.properties.b.type: "nope"`},
		{schema(`{"properties":{"a":false}}`), paramSchema, "properties.a is false, which no value matches"},
		{schema(`{"required":"a"}`), paramSchema, "required must be an array of property names"},
		{schema(`{"properties":{"a":{}},"required":["a","b"],"additionalProperties":false}`), paramSchema, `required names "b", which additionalProperties false forbids`},
		{schema(`{"items":5}`), paramSchema, "items must be a schema"},
		{schema(`{"additionalProperties":{"type":1}}`), paramSchema, "additionalProperties.type must be"},
		{schema(`{"minLength":-1}`), paramSchema, "minLength must be a non-negative integer"},
		{schema(`{"maxItems":1.5}`), paramSchema, "maxItems must be a non-negative integer"},
		{schema(`{"minLength":4,"maxLength":3}`), paramSchema, "minLength is greater than maxLength: no value fits"},
		{schema(`{"minItems":2,"maxItems":1}`), paramSchema, "minItems is greater than maxItems"},
		{schema(`{"$ref":"#/$defs/missing"}`), paramSchema, `$ref "#/$defs/missing" does not resolve within the schema`},
		{schema(`{"$ref":7}`), paramSchema, "$ref must be a string"},
		{schema(`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}`), paramSchema, "refers to itself before any value is written"},
		{schema(`{"anyOf":[{"type":"string"},{"$ref":"#"}]}`), paramSchema, `$ref "#" refers to itself`},
		{schema(`{"$defs":{"x":{"type":"wizard"}}}`), paramSchema, `$defs.x.type: "wizard"`},
	} {
		_, err := readFormat(t, tc.rf)
		var pe *providers.Error
		require.True(t, errors.As(err, &pe), "%s: %v", tc.rf, err)
		require.Equal(t, 400, pe.Status, tc.rf)
		require.Equal(t, "invalid_request_error", pe.Type, tc.rf)
		require.Equal(t, tc.param, pe.Param, tc.rf)
		require.Contains(t, pe.Message, tc.msg, tc.rf)
	}
}

// Schemas the converter does not fully enforce are accepted: the rest of
// the schema is still followed.
func TestResponseFormatAccepted(t *testing.T) {
	for _, s := range []string{
		`{"type":"string","pattern":"^a+$","format":"email"}`,
		`{"type":"integer","minimum":0,"maximum":9,"multipleOf":3}`,
		`{"$ref":"https://example.com/schema.json"}`,
		`{"not":{"type":"string"}}`,
		`{"allOf":[{"type":"object"},{"required":["a"]}]}`,
		`{"type":"array","items":[{"type":"string"}],"prefixItems":[{"type":"integer"}]}`,
		`{"type":"object","properties":{"a":true},"additionalProperties":false}`,
		`{"type":"object","properties":{"next":{"$ref":"#"}}}`,
		`{"$defs":{"node":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`,
		`{"definitions":{"a~b":{"type":"string"},"c/d":{"type":"integer"}},"anyOf":[{"$ref":"#/definitions/a~0b"},{"$ref":"#/definitions/c~1d"}]}`,
	} {
		_, err := readFormat(t, `{"type":"json_schema","json_schema":{"name":"s","schema":`+s+`}}`)
		require.NoError(t, err, s)
	}
}

func TestResolvePointer(t *testing.T) {
	doc := json.RawMessage(`{"a":{"b c":[10,{"d/e":1,"f~g":2}]},"%":3}`)
	for ptr, want := range map[string]string{
		"#": string(doc), "#/a/b c/0": "10", "#/a/b%20c/1/d~1e": "1", "#/a/b c/1/f~0g": "2", "#/%25": "3",
	} {
		got, ok := resolvePointer(doc, ptr)
		require.True(t, ok, ptr)
		require.Equal(t, want, string(got), ptr)
	}
	for _, ptr := range []string{"", "a", "#a", "#/x", "#/a/b c/2", "#/a/b c/01", "#/a/b c/-1", "#/a/b c/0/x", "#/%zz"} {
		_, ok := resolvePointer(doc, ptr)
		require.False(t, ok, ptr)
	}
}

// The grammars as text (llama.cpp parses them in the engine tests): a
// json_object is any object; a schema's values follow it, $refs and
// recursion included; with tools (tool_choice auto) the answer is the
// value or tool calls.
func TestFormatGrammar(t *testing.T) {
	f, err := readFormat(t, `{"type":"json_object"}`)
	require.NoError(t, err)
	require.Equal(t, "root ::= json-object\n"+genericRules, formatGrammar(f, nil))

	f, err = readFormat(t, `{"type":"json_schema","json_schema":{"name":"any"}}`)
	require.NoError(t, err)
	require.Equal(t, "root ::= json-value\n"+genericRules, formatGrammar(f, nil))

	f, err = readFormat(t, `{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":`+personSchema+`}}`)
	require.NoError(t, err)
	golden(t, "format_grammar.gbnf", []byte(formatGrammar(f, nil)))

	b := parseBody(t, `{"tools":`+weatherTools+`}`)
	ts, err := b.toolSet()
	require.NoError(t, err)
	g := formatGrammar(f, ts)
	require.True(t, strings.HasPrefix(g, "root ::= schema-object | call ( \"\\n\" call )*\ncall ::= "), g)
	require.Contains(t, g, `t0 ::= "\"get_weather\", \"arguments\": " t0-args-object`)
	ts.parallel = false
	require.True(t, strings.HasPrefix(formatGrammar(f, ts), "root ::= schema-object | call\n"))
}

// personSchema has a bit of everything: bounded strings, an enum, an
// integer, a nullable number, an array of enums, a recursive $ref through
// $defs, a described $ref (allOf of one), a required name that is not
// declared (any value).
const personSchema = `{"type":"object","properties":{
	"name":{"type":"string","minLength":1,"maxLength":12},
	"age":{"type":"integer","minimum":0},
	"color":{"enum":["red","green","blue"]},
	"tags":{"type":"array","items":{"type":"string","enum":["a","b"]},"maxItems":3},
	"score":{"type":["number","null"]},
	"pet":{"allOf":[{"$ref":"#/$defs/pet"}],"description":"their pet"},
	"none":{"type":"array","items":false}},
	"required":["name","age","color","tags","id"],
	"$defs":{"pet":{"type":"object","properties":{"kind":{"const":"cat"},"friend":{"anyOf":[{"$ref":"#/$defs/pet"},{"type":"null"}]}},"required":["kind"]}}}`

// A malformed response_format or schema never panics: it is refused or
// becomes a grammar.
func FuzzResponseFormat(f *testing.F) {
	f.Add(`{"type":"json_object"}`)
	f.Add(`{"type":"json_schema","json_schema":{"name":"p","schema":` + personSchema + `}}`)
	f.Add(`{"type":"json_schema","json_schema":{"schema":{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}}}`)
	f.Add(`{"type":"json_schema","json_schema":{"schema":{"items":{"$ref":"#/items"},"properties":{"a":{"$ref":"#/properties"}}}}}`)
	f.Fuzz(func(t *testing.T, rf string) {
		if !json.Valid([]byte(rf)) {
			return
		}
		b := &genBody{ResponseFormat: json.RawMessage(rf)}
		fmtv, err := b.responseFormat()
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Status != 400 || !strings.HasPrefix(pe.Param, "response_format") {
				t.Fatalf("%s: %v", rf, err)
			}
			return
		}
		if fmtv == nil {
			return
		}
		g := formatGrammar(fmtv, nil)
		if !strings.HasPrefix(g, "root ::= ") || strings.IndexByte(g, 0) >= 0 {
			t.Fatalf("grammar %q", g)
		}
	})
}

// validate checks value against a JSON schema, for the keywords the tests'
// schemas use; it returns why the value does not follow it.
func validate(doc json.RawMessage, schema json.RawMessage, v any, path string) error {
	if string(bytes.TrimSpace(schema)) == "true" {
		return nil
	}
	var s map[string]json.RawMessage
	if err := json.Unmarshal(schema, &s); err != nil {
		return fmt.Errorf("%s: bad schema %s", path, schema)
	}
	if ref, ok := s["$ref"]; ok {
		var ptr string
		_ = json.Unmarshal(ref, &ptr)
		target, ok := resolvePointer(doc, ptr)
		if !ok {
			return fmt.Errorf("%s: $ref %s", path, ptr)
		}
		return validate(doc, target, v, path)
	}
	if c, ok := s["const"]; ok {
		var want any
		_ = json.Unmarshal(c, &want)
		if !jsonEqual(want, v) {
			return fmt.Errorf("%s: %v is not the const %s", path, v, c)
		}
	}
	if e, ok := s["enum"]; ok {
		var vals []any
		_ = json.Unmarshal(e, &vals)
		found := false
		for _, w := range vals {
			found = found || jsonEqual(w, v)
		}
		if !found {
			return fmt.Errorf("%s: %v is not in the enum %s", path, v, e)
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		var subs []json.RawMessage
		if json.Unmarshal(s[k], &subs) != nil {
			continue
		}
		n := 0
		for _, sub := range subs {
			if validate(doc, sub, v, path) == nil {
				n++
			}
		}
		if (k == "allOf" && n != len(subs)) || (k == "anyOf" && n == 0) || (k == "oneOf" && n != 1) {
			return fmt.Errorf("%s: %v matches %d of %s", path, v, n, k)
		}
	}
	if t, ok := s["type"]; ok {
		var types []string
		if json.Unmarshal(t, &types) != nil {
			types = []string{""}
			_ = json.Unmarshal(t, &types[0])
		}
		match := false
		for _, ty := range types {
			match = match || hasType(v, ty)
		}
		if !match {
			return fmt.Errorf("%s: %v is not of type %s", path, v, t)
		}
	}
	bound := func(k string) (int, bool) {
		var f float64
		if json.Unmarshal(s[k], &f) != nil {
			return 0, false
		}
		return int(f), true
	}
	switch x := v.(type) {
	case string:
		n := utf8.RuneCountInString(x)
		if lo, ok := bound("minLength"); ok && n < lo {
			return fmt.Errorf("%s: %q shorter than %d", path, x, lo)
		}
		if hi, ok := bound("maxLength"); ok && n > hi {
			return fmt.Errorf("%s: %q longer than %d", path, x, hi)
		}
	case []any:
		if lo, ok := bound("minItems"); ok && len(x) < lo {
			return fmt.Errorf("%s: fewer than %d items", path, lo)
		}
		if hi, ok := bound("maxItems"); ok && len(x) > hi {
			return fmt.Errorf("%s: more than %d items", path, hi)
		}
		if items, ok := s["items"]; ok {
			if string(items) == "false" && len(x) > 0 {
				return fmt.Errorf("%s: items where none may be", path)
			}
			for i, it := range x {
				if err := validate(doc, items, it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		var props map[string]json.RawMessage
		_ = json.Unmarshal(s["properties"], &props)
		var req []string
		_ = json.Unmarshal(s["required"], &req)
		for _, r := range req {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: required %q missing", path, r)
			}
		}
		for k, val := range x {
			sub, ok := props[k]
			if !ok {
				if string(s["additionalProperties"]) == "false" {
					return fmt.Errorf("%s: property %q not allowed", path, k)
				}
				continue
			}
			if err := validate(doc, sub, val, path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasType(v any, ty string) bool {
	switch ty {
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f) && !strings.ContainsAny(string(n), ".eE")
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// decodeJSON parses one JSON value and nothing after it, numbers kept as
// written.
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("text after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("text after the JSON value")
	}
	return v, nil
}

// The test validator itself: it accepts what follows the schema and says
// why the rest does not.
func TestValidate(t *testing.T) {
	doc := json.RawMessage(personSchema)
	ok := `{"name":"Ann","age":3,"color":"red","tags":["a"],"id":null,"pet":{"kind":"cat","friend":{"kind":"cat","friend":null}},"none":[]}`
	v, err := decodeJSON(ok)
	require.NoError(t, err)
	require.NoError(t, validate(doc, doc, v, "$"))
	for bad, why := range map[string]string{
		`{"name":"Ann","age":3,"color":"red","tags":[]}`:                         `required "id" missing`,
		`{"name":"","age":3,"color":"red","tags":[],"id":1}`:                     "shorter than 1",
		`{"name":"A","age":3.5,"color":"red","tags":[],"id":1}`:                  "not of type",
		`{"name":"A","age":3,"color":"pink","tags":[],"id":1}`:                   "not in the enum",
		`{"name":"A","age":3,"color":"red","tags":["a","a","a","a"],"id":1}`:     "more than 3 items",
		`{"name":"A","age":3,"color":"red","tags":[],"id":1,"pet":{"kind":"x"}}`: "matches 0 of allOf",
		`{"name":"A","age":3,"color":"red","tags":[],"id":1,"none":[1]}`:         "items where none may be",
	} {
		v, err := decodeJSON(bad)
		require.NoError(t, err)
		require.ErrorContains(t, validate(doc, doc, v, "$"), why, bad)
	}
	_, err = decodeJSON(`{} x`)
	require.Error(t, err)
}
