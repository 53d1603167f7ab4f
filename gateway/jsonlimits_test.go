package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/providers"
)

// jsonCase is a body and what checkJSON finds in it under lim (the zero
// value: the defaults).
type jsonCase struct {
	name    string
	body    string
	lim     config.JSONLimits
	problem jsonProblem
	offset  int    // checked when > 0
	key     string // the repeated key
}

var jsonCases = []jsonCase{
	// Well-formed.
	{name: "object", body: `{"model":"m","messages":[{"role":"user","content":"hi"}]}`},
	{name: "scalars", body: `[true,false,null,0,-0,1.5,-2e10,3E+2,4e-1,"",{}]`},
	{name: "whitespace around", body: " \t\r\n{ \"a\" : [ 1 , 2 ] } \n"},
	{name: "top-level scalar", body: `"x"`},
	{name: "escapes", body: `["\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"]`},
	{name: "lone surrogate escape is accepted like encoding/json", body: `["\ud800", "\udc00x"]`},
	{name: "invalid UTF-8 is accepted like encoding/json", body: "[\"\xff\xfe\", \"\xed\xa0\x80\"]"},
	{name: "same key in different objects", body: `{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":{"a":{"a":{}}}}`},
	{name: "keys differing in case", body: `{"a":1,"A":2}`},
	{name: "escaped key that differs", body: `{"a":1,"\u0062":2,"a\\":3,"\\a":4}`},

	// Syntax.
	{name: "whitespace only", body: " ", problem: jsonSyntax},
	{name: "unclosed object", body: `{"a":1`, problem: jsonSyntax},
	{name: "unclosed string", body: `{"a`, problem: jsonSyntax},
	{name: "key without value", body: `{"a"}`, problem: jsonSyntax},
	{name: "missing value", body: `{"a":}`, problem: jsonSyntax},
	{name: "trailing comma in array", body: `[1,]`, problem: jsonSyntax},
	{name: "trailing comma in object", body: `{"a":1,}`, problem: jsonSyntax},
	{name: "leading comma", body: `[,1]`, problem: jsonSyntax},
	{name: "missing comma", body: `[1 2]`, problem: jsonSyntax},
	{name: "missing colon", body: `{"a" 1}`, problem: jsonSyntax},
	{name: "number key", body: `{1:2}`, problem: jsonSyntax},
	{name: "mismatched close", body: `[}`, problem: jsonSyntax},
	{name: "mismatched close object", body: `{"a":1]`, problem: jsonSyntax},
	{name: "leading zero", body: `01`, problem: jsonSyntax},
	{name: "bare fraction", body: `.5`, problem: jsonSyntax},
	{name: "empty fraction", body: `1.`, problem: jsonSyntax},
	{name: "empty exponent", body: `1e`, problem: jsonSyntax},
	{name: "sign only", body: `-`, problem: jsonSyntax},
	{name: "plus sign", body: `+1`, problem: jsonSyntax},
	{name: "hex number", body: `0x10`, problem: jsonSyntax},
	{name: "NaN", body: `NaN`, problem: jsonSyntax},
	{name: "truncated literal", body: `tru`, problem: jsonSyntax},
	{name: "capitalised literal", body: `True`, problem: jsonSyntax},
	{name: "single quotes", body: `{'a':1}`, problem: jsonSyntax},
	{name: "bad escape", body: `["\x"]`, problem: jsonSyntax},
	{name: "short unicode escape", body: `["\u12"]`, problem: jsonSyntax},
	{name: "non-hex unicode escape", body: `["\u12g4"]`, problem: jsonSyntax},
	{name: "raw tab in string", body: "[\"a\tb\"]", problem: jsonSyntax},
	{name: "raw newline in key", body: "{\"a\nb\":1}", problem: jsonSyntax},
	{name: "NUL in string", body: "[\"a\x00\"]", problem: jsonSyntax},
	{name: "trailing garbage", body: `{"a":1} x`, problem: jsonSyntax},
	{name: "trailing brace", body: `{"a":1}}`, problem: jsonSyntax},
	{name: "two values", body: `{} {}`, problem: jsonSyntax},
	{name: "byte order mark", body: "\xef\xbb\xbf{}", problem: jsonSyntax},
	{name: "vertical tab is not whitespace", body: "\v{}", problem: jsonSyntax},
	{name: "non-breaking space is not whitespace", body: "{}\u00a0", problem: jsonSyntax},
	{name: "comment", body: `{/* no */}`, problem: jsonSyntax},

	// Depth.
	{name: "arrays at max depth", body: `[[[]]]`, lim: config.JSONLimits{MaxDepth: 3}},
	{name: "arrays past max depth", body: `[[[[]]]]`, lim: config.JSONLimits{MaxDepth: 3}, problem: jsonTooDeep, offset: 3},
	{name: "objects at max depth", body: `{"a":{"b":{}}}`, lim: config.JSONLimits{MaxDepth: 3}},
	{name: "objects past max depth", body: `{"a":{"b":{"c":{}}}}`, lim: config.JSONLimits{MaxDepth: 3}, problem: jsonTooDeep, offset: 15},
	{name: "depth counts open containers only", body: `[[[]],[[]],[[]]]`, lim: config.JSONLimits{MaxDepth: 3}},
	{name: "default depth 64 allowed", body: strings.Repeat("[", 64) + strings.Repeat("]", 64)},
	{name: "default depth 65 refused", body: strings.Repeat("[", 65) + strings.Repeat("]", 65), problem: jsonTooDeep, offset: 64},

	// Strings, measured between the quotes as sent.
	{name: "string at max", body: `["abcde"]`, lim: config.JSONLimits{MaxStringBytes: 5}},
	{name: "string past max", body: `["abcdef"]`, lim: config.JSONLimits{MaxStringBytes: 5}, problem: jsonStringTooLong, offset: 1},
	{name: "key past max", body: `{"abcdef":1}`, lim: config.JSONLimits{MaxStringBytes: 5}, problem: jsonStringTooLong, offset: 1},
	{name: "escape counts as sent", body: `["\u0041bc"]`, lim: config.JSONLimits{MaxStringBytes: 7}, problem: jsonStringTooLong, offset: 1},
	{name: "escape at max", body: `["\u0041bc"]`, lim: config.JSONLimits{MaxStringBytes: 8}},
	{name: "unterminated long string is too long first", body: `["abcdefgh`, lim: config.JSONLimits{MaxStringBytes: 5}, problem: jsonStringTooLong},
	{name: "unterminated short string is a syntax error", body: `["abc`, lim: config.JSONLimits{MaxStringBytes: 5}, problem: jsonSyntax},

	// Items.
	{name: "array at max items", body: `[1,2,3]`, lim: config.JSONLimits{MaxArrayItems: 3}},
	{name: "array past max items", body: `[1,2,3,4]`, lim: config.JSONLimits{MaxArrayItems: 3}, problem: jsonTooManyItems, offset: 7},
	{name: "object at max members", body: `{"a":1,"b":2,"c":3}`, lim: config.JSONLimits{MaxArrayItems: 3}},
	{name: "object past max members", body: `{"a":1,"b":2,"c":3,"d":4}`, lim: config.JSONLimits{MaxArrayItems: 3}, problem: jsonTooManyItems, offset: 19},
	{name: "one item allowed", body: `[[1],{"a":[]}]`, lim: config.JSONLimits{MaxArrayItems: 2}},
	{name: "items count per array", body: `[[1,2],[3,4]]`, lim: config.JSONLimits{MaxArrayItems: 2}},

	// Repeated keys, compared by decoded value.
	{name: "duplicate", body: `{"a":1,"a":2}`, problem: jsonDuplicateKey, key: "a", offset: 7},
	{name: "duplicate at depth", body: `{"x":[{"y":{"k":1,"j":{},"k":2}}]}`, problem: jsonDuplicateKey, key: "k"},
	{name: "duplicate after a nested object closed", body: `{"a":{"b":1,"c":2},"d":{"b":3},"a":4}`, problem: jsonDuplicateKey, key: "a"},
	{name: "escaped duplicate", body: `{"a":1,"\u0061":2}`, problem: jsonDuplicateKey, key: "a"},
	{name: "escaped duplicate, escape first", body: `{"\u0063ontent":1,"content":2}`, problem: jsonDuplicateKey, key: "content"},
	{name: "escaped non-ASCII duplicate", body: `{"é":1,"\u00e9":2}`, problem: jsonDuplicateKey, key: "é"},
	{name: "surrogate pair duplicate", body: `{"😀":1,"\ud83d\ude00":2}`, problem: jsonDuplicateKey, key: "😀"},
	{name: "solidus escape duplicate", body: `{"a/b":1,"a\/b":2}`, problem: jsonDuplicateKey, key: "a/b"},
	{name: "lone surrogates decode to U+FFFD like encoding/json", body: `{"\ud800":1,"\ufffd":2}`, problem: jsonDuplicateKey, key: "\ufffd"},
	{name: "invalid UTF-8 decodes to U+FFFD like encoding/json", body: "{\"\xff\":1,\"\xfe\":2}", problem: jsonDuplicateKey, key: "\ufffd"},
	{name: "invalid UTF-8 past the first eight bytes of a key", body: "{\"aaaaaaaaaa\xff\":1,\"aaaaaaaaaa\xfe\":2}", problem: jsonDuplicateKey, key: "aaaaaaaaaa\ufffd"},
	{name: "valid UTF-8 past the first eight bytes of a key is kept", body: `{"aaaaaaaaaaé":1,"aaaaaaaaaae":2}`},
	{name: "duplicate among many keys", body: manyKeys(5000, "k42"), problem: jsonDuplicateKey, key: "k42"},
	{name: "many keys, no duplicate", body: manyKeys(5000, "")},
}

// manyKeys is an object with n distinct keys, then dup again when set.
func manyKeys(n int, dup string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	if dup != "" {
		fmt.Fprintf(&b, `%q:0,`, dup)
	}
	b.WriteString(`"end":0}`)
	return b.String()
}

func TestCheckJSON(t *testing.T) {
	for _, tc := range jsonCases {
		t.Run(tc.name, func(t *testing.T) {
			v := checkJSON([]byte(tc.body), resolveJSONLimits(tc.lim))
			assert.Equal(t, tc.problem, v.problem, "offset %d", v.offset)
			assert.Equal(t, tc.key, v.key)
			if tc.offset > 0 {
				assert.Equal(t, tc.offset, v.offset)
			}
			// Syntax is judged as encoding/json judges it, and a repeated
			// key is one encoding/json decodes twice.
			switch tc.problem {
			case jsonOK, jsonDuplicateKey:
				assert.True(t, json.Valid([]byte(tc.body)), "encoding/json accepts it")
			case jsonSyntax:
				assert.False(t, json.Valid([]byte(tc.body)), "encoding/json refuses it")
			}
			if tc.problem == jsonDuplicateKey {
				dup, key, ok := referenceDuplicate([]byte(tc.body))
				require.True(t, ok)
				assert.True(t, dup)
				assert.Equal(t, tc.key, key)
			}
		})
	}
}

// referenceDuplicate finds the first key repeated in one object as
// encoding/json decodes the body; ok is false when it cannot decode it.
func referenceDuplicate(b []byte) (dup bool, key string, ok bool) {
	st, err := referenceScan(b)
	if err != nil {
		return false, "", false
	}
	return st.dup, st.dupKey, true
}

// referenceStats is the shape of a body as encoding/json reads it.
type referenceStats struct {
	depth, items int
	dup          bool
	dupKey       string
}

func referenceScan(b []byte) (referenceStats, error) {
	type frame struct {
		object, wantKey bool
		items           int
		keys            map[string]bool
	}
	var st referenceStats
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	value := func() { // a value (scalar or container) began
		if n := len(stack); n > 0 {
			f := stack[n-1]
			if f.object {
				f.wantKey = true
			} else {
				f.items++
				st.items = max(st.items, f.items)
			}
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if k, isKey := tok.(string); isKey {
				f := stack[n-1]
				f.wantKey = false
				f.items++
				st.items = max(st.items, f.items)
				if f.keys[k] && !st.dup {
					st.dup, st.dupKey = true, k
				}
				f.keys[k] = true
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			value()
			if f := len(stack); f > 0 && stack[f-1].object {
				stack[f-1].wantKey = true
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), wantKey: tok == json.Delim('{'), keys: map[string]bool{}})
			st.depth = max(st.depth, len(stack))
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			value()
		}
	}
}

// Strings are scanned eight bytes at a time: a quote, backslash or
// control character at any position of any word is found.
func TestCheckJSONStringsAgreeWithEncodingJSON(t *testing.T) {
	lim := resolveJSONLimits(config.JSONLimits{})
	for _, special := range []string{"\x01", "\x1f", "\t", `\n`, `\u00e9`, `\`, `\"`, "\xff", "é", " ", "\x7f"} {
		for n := 0; n < 20; n++ {
			for pos := 0; pos <= n; pos++ {
				s := strings.Repeat("a", pos) + special + strings.Repeat("b", n-pos)
				for _, body := range []string{`["` + s + `"]`, `{"` + s + `":1}`, `"` + s} {
					v := checkJSON([]byte(body), lim)
					require.Equal(t, json.Valid([]byte(body)), v.problem == jsonOK, "%q: %v at %d", body, v.problem, v.offset)
				}
			}
		}
	}
}

// A body nested a million levels deep is refused after reading
// max_depth+1 bytes: the scan stops at the first violation.
func TestCheckJSONStopsAtDepthLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		open  string
		limit int
	}{
		{"arrays, default limit", "[", 0},
		{"objects, default limit", `{"a":`, 0},
		{"arrays, limit 5", "[", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(strings.Repeat(tc.open, 1_000_000))
			lim := resolveJSONLimits(config.JSONLimits{MaxDepth: tc.limit})
			v := checkJSON(body, lim)
			require.Equal(t, jsonTooDeep, v.problem)
			assert.Equal(t, lim.maxDepth*len(tc.open), v.offset, "stopped at the first container past the limit")
			_, err := parseCallWith(providers.OpChat, body, config.JSONLimits{MaxDepth: tc.limit})
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "json_too_deep", ae.Code)
		})
	}
}

// The scan allocates for the open containers and the keys of the open
// objects, not for the body: once its state is pooled, neither a typical
// request nor a wide one allocates, and one object of 50,000 members costs
// its key set's doublings (the pool keeps no set that large).
func TestCheckJSONDoesNotAllocatePerBody(t *testing.T) {
	lim := resolveJSONLimits(config.JSONLimits{})
	var wide strings.Builder
	wide.WriteByte('[')
	for i := range 20_000 {
		if i > 0 {
			wide.WriteByte(',')
		}
		fmt.Fprintf(&wide, `{"role":"user","content":"message %d","n":[1,2,{"x":null}]}`, i)
	}
	wide.WriteByte(']')
	for _, tc := range []struct {
		name      string
		body      []byte
		maxAllocs float64
	}{
		{"typical chat", typicalChatBody, 0},
		{"wide", []byte(wide.String()), 0},
		{"escaped keys", []byte(`{"\u0061":1,"\u0062":{"\u0063":2,"d\n":3}}`), 0},
		{"many keys", []byte(manyKeys(50_000, "")), 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A checker held here, as the pool holds one (which the race
			// detector makes drop some at random).
			var c jsonChecker
			scan := func() jsonViolation {
				v := c.check(tc.body, lim)
				c.release()
				return v
			}
			require.Equal(t, jsonOK, scan().problem)
			allocs := testing.AllocsPerRun(20, func() { scan() })
			assert.LessOrEqual(t, allocs, tc.maxAllocs)
		})
	}
}

func TestResolveJSONLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   config.JSONLimits
		want jsonLimits
	}{
		{"zero takes the defaults, strings unbounded", config.JSONLimits{}, jsonLimits{maxDepth: 64, maxStringBytes: 0, maxItems: 100_000}},
		{"set values kept", config.JSONLimits{MaxDepth: 8, MaxStringBytes: 1024, MaxArrayItems: 10}, jsonLimits{maxDepth: 8, maxStringBytes: 1024, maxItems: 10}},
		{"negative values take the defaults", config.JSONLimits{MaxDepth: -1, MaxStringBytes: -1, MaxArrayItems: -1}, jsonLimits{maxDepth: 64, maxStringBytes: 0, maxItems: 100_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, resolveJSONLimits(tc.in))
		})
	}
}

func TestJSONViolationErrors(t *testing.T) {
	lim := jsonLimits{maxDepth: 64, maxStringBytes: 1 << 20, maxItems: 100_000}
	for _, tc := range []struct {
		v          jsonViolation
		code, msg  string
		mustNotSay string
	}{
		{jsonViolation{problem: jsonSyntax}, "invalid_json", "We could not parse the JSON body of your request.", ""},
		{jsonViolation{problem: jsonTooDeep}, "json_too_deep", "The request body nests arrays and objects deeper than 64 levels (server.json.max_depth).", ""},
		{jsonViolation{problem: jsonStringTooLong}, "json_string_too_long", "The request body holds a string or key longer than 1048576 bytes (server.json.max_string_bytes).", ""},
		{jsonViolation{problem: jsonTooManyItems}, "json_array_too_long", "The request body holds an array or object with more than 100000 items (server.json.max_array_items).", ""},
		{jsonViolation{problem: jsonDuplicateKey, key: "content"}, "invalid_json", `The request body repeats the key "content" in one object.`, ""},
		{jsonViolation{problem: jsonDuplicateKey, key: "jane@bank.de"}, "invalid_json", "The request body repeats a key in one object.", "jane"},
	} {
		t.Run(tc.code+" "+tc.msg, func(t *testing.T) {
			e := tc.v.apiError(lim)
			require.NotNil(t, e)
			assert.Equal(t, 400, e.Status)
			assert.Equal(t, "invalid_request_error", e.Type)
			assert.Equal(t, tc.code, e.Code)
			assert.Equal(t, tc.msg, e.Message)
			assert.Empty(t, e.Param)
			if tc.mustNotSay != "" {
				assert.NotContains(t, e.Message, tc.mustNotSay)
			}
		})
	}
	assert.Nil(t, jsonViolation{}.apiError(lim))
}

// typicalChatBody is a chat request of about 2 KB: a system prompt, a
// few turns, a tool call and its result, and a tool definition.
var typicalChatBody = []byte(`{"model":"chat","temperature":0.2,"max_tokens":512,"stream":false,"user":"user-1234",` +
	`"messages":[` +
	`{"role":"system","content":"You are a careful assistant for an insurance company. Answer briefly, cite the policy section you rely on, and never make up policy numbers. If the customer asks about a claim, look it up with the tool before answering."},` +
	`{"role":"user","content":"Hello, I had a water leak in my kitchen last week and I filed a claim. Can you tell me where it stands and whether the replacement of the floor is covered?"},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_8f2a","type":"function","function":{"name":"get_claim","arguments":"{\"claim_id\":\"CLM-2024-00871\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_8f2a","content":"{\"claim_id\":\"CLM-2024-00871\",\"status\":\"under review\",\"adjuster\":\"assigned\",\"opened\":\"2024-05-02\",\"category\":\"water damage\",\"estimate_eur\":4200}"},` +
	`{"role":"assistant","content":"Your claim CLM-2024-00871 is under review and an adjuster has been assigned. Water damage from a sudden leak is covered under section 4.2 of your policy, including floor replacement when the floor cannot be dried and repaired."},` +
	`{"role":"user","content":[{"type":"text","text":"Thanks. The adjuster asked for photos; here is one of the floor. Does that help, and how long does the review usually take?"},{"type":"image_url","image_url":{"url":"https://example.com/photos/floor-1.jpg","detail":"low"}}]}` +
	`],` +
	`"tools":[{"type":"function","function":{"name":"get_claim","description":"Look up an insurance claim by its id and return its status, dates, category and estimate.","parameters":{"type":"object","properties":{"claim_id":{"type":"string","description":"The claim id, such as CLM-2024-00871."}},"required":["claim_id"]}}}],` +
	`"tool_choice":"auto"}`)

func BenchmarkCheckJSON(b *testing.B) {
	lim := resolveJSONLimits(config.JSONLimits{})
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"deep-1e6", bytes.Repeat([]byte("["), 1_000_000)},
		{"chat-2KB", typicalChatBody},
		{"string-1MB", []byte(`{"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 1<<20/12) + `"}]}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				checkJSON(bc.body, lim)
			}
		})
	}
}

func BenchmarkParseCall(b *testing.B) {
	for _, bc := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"deep-1e6", bytes.Repeat([]byte("["), 1_000_000), false},
		{"chat-2KB", typicalChatBody, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseCallWith(providers.OpChat, bc.body, config.JSONLimits{}); (err == nil) != bc.ok {
					b.Fatal(err)
				}
			}
		})
	}
}
