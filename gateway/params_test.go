package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/providers"
)

// ingressKey is the virtual key the test ingress accepts.
const ingressKey = "sk-ingress-test"

// testIngress is a gateway served in process (app.Test: Fiber's real
// handler, middleware and error handler, over an in-memory connection)
// in front of an httptest upstream that answers every operation.
type testIngress struct {
	srv   *Server
	calls atomic.Int64 // requests the upstream received
	mu    sync.Mutex
	last  []byte // the body the upstream received last
}

func newTestIngress(tb testing.TB, bodyLimit string) *testIngress {
	tb.Helper()
	in := &testIngress{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		in.calls.Add(1)
		in.mu.Lock()
		in.last = body
		in.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/embeddings"):
			io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`)
		case strings.HasSuffix(r.URL.Path, "/completions") && !strings.HasSuffix(r.URL.Path, "/chat/completions"):
			io.WriteString(w, `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m","choices":[{"text":"ok","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		case bytes.Contains(body, []byte(`"stream":true`)):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}`+"\n\n")
			io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`+"\n\n")
			io.WriteString(w, "data: [DONE]\n\n")
		default:
			io.WriteString(w, `{"id":"c","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		}
	}))
	tb.Cleanup(up.Close)
	yaml := fmt.Sprintf(`server:
  listen: 127.0.0.1:0
  body_limit: %s
log: {level: error}
policy: {audit: none}
backends:
  - name: b0
    kind: selfhosted
    base_url: %s/v1
    api_key: sk-upstream
    price: {input_per_mtok: 1, output_per_mtok: 2}
    timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}
models:
  - name: chat
    deployments: [{backend: b0}]
keys:
  - {id: test, sha256: %s, tenant: acme, team: search}
`, bodyLimit, up.URL, HashKey(ingressKey))
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(tb, err)
	in.srv, err = New(cfg, Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = in.srv.Shutdown(ctx)
	})
	return in
}

// openAIError is OpenAI's error body; Param is null when absent.
type openAIError struct {
	Error struct {
		Message *string `json:"message"`
		Type    *string `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// post sends body to path and returns the status and the response body.
func (in *testIngress) post(tb testing.TB, path string, body []byte) (int, []byte) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ingressKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := in.srv.App().Test(req, 10_000)
	require.NoError(tb, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, out
}

func (in *testIngress) lastBody() []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.last
}

// decodeOpenAIError parses b as OpenAI's error shape: message, type and
// code strings, param a string or null.
func decodeOpenAIError(tb testing.TB, b []byte) openAIError {
	tb.Helper()
	var e openAIError
	require.NoError(tb, json.Unmarshal(b, &e), "%s", b)
	require.NotNil(tb, e.Error.Message, "%s", b)
	require.NotNil(tb, e.Error.Type, "%s", b)
	require.NotNil(tb, e.Error.Code, "%s", b)
	return e
}

// Ingress paths.
const (
	chatPath       = "/v1/chat/completions"
	completionPath = "/v1/completions"
	embeddingPath  = "/v1/embeddings"
)

// paramCase is a request body refused with code at param (or accepted
// and forwarded untouched, when code is empty).
type paramCase struct {
	name, path, body string
	code, param      string
}

// chat is a chat body with extra members after a valid user message.
func chat(extra string) string {
	return `{"model":"chat","messages":[{"role":"user","content":"hi"}]` + extra + `}`
}

// chatMessages is a chat body with these messages.
func chatMessages(messages string) string {
	return `{"model":"chat","messages":` + messages + `}`
}

var badParams = []paramCase{
	// messages
	{"messages missing", chatPath, `{"model":"chat"}`, "missing_required_parameter", "messages"},
	{"messages null", chatPath, `{"model":"chat","messages":null}`, "missing_required_parameter", "messages"},
	{"messages empty", chatPath, chatMessages(`[]`), "empty_array", "messages"},
	{"messages an object", chatPath, chatMessages(`{"role":"user"}`), "invalid_type", "messages"},
	{"message null", chatPath, chatMessages(`[null]`), "invalid_type", "messages[0]"},
	{"message a string", chatPath, chatMessages(`[{"role":"user","content":"hi"},"hi"]`), "invalid_type", "messages[1]"},
	{"role missing", chatPath, chatMessages(`[{"content":"hi"}]`), "missing_required_parameter", "messages[0].role"},
	{"role wizard", chatPath, chatMessages(`[{"role":"wizard","content":"hi"}]`), "invalid_value", "messages[0].role"},
	{"role a number", chatPath, chatMessages(`[{"role":1,"content":"hi"}]`), "invalid_type", "messages[0].role"},
	{"content 5", chatPath, chatMessages(`[{"role":"user","content":5}]`), "invalid_type", "messages[0].content"},
	{"content an object", chatPath, chatMessages(`[{"role":"user","content":{"text":"hi"}}]`), "invalid_type", "messages[0].content"},
	{"content missing", chatPath, chatMessages(`[{"role":"user"}]`), "missing_required_parameter", "messages[0].content"},
	{"content null for a user", chatPath, chatMessages(`[{"role":"user","content":null}]`), "missing_required_parameter", "messages[0].content"},
	{"content null for an assistant without tool calls", chatPath, chatMessages(`[{"role":"user","content":"hi"},{"role":"assistant","content":null}]`), "missing_required_parameter", "messages[1].content"},
	{"content parts empty", chatPath, chatMessages(`[{"role":"user","content":[]}]`), "empty_array", "messages[0].content"},
	{"content part not an object", chatPath, chatMessages(`[{"role":"user","content":["hi"]}]`), "invalid_type", "messages[0].content[0]"},
	{"content part without type", chatPath, chatMessages(`[{"role":"user","content":[{"text":"hi"}]}]`), "missing_required_parameter", "messages[0].content[0].type"},
	{"content part type a number", chatPath, chatMessages(`[{"role":"user","content":[{"type":1}]}]`), "invalid_type", "messages[0].content[0].type"},
	{"text part without text", chatPath, chatMessages(`[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text"}]}]`), "missing_required_parameter", "messages[0].content[1].text"},
	{"text part text 5", chatPath, chatMessages(`[{"role":"user","content":[{"type":"text","text":5}]}]`), "invalid_type", "messages[0].content[0].text"},
	{"image part without url", chatPath, chatMessages(`[{"role":"user","content":[{"type":"image_url","image_url":{"detail":"low"}}]}]`), "missing_required_parameter", "messages[0].content[0].image_url.url"},
	{"image part url 5", chatPath, chatMessages(`[{"role":"user","content":[{"type":"image_url","image_url":{"url":5}}]}]`), "invalid_type", "messages[0].content[0].image_url.url"},
	{"image part image_url 5", chatPath, chatMessages(`[{"role":"user","content":[{"type":"image_url","image_url":5}]}]`), "invalid_type", "messages[0].content[0].image_url"},
	{"audio part without format", chatPath, chatMessages(`[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA"}}]}]`), "missing_required_parameter", "messages[0].content[0].input_audio.format"},
	{"file part file_id 5", chatPath, chatMessages(`[{"role":"user","content":[{"type":"file","file":{"file_id":5}}]}]`), "invalid_type", "messages[0].content[0].file.file_id"},
	{"refusal part without refusal", chatPath, chatMessages(`[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"refusal"}]}]`), "missing_required_parameter", "messages[1].content[0].refusal"},
	{"name 5", chatPath, chatMessages(`[{"role":"user","content":"hi","name":5}]`), "invalid_type", "messages[0].name"},
	{"tool message without tool_call_id", chatPath, chatMessages(`[{"role":"user","content":"hi"},{"role":"tool","content":"42"}]`), "missing_required_parameter", "messages[1].tool_call_id"},
	{"tool_call_id 5", chatPath, chatMessages(`[{"role":"tool","content":"42","tool_call_id":5}]`), "invalid_type", "messages[0].tool_call_id"},
	{"tool_calls an object", chatPath, chatMessages(`[{"role":"assistant","tool_calls":{}}]`), "invalid_type", "messages[0].tool_calls"},
	{"tool call without id", chatPath, chatMessages(`[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]`), "missing_required_parameter", "messages[0].tool_calls[0].id"},
	{"tool call of type retrieval", chatPath, chatMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"retrieval","function":{"name":"f","arguments":"{}"}}]}]`), "invalid_value", "messages[0].tool_calls[0].type"},
	{"tool call without function", chatPath, chatMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]`), "missing_required_parameter", "messages[0].tool_calls[0].function"},
	{"tool call arguments an object", chatPath, chatMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{}}}]}]`), "invalid_type", "messages[0].tool_calls[0].function.arguments"},
	{"function_call without arguments", chatPath, chatMessages(`[{"role":"assistant","function_call":{"name":"f"}}]`), "missing_required_parameter", "messages[0].function_call.arguments"},

	// integers
	{"max_tokens -1", chatPath, chat(`,"max_tokens":-1`), "integer_below_min_value", "max_tokens"},
	{"max_tokens 0", chatPath, chat(`,"max_tokens":0`), "integer_below_min_value", "max_tokens"},
	{"max_tokens 1e30", chatPath, chat(`,"max_tokens":1e30`), "invalid_type", "max_tokens"},
	{"max_tokens 100.0", chatPath, chat(`,"max_tokens":100.0`), "invalid_type", "max_tokens"},
	{"max_tokens 1.5", chatPath, chat(`,"max_tokens":1.5`), "invalid_type", "max_tokens"},
	{"max_tokens string", chatPath, chat(`,"max_tokens":"100"`), "invalid_type", "max_tokens"},
	{"max_tokens true", chatPath, chat(`,"max_tokens":true`), "invalid_type", "max_tokens"},
	{"max_tokens 2^31", chatPath, chat(`,"max_tokens":2147483648`), "integer_above_max_value", "max_tokens"},
	{"max_tokens past int64", chatPath, chat(`,"max_tokens":99999999999999999999`), "integer_above_max_value", "max_tokens"},
	{"max_tokens below int64", chatPath, chat(`,"max_tokens":-99999999999999999999`), "integer_below_min_value", "max_tokens"},
	{"max_completion_tokens -5", chatPath, chat(`,"max_completion_tokens":-5`), "integer_below_min_value", "max_completion_tokens"},
	{"escaped key is the parameter", chatPath, chat(`,"max_tok\u0065ns":-1`), "integer_below_min_value", "max_tokens"},
	{"n 0", chatPath, chat(`,"n":0`), "integer_below_min_value", "n"},
	{"n 129", chatPath, chat(`,"n":129`), "integer_above_max_value", "n"},
	{"top_logprobs 21", chatPath, chat(`,"top_logprobs":21`), "integer_above_max_value", "top_logprobs"},
	{"seed 1.5", chatPath, chat(`,"seed":1.5`), "invalid_type", "seed"},

	// numbers
	{"temperature hot", chatPath, chat(`,"temperature":"hot"`), "invalid_type", "temperature"},
	{"temperature 2.5", chatPath, chat(`,"temperature":2.5`), "decimal_above_max_value", "temperature"},
	{"temperature -0.1", chatPath, chat(`,"temperature":-0.1`), "decimal_below_min_value", "temperature"},
	{"temperature 1e400", chatPath, chat(`,"temperature":1e400`), "decimal_above_max_value", "temperature"},
	{"top_p 1.01", chatPath, chat(`,"top_p":1.01`), "decimal_above_max_value", "top_p"},
	{"presence_penalty 3", chatPath, chat(`,"presence_penalty":3`), "decimal_above_max_value", "presence_penalty"},
	{"frequency_penalty -2.5", chatPath, chat(`,"frequency_penalty":-2.5`), "decimal_below_min_value", "frequency_penalty"},

	// booleans, strings, objects
	{"stream_options yes", chatPath, chat(`,"stream_options":"yes"`), "invalid_type", "stream_options"},
	{"include_usage yes", chatPath, chat(`,"stream":true,"stream_options":{"include_usage":"yes"}`), "invalid_type", "stream_options.include_usage"},
	{"logprobs a string", chatPath, chat(`,"logprobs":"true"`), "invalid_type", "logprobs"},
	{"parallel_tool_calls 1", chatPath, chat(`,"parallel_tool_calls":1`), "invalid_type", "parallel_tool_calls"},
	{"store a string", chatPath, chat(`,"store":"yes"`), "invalid_type", "store"},
	{"user 5", chatPath, chat(`,"user":5`), "invalid_type", "user"},
	{"reasoning_effort 5", chatPath, chat(`,"reasoning_effort":5`), "invalid_type", "reasoning_effort"},
	{"service_tier an array", chatPath, chat(`,"service_tier":["auto"]`), "invalid_type", "service_tier"},
	{"metadata value 1", chatPath, chat(`,"metadata":{"a":1}`), "invalid_type", "metadata"},
	{"metadata a string", chatPath, chat(`,"metadata":"a"`), "invalid_type", "metadata"},
	{"modalities a string", chatPath, chat(`,"modalities":"text"`), "invalid_type", "modalities"},
	{"modalities [1]", chatPath, chat(`,"modalities":[1]`), "invalid_type", "modalities[0]"},
	{"audio a string", chatPath, chat(`,"audio":"alloy"`), "invalid_type", "audio"},

	// stop, logit_bias
	{"stop 5", chatPath, chat(`,"stop":5`), "invalid_type", "stop"},
	{"stop [1]", chatPath, chat(`,"stop":["a",1]`), "invalid_type", "stop[1]"},
	{"stop five strings", chatPath, chat(`,"stop":["a","b","c","d","e"]`), "array_above_max_length", "stop"},
	{"logit_bias an array", chatPath, chat(`,"logit_bias":[1]`), "invalid_type", "logit_bias"},
	{"logit_bias -101", chatPath, chat(`,"logit_bias":{"50256":-101}`), "decimal_below_min_value", "logit_bias"},
	{"logit_bias a string", chatPath, chat(`,"logit_bias":{"50256":"ban"}`), "invalid_type", "logit_bias"},

	// tools
	{"tools an object", chatPath, chat(`,"tools":{}`), "invalid_type", "tools"},
	{"tool a string", chatPath, chat(`,"tools":["f"]`), "invalid_type", "tools[0]"},
	{"tool without type", chatPath, chat(`,"tools":[{"function":{"name":"f"}}]`), "missing_required_parameter", "tools[0].type"},
	{"tool of type retrieval", chatPath, chat(`,"tools":[{"type":"retrieval"}]`), "invalid_value", "tools[0].type"},
	{"function tool without function", chatPath, chat(`,"tools":[{"type":"function"}]`), "missing_required_parameter", "tools[0].function"},
	{"function without name", chatPath, chat(`,"tools":[{"type":"function","function":{"parameters":{}}}]`), "missing_required_parameter", "tools[0].function.name"},
	{"function name with spaces", chatPath, chat(`,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"get weather"}}]`), "invalid_value", "tools[1].function.name"},
	{"function name of 65 bytes", chatPath, chat(`,"tools":[{"type":"function","function":{"name":"` + strings.Repeat("f", 65) + `"}}]`), "invalid_value", "tools[0].function.name"},
	{"function name empty", chatPath, chat(`,"tools":[{"type":"function","function":{"name":""}}]`), "invalid_value", "tools[0].function.name"},
	{"function parameters a string", chatPath, chat(`,"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]`), "invalid_type", "tools[0].function.parameters"},
	{"custom tool without name", chatPath, chat(`,"tools":[{"type":"custom","custom":{}}]`), "missing_required_parameter", "tools[0].custom.name"},
	{"tool_choice sometimes", chatPath, chat(`,"tool_choice":"sometimes"`), "invalid_value", "tool_choice"},
	{"tool_choice 5", chatPath, chat(`,"tool_choice":5`), "invalid_type", "tool_choice"},
	{"tool_choice function without function", chatPath, chat(`,"tool_choice":{"type":"function"}`), "missing_required_parameter", "tool_choice.function"},
	{"tool_choice function without name", chatPath, chat(`,"tool_choice":{"type":"function","function":{}}`), "missing_required_parameter", "tool_choice.function.name"},
	{"functions without name", chatPath, chat(`,"functions":[{"parameters":{}}]`), "missing_required_parameter", "functions[0].name"},
	{"function_call sometimes", chatPath, chat(`,"function_call":"sometimes"`), "invalid_value", "function_call"},

	// response_format
	{"response_format a string", chatPath, chat(`,"response_format":"json"`), "invalid_type", "response_format"},
	{"response_format without type", chatPath, chat(`,"response_format":{}`), "missing_required_parameter", "response_format.type"},
	{"response_format xml", chatPath, chat(`,"response_format":{"type":"xml"}`), "invalid_value", "response_format.type"},
	{"json_schema missing", chatPath, chat(`,"response_format":{"type":"json_schema"}`), "missing_required_parameter", "response_format.json_schema"},
	{"json_schema without name", chatPath, chat(`,"response_format":{"type":"json_schema","json_schema":{"schema":{}}}`), "missing_required_parameter", "response_format.json_schema.name"},
	{"json_schema strict a string", chatPath, chat(`,"response_format":{"type":"json_schema","json_schema":{"name":"s","strict":"yes"}}`), "invalid_type", "response_format.json_schema.strict"},

	// completions
	{"prompt missing", completionPath, `{"model":"chat"}`, "missing_required_parameter", "prompt"},
	{"prompt null", completionPath, `{"model":"chat","prompt":null}`, "missing_required_parameter", "prompt"},
	{"prompt 5", completionPath, `{"model":"chat","prompt":5}`, "invalid_type", "prompt"},
	{"prompt mixed", completionPath, `{"model":"chat","prompt":["a",1]}`, "invalid_type", "prompt[1]"},
	{"prompt tokens mixed", completionPath, `{"model":"chat","prompt":[1,"a"]}`, "invalid_type", "prompt[1]"},
	{"prompt token 1.5", completionPath, `{"model":"chat","prompt":[1,1.5]}`, "invalid_type", "prompt[1]"},
	{"prompt token arrays with an empty one", completionPath, `{"model":"chat","prompt":[[1],[]]}`, "empty_array", "prompt[1]"},
	{"prompt token arrays mixed", completionPath, `{"model":"chat","prompt":[[1],2]}`, "invalid_type", "prompt[1]"},
	{"prompt token arrays with a string", completionPath, `{"model":"chat","prompt":[[1,"a"]]}`, "invalid_type", "prompt[0][1]"},
	{"prompt of objects", completionPath, `{"model":"chat","prompt":[{}]}`, "invalid_type", "prompt[0]"},
	{"completion max_tokens -1", completionPath, `{"model":"chat","prompt":"a","max_tokens":-1}`, "integer_below_min_value", "max_tokens"},
	{"completion max_tokens 100", completionPath, `{"model":"chat","prompt":"a","max_tokens":"100"}`, "invalid_type", "max_tokens"},
	{"logprobs 6", completionPath, `{"model":"chat","prompt":"a","logprobs":6}`, "integer_above_max_value", "logprobs"},
	{"logprobs true", completionPath, `{"model":"chat","prompt":"a","logprobs":true}`, "invalid_type", "logprobs"},
	{"best_of 21", completionPath, `{"model":"chat","prompt":"a","best_of":21}`, "integer_above_max_value", "best_of"},
	{"echo yes", completionPath, `{"model":"chat","prompt":"a","echo":"yes"}`, "invalid_type", "echo"},
	{"suffix 5", completionPath, `{"model":"chat","prompt":"a","suffix":5}`, "invalid_type", "suffix"},
	{"completion n 0", completionPath, `{"model":"chat","prompt":"a","n":0}`, "integer_below_min_value", "n"},
	{"completion temperature hot", completionPath, `{"model":"chat","prompt":"a","temperature":"hot"}`, "invalid_type", "temperature"},
	{"completion stream_options yes", completionPath, `{"model":"chat","prompt":"a","stream_options":"yes"}`, "invalid_type", "stream_options"},
	{"completion stop 5", completionPath, `{"model":"chat","prompt":"a","stop":5}`, "invalid_type", "stop"},
	{"completion presence_penalty 2.5", completionPath, `{"model":"chat","prompt":"a","presence_penalty":2.5}`, "decimal_above_max_value", "presence_penalty"},

	// embeddings
	{"input missing", embeddingPath, `{"model":"chat"}`, "missing_required_parameter", "input"},
	{"input empty string", embeddingPath, `{"model":"chat","input":""}`, "invalid_value", "input"},
	{"input empty array", embeddingPath, `{"model":"chat","input":[]}`, "empty_array", "input"},
	{"input with an empty string", embeddingPath, `{"model":"chat","input":["a",""]}`, "invalid_value", "input[1]"},
	{"input with an empty token array", embeddingPath, `{"model":"chat","input":[[]]}`, "empty_array", "input[0]"},
	{"input 5", embeddingPath, `{"model":"chat","input":5}`, "invalid_type", "input"},
	{"input object", embeddingPath, `{"model":"chat","input":{"text":"a"}}`, "invalid_type", "input"},
	{"input token -1", embeddingPath, `{"model":"chat","input":[1,-1]}`, "integer_below_min_value", "input[1]"},
	{"encoding_format hex", embeddingPath, `{"model":"chat","input":"a","encoding_format":"hex"}`, "invalid_value", "encoding_format"},
	{"dimensions 0", embeddingPath, `{"model":"chat","input":"a","dimensions":0}`, "integer_below_min_value", "dimensions"},
	{"dimensions 1.5", embeddingPath, `{"model":"chat","input":"a","dimensions":1.5}`, "invalid_type", "dimensions"},
	{"embedding user 5", embeddingPath, `{"model":"chat","input":"a","user":5}`, "invalid_type", "user"},
}

var goodParams = []paramCase{
	{name: "minimal chat", path: chatPath, body: chat(``)},
	{name: "every chat parameter", path: chatPath, body: chat(`,"max_tokens":100,"max_completion_tokens":2147483647,"temperature":0,"top_p":1,"n":1,` +
		`"presence_penalty":-2,"frequency_penalty":2,"stream":false,"stream_options":{"include_usage":true},"stop":["a","b","c","d"],` +
		`"logit_bias":{"50256":-100,"42":100,"7":0.5},"logprobs":true,"top_logprobs":20,"seed":-9223372036854775808,"user":"u-1",` +
		`"tools":[{"type":"function","function":{"name":"get_weather-2","description":"d","parameters":{"type":"object","properties":{}},"strict":true}},{"type":"custom","custom":{"name":"grep"}}],` +
		`"tool_choice":{"type":"function","function":{"name":"get_weather-2"}},"parallel_tool_calls":false,` +
		`"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}},` +
		`"modalities":["text"],"reasoning_effort":"low","metadata":{"team":"search"},"service_tier":"auto","store":false,` +
		`"verbosity":"low","prompt_cache_key":"k","safety_identifier":"s","audio":{"voice":"alloy","format":"mp3"},"prediction":{"type":"content","content":"x"},"web_search_options":{}`)},
	{name: "optional parameters set to null", path: chatPath, body: chat(`,"max_tokens":null,"temperature":null,"stop":null,"tools":null,"tool_choice":null,` +
		`"stream":null,"stream_options":null,"n":null,"seed":null,"user":null,"logit_bias":null,"response_format":null,"metadata":null`)},
	{name: "unknown members pass at every level", path: chatPath, body: `{"model":"chat","x_vendor":{"deep":[1,{"a":null}]},"top_k":40,` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}},{"type":"video_url","video_url":{"url":"v"}}],"x_note":1}],` +
		`"tools":[{"type":"function","function":{"name":"f","x_extra":true},"x_tool":1}],"stream_options":{"include_usage":false,"x_opt":1}}`},
	{name: "stream with usage", path: chatPath, body: chat(`,"stream":true,"stream_options":{"include_usage":true}`)},
	{name: "stop string", path: chatPath, body: chat(`,"stop":"\n"`)},
	{name: "stop empty array", path: chatPath, body: chat(`,"stop":[]`)},
	{name: "tool_choice strings", path: chatPath, body: chat(`,"tool_choice":"required"`)},
	{name: "function_call object", path: chatPath, body: chat(`,"function_call":{"name":"f"},"functions":[{"name":"f","parameters":{}}]`)},
	{name: "response_format json_object", path: chatPath, body: chat(`,"response_format":{"type":"json_object"}`)},
	{name: "a conversation with tools", path: chatPath, body: string(typicalChatBody)},
	{name: "every role", path: chatPath, body: chatMessages(`[{"role":"system","content":"s","name":"sys"},{"role":"developer","content":[{"type":"text","text":"d"}]},` +
		`{"role":"user","content":[{"type":"text","text":"t"},{"type":"image_url","image_url":"https://example.com/a.png"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"auto"}},` +
		`{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},{"type":"file","file":{"file_id":"file-1","filename":"a.pdf"}}]},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"call_2","type":"custom","custom":{"name":"grep","input":"x"}}]},` +
		`{"role":"tool","tool_call_id":"call_1","content":"42"},` +
		`{"role":"assistant","function_call":{"name":"f","arguments":"{}"}},{"role":"function","name":"f","content":null},` +
		`{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"refusal","refusal":"no"}],"refusal":null},` +
		`{"role":"assistant","audio":{"id":"audio_1"}},{"role":"user","content":""}]`)},
	{name: "integers at their bounds", path: chatPath, body: chat(`,"max_tokens":1,"n":128,"top_logprobs":0,"seed":9223372036854775807,"temperature":2,"top_p":0`)},
	{name: "negative zero is an integer", path: chatPath, body: chat(`,"seed":-0`)},
	{name: "completion prompt string", path: completionPath, body: `{"model":"chat","prompt":"Say this is a test","max_tokens":0,"echo":true,"logprobs":5,"best_of":20,"suffix":"x","n":2,"stop":"\n","temperature":1.5,"user":"u","seed":1}`},
	{name: "completion prompt strings", path: completionPath, body: `{"model":"chat","prompt":["a","b"]}`},
	{name: "completion prompt empty array", path: completionPath, body: `{"model":"chat","prompt":[]}`},
	{name: "completion prompt tokens", path: completionPath, body: `{"model":"chat","prompt":[1212,318,257]}`},
	{name: "completion prompt token arrays", path: completionPath, body: `{"model":"chat","prompt":[[1212,318],[257]],"x_unknown":{}}`},
	{name: "embedding string", path: embeddingPath, body: `{"model":"chat","input":"hello","encoding_format":"base64","dimensions":256,"user":"u"}`},
	{name: "embedding strings", path: embeddingPath, body: `{"model":"chat","input":["a","b"],"encoding_format":"float"}`},
	{name: "embedding tokens", path: embeddingPath, body: `{"model":"chat","input":[1,2,3]}`},
	{name: "embedding token arrays", path: embeddingPath, body: `{"model":"chat","input":[[1,2],[3]],"x_unknown":null}`},
	{name: "embedding stream is not a parameter", path: embeddingPath, body: `{"model":"chat","input":"a","stream":"yes"}`},
}

func TestParams(t *testing.T) {
	in := newTestIngress(t, "1MiB")
	for _, tc := range badParams {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			before := in.calls.Load()
			status, body := in.post(t, tc.path, []byte(tc.body))
			require.Equal(t, http.StatusBadRequest, status, "%s", body)
			e := decodeOpenAIError(t, body)
			assert.Equal(t, "invalid_request_error", *e.Error.Type)
			assert.Equal(t, tc.code, *e.Error.Code, *e.Error.Message)
			require.NotNil(t, e.Error.Param, *e.Error.Message)
			assert.Equal(t, tc.param, *e.Error.Param)
			assert.Contains(t, *e.Error.Message, "'"+tc.param+"'", "the message names the parameter")
			assert.Equal(t, before, in.calls.Load(), "a refused request is not sent upstream")
		})
	}
	for _, tc := range goodParams {
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			require.True(t, json.Valid([]byte(tc.body)), tc.body)
			status, body := in.post(t, tc.path, []byte(tc.body))
			require.Equal(t, http.StatusOK, status, "%s", body)
			assert.Equal(t, tc.body, string(in.lastBody()), "the body is forwarded untouched")
		})
	}
}

// Values are never quoted in messages: they may be data, and errors are
// logged.
func TestParamErrorsDoNotQuoteValues(t *testing.T) {
	in := newTestIngress(t, "1MiB")
	for _, body := range []string{
		chatMessages(`[{"role":"jane@bank.de","content":"hi"}]`),
		chat(`,"tools":[{"type":"function","function":{"name":"jane@bank.de"}}]`),
		chat(`,"max_tokens":4111111111111111111`),
		chat(`,"metadata":{"jane@bank.de":1}`),
		chat(`,"response_format":{"type":"jane@bank.de"}`),
	} {
		status, out := in.post(t, chatPath, []byte(body))
		require.Equal(t, http.StatusBadRequest, status, "%s", out)
		assert.NotContains(t, string(out), "jane")
		assert.NotContains(t, string(out), "4111111111111111111")
	}
}

// The limits are checked before anything else: a body a million levels
// deep, or past another limit, is refused with the limit's code, and the
// upstream never hears of it.
func TestJSONLimitsAtIngress(t *testing.T) {
	in := newTestIngress(t, "4MiB")
	deep := bytes.Repeat([]byte("["), 1_000_000)
	for _, tc := range []struct {
		name, path string
		body       []byte
		code, msg  string
	}{
		{"a million arrays deep", chatPath, deep, "json_too_deep", "The request body nests arrays and objects deeper than 64 levels (server.json.max_depth)."},
		{"a million objects deep", chatPath, bytes.Repeat([]byte(`{"a":`), 400_000), "json_too_deep", "deeper than 64 levels"},
		{"deep inside a valid chat", chatPath, []byte(chat(`,"x":` + strings.Repeat("[", 65) + strings.Repeat("]", 65))), "json_too_deep", "server.json.max_depth"},
		{"deep on embeddings", embeddingPath, deep, "json_too_deep", "server.json.max_depth"},
		{"deep on completions", completionPath, deep, "json_too_deep", "server.json.max_depth"},
		{"too many items", chatPath, []byte(`{"model":"chat","messages":[` + strings.Repeat(`{"role":"user","content":"a"},`, 100_000) + `{"role":"user","content":"a"}]}`),
			"json_array_too_long", "The request body holds an array or object with more than 100000 items (server.json.max_array_items)."},
		{"repeated key", chatPath, []byte(`{"model":"chat","messages":[{"role":"user","content":"a","content":"b"}]}`), "invalid_json", `The request body repeats the key "content" in one object.`},
		{"escaped repeated key", chatPath, []byte(`{"model":"chat","\u006dodel":"x","messages":[]}`), "invalid_json", `repeats the key "model"`},
		{"invalid", chatPath, []byte(`{"model":"chat",}`), "invalid_json", "We could not parse the JSON body of your request."},
		{"empty", chatPath, nil, "invalid_json", "The request body is empty; expected a JSON object."},
		{"not an object", chatPath, []byte(`["model"]`), "invalid_json", "The request body must be a JSON object."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := in.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, status, "%s", body)
			e := decodeOpenAIError(t, body)
			assert.Equal(t, "invalid_request_error", *e.Error.Type)
			assert.Equal(t, tc.code, *e.Error.Code)
			assert.Nil(t, e.Error.Param)
			assert.Contains(t, *e.Error.Message, tc.msg)
		})
	}
	assert.Zero(t, in.calls.Load(), "the upstream was never called")
}

// The string bound is the server's: body_limit by default, or
// server.json.max_string_bytes.
func TestJSONStringLimitAtIngress(t *testing.T) {
	in := newTestIngress(t, "1MiB")
	in.srv.cfg.Server.JSON.MaxStringBytes = 1000
	long := chatMessages(`[{"role":"user","content":"` + strings.Repeat("a", 1001) + `"}]`)
	status, body := in.post(t, chatPath, []byte(long))
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	e := decodeOpenAIError(t, body)
	assert.Equal(t, "json_string_too_long", *e.Error.Code)
	assert.Equal(t, "The request body holds a string or key longer than 1000 bytes (server.json.max_string_bytes).", *e.Error.Message)

	status, body = in.post(t, chatPath, []byte(chatMessages(`[{"role":"user","content":"`+strings.Repeat("a", 1000)+`"}]`)))
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.EqualValues(t, 1, in.calls.Load())
}

// parseCall keeps the fields the rest of the gateway reads.
func TestParseCallFields(t *testing.T) {
	for _, tc := range []struct {
		name         string
		op           providers.Operation
		body         string
		stream       bool
		includeUsage bool
		maxTokens    int64
		temperature  *float64
	}{
		{name: "chat defaults", op: providers.OpChat, body: chat(``)},
		{name: "max_completion_tokens wins", op: providers.OpChat, body: chat(`,"max_tokens":10,"max_completion_tokens":20`), maxTokens: 20},
		{name: "max_tokens", op: providers.OpChat, body: chat(`,"max_tokens":10,"max_completion_tokens":null`), maxTokens: 10},
		{name: "stream with usage", op: providers.OpChat, body: chat(`,"stream":true,"stream_options":{"include_usage":true},"temperature":0.5`), stream: true, includeUsage: true, temperature: ptr(0.5)},
		{name: "completion", op: providers.OpCompletion, body: `{"model":"chat","prompt":"a","max_tokens":7,"stream":true,"temperature":0}`, stream: true, maxTokens: 7, temperature: ptr(0.0)},
		{name: "completion reads max_completion_tokens first, as before", op: providers.OpCompletion, body: `{"model":"chat","prompt":"a","max_tokens":7,"max_completion_tokens":20}`, maxTokens: 20},
		{name: "embeddings", op: providers.OpEmbeddings, body: `{"model":"chat","input":"a"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseCallWith(tc.op, []byte(tc.body), config.JSONLimits{})
			require.NoError(t, err)
			assert.Equal(t, "chat", c.model)
			assert.Equal(t, tc.stream, c.stream)
			assert.Equal(t, tc.includeUsage, c.includeUsage)
			assert.Equal(t, tc.maxTokens, c.maxTokens)
			assert.Equal(t, tc.temperature, c.temperature)
			assert.Equal(t, tc.body, string(c.body))
		})
	}
}

func ptr[T any](v T) *T { return &v }
