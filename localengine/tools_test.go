package localengine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

// Unit tests of tool use: rendering, the call parser and the grammar text.
// None needs the llama.cpp libraries.

const weatherTools = `[
 {"type":"function","function":{"name":"get_weather","description":"Weather <now> & later","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}},
 {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}},
 {"type":"function","function":{"name":"take_screenshot"}}
]`

func parseBody(t *testing.T, body string) *genBody {
	t.Helper()
	var b genBody
	require.NoError(t, decodeBody([]byte(body), &b))
	return &b
}

func renderBody(t *testing.T, body string) ([]Message, *toolSet) {
	t.Helper()
	b := parseBody(t, body)
	ts, err := b.toolSet()
	require.NoError(t, err)
	msgs, err := b.chatMessages(ts)
	require.NoError(t, err)
	return msgs, ts
}

func dumpMessages(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("=== " + m.Role + " ===\n" + m.Content + "\n")
	}
	return b.String()
}

// The tool section, a history with tool calls (content and null content,
// arguments as a string and as an object) and runs of tool results, as
// the chat template receives them.
func TestRenderToolHistory(t *testing.T) {
	msgs, ts := renderBody(t, `{"tools":`+weatherTools+`,"messages":[
		{"role":"developer","content":"Be brief."},
		{"role":"user","content":"Weather and time in Paris?"},
		{"role":"assistant","content":"I'll check.","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"c\"}"}},
			{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{\"tz\": \"Europe/Paris <CET>\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"15 degrees"},
		{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"10:00"}]},
		{"role":"user","content":"And a screenshot?"},
		{"role":"assistant","content":null,"tool_calls":[
			{"id":"call_3","type":"function","function":{"name":"take_screenshot","arguments":{}}},
			{"id":"call_4","type":"function","function":{"name":"get_time","arguments":"not json"}}]},
		{"role":"tool","tool_call_id":"call_3","content":"done"}
	]}`)
	require.True(t, ts.active())
	require.False(t, ts.constrained())
	require.Equal(t, "system", msgs[0].Role)
	require.True(t, strings.HasPrefix(msgs[0].Content, "Be brief.\n\n# Tools\n"))
	require.True(t, strings.HasSuffix(msgs[0].Content, ts.section()))
	golden(t, "tools_render.txt", []byte(dumpMessages(msgs)))
}

// Without a system message the tool section is one; with tool_choice
// none there is no section, but the history is rendered the same way.
func TestRenderToolSection(t *testing.T) {
	msgs, ts := renderBody(t, `{"tools":`+weatherTools+`,"messages":[{"role":"user","content":"hi"}]}`)
	require.Len(t, msgs, 2)
	require.Equal(t, Message{Role: "system", Content: ts.section()}, msgs[0])
	require.Contains(t, msgs[0].Content, `{"type": "function", "function": {"name": "get_weather", "description": "Weather <now> & later", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}`)
	require.Contains(t, msgs[0].Content, "\n{\"type\": \"function\", \"function\": {\"name\": \"take_screenshot\"}}\n</tools>")
	require.Equal(t, 3, strings.Count(msgs[0].Content, `{"type": "function"`))

	msgs, ts = renderBody(t, `{"tools":`+weatherTools+`,"tool_choice":"none","messages":[
		{"role":"user","content":"hi"},
		{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
		{"role":"function","name":"get_time","content":"noon"}]}`)
	require.False(t, ts.active())
	require.Equal(t, []Message{
		{Role: "user", Content: "hi"},
		{Role: "assistant", Content: "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"},
		{Role: "user", Content: "<tool_response>\nnoon\n</tool_response>"},
	}, msgs)

	// No tools at all: nothing is added, tool_choice defaults to none.
	msgs, ts = renderBody(t, `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}`)
	require.False(t, ts.active())
	require.Equal(t, []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "hi"}}, msgs)
}

func TestToolChoice(t *testing.T) {
	for _, tc := range []struct {
		extra    string
		choice   string
		forced   string
		parallel bool
	}{
		{``, choiceAuto, "", true},
		{`,"tool_choice":"auto","parallel_tool_calls":false`, choiceAuto, "", false},
		{`,"tool_choice":"required"`, choiceRequired, "", true},
		{`,"tool_choice":{"type":"function","function":{"name":"get_time"}}`, choiceFunction, "get_time", true},
		{`,"tool_choice":null`, choiceAuto, "", true},
	} {
		b := parseBody(t, `{"messages":[{"role":"user","content":"hi"}],"tools":`+weatherTools+tc.extra+`}`)
		ts, err := b.toolSet()
		require.NoError(t, err, tc.extra)
		require.Equal(t, tc.choice, ts.choice, tc.extra)
		require.Equal(t, tc.forced, ts.forced, tc.extra)
		require.Equal(t, tc.parallel, ts.parallel, tc.extra)
	}
	for _, tc := range []struct{ body, param string }{
		{`{"tools":[{"type":"custom","custom":{"name":"x"}}]}`, "tools[0].type"},
		{`{"tools":[{"type":"function"}]}`, "tools[0].function"},
		{`{"tools":[{"type":"function","function":{"name":"a b"}}]}`, "tools[0].function.name"},
		{`{"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}]}`, "tools[1].function.name"},
		{`{"tools":[{"type":"function","function":{"name":"a","parameters":[1]}}]}`, "tools[0].function.parameters"},
		{`{"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"sometimes"}`, "tool_choice"},
		{`{"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, "tool_choice"},
		{`{"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"allowed_tools"}}`, "tool_choice"},
		{`{"tool_choice":"required"}`, "tool_choice"},
		{`{"functions":[{"name":"a"}]}`, "functions"},
		{`{"function_call":"auto"}`, "function_call"},
	} {
		_, err := parseBody(t, tc.body).toolSet()
		var pe *providers.Error
		require.ErrorAs(t, err, &pe, tc.body)
		require.Equal(t, tc.param, pe.Param, tc.body)
		require.Equal(t, 400, pe.Status)
	}
	b := parseBody(t, `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"x","input":"y"}}]}]}`)
	_, err := b.chatMessages(&toolSet{})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "messages[0].tool_calls[0].type", pe.Param)
}

func knownTools(names ...string) *toolSet {
	ts := &toolSet{index: map[string]int{}, parallel: true, choice: choiceAuto}
	for i, n := range names {
		ts.index[n] = i
		ts.tools = append(ts.tools, toolDef{Name: n})
	}
	return ts
}

// parseAll runs the parser over pieces and returns the content and the
// calls.
func parseAll(ts *toolSet, pieces ...string) (string, []parsedCall) {
	p := newCallParser(ts)
	var evs []toolEvent
	for _, s := range pieces {
		evs = append(evs, p.push(s)...)
	}
	evs = append(evs, p.flush()...)
	var content strings.Builder
	var calls []parsedCall
	for _, ev := range evs {
		if ev.Call != nil {
			calls = append(calls, *ev.Call)
		} else {
			content.WriteString(ev.Text)
		}
	}
	return content.String(), calls
}

const twoCalls = "Let me check the weather. \n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n" +
	"<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"tz\\\": \\\"Europe/Paris\\\"}\"}\n</tool_call>\n"

var twoCallsWant = []parsedCall{{Name: "get_weather", Arguments: `{"city":"Paris","unit":"c"}`}, {Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`}}

func TestCallParser(t *testing.T) {
	ts := knownTools("get_weather", "get_time", "take_screenshot")
	content, calls := parseAll(ts, twoCalls)
	require.Equal(t, "Let me check the weather.", content)
	require.Equal(t, twoCallsWant, calls)

	for _, tc := range []struct {
		name, in, content string
		calls             []parsedCall
	}{
		{"plain text", "no calls here < > </tool_call> <tool", "no calls here < > </tool_call> <tool", nil},
		{"only a call", "<tool_call>{\"name\":\"take_screenshot\"}</tool_call>", "", []parsedCall{{"take_screenshot", "{}"}}},
		{"null arguments", "<tool_call>{\"name\":\"take_screenshot\",\"arguments\":null}</tool_call>", "", []parsedCall{{"take_screenshot", "{}"}}},
		{"invalid json", "a <tool_call>{\"name\": \"get_time\", \"arguments\": {</tool_call> b", "a <tool_call>{\"name\": \"get_time\", \"arguments\": {</tool_call> b", nil},
		{"unknown tool", "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>", "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>", nil},
		{"arguments an array", "<tool_call>{\"name\":\"get_time\",\"arguments\":[1]}</tool_call>", "<tool_call>{\"name\":\"get_time\",\"arguments\":[1]}</tool_call>", nil},
		{"arguments a string of a non-object", "<tool_call>{\"name\":\"get_time\",\"arguments\":\"[1]\"}</tool_call>", "<tool_call>{\"name\":\"get_time\",\"arguments\":\"[1]\"}</tool_call>", nil},
		{"arguments a string of bad json", "<tool_call>{\"name\":\"get_time\",\"arguments\":\"{\"}</tool_call>", "<tool_call>{\"name\":\"get_time\",\"arguments\":\"{\"}</tool_call>", nil},
		{"name not a string", "<tool_call>{\"name\":5}</tool_call>", "<tool_call>{\"name\":5}</tool_call>", nil},
		{"two objects", "<tool_call>{\"name\":\"get_time\"} {}</tool_call>", "<tool_call>{\"name\":\"get_time\"} {}</tool_call>", nil},
		{"never closed", "x <tool_call>{\"name\":\"get_time\",", "x <tool_call>{\"name\":\"get_time\",", nil},
		{"reopened", "<tool_call>{\"na <tool_call>{\"name\":\"get_time\"}</tool_call>", "<tool_call>{\"na", []parsedCall{{"get_time", "{}"}}},
		{"text after", "a\n<tool_call>{\"name\":\"get_time\"}</tool_call>\n\nDone.\n", "a\n\nDone.\n", []parsedCall{{"get_time", "{}"}}},
		{"call first, text after", "<tool_call>{\"name\":\"get_time\"}</tool_call>\n\nDone.", "Done.", []parsedCall{{"get_time", "{}"}}},
		{"invalid between valid", "<tool_call>{\"name\":\"get_time\"}</tool_call>\n<tool_call>oops</tool_call>\n<tool_call>{\"name\":\"get_time\"}</tool_call>", "<tool_call>oops</tool_call>", []parsedCall{{"get_time", "{}"}, {"get_time", "{}"}}},
		{"escaped html in arguments", "<tool_call>{\"name\":\"get_time\",\"arguments\":{\"tz\":\"\\u003cx\\u003e\"}}</tool_call>", "", []parsedCall{{"get_time", `{"tz":"\u003cx\u003e"}`}}},
	} {
		content, calls := parseAll(ts, tc.in)
		require.Equal(t, tc.content, content, tc.name)
		require.Equal(t, tc.calls, calls, tc.name)
	}

	// A block is text when the request has no such tool (or no tools).
	content, calls = parseAll(knownTools(), twoCalls)
	require.Equal(t, twoCalls, content)
	require.Empty(t, calls)
}

// Split at every byte boundary (and every pair of them, and byte by
// byte), the stream gives what the whole text gives.
func TestCallParserSplits(t *testing.T) {
	ts := knownTools("get_weather", "get_time")
	check := func(pieces ...string) {
		t.Helper()
		content, calls := parseAll(ts, pieces...)
		require.Equal(t, "Let me check the weather.", content, "%q", pieces)
		require.Equal(t, twoCallsWant, calls, "%q", pieces)
	}
	for i := 0; i <= len(twoCalls); i++ {
		check(twoCalls[:i], twoCalls[i:])
		for j := i; j <= len(twoCalls); j += 3 {
			check(twoCalls[:i], twoCalls[i:j], twoCalls[j:])
		}
	}
	check(strings.Split(twoCalls, "")...)
}

// Text is passed on at once, except what may start a tag.
func TestCallParserHoldsOnlyATagPrefix(t *testing.T) {
	p := newCallParser(knownTools("get_time"))
	require.Equal(t, []toolEvent{{Text: "Hello"}}, p.push("Hello <tool"))
	require.Equal(t, []toolEvent{{Text: " <toolkit> is"}}, p.push("kit> is "))
	require.Empty(t, p.push("<tool_call>{\"name\":"))
	require.Empty(t, p.push("\"get_time\"}</tool_"))
	require.Equal(t, []toolEvent{{Call: &parsedCall{Name: "get_time", Arguments: "{}"}}}, p.push("call>"))
	require.Empty(t, p.push("\n"))
	require.Empty(t, p.flush())
}

// parallel_tool_calls false: the first call is the answer.
func TestCallParserFirstCallOnly(t *testing.T) {
	ts := knownTools("get_weather", "get_time")
	ts.parallel = false
	p := newCallParser(ts)
	evs := p.push(twoCalls)
	require.True(t, p.done)
	require.Equal(t, []toolEvent{{Text: "Let me check the weather."}, {Call: &twoCallsWant[0]}}, evs)
	require.Empty(t, p.push("more"))
	require.Empty(t, p.flush())
}

// The stream parser never panics, gives the same answer however the text
// is split, and never loses text: without a valid call the content is
// the input.
func FuzzCallParser(f *testing.F) {
	f.Add(twoCalls, []byte{3, 50, 7})
	f.Add("a <tool_call>{\"name\":\"get_time\"}</tool_call> b <tool_call>x", []byte{1, 2, 3})
	f.Add("<tool_call><tool_call></tool_call></tool_call>", []byte{11})
	f.Add("  <tool_ca <tool_call>\n{}\n</tool_call>  ", []byte{0, 1})
	ts := knownTools("get_weather", "get_time")
	f.Fuzz(func(t *testing.T, in string, cuts []byte) {
		content, calls := parseAll(ts, in)
		var pieces []string
		rest := in
		for _, c := range cuts {
			n := min(int(c), len(rest))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		sc, scalls := parseAll(ts, pieces...)
		if sc != content || len(scalls) != len(calls) {
			t.Fatalf("split %q: content %q calls %v, whole: %q %v", pieces, sc, scalls, content, calls)
		}
		for i := range calls {
			if calls[i] != scalls[i] {
				t.Fatalf("split %q: call %d %v, whole %v", pieces, i, scalls[i], calls[i])
			}
		}
		if len(calls) == 0 && content != in {
			t.Fatalf("lost text: %q became %q", in, content)
		}
		for _, c := range calls {
			var args map[string]any
			if err := json.Unmarshal([]byte(c.Arguments), &args); err != nil || !ts.known(c.Name) {
				t.Fatalf("bad call %v", c)
			}
		}
	})
}

// The grammar of "required" and of a named function, as text (llama.cpp
// parses it in the engine tests).
func TestToolGrammar(t *testing.T) {
	b := parseBody(t, `{"tools":[
		{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{
			"city":{"type":"string","maxLength":20},"unit":{"enum":["c","f"]},"days":{"type":"integer"},
			"tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":3},
			"opts":{"type":"object","properties":{"a":{"type":["boolean","null"]},"b":{"const":"x\"y"}},"additionalProperties":false},
			"any":{"anyOf":[{"type":"number"},{"$ref":"#/x"}]}},"required":["city","days"]}}},
		{"type":"function","function":{"name":"take_screenshot"}},
		{"type":"function","function":{"name":"free","parameters":{"type":"object","additionalProperties":{"type":"string"}}}}
	],"tool_choice":"required","parallel_tool_calls":false}`)
	ts, err := b.toolSet()
	require.NoError(t, err)
	require.True(t, ts.constrained())
	golden(t, "tools_grammar.gbnf", []byte(toolGrammar(ts)))

	ts.choice, ts.forced, ts.parallel = choiceFunction, "take_screenshot", true
	g := toolGrammar(ts)
	require.Contains(t, g, `root ::= call ( "\n" call )*`)
	require.Contains(t, g, `call ::= "<tool_call>\n{\"name\": " ( t1 ) "}\n</tool_call>"`)
	require.Contains(t, g, `t1 ::= "\"take_screenshot\", \"arguments\": " "{" ws "}"`)
	require.NotContains(t, g, "get_weather")
}

// Any schema gives a grammar without panicking (llama.cpp checks the
// grammars of real schemas in the engine tests).
func FuzzToolGrammar(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"string","maxLength":3},"b":{"enum":[1,"x",null]}},"required":["b"]}`)
	f.Add(`{"anyOf":[{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":1},{"const":{"k":[1]}}]}`)
	f.Add(`{"type":["object","null"],"additionalProperties":{"type":"number"},"nullable":true}`)
	f.Fuzz(func(t *testing.T, params string) {
		b := parseBody(t, `{"tools":[]}`)
		b.Tools = []json.RawMessage{json.RawMessage(`{"type":"function","function":{"name":"f","parameters":` + params + `}}`)}
		b.ToolChoice = json.RawMessage(`"required"`)
		ts, err := b.toolSet()
		if err != nil {
			return
		}
		g := toolGrammar(ts)
		if !strings.HasPrefix(g, "root ::= call") || strings.IndexByte(g, 0) >= 0 {
			t.Fatalf("grammar %q", g)
		}
	})
}
