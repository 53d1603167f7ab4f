package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// openaiResponsesBackend is a fake OpenAI API serving the Responses API
// (as OpenAI writes it: the Response object, and its event stream) and
// chat completions, recording each request. A Responses request with
// tools and no function_call_output in its input gets a get_weather call;
// otherwise text, naming the last function output when there is one.
// failAfter > 0 cuts a stream with an error event after that many events.
type openaiResponsesBackend struct {
	*upstream
	mu        sync.Mutex
	bodies    map[string][][]byte // by path
	failAfter int
	status    int // answer every request with this status when set
}

func newOpenAIResponsesBackend(t *testing.T) *openaiResponsesBackend {
	b := &openaiResponsesBackend{bodies: map[string][][]byte{}}
	b.upstream = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies[r.URL.Path] = append(b.bodies[r.URL.Path], raw)
		failAfter, status := b.failAfter, b.status
		b.mu.Unlock()
		if status != 0 {
			writeJSON(w, status, `{"error":{"message":"overloaded","type":"server_error","code":null}}`)
			return
		}
		if r.URL.Path == "/v1/chat/completions" {
			if gjson.GetBytes(raw, "stream").Bool() {
				writeSSE(w, chunk("up", `{"role":"assistant","content":"translated"}`, "stop"), usageChunk("up", 9, 1))
				return
			}
			writeJSON(w, 200, chatCompletion("up", "translated", 9, 1, 0))
			return
		}
		require.Equal(t, "/v1/responses", r.URL.Path)
		req := gjson.ParseBytes(raw)
		var output string
		req.Get("input").ForEach(func(_, it gjson.Result) bool {
			if it.Get("type").Str == "function_call_output" {
				output = it.Get("output").Str
			}
			return true
		})
		var item map[string]any
		var deltas []string
		if req.Get("tools.#").Int() > 0 && output == "" {
			item = map[string]any{"id": "fc_up1", "type": "function_call", "status": "completed", "arguments": `{"city":"Paris"}`,
				"call_id": "call_up1", "name": "get_weather"}
			deltas = []string{`{"city":`, `"Paris"}`}
		} else {
			text := "hello there"
			if output != "" {
				text = "it is " + output
			}
			item = map[string]any{"id": "msg_up1", "type": "message", "status": "completed", "role": "assistant",
				"content": []any{map[string]any{"type": "output_text", "annotations": []any{}, "logprobs": []any{}, "text": text}}}
			deltas = []string{text[:5], text[5:]}
		}
		if !req.Get("stream").Bool() {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(responseObject(req, "completed", []any{item}, true))
			return
		}
		writeResponsesStream(w, req, item, deltas, failAfter)
	})
	return b
}

func (b *openaiResponsesBackend) last(path string) gjson.Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.bodies[path]
	if len(all) == 0 {
		return gjson.Result{}
	}
	return gjson.ParseBytes(all[len(all)-1])
}

func (b *openaiResponsesBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.bodies[path])
}

// responseObject is a Response as OpenAI writes it.
func responseObject(req gjson.Result, status string, output []any, usage bool) map[string]any {
	o := map[string]any{
		"id": "resp_upstream", "object": "response", "created_at": 1741290958, "status": status, "background": false,
		"error": nil, "incomplete_details": nil, "instructions": nil, "max_output_tokens": nil, "model": req.Get("model").Str,
		"output": output, "parallel_tool_calls": true, "previous_response_id": nil, "reasoning": map[string]any{"effort": nil, "summary": nil},
		"store": req.Get("store").Value(), "temperature": 1.0, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"tool_choice": "auto", "tools": []any{}, "top_p": 1.0, "truncation": "disabled", "usage": nil, "user": nil, "metadata": map[string]any{},
	}
	if usage {
		o["usage"] = map[string]any{"input_tokens": 100, "input_tokens_details": map[string]any{"cached_tokens": 40},
			"output_tokens": 20, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 120}
	}
	return o
}

// writeResponsesStream writes the event stream OpenAI sends for one
// output item (a message or a function call) streamed in deltas.
func writeResponsesStream(w http.ResponseWriter, req gjson.Result, item map[string]any, deltas []string, failAfter int) {
	w.Header().Set("Content-Type", "text/event-stream")
	var events []map[string]any
	add := func(typ string, ev map[string]any) {
		ev["type"] = typ
		events = append(events, ev)
	}
	add("response.created", map[string]any{"response": responseObject(req, "in_progress", []any{}, false)})
	add("response.in_progress", map[string]any{"response": responseObject(req, "in_progress", []any{}, false)})
	id := item["id"]
	open := map[string]any{}
	for k, v := range item {
		open[k] = v
	}
	open["status"] = "in_progress"
	if item["type"] == "message" {
		open["content"] = []any{}
		part := item["content"].([]any)[0].(map[string]any)
		add("response.output_item.added", map[string]any{"output_index": 0, "item": open})
		add("response.content_part.added", map[string]any{"item_id": id, "output_index": 0, "content_index": 0,
			"part": map[string]any{"type": "output_text", "annotations": []any{}, "logprobs": []any{}, "text": ""}})
		for _, d := range deltas {
			add("response.output_text.delta", map[string]any{"item_id": id, "output_index": 0, "content_index": 0, "delta": d, "logprobs": []any{}})
		}
		add("response.output_text.done", map[string]any{"item_id": id, "output_index": 0, "content_index": 0, "text": part["text"], "logprobs": []any{}})
		add("response.content_part.done", map[string]any{"item_id": id, "output_index": 0, "content_index": 0, "part": part})
	} else {
		open["arguments"] = ""
		add("response.output_item.added", map[string]any{"output_index": 0, "item": open})
		for _, d := range deltas {
			add("response.function_call_arguments.delta", map[string]any{"item_id": id, "output_index": 0, "delta": d})
		}
		add("response.function_call_arguments.done", map[string]any{"item_id": id, "output_index": 0, "arguments": item["arguments"]})
	}
	add("response.output_item.done", map[string]any{"output_index": 0, "item": item})
	add("response.completed", map[string]any{"response": responseObject(req, "completed", []any{item}, true)})
	bw := bufio.NewWriter(w)
	for i, ev := range events {
		if failAfter > 0 && i == failAfter {
			fmt.Fprintf(bw, "event: error\ndata: {\"type\":\"error\",\"sequence_number\":%d,\"code\":\"server_error\",\"message\":\"the model crashed\",\"param\":null}\n\n", i)
			break
		}
		ev["sequence_number"] = i
		data, _ := json.Marshal(ev)
		fmt.Fprintf(bw, "event: %s\ndata: %s\n\n", ev["type"], data)
	}
	bw.Flush()
}

// nativeResponsesGateway serves "gpt" on the fake OpenAI backend (native
// Responses) and "chat" on a chat-only upstream (translated).
func nativeResponsesGateway(t *testing.T, up *openaiResponsesBackend, chat *upstream, extra string) string {
	t.Helper()
	y := "server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n" +
		"  - {name: openai, kind: proprietary, provider: openai, base_url: " + up.URL + "/v1, api_key: k, responses_api: native,\n" +
		"     price: {input_per_mtok: 2, output_per_mtok: 8, cached_input_per_mtok: 0.5}}\n" +
		"  - {name: vllm, kind: selfhosted, provider: openai, base_url: " + chat.URL + "/v1, api_key: k}\n" +
		"models:\n  - {name: gpt, deployments: [{backend: openai, model: gpt-4.1-2025-04-14}]}\n" +
		"  - {name: chat, deployments: [{backend: vllm, model: up}]}\n" + extra +
		"keys:\n  - {id: test, sha256: " + gateway.HashKey(testKey) + ", tenant: t, team: search}\n"
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err, y)
	base, _ := startGateway(t, cfg)
	return base
}

// A Responses request to a backend that serves the Responses API goes as
// the client wrote it (model rewritten, made stateless), and OpenAI's own
// answer comes back under the gateway's response id, with usage and cost
// exact, stored for GET and previous_response_id.
func TestResponsesNativeToOpenAI(t *testing.T) {
	up := newOpenAIResponsesBackend(t)
	chatUp := toolUpstream(t)
	base := nativeResponsesGateway(t, up, chatUp, "")
	client := sdk(base)
	ctx := context.Background()
	weather := responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{Name: "get_weather",
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}

	t.Run("plain", func(t *testing.T) {
		var hr *http.Response
		resp, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt",
			Input:      responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			Reasoning:  responses.ReasoningParam{Effort: responses.ReasoningEffortLow},
			Include:    []responses.ResponseIncludable{responses.ResponseIncludableReasoningEncryptedContent},
			Truncation: responses.ResponseNewParamsTruncationAuto,
		}, option.WithResponseInto(&hr))
		require.NoError(t, err)
		assert.Equal(t, "hello there", resp.OutputText())
		assert.True(t, strings.HasPrefix(resp.ID, "resp_") && resp.ID != "resp_upstream", "the gateway's id: %s", resp.ID)
		assert.True(t, gjson.Get(resp.RawJSON(), "store").Bool(), "the client's store")
		assert.EqualValues(t, 100, resp.Usage.InputTokens)
		assert.EqualValues(t, 40, resp.Usage.InputTokensDetails.CachedTokens)
		assert.Equal(t, "openai", hr.Header.Get("X-Switchyard-Backend"))
		assert.Empty(t, hr.Header.Get(gateway.HeaderDropped), "nothing was dropped")
		// 60 × 2 + 40 × 0.5 + 20 × 8 micro-USD.
		assert.Equal(t, "0.0003", hr.Header.Get("X-Switchyard-Cost-Usd"))

		sent := up.last("/v1/responses")
		assert.Equal(t, "gpt-4.1-2025-04-14", sent.Get("model").Str)
		assert.Equal(t, "low", sent.Get("reasoning.effort").Str, "reasoning passed on")
		assert.Equal(t, "reasoning.encrypted_content", sent.Get("include.0").Str)
		assert.Equal(t, "auto", sent.Get("truncation").Str)
		assert.Equal(t, "hi", sent.Get("input").Str, "the client's input as it was")
		assert.False(t, sent.Get("store").Bool(), "the upstream keeps nothing")
		assert.Equal(t, gjson.False, sent.Get("store").Type)
		assert.Equal(t, 0, up.count("/v1/chat/completions"))

		got, err := client.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
		require.NoError(t, err)
		assert.Equal(t, resp.ID, got.ID)
		assert.Equal(t, "hello there", got.OutputText())
	})

	t.Run("streamed", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		var text strings.Builder
		var types []string
		var created, completed responses.Response
		for stream.Next() {
			ev := stream.Current()
			types = append(types, ev.Type)
			switch ev.Type {
			case "response.created":
				created = ev.AsResponseCreated().Response
			case "response.output_text.delta":
				text.WriteString(ev.Delta)
			case "response.completed":
				completed = ev.AsResponseCompleted().Response
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
			"response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
			"response.output_item.done", "response.completed"}, types, "OpenAI's events, in its order")
		assert.Equal(t, "hello there", text.String())
		assert.Equal(t, created.ID, completed.ID)
		assert.NotEqual(t, "resp_upstream", completed.ID)
		assert.EqualValues(t, 20, completed.Usage.OutputTokens)
		assert.True(t, up.last("/v1/responses").Get("stream").Bool())

		got, err := client.Responses.Get(ctx, completed.ID, responses.ResponseGetParams{})
		require.NoError(t, err)
		assert.Equal(t, "hello there", got.OutputText())
	})

	t.Run("tool round trip and previous_response_id", func(t *testing.T) {
		first, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt", Tools: []responses.ToolUnionParam{weather},
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in Paris?")}})
		require.NoError(t, err)
		require.Len(t, first.Output, 1)
		call := first.Output[0].AsFunctionCall()
		assert.Equal(t, "get_weather", call.Name)
		assert.JSONEq(t, `{"city":"Paris"}`, call.Arguments)

		second, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt", Tools: []responses.ToolUnionParam{weather},
			PreviousResponseID: openai.String(first.ID),
			Input:              responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{functionOutput(call.CallID, "sunny")}}})
		require.NoError(t, err)
		assert.Equal(t, "it is sunny", second.OutputText())
		assert.Equal(t, first.ID, second.PreviousResponseID)

		sent := up.last("/v1/responses")
		assert.False(t, sent.Get("previous_response_id").Exists(), "the upstream never sees the gateway's ids")
		input := sent.Get("input").Array()
		require.Len(t, input, 3, "the conversation inlined: %s", sent.Get("input").Raw)
		assert.Equal(t, "user", input[0].Get("role").Str)
		assert.Equal(t, "weather in Paris?", input[0].Get("content.0.text").Str)
		assert.Equal(t, "function_call", input[1].Get("type").Str)
		assert.Equal(t, "call_up1", input[1].Get("call_id").Str)
		assert.False(t, input[1].Get("id").Exists(), "stored items go without their ids")
		assert.Equal(t, "function_call_output", input[2].Get("type").Str)

		// The conversation is the gateway's: it continues on a backend
		// that only speaks chat completions.
		third, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "chat", PreviousResponseID: openai.String(second.ID),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("thanks")}})
		require.NoError(t, err)
		assert.Equal(t, "it is sunny", third.OutputText(), "the chat upstream read the tool result in the history")
		msgs := chatUp.received()[len(chatUp.received())-1].Body["messages"].([]any)
		var roles []string
		for _, m := range msgs {
			roles = append(roles, m.(map[string]any)["role"].(string))
		}
		assert.Equal(t, []string{"user", "assistant", "tool", "assistant", "user"}, roles)
		assert.Equal(t, "it is sunny", msgs[3].(map[string]any)["content"])
	})
}

// A native stream cut by the upstream ends with response.failed under the
// gateway's id, after what had been relayed; an upstream that fails before
// answering falls back to the next deployment, which translates.
func TestResponsesNativeFailures(t *testing.T) {
	up := newOpenAIResponsesBackend(t)
	chatUp := toolUpstream(t)
	base := nativeResponsesGateway(t, up, chatUp, "  - {name: fallback, deployments: [{backend: openai, model: gpt-4.1}, {backend: vllm, model: up}]}\n")
	client := sdk(base)
	ctx := context.Background()

	up.mu.Lock()
	up.failAfter = 4
	up.mu.Unlock()
	stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	var types []string
	var created responses.Response
	var failed responses.ResponseFailedEvent
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.created":
			created = ev.AsResponseCreated().Response
		case "response.failed":
			failed = ev.AsResponseFailed()
		}
	}
	require.NotEmpty(t, types)
	assert.Equal(t, "response.failed", types[len(types)-1], "%v", types)
	assert.Equal(t, created.ID, failed.Response.ID)
	assert.Equal(t, responses.ResponseStatusFailed, failed.Response.Status)
	assert.Contains(t, failed.Response.Error.Message, "the model crashed")
	assert.EqualValues(t, 4, failed.SequenceNumber)

	up.mu.Lock()
	up.failAfter, up.status = 0, 503
	up.mu.Unlock()
	var hr *http.Response
	resp, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "fallback",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}, option.WithResponseInto(&hr))
	require.NoError(t, err)
	assert.Equal(t, "hello there", resp.OutputText(), "translated for the chat-only deployment")
	assert.Equal(t, "vllm", hr.Header.Get("X-Switchyard-Backend"))
}

// The client's own request goes out only when the decision covered all of
// it: a member the translation drops that holds a card number sends the
// translation (to the same backend's chat completions) instead.
func TestResponsesNativeOnlyWhenTheDecisionCoversIt(t *testing.T) {
	up := newOpenAIResponsesBackend(t)
	base := nativeResponsesGateway(t, up, toolUpstream(t), "")
	post := func(body string) gjson.Result {
		req, _ := http.NewRequest(http.MethodPost, base+"/responses", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, "%s", raw)
		return gjson.ParseBytes(raw)
	}
	got := post(`{"model":"gpt","input":"hello","x_notes":"card 4111 1111 1111 1111"}`)
	assert.Equal(t, "translated", got.Get("output.0.content.0.text").Str)
	assert.Equal(t, 0, up.count("/v1/responses"))
	assert.NotContains(t, up.last("/v1/chat/completions").Raw, "4111")

	got = post(`{"model":"gpt","input":"hello","x_notes":"nothing to see"}`)
	assert.Equal(t, "hello there", got.Get("output.0.content.0.text").Str)
	assert.Equal(t, "nothing to see", up.last("/v1/responses").Get("x_notes").Str, "members unknown to the gateway pass")
}

// Under the shipped policy, sensitive data anywhere in a Responses request
// (instructions, an input item, a function's output, an earlier turn)
// keeps it off the proprietary backend that would take it natively.
func TestResponsesNativeSensitiveDataStaysLocal(t *testing.T) {
	up := newOpenAIResponsesBackend(t)
	chatUp := toolUpstream(t)
	base := nativeResponsesGateway(t, up, chatUp, "  - {name: mixed, deployments: [{backend: openai, model: gpt-4.1}, {backend: vllm, model: up}]}\n")
	client := sdk(base)
	ctx := context.Background()
	const card = "4111 1111 1111 1111"
	backend := func(params responses.ResponseNewParams) (string, *responses.Response) {
		var hr *http.Response
		resp, err := client.Responses.New(ctx, params, option.WithResponseInto(&hr))
		require.NoError(t, err)
		return hr.Header.Get("X-Switchyard-Backend"), resp
	}
	cases := sensitiveResponses("mixed", card)
	for name, params := range cases {
		t.Run(name, func(t *testing.T) {
			b, _ := backend(params)
			assert.Equal(t, "vllm", b)
		})
	}
	b, first := backend(responses.ResponseNewParams{Model: "mixed", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("my card is " + card)}})
	assert.Equal(t, "vllm", b)
	b, _ = backend(responses.ResponseNewParams{Model: "mixed", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is the capital of France?")}})
	assert.Equal(t, "vllm", b, "the conversation carries the card")

	b, _ = backend(responses.ResponseNewParams{Model: "mixed", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is the capital of France?")}})
	assert.Equal(t, "openai", b, "without sensitive data the proprietary backend, first in order, answers")
	assert.Equal(t, 1, up.count("/v1/responses"))
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, bodies := range up.bodies {
		for _, body := range bodies {
			assert.NotContains(t, string(body), "4111")
		}
	}
}

// By default a proprietary openai backend is tried natively: one that
// serves /responses gets the client's own request; one that answers
// chat completions only is learned and translated, from the first
// request on.
func TestResponsesNativeByDefaultForProprietaryOpenAI(t *testing.T) {
	up := newOpenAIResponsesBackend(t)
	chatOnly := toolUpstream(t) // answers every path with chat completions
	y := "server: {listen: 127.0.0.1:0, shutdown_timeout: 5s}\nlog: {level: error}\npolicy: {audit: none}\nbackends:\n" +
		"  - {name: openai, kind: proprietary, provider: openai, base_url: " + up.URL + "/v1, api_key: k}\n" +
		"  - {name: compat, kind: proprietary, provider: openai, base_url: " + chatOnly.URL + "/v1, api_key: k}\n" +
		"models:\n  - {name: gpt, deployments: [{backend: openai, model: gpt-4.1}]}\n" +
		"  - {name: compat, deployments: [{backend: compat, model: up}]}\n" +
		"keys:\n  - {id: test, sha256: " + gateway.HashKey(testKey) + ", tenant: t, team: search}\n"
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)
	client := sdk(base)
	for _, model := range []string{"gpt", "compat", "compat"} {
		resp, err := client.Responses.New(context.Background(), responses.ResponseNewParams{Model: model,
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		require.NoError(t, err, model)
		assert.Equal(t, "hello there", resp.OutputText(), model)
	}
	assert.Equal(t, 1, up.count("/v1/responses"), "the backend that serves it got the native request")
	var paths []string
	for _, r := range chatOnly.received() {
		paths = append(paths, r.Path)
	}
	assert.Equal(t, []string{"/v1/responses", "/v1/chat/completions", "/v1/chat/completions"}, paths, "tried once, then translated")
}
