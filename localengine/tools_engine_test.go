package localengine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/localengine/gguf"
	"github.com/switchyard/switchyard/providers"
)

// Tool use with a generated model and the real libraries (skipped
// without them). The model's text is noise: these tests check the shape
// of the answers, the usage and, for tool_choice required, that the
// grammar makes every answer a valid call.

var longOnce sync.Once

// longTinyPath is the tiny model with a context long enough for 20 tools
// spelled out in its small vocabulary.
func longTinyPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(testModelDir, "tiny-long.gguf")
	longOnce.Do(func() {
		shape := gguf.Tiny
		shape.Name = "switchyard-tiny-long"
		shape.Context = 16384
		require.NoError(t, gguf.GenerateFile(p, shape, 42))
	})
	return p
}

func toolsProvider(t *testing.T) (*Provider, *Model) {
	t.Helper()
	rt := runtimeOrSkip(t)
	m, err := rt.Load(Spec{Name: "tiny", Path: longTinyPath(t), Context: 16384, Slots: 2})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	p := NewProvider(&Pool{Runtime: rt, models: map[string]*Model{"tiny": m}})
	p.now = func() time.Time { return time.Unix(1795000000, 0) }
	return p, m
}

// twentyTools are 20 function tools of four kinds, every argument bounded
// so that even a random model ends its calls.
func twentyTools() (string, map[string]json.RawMessage) {
	kinds := []string{
		`{"type":"object","properties":{"q":{"type":"string","maxLength":8},"n":{"type":"integer"}},"required":["q"],"additionalProperties":false}`,
		`{"type":"object","properties":{"mode":{"enum":["fast","slow"]},"flag":{"type":"boolean"}},"required":["mode","flag"]}`,
		``,
		`{"type":"object","properties":{"ids":{"type":"array","items":{"type":"integer"},"maxItems":3},"note":{"type":["string","null"],"maxLength":5}}}`,
	}
	schemas := map[string]json.RawMessage{}
	var tools []string
	for i := range 20 {
		name := fmt.Sprintf("tool_%02d", i)
		fn := fmt.Sprintf(`{"name":%q,"description":"Tool number %d: does thing %d."`, name, i, i)
		if k := kinds[i%4]; k != "" {
			fn += `,"parameters":` + k
			schemas[name] = json.RawMessage(k)
		} else {
			schemas[name] = nil
		}
		tools = append(tools, `{"type":"function","function":`+fn+`}}`)
	}
	return "[" + strings.Join(tools, ",") + "]", schemas
}

const toolHistory = `[
	{"role":"system","content":"You are a helpful agent."},
	{"role":"user","content":"Do thing 3 with q=abc."},
	{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"tool_00","arguments":"{\"q\":\"abc\"}"}}]},
	{"role":"tool","tool_call_id":"call_a","content":"result: 42"},
	{"role":"user","content":"And now thing 1."}]`

// streamed is what a stream of chat chunks adds up to.
type streamed struct {
	content string
	calls   []toolCall
	finish  string
	usage   *usageBody
	role    bool
}

func readStream(t *testing.T, s providers.Stream) streamed {
	t.Helper()
	defer s.Close()
	var out streamed
	var content strings.Builder
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		var c chatCompletion
		require.NoError(t, json.Unmarshal(ev.Data, &c), "%s", ev.Data)
		require.Equal(t, "chat.completion.chunk", c.Object)
		if ev.UsageOnly {
			require.Empty(t, c.Choices)
			out.usage = c.Usage
			continue
		}
		require.Len(t, c.Choices, 1)
		require.Empty(t, out.finish, "nothing after the finish reason but usage")
		d := c.Choices[0].Delta
		require.NotNil(t, d)
		if d.Role != "" {
			require.False(t, out.role)
			out.role = true
		}
		if d.Content != nil {
			content.WriteString(*d.Content)
		}
		for _, tc := range d.ToolCalls {
			if tc.ID != "" {
				// The first delta of a call: id, type, name, no arguments.
				require.Equal(t, len(out.calls), tc.Index)
				require.True(t, strings.HasPrefix(tc.ID, "call_"), tc.ID)
				require.Equal(t, "function", tc.Type)
				require.NotEmpty(t, tc.Function.Name)
				require.Empty(t, tc.Function.Arguments)
				out.calls = append(out.calls, toolCall{ID: tc.ID, Type: tc.Type, Function: functionCall{Name: tc.Function.Name}})
				continue
			}
			require.Equal(t, len(out.calls)-1, tc.Index, "arguments continue the last call")
			require.Empty(t, tc.Function.Name)
			out.calls[tc.Index].Function.Arguments += tc.Function.Arguments
		}
		if f := c.Choices[0].FinishReason; f != nil {
			out.finish = *f
		}
	}
	require.True(t, out.role)
	require.NotNil(t, out.usage)
	out.content = content.String()
	return out
}

func chatReq(body string, stream bool) *providers.Request {
	return &providers.Request{Operation: providers.OpChat, Model: "tiny", Body: []byte(body), Stream: stream}
}

// A request with 20 tools and a tool result turn, streamed: 200-shaped
// chunks, exact usage, and a prompt longer by the tool section.
func TestToolsStreamWithTwentyTools(t *testing.T) {
	p, m := toolsProvider(t)
	tools, _ := twentyTools()
	body := func(choice string) string {
		return `{"messages":` + toolHistory + `,"tools":` + tools + `,"tool_choice":"` + choice + `","max_tokens":24,"temperature":0,"stream":true}`
	}
	s, err := p.Stream(context.Background(), chatReq(body("auto"), true))
	require.NoError(t, err)
	got := readStream(t, s)
	require.Contains(t, []string{"stop", "length", "tool_calls"}, got.finish)
	require.Equal(t, got.finish == "tool_calls", len(got.calls) > 0)
	require.True(t, got.content != "" || len(got.calls) > 0)

	// The prompt is the rendered messages through the chat template.
	b := parseBody(t, body("auto"))
	ts, err := b.toolSet()
	require.NoError(t, err)
	msgs, err := b.chatMessages(ts)
	require.NoError(t, err)
	prompt, err := m.ChatPrompt(msgs)
	require.NoError(t, err)
	require.Contains(t, prompt, "<tool_response>\nresult: 42\n</tool_response>")
	require.Contains(t, prompt, "<tool_call>\n{\"name\": \"tool_00\", \"arguments\": {\"q\": \"abc\"}}\n</tool_call>")
	require.Equal(t, len(m.Tokenize(prompt, true)), got.usage.PromptTokens)
	require.Equal(t, got.usage.PromptTokens+got.usage.CompletionTokens, got.usage.TotalTokens)
	require.LessOrEqual(t, got.usage.CompletionTokens, 24)
	require.Positive(t, got.usage.CompletionTokens)

	// Without the tools offered (tool_choice none) the prompt is shorter
	// by the section's tokens (give or take the tokens at the seam).
	s, err = p.Stream(context.Background(), chatReq(body("none"), true))
	require.NoError(t, err)
	plain := readStream(t, s)
	require.Empty(t, plain.calls)
	section := len(m.Tokenize("\n\n"+ts.section(), false))
	require.Greater(t, section, 1000, "20 tools")
	require.InDelta(t, section, got.usage.PromptTokens-plain.usage.PromptTokens, 3)

	// The same request whole gives the same answer.
	resp, err := p.Do(context.Background(), chatReq(strings.Replace(body("auto"), `"stream":true`, `"stream":false`, 1), false))
	require.NoError(t, err)
	var whole chatCompletion
	require.NoError(t, json.Unmarshal(resp.Body, &whole))
	require.Equal(t, got.usage.PromptTokens, whole.Usage.PromptTokens)
	if len(got.calls) == 0 {
		require.Equal(t, got.content, *whole.Choices[0].Message.Content)
	}
}

// checkCall checks a call against the tools: a known name, and arguments
// that are a JSON object following its schema (as far as the test tools
// go: properties, required, enum, maxLength, types).
func checkCall(t *testing.T, schemas map[string]json.RawMessage, c toolCall) {
	t.Helper()
	require.True(t, strings.HasPrefix(c.ID, "call_"))
	require.Equal(t, "function", c.Type)
	schema, ok := schemas[c.Function.Name]
	require.True(t, ok, "unknown tool %q", c.Function.Name)
	var args map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.Function.Arguments), &args), c.Function.Arguments)
	if schema == nil {
		require.Empty(t, args)
		return
	}
	var s struct {
		Properties map[string]struct {
			Type      any      `json:"type"`
			Enum      []string `json:"enum"`
			MaxLength int      `json:"maxLength"`
			MaxItems  int      `json:"maxItems"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	require.NoError(t, json.Unmarshal(schema, &s))
	for _, r := range s.Required {
		require.Contains(t, args, r, c.Function.Arguments)
	}
	for k, v := range args {
		p, ok := s.Properties[k]
		require.True(t, ok, "undeclared property %q in %s", k, c.Function.Arguments)
		switch {
		case p.Enum != nil:
			require.Contains(t, p.Enum, v)
		case p.Type == "string":
			require.IsType(t, "", v)
			require.LessOrEqual(t, len([]rune(v.(string))), p.MaxLength)
		case p.Type == "integer":
			f, ok := v.(float64)
			require.True(t, ok, "%v", v)
			require.Equal(t, float64(int64(f)), f)
		case p.Type == "boolean":
			require.IsType(t, true, v)
		case p.Type == "array":
			require.LessOrEqual(t, len(v.([]any)), p.MaxItems)
		default: // ["string","null"]
			if v != nil {
				require.LessOrEqual(t, len([]rune(v.(string))), p.MaxLength)
			}
		}
	}
}

// tool_choice required: the grammar makes every answer of a random model
// a call of an existing tool, with arguments following its schema.
func TestToolsRequiredAlwaysCalls(t *testing.T) {
	p, _ := toolsProvider(t)
	tools, schemas := twentyTools()
	names := map[string]int{}
	for seed := range 12 {
		temp := `"temperature":1.5,"seed":` + fmt.Sprint(seed)
		if seed == 0 {
			temp = `"temperature":0`
		}
		body := `{"messages":` + toolHistory + `,"tools":` + tools + `,"tool_choice":"required","parallel_tool_calls":false,"max_tokens":1000,` + temp + `}`
		resp, err := p.Do(context.Background(), chatReq(body, false))
		require.NoError(t, err)
		var out chatCompletion
		require.NoError(t, json.Unmarshal(resp.Body, &out), "%s", resp.Body)
		msg := out.Choices[0].Message
		require.Equal(t, "tool_calls", *out.Choices[0].FinishReason, "%s", resp.Body)
		require.Nil(t, msg.Content, "%s", resp.Body)
		require.Len(t, msg.ToolCalls, 1, "%s", resp.Body)
		checkCall(t, schemas, msg.ToolCalls[0])
		names[msg.ToolCalls[0].Function.Name]++
		require.Less(t, out.Usage.CompletionTokens, 1000)
	}
	t.Logf("tools called: %v", names)

	// A named function, streamed, several calls allowed.
	for seed := range 4 {
		body := `{"messages":` + toolHistory + `,"tools":` + tools + `,"tool_choice":{"type":"function","function":{"name":"tool_05"}},"max_tokens":300,"temperature":1,"seed":` + fmt.Sprint(seed) + `,"stream":true}`
		s, err := p.Stream(context.Background(), chatReq(body, true))
		require.NoError(t, err)
		got := readStream(t, s)
		require.NotEmpty(t, got.calls)
		for _, c := range got.calls {
			require.Equal(t, "tool_05", c.Function.Name)
			checkCall(t, schemas, c)
		}
		if got.finish != "length" {
			require.Equal(t, "tool_calls", got.finish)
			require.Empty(t, got.content)
		}
	}
}

// Streamed and whole, the same greedy answer: the same calls.
func TestToolsRequiredStreamEqualsWhole(t *testing.T) {
	p, _ := toolsProvider(t)
	tools, schemas := twentyTools()
	body := `{"messages":[{"role":"user","content":"go"}],"tools":` + tools + `,"tool_choice":"required","parallel_tool_calls":false,"max_tokens":500,"temperature":0`
	s, err := p.Stream(context.Background(), chatReq(body+`,"stream":true}`, true))
	require.NoError(t, err)
	got := readStream(t, s)
	resp, err := p.Do(context.Background(), chatReq(body+`}`, false))
	require.NoError(t, err)
	var whole chatCompletion
	require.NoError(t, json.Unmarshal(resp.Body, &whole))
	require.Equal(t, "tool_calls", got.finish)
	require.Len(t, got.calls, 1)
	require.Empty(t, got.content)
	checkCall(t, schemas, got.calls[0])
	require.Equal(t, got.calls[0].Function, whole.Choices[0].Message.ToolCalls[0].Function)
	require.Equal(t, got.usage.CompletionTokens, whole.Usage.CompletionTokens)
	require.Contains(t, string(resp.Body), `"content":null,"tool_calls":[{"id":"call_`)
}

// Stop ends a generation as if the model had: FinishStop, exact usage,
// the slot free for the next request.
func TestGenerationStop(t *testing.T) {
	m := loadTiny(t, Spec{Slots: 1})
	g, err := m.Generate(context.Background(), Request{Prompt: "hello world", MaxTokens: 200, Sampling: greedy})
	require.NoError(t, err)
	first, err := g.Next()
	require.NoError(t, err)
	g.Stop()
	text := first
	for {
		s, err := g.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		text += s
	}
	finish, u := g.Result()
	require.Equal(t, FinishStop, finish)
	require.Less(t, u.CompletionTokens, 200)
	require.Positive(t, u.CompletionTokens)
	full, _, _ := collect(t, m, context.Background(), Request{Prompt: "hello world", MaxTokens: 200, Sampling: greedy})
	require.True(t, strings.HasPrefix(full, text), "the text until the stop is the start of the whole answer")
}

// A grammar llama.cpp cannot parse fails the request at once.
func TestBadGrammar(t *testing.T) {
	m := loadTiny(t, Spec{Slots: 1})
	_, err := m.Generate(context.Background(), Request{Prompt: "hi", MaxTokens: 2, Sampling: greedy, Grammar: "root ::= ("})
	require.ErrorIs(t, err, ErrGrammar)
	_, err = m.Generate(context.Background(), Request{Prompt: "hi", MaxTokens: 2, Sampling: greedy, Grammar: "start ::= \"a\""})
	require.ErrorIs(t, err, ErrGrammar, "no root rule")
	out, finish, _ := collect(t, m, context.Background(), Request{Prompt: "hi", MaxTokens: 20, Sampling: greedy, Grammar: `root ::= "yes" | "no"`})
	require.Contains(t, []string{"yes", "no"}, out)
	require.Equal(t, FinishStop, finish)
}

// parallel_tool_calls false with tool_choice auto: the first call ends the
// answer (the engine stops the generation there). A test grammar makes the
// random model write call after call.
func TestToolsFirstCallEndsTheAnswer(t *testing.T) {
	p, m := toolsProvider(t)
	p.autoGrammar = func(ts *toolSet) string {
		many := *ts
		many.choice, many.parallel = choiceRequired, true
		return `root ::= call ( "\n" call ){19,}` + strings.TrimPrefix(toolGrammar(&many), `root ::= call ( "\n" call )*`)
	}
	shortest := len(m.Tokenize("<tool_call>\n{\"name\": \"tool_02\", \"arguments\": {}}\n</tool_call>", false))
	tools, schemas := twentyTools()
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"messages":[{"role":"user","content":"go"}],"tools":%s,"parallel_tool_calls":false,"max_tokens":2000,"temperature":0,"stream":%v}`, tools, stream)
		var got streamed
		if stream {
			s, err := p.Stream(context.Background(), chatReq(body, true))
			require.NoError(t, err)
			got = readStream(t, s)
		} else {
			resp, err := p.Do(context.Background(), chatReq(body, false))
			require.NoError(t, err)
			var out chatCompletion
			require.NoError(t, json.Unmarshal(resp.Body, &out))
			got = streamed{calls: out.Choices[0].Message.ToolCalls, finish: *out.Choices[0].FinishReason, usage: out.Usage}
			require.Nil(t, out.Choices[0].Message.Content)
		}
		require.Equal(t, "tool_calls", got.finish)
		require.Len(t, got.calls, 1)
		require.Empty(t, got.content)
		checkCall(t, schemas, got.calls[0])
		// Stopped after the first call, long before the 20 the grammar wants.
		require.Less(t, got.usage.CompletionTokens, 10*shortest)
		t.Logf("stream %v: %d completion tokens, shortest call %d", stream, got.usage.CompletionTokens, shortest)
	}
}

// llama.cpp parses the grammar of every kind of schema the converter
// handles.
func TestToolGrammarsParse(t *testing.T) {
	m := loadTiny(t, Spec{Slots: 1})
	for _, params := range []string{
		`{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"enum":["c","f"]},"days":{"type":"integer"},` +
			`"tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":3},` +
			`"opts":{"type":"object","properties":{"a":{"type":["boolean","null"]},"b":{"const":"x\"y\\z\n"}},"additionalProperties":false},` +
			`"any":{"anyOf":[{"type":"number"},{"$ref":"#/x"}]}},"required":["city","days"]}`,
		`{"type":"object","properties":{"a":{"type":"string","minLength":2,"maxLength":2},"b":{"type":"string","minLength":3}}}`,
		`{"anyOf":[{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":1},{"const":{"k":[1, "é"]}}]}`,
		`{"type":["object","null"],"additionalProperties":{"type":"number"},"nullable":true}`,
		`{"type":"object","properties":{},"additionalProperties":false}`,
		`{"type":"object","properties":{"x":{"type":"array","maxItems":0},"y":{"type":"array","minItems":1},"z":{"type":"array","minItems":1,"maxItems":1},"w":{"type":"string","maxLength":0}}}`,
		`{"type":"object","properties":{"deep":{"type":"object","properties":{"deeper":{"type":"object","properties":{"n":{"oneOf":[{"type":"integer"},{"type":"string","enum":["<tool_call>","a\tb"]}]}},"required":["n"]}}}}}`,
		`{}`,
		`{"type":"wizard"}`,
		`{"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer"},"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`,
		`{"type":"object","properties":{"a":{"anyOf":[{"$ref":"#/properties/a"},{"type":"string"}]}}}`, // left-recursive: $refs not followed
	} {
		b := parseBody(t, `{"tool_choice":"required","tools":[{"type":"function","function":{"name":"f","parameters":`+params+`}},{"type":"function","function":{"name":"g"}}]}`)
		ts, err := b.toolSet()
		require.NoError(t, err, params)
		for _, parallel := range []bool{false, true} {
			ts.parallel = parallel
			require.NoError(t, m.use(func() error {
				s, err := newSampler(m.vocab, greedy, toolGrammar(ts))
				s.free()
				return err
			}), "%s\n%s", params, toolGrammar(ts))
		}
	}
}
