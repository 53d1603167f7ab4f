package localengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

// response_format with a generated model and the real libraries (skipped
// without them). The model has random weights: only the grammar makes its
// answers JSON, so every answer that parses and follows its schema is the
// grammar's doing.

// structuredCases are schemas whose every value is bounded (strings,
// arrays and recursion), so that a random model ends its answer and the
// test can require finish_reason "stop".
var structuredCases = []struct {
	name   string
	schema string // "" for json_object
}{
	{"json_object", ""},
	{"person", `{"type":"object","properties":{
		"name":{"type":"string","minLength":1,"maxLength":12},
		"age":{"type":"integer"},
		"color":{"type":"string","enum":["red","green","blue"]},
		"tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3}},
		"required":["name","age","color","tags"],"additionalProperties":false}`},
	{"nested", `{"type":"object","properties":{
		"point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"]},
		"labels":{"type":"array","items":{"type":"string","maxLength":5},"minItems":1,"maxItems":2},
		"ok":{"type":"boolean"},
		"note":{"type":["string","null"],"maxLength":8}},
		"required":["point","labels","ok"]}`},
	{"unenforced keywords", `{"type":"object","properties":{
		"email":{"type":"string","format":"email","pattern":"@","maxLength":10},
		"n":{"type":"integer","minimum":5,"maximum":7}},"required":["email","n"]}`},
	{"refs", `{"$defs":{"unit":{"enum":["c","f"]},"temp":{"type":"object","properties":{"v":{"type":"integer"},"unit":{"$ref":"#/$defs/unit"}},"required":["v","unit"]}},
		"type":"object","properties":{"now":{"$ref":"#/$defs/temp"},"later":{"allOf":[{"$ref":"#/$defs/temp"}],"description":"in an hour"}},"required":["now","later"]}`},
	{"root enum", `{"enum":["yes","no",42,null,{"k":[1,"é"]}]}`},
	{"root anyOf", `{"anyOf":[{"type":"string","maxLength":3},{"type":"integer"},{"type":"array","items":{"type":"boolean"},"maxItems":2}]}`},
}

func formatBody(schema string) string {
	if schema == "" {
		return `{"type":"json_object"}`
	}
	return `{"type":"json_schema","json_schema":{"name":"answer","strict":true,"schema":` + schema + `}}`
}

// checkAnswer requires content to be one JSON value (nothing after it)
// following the schema (an object for json_object).
func checkAnswer(t *testing.T, schema, content string) {
	t.Helper()
	v, err := decodeJSON(content)
	require.NoError(t, err, "%q", content)
	var plain any // numbers as float64: every number fits one
	require.NoError(t, json.Unmarshal([]byte(content), &plain), "%q", content)
	if schema == "" {
		require.IsType(t, map[string]any{}, v, "%q", content)
		return
	}
	doc := json.RawMessage(schema)
	require.NoError(t, validate(doc, doc, v, "$"), "%q", content)
}

// Every answer, greedy and sampled, whole and streamed, is JSON that
// follows the schema, and ends there: the grammar leaves only the end of
// the turn after the value, so the model stops by itself.
func TestStructuredOutput(t *testing.T) {
	p, _ := toolsProvider(t)
	for _, tc := range structuredCases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range 4 {
				sampling := fmt.Sprintf(`"temperature":1,"seed":%d`, seed)
				if seed == 0 {
					sampling = `"temperature":0`
				}
				body := `{"messages":[{"role":"user","content":"Answer in JSON."}],"response_format":` + formatBody(tc.schema) + `,"max_tokens":400,` + sampling
				resp, err := p.Do(context.Background(), chatReq(body+`}`, false))
				require.NoError(t, err)
				var out chatCompletion
				require.NoError(t, json.Unmarshal(resp.Body, &out), "%s", resp.Body)
				content := *out.Choices[0].Message.Content
				t.Logf("seed %d, %s: %q", seed, *out.Choices[0].FinishReason, content)
				if tc.schema == "" && *out.Choices[0].FinishReason == FinishLength {
					// Any object may be long: a random model can write
					// one past max_tokens. It is still the start of one.
					require.Equal(t, byte('{'), content[0])
					continue
				}
				require.Equal(t, FinishStop, *out.Choices[0].FinishReason, "%q", content)
				require.Less(t, out.Usage.CompletionTokens, 400)
				checkAnswer(t, tc.schema, content)

				s, err := p.Stream(context.Background(), chatReq(body+`,"stream":true}`, true))
				require.NoError(t, err)
				got := readStream(t, s)
				require.Equal(t, FinishStop, got.finish)
				require.Equal(t, content, got.content, "the same seed: the same answer")
				require.Equal(t, out.Usage.CompletionTokens, got.usage.CompletionTokens)
			}
		})
	}
}

// A value cut by max_tokens is "length", as OpenAI answers it; the text is
// the start of a value of the schema.
func TestStructuredOutputCut(t *testing.T) {
	p, _ := toolsProvider(t)
	body := `{"messages":[{"role":"user","content":"hi"}],"response_format":` + formatBody(structuredCases[1].schema) + `,"max_tokens":3,"temperature":0}`
	resp, err := p.Do(context.Background(), chatReq(body, false))
	require.NoError(t, err)
	var out chatCompletion
	require.NoError(t, json.Unmarshal(resp.Body, &out))
	require.Equal(t, FinishLength, *out.Choices[0].FinishReason)
	require.EqualValues(t, 3, out.Usage.CompletionTokens)
	require.Regexp(t, `^\{\s*("(n(a(me?)?)?)?)?$`, *out.Choices[0].Message.Content)
}

// /v1/completions honours response_format too.
func TestStructuredCompletion(t *testing.T) {
	p, _ := toolsProvider(t)
	schema := structuredCases[1].schema
	resp, err := p.Do(context.Background(), &providers.Request{Operation: providers.OpCompletion, Model: "tiny",
		Body: []byte(`{"prompt":"JSON:","max_tokens":300,"temperature":0,"response_format":` + formatBody(schema) + `}`)})
	require.NoError(t, err)
	var out textCompletion
	require.NoError(t, json.Unmarshal(resp.Body, &out))
	require.Equal(t, FinishStop, *out.Choices[0].FinishReason)
	checkAnswer(t, schema, out.Choices[0].Text)
}

// With tools and tool_choice auto the answer is the JSON value or tool
// calls; with tool_choice required it is tool calls only.
func TestStructuredOutputWithTools(t *testing.T) {
	p, _ := toolsProvider(t)
	tools, schemas := twentyTools()
	schema := structuredCases[1].schema
	kinds := map[string]int{}
	for seed := range 8 {
		body := `{"messages":` + toolHistory + `,"tools":` + tools + `,"parallel_tool_calls":false,"response_format":` + formatBody(schema) +
			`,"max_tokens":600,"temperature":1.5,"seed":` + fmt.Sprint(seed) + `}`
		resp, err := p.Do(context.Background(), chatReq(body, false))
		require.NoError(t, err)
		var out chatCompletion
		require.NoError(t, json.Unmarshal(resp.Body, &out), "%s", resp.Body)
		msg := out.Choices[0].Message
		if len(msg.ToolCalls) > 0 {
			kinds["calls"]++
			require.Equal(t, "tool_calls", *out.Choices[0].FinishReason, "%s", resp.Body)
			require.Nil(t, msg.Content, "%s", resp.Body)
			require.Len(t, msg.ToolCalls, 1)
			checkCall(t, schemas, msg.ToolCalls[0])
			continue
		}
		kinds["json"]++
		require.Equal(t, FinishStop, *out.Choices[0].FinishReason, "%s", resp.Body)
		checkAnswer(t, schema, *msg.Content)
	}
	t.Logf("answers: %v", kinds)

	body := `{"messages":` + toolHistory + `,"tools":` + tools + `,"tool_choice":"required","response_format":` + formatBody(schema) + `,"max_tokens":600,"temperature":0}`
	resp, err := p.Do(context.Background(), chatReq(body, false))
	require.NoError(t, err)
	var out chatCompletion
	require.NoError(t, json.Unmarshal(resp.Body, &out), "%s", resp.Body)
	require.NotEmpty(t, out.Choices[0].Message.ToolCalls, "%s", resp.Body)
	for _, c := range out.Choices[0].Message.ToolCalls {
		checkCall(t, schemas, c)
	}
}

// llama.cpp parses the grammar of every schema the converter handles,
// alone and beside tools.
func TestFormatGrammarsParse(t *testing.T) {
	m := loadTiny(t, Spec{Slots: 1})
	schemas := []string{"", personSchema,
		`{"type":"object","properties":{"next":{"$ref":"#"}}}`,
		`{"definitions":{"a~b":{"type":"string"},"c/d":{"type":"integer"}},"anyOf":[{"$ref":"#/definitions/a~0b"},{"$ref":"#/definitions/c~1d"}]}`,
		`{"$ref":"https://example.com/schema.json"}`,
		`{"type":"array","items":[{"type":"string"}],"prefixItems":[{"type":"integer"}]}`,
		`{"type":"object","properties":{"a":true,"b":{}},"additionalProperties":false}`,
	}
	for _, tc := range structuredCases {
		schemas = append(schemas, tc.schema)
	}
	b := parseBody(t, `{"tools":`+weatherTools+`}`)
	ts, err := b.toolSet()
	require.NoError(t, err)
	for _, s := range schemas {
		f, err := readFormat(t, formatBody(s))
		require.NoError(t, err, s)
		for _, tools := range []*toolSet{nil, ts} {
			g := formatGrammar(f, tools)
			require.NoError(t, m.use(func() error {
				s, err := newSampler(m.vocab, greedy, g)
				s.free()
				return err
			}), "%s\n%s", s, g)
		}
	}
}

// Were llama.cpp to refuse the grammar of a schema the check let through,
// the client gets a 400 naming the schema, not a server error.
func TestFormatGrammarRefusedIsA400(t *testing.T) {
	m := loadTiny(t, Spec{Slots: 1})
	for _, f := range []*responseFormat{{typ: formatJSONObject}, {typ: formatJSONSchema, schema: json.RawMessage(`{}`)}} {
		c := &call{op: providers.OpChat, model: m, msgs: []Message{{Role: "user", Content: "hi"}}, format: f,
			gen: Request{MaxTokens: 2, Sampling: greedy, Grammar: "root ::= ("}}
		_, err := c.start(context.Background())
		var pe *providers.Error
		require.True(t, errors.As(err, &pe), "%v", err)
		require.Equal(t, 400, pe.Status)
		require.Equal(t, map[bool]string{true: paramFormat, false: paramSchema}[f.schema == nil], pe.Param)
		require.Contains(t, pe.Message, "llama.cpp rejected the grammar")
	}
}
