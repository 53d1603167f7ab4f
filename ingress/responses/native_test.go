package responses

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func TestStateless(t *testing.T) {
	history := []Item{
		Item(`{"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]}`),
		Item(`{"id":"rs_1","type":"reasoning","summary":[]}`),
		Item(`{"id":"rs_2","type":"reasoning","summary":[],"encrypted_content":"gAAA"}`),
		Item(`{"id":"fc_1","type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}","status":"completed"}`),
		Item(`{"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"ok","annotations":[]}]}`),
	}
	for _, tc := range []struct {
		name, body string
		history    []Item
		input      string // the upstream's input, as JSON
	}{
		{"no history keeps the input as it was", `{"model":"m","input":"hi","store":true,"reasoning":{"effort":"low"}}`, nil, `"hi"`},
		{"a string input follows the history", `{"model":"m","input":"and now?","previous_response_id":"resp_x"}`, history,
			`[{"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]},` +
				`{"id":"rs_2","type":"reasoning","summary":[],"encrypted_content":"gAAA"},` +
				`{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}","status":"completed"},` +
				`{"type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"ok","annotations":[]}]},` +
				`{"type":"message","role":"user","content":[{"type":"input_text","text":"and now?"}]}]`},
		{"input items follow the history as the client wrote them", `{"model":"m","previous_response_id":"resp_x","input":[{"role":"user","content":"x","x_new":1}]}`,
			history[:1], `[{"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]},{"role":"user","content":"x","x_new":1}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			out, err := Stateless(body, tc.history)
			require.NoError(t, err)
			assert.Equal(t, tc.body, string(body), "body is not modified")
			got := gjson.ParseBytes(out)
			assert.False(t, got.Get("previous_response_id").Exists())
			assert.Equal(t, gjson.False, got.Get("store").Type, "the upstream stores nothing")
			assert.JSONEq(t, tc.input, got.Get("input").Raw)
			// Everything else as the client sent it.
			gjson.Parse(tc.body).ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "input", "store", "previous_response_id":
				default:
					assert.JSONEq(t, v.Raw, got.Get(k.Str).Raw, k.Str)
				}
				return true
			})
		})
	}
}

func TestOwn(t *testing.T) {
	resp := `{"id":"resp_up","object":"response","previous_response_id":null,"store":false,"output":[{"type":"message"}],"usage":{"input_tokens":1}}`
	out, err := Own([]byte(resp), "", "resp_gw", "resp_prev", true)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"resp_gw","object":"response","previous_response_id":"resp_prev","store":true,"output":[{"type":"message"}],"usage":{"input_tokens":1}}`, string(out))

	ev := `{"type":"response.created","sequence_number":0,"response":` + resp + `}`
	out, err = Own([]byte(ev), "response", "resp_gw", "", false)
	require.NoError(t, err)
	assert.Equal(t, "resp_gw", gjson.GetBytes(out, "response.id").Str)
	assert.Equal(t, gjson.Null, gjson.GetBytes(out, "response.previous_response_id").Type)
	assert.Equal(t, "response.created", gjson.GetBytes(out, "type").Str)
	assert.Len(t, Output([]byte(resp)), 1)

	failed := gjson.ParseBytes(FailedEvent([]byte(gjson.GetBytes(out, "response").Raw), 7, "", "cut"))
	assert.Equal(t, "response.failed", failed.Get("type").Str)
	assert.EqualValues(t, 7, failed.Get("sequence_number").Int())
	assert.Equal(t, "resp_gw", failed.Get("response.id").Str)
	assert.Equal(t, "failed", failed.Get("response.status").Str)
	assert.Equal(t, "server_error", failed.Get("response.error.code").Str)
	assert.Equal(t, "cut", failed.Get("response.error.message").Str)
	assert.Equal(t, "response", gjson.ParseBytes(FailedEvent(nil, 1, "x", "y")).Get("response.object").Str, "a Response even when none came")
}
