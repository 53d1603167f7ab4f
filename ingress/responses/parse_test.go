package responses

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", 513)
	var meta17 strings.Builder
	meta17.WriteString("{")
	for i := 0; i < 17; i++ {
		if i > 0 {
			meta17.WriteString(",")
		}
		meta17.WriteString(`"k` + string(rune('a'+i)) + `":"v"`)
	}
	meta17.WriteString("}")
	cases := []struct {
		name, body, code, param string
	}{
		{"not json", `{"model":`, "invalid_json", ""},
		{"not an object", `["model"]`, "invalid_type", ""},
		{"model missing", `{"input":"hi"}`, "missing_required_parameter", "model"},
		{"model null", `{"model":null,"input":"hi"}`, "missing_required_parameter", "model"},
		{"model type", `{"model":7,"input":"hi"}`, "invalid_type", "model"},
		{"model empty", `{"model":"","input":"hi"}`, "invalid_value", "model"},
		{"input missing", `{"model":"m"}`, "missing_required_parameter", "input"},
		{"input type", `{"model":"m","input":7}`, "invalid_type", "input"},
		{"input item type", `{"model":"m","input":["hi"]}`, "invalid_type", "input[0]"},
		{"item type not string", `{"model":"m","input":[{"type":1}]}`, "invalid_type", "input[0].type"},
		{"item type unknown", `{"model":"m","input":[{"type":"nope"}]}`, "invalid_value", "input[0].type"},
		{"role missing", `{"model":"m","input":[{"content":"hi"}]}`, "missing_required_parameter", "input[0].role"},
		{"role invalid", `{"model":"m","input":[{"role":"tool","content":"hi"}]}`, "invalid_value", "input[0].role"},
		{"content missing", `{"model":"m","input":[{"role":"user"}]}`, "missing_required_parameter", "input[0].content"},
		{"content type", `{"model":"m","input":[{"role":"user","content":5}]}`, "invalid_type", "input[0].content"},
		{"part not object", `{"model":"m","input":[{"role":"user","content":["hi"]}]}`, "invalid_type", "input[0].content[0]"},
		{"part type missing", `{"model":"m","input":[{"role":"user","content":[{"text":"hi"}]}]}`, "missing_required_parameter", "input[0].content[0].type"},
		{"part type unknown", `{"model":"m","input":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`, "invalid_value", "input[0].content[0].type"},
		{"text missing", `{"model":"m","input":[{"role":"user","content":[{"type":"input_text"}]}]}`, "missing_required_parameter", "input[0].content[0].text"},
		{"text type", `{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":1}]}]}`, "invalid_type", "input[0].content[0].text"},
		{"image url missing", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","detail":"auto"}]}]}`, "missing_required_parameter", "input[0].content[0].image_url"},
		{"image detail", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"https://x/y.png","detail":"max"}]}]}`, "invalid_value", "input[0].content[0].detail"},
		{"image file id", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`, "unsupported_value", "input[0].content[0].file_id"},
		{"image in assistant", `{"model":"m","input":[{"role":"assistant","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]}`, "invalid_value", "input[0].content[0].type"},
		{"file id", `{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}`, "unsupported_value", "input[0].content[0].file_id"},
		{"file url", `{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_url":"https://x/a.pdf"}]}]}`, "unsupported_value", "input[0].content[0].file_url"},
		{"file data missing", `{"model":"m","input":[{"role":"user","content":[{"type":"input_file","filename":"a.pdf"}]}]}`, "missing_required_parameter", "input[0].content[0].file_data"},
		{"refusal in user", `{"model":"m","input":[{"role":"user","content":[{"type":"refusal","refusal":"no"}]}]}`, "invalid_value", "input[0].content[0].type"},
		{"message status", `{"model":"m","input":[{"role":"user","content":"hi","status":"done"}]}`, "invalid_value", "input[0].status"},
		{"call id missing", `{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}`, "missing_required_parameter", "input[0].call_id"},
		{"call name missing", `{"model":"m","input":[{"type":"function_call","call_id":"c","arguments":"{}"}]}`, "missing_required_parameter", "input[0].name"},
		{"call arguments missing", `{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f"}]}`, "missing_required_parameter", "input[0].arguments"},
		{"call arguments type", `{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]}`, "invalid_type", "input[0].arguments"},
		{"output call id missing", `{"model":"m","input":[{"type":"function_call_output","output":"x"}]}`, "missing_required_parameter", "input[0].call_id"},
		{"output missing", `{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}`, "missing_required_parameter", "input[0].output"},
		{"output type", `{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":3}]}`, "invalid_type", "input[0].output"},
		{"output image", `{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://x/y.png"}]}]}`, "unsupported_value", "input[0].output[0].type"},
		{"item reference", `{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "unsupported_value", "input[0].type"},
		{"built-in call item", `{"model":"m","input":[{"type":"web_search_call","id":"ws_1"}]}`, "unsupported_value", "input[0].type"},
		{"second item", `{"model":"m","input":[{"role":"user","content":"hi"},{"role":"user","content":[{"type":"input_text","text":false}]}]}`, "invalid_type", "input[1].content[0].text"},
		{"instructions type", `{"model":"m","input":"hi","instructions":["be brief"]}`, "invalid_type", "instructions"},
		{"max_output_tokens type", `{"model":"m","input":"hi","max_output_tokens":"64"}`, "invalid_type", "max_output_tokens"},
		{"max_output_tokens decimal", `{"model":"m","input":"hi","max_output_tokens":64.5}`, "invalid_type", "max_output_tokens"},
		{"max_output_tokens below 16", `{"model":"m","input":"hi","max_output_tokens":10}`, "integer_below_min_value", "max_output_tokens"},
		{"max_output_tokens negative", `{"model":"m","input":"hi","max_output_tokens":-1}`, "integer_below_min_value", "max_output_tokens"},
		{"max_output_tokens huge", `{"model":"m","input":"hi","max_output_tokens":99999999999999999999}`, "integer_above_max_value", "max_output_tokens"},
		{"temperature type", `{"model":"m","input":"hi","temperature":"hot"}`, "invalid_type", "temperature"},
		{"temperature high", `{"model":"m","input":"hi","temperature":2.5}`, "decimal_above_max_value", "temperature"},
		{"temperature low", `{"model":"m","input":"hi","temperature":-0.1}`, "decimal_below_min_value", "temperature"},
		{"top_p high", `{"model":"m","input":"hi","top_p":1.5}`, "decimal_above_max_value", "top_p"},
		{"top_p type", `{"model":"m","input":"hi","top_p":true}`, "invalid_type", "top_p"},
		{"top_logprobs high", `{"model":"m","input":"hi","top_logprobs":21}`, "integer_above_max_value", "top_logprobs"},
		{"stream type", `{"model":"m","input":"hi","stream":"yes"}`, "invalid_type", "stream"},
		{"store type", `{"model":"m","input":"hi","store":1}`, "invalid_type", "store"},
		{"parallel_tool_calls type", `{"model":"m","input":"hi","parallel_tool_calls":"no"}`, "invalid_type", "parallel_tool_calls"},
		{"background", `{"model":"m","input":"hi","background":true}`, "unsupported_value", "background"},
		{"conversation", `{"model":"m","input":"hi","conversation":"conv_1"}`, "unsupported_value", "conversation"},
		{"prompt", `{"model":"m","input":"hi","prompt":{"id":"pmpt_1"}}`, "unsupported_value", "prompt"},
		{"previous_response_id type", `{"model":"m","input":"hi","previous_response_id":5}`, "invalid_type", "previous_response_id"},
		{"user type", `{"model":"m","input":"hi","user":5}`, "invalid_type", "user"},
		{"metadata type", `{"model":"m","input":"hi","metadata":"x"}`, "invalid_type", "metadata"},
		{"metadata value type", `{"model":"m","input":"hi","metadata":{"a":1}}`, "invalid_type", "metadata.a"},
		{"metadata value long", `{"model":"m","input":"hi","metadata":{"a":"` + long + `"}}`, "string_above_max_length", "metadata.a"},
		{"metadata too many", `{"model":"m","input":"hi","metadata":` + meta17.String() + `}`, "object_above_max_properties", "metadata"},
		{"tools type", `{"model":"m","input":"hi","tools":{}}`, "invalid_type", "tools"},
		{"tool type missing", `{"model":"m","input":"hi","tools":[{"name":"f"}]}`, "missing_required_parameter", "tools[0].type"},
		{"tool web_search", `{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`, "unsupported_value", "tools[0].type"},
		{"tool file_search", `{"model":"m","input":"hi","tools":[{"type":"function","name":"f"},{"type":"file_search","vector_store_ids":["vs_1"]}]}`, "unsupported_value", "tools[1].type"},
		{"tool computer_use", `{"model":"m","input":"hi","tools":[{"type":"computer_use_preview"}]}`, "unsupported_value", "tools[0].type"},
		{"tool custom", `{"model":"m","input":"hi","tools":[{"type":"custom","name":"grammar"}]}`, "unsupported_value", "tools[0].type"},
		{"tool deferred", `{"model":"m","input":"hi","tools":[{"type":"function","name":"f","defer_loading":true}]}`, "unsupported_value", "tools[0].defer_loading"},
		{"tool unknown", `{"model":"m","input":"hi","tools":[{"type":"magic"}]}`, "invalid_value", "tools[0].type"},
		{"tool name missing", `{"model":"m","input":"hi","tools":[{"type":"function"}]}`, "missing_required_parameter", "tools[0].name"},
		{"tool name pattern", `{"model":"m","input":"hi","tools":[{"type":"function","name":"get weather"}]}`, "invalid_value", "tools[0].name"},
		{"tool parameters type", `{"model":"m","input":"hi","tools":[{"type":"function","name":"f","parameters":"{}"}]}`, "invalid_type", "tools[0].parameters"},
		{"tool strict type", `{"model":"m","input":"hi","tools":[{"type":"function","name":"f","strict":"yes"}]}`, "invalid_type", "tools[0].strict"},
		{"tool_choice value", `{"model":"m","input":"hi","tool_choice":"any"}`, "invalid_value", "tool_choice"},
		{"tool_choice type", `{"model":"m","input":"hi","tool_choice":1}`, "invalid_type", "tool_choice"},
		{"tool_choice name missing", `{"model":"m","input":"hi","tool_choice":{"type":"function"}}`, "missing_required_parameter", "tool_choice.name"},
		{"tool_choice unknown function", `{"model":"m","input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`, "invalid_value", "tool_choice"},
		{"tool_choice built-in", `{"model":"m","input":"hi","tool_choice":{"type":"web_search_preview"}}`, "unsupported_value", "tool_choice.type"},
		{"tool_choice allowed_tools", `{"model":"m","input":"hi","tool_choice":{"type":"allowed_tools","mode":"auto","tools":[]}}`, "unsupported_value", "tool_choice.type"},
		{"text type", `{"model":"m","input":"hi","text":"json"}`, "invalid_type", "text"},
		{"format type missing", `{"model":"m","input":"hi","text":{"format":{}}}`, "missing_required_parameter", "text.format.type"},
		{"format type unknown", `{"model":"m","input":"hi","text":{"format":{"type":"xml"}}}`, "invalid_value", "text.format.type"},
		{"schema name missing", `{"model":"m","input":"hi","text":{"format":{"type":"json_schema","schema":{}}}}`, "missing_required_parameter", "text.format.name"},
		{"schema missing", `{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"x"}}}`, "missing_required_parameter", "text.format.schema"},
		{"schema type", `{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":[]}}}`, "invalid_type", "text.format.schema"},
		{"schema strict type", `{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":{},"strict":"y"}}}`, "invalid_type", "text.format.strict"},
		{"verbosity", `{"model":"m","input":"hi","text":{"verbosity":"loud"}}`, "invalid_value", "text.verbosity"},
		{"reasoning type", `{"model":"m","input":"hi","reasoning":"high"}`, "invalid_type", "reasoning"},
		{"reasoning effort", `{"model":"m","input":"hi","reasoning":{"effort":"extreme"}}`, "invalid_value", "reasoning.effort"},
		{"truncation", `{"model":"m","input":"hi","truncation":"middle"}`, "invalid_value", "truncation"},
		{"include type", `{"model":"m","input":"hi","include":"reasoning.encrypted_content"}`, "invalid_type", "include"},
		{"include element", `{"model":"m","input":"hi","include":[1]}`, "invalid_type", "include[0]"},
		{"service_tier", `{"model":"m","input":"hi","service_tier":"gold"}`, "invalid_value", "service_tier"},
		{"stream_options type", `{"model":"m","input":"hi","stream_options":true}`, "invalid_type", "stream_options"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body))
			require.Error(t, err)
			var e *Error
			require.True(t, errors.As(err, &e), "%T is not *Error", err)
			assert.Equal(t, http.StatusBadRequest, e.Status)
			assert.Equal(t, "invalid_request_error", e.Type)
			assert.Equal(t, c.code, e.Code, e.Message)
			assert.Equal(t, c.param, e.Param, e.Message)
			assert.NotEmpty(t, e.Message)
			assert.Equal(t, e.Message, e.Error())
		})
	}
}

// An error message names the parameter, never the value sent.
func TestParseErrorMessages(t *testing.T) {
	for body, want := range map[string]string{
		`{"input":"hi"}`: "Missing required parameter: 'model'.",
		`{"model":"m","input":"hi","temperature":"secret"}`:      "Invalid type for 'temperature': expected a number, but got a string instead.",
		`{"model":"m","input":"hi","max_output_tokens":8}`:       "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16.",
		`{"model":"m","input":"hi","top_p":7}`:                   "Invalid 'top_p': decimal above maximum value. Expected a value <= 1.",
		`{"model":"m","input":[{"role":"robot","content":"x"}]}`: "Invalid value for 'input[0].role'. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
		`{"model":"m","input":"hi","tool_choice":"maybe"}`:       "Invalid value for 'tool_choice'. Supported values are: 'none', 'auto', and 'required'.",
	} {
		_, err := Parse([]byte(body))
		require.Error(t, err, body)
		assert.Equal(t, want, err.Error(), body)
	}
	_, err := Parse([]byte(`{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only function tools are supported")
}

func TestParseFields(t *testing.T) {
	r := mustParse(t, `{"model":"gpt-4o","input":"hi","stream":true,"previous_response_id":"resp_1","instructions":"be brief",
		"max_output_tokens":64,"temperature":0,"top_p":0.5,"parallel_tool_calls":false,"user":"u1","metadata":{"a":"b"},
		"unknown_future_parameter":{"x":1},"reasoning":{"effort":"high"},"truncation":"auto","include":["message.output_text.logprobs"],
		"service_tier":"flex","top_logprobs":2,"text":{"verbosity":"low"},"prompt_cache_key":"k","safety_identifier":"s",
		"max_tool_calls":3,"temperature_unused":null,"model_extra":null}`)
	assert.Equal(t, "gpt-4o", r.Model)
	assert.True(t, r.Stream)
	assert.True(t, r.Store, "store defaults to true")
	assert.Equal(t, "resp_1", r.PreviousResponseID)
	assert.Equal(t, "be brief", r.Instructions)
	assert.EqualValues(t, 64, r.MaxOutputTokens)
	require.NotNil(t, r.Temperature)
	assert.Zero(t, *r.Temperature)
	require.NotNil(t, r.TopP)
	assert.Equal(t, 0.5, *r.TopP)
	require.NotNil(t, r.ParallelToolCalls)
	assert.False(t, *r.ParallelToolCalls)
	assert.Equal(t, "u1", r.User)
	assert.Equal(t, map[string]string{"a": "b"}, r.Metadata)
	assert.Equal(t, []string{"reasoning", "truncation", "include", "service_tier", "top_logprobs", "text.verbosity",
		"prompt_cache_key", "safety_identifier"}, r.Notes())

	r = mustParse(t, `{"model":"m","input":"hi","store":false,"stream":null,"temperature":null,"reasoning":{"effort":null},
		"truncation":"disabled","include":[],"service_tier":"auto"}`)
	assert.False(t, r.Store)
	assert.False(t, r.Stream)
	assert.Nil(t, r.Temperature)
	assert.Empty(t, r.Notes(), "settings that change nothing are not noted")

	r = mustParse(t, `{"model":"m","input":[{"type":"reasoning","id":"rs_1","summary":[]},{"role":"user","content":"hi"}]}`)
	items, err := r.InputItems()
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, []string{"input.reasoning"}, r.Notes())
}

func TestInputItems(t *testing.T) {
	r := mustParse(t, `{"model":"m","input":"hello"}`)
	items, err := r.InputItems()
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.JSONEq(t, `{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}`, string(items[0]))

	r = mustParse(t, `{"model":"m","input":[
		{"type":"message","role":"developer","content":"rules"},
		{"role":"assistant","content":"earlier answer","id":"msg_9","status":"completed"},
		{"role":"assistant","content":[{"type":"input_text","text":"a"},{"type":"refusal","refusal":"b"}]},
		{"role":"user","content":[{"type":"output_text","text":"x","annotations":[]},{"type":"input_image","image_url":"https://e.x/i.png"},
			{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,AAAA"}]},
		{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{}","status":"completed"},
		{"type":"function_call_output","call_id":"call_1","output":[{"type":"input_text","text":"ok"}]}]}`)
	items, err = r.InputItems()
	require.NoError(t, err)
	require.Len(t, items, 6)
	want := []string{
		`{"type":"message","role":"developer","content":[{"type":"input_text","text":"rules"}]}`,
		`{"type":"message","id":"msg_9","role":"assistant","content":[{"type":"output_text","text":"earlier answer","annotations":[]}]}`,
		`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"a","annotations":[]},{"type":"refusal","refusal":"b"}]}`,
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"x"},{"type":"input_image","image_url":"https://e.x/i.png","detail":"auto"},{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,AAAA"}]}`,
		`{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{}","status":"completed"}`,
		`{"type":"function_call_output","call_id":"call_1","output":[{"type":"input_text","text":"ok"}]}`,
	}
	for i, w := range want {
		assert.Equal(t, w, string(items[i]), "item %d", i)
	}
	// Items are returned as copies: the caller may keep them.
	items[0] = nil
	again, _ := r.InputItems()
	assert.NotNil(t, again[0])
}
