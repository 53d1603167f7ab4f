package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockUntilCanceled is an upstream that never answers; it returns when the
// gateway gives up on it.
func blockUntilCanceled(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestErrors(t *testing.T) {
	ok := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("m", "from the fallback", 1, 1, 0))
	})
	limited := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		writeJSON(w, 429, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
	})
	slow := newUpstream(t, blockUntilCanceled)
	broken := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`)
	})
	unauthorized := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, `{"error":{"message":"Incorrect API key provided: `+backendKey+`","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
	})
	var badRequestCalls atomic.Int32
	badRequest := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		badRequestCalls.Add(1)
		writeJSON(w, 400, `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`)
	})
	dead := deadUpstream(t)

	cfg := gatewayConfig(t, "",
		route{name: "down", backends: []string{dead}},
		route{name: "slow", backends: []string{slow.URL + "/v1"}},
		route{name: "fallback", backends: []string{limited.URL + "/v1", ok.URL + "/v1"}},
		route{name: "limited", backends: []string{limited.URL + "/v1"}},
		route{name: "broken", backends: []string{broken.URL + "/v1"}},
		route{name: "unauthorized", backends: []string{unauthorized.URL + "/v1"}},
		route{name: "badrequest", backends: []string{badRequest.URL + "/v1", ok.URL + "/v1"}},
		route{name: "down-then-ok", backends: []string{dead, ok.URL + "/v1"}},
	)
	base, _ := startGateway(t, cfg)
	chat := func(model string) []byte {
		return []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`)
	}

	for _, tc := range []struct {
		name       string
		body       []byte
		key        string
		status     int
		typ, code  string
		param      string
		retryAfter string
		msgHas     string
	}{
		{name: "bad JSON", body: []byte(`{"model":`), status: 400, typ: "invalid_request_error", code: "invalid_json"},
		{name: "not an object", body: []byte(`[1,2]`), status: 400, typ: "invalid_request_error", code: "invalid_json"},
		{name: "duplicate key", body: []byte(`{"model":"down","messages":[{"role":"user","content":"hi","content":"123-45-6789"}]}`), status: 400, typ: "invalid_request_error", code: "invalid_json", msgHas: `"content"`},
		{name: "missing model", body: []byte(`{"messages":[]}`), status: 400, typ: "invalid_request_error", code: "missing_required_parameter", param: "model"},
		{name: "model not a string", body: []byte(`{"model":42}`), status: 400, typ: "invalid_request_error", code: "invalid_type", param: "model"},
		{name: "stream not a boolean", body: []byte(`{"model":"down","stream":"yes"}`), status: 400, typ: "invalid_request_error", code: "invalid_type", param: "stream"},
		{name: "unknown model", body: chat("gpt-9"), status: 404, typ: "invalid_request_error", code: "model_not_found", param: "model", msgHas: "gpt-9"},
		{name: "bad key", body: chat("down"), key: "sk-wrong", status: 401, typ: "invalid_request_error", code: "invalid_api_key"},
		{name: "body too large", body: []byte(`{"model":"down","messages":[{"role":"user","content":"` + strings.Repeat("x", 100<<10) + `"}]}`), status: 413, typ: "invalid_request_error", code: "request_too_large"},
		{name: "upstream down", body: chat("down"), status: 502, typ: "api_error", code: "upstream_unavailable"},
		{name: "upstream first-byte timeout", body: chat("slow"), status: 504, typ: "api_error", code: "upstream_timeout"},
		{name: "429 without fallback keeps 429 and Retry-After", body: chat("limited"), status: 429, typ: "requests", code: "rate_limit_exceeded", retryAfter: "7", msgHas: "Rate limit reached"},
		{name: "upstream 500 keeps its status", body: chat("broken"), status: 500, typ: "server_error", code: "upstream_error"},
		{name: "upstream refusing the gateway's key is a 502", body: chat("unauthorized"), status: 502, typ: "api_error", code: "upstream_auth_failed"},
		{name: "upstream 400 passes through without fallback", body: chat("badrequest"), status: 400, typ: "invalid_request_error", code: "invalid_value", param: "temperature", msgHas: "temperature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testKey
			if tc.key != "" {
				key = tc.key
			}
			var resp *http.Response
			err := sdk(base, option.WithAPIKey(key)).Post(context.Background(), "chat/completions", nil, nil,
				option.WithRequestBody("application/json", tc.body), option.WithResponseInto(&resp))
			var apiErr *openai.Error
			require.ErrorAs(t, err, &apiErr, "the body parses as OpenAI's error shape")
			assert.Equal(t, tc.status, apiErr.StatusCode)
			assert.Equal(t, tc.typ, apiErr.Type)
			assert.Equal(t, tc.code, apiErr.Code)
			assert.Equal(t, tc.param, apiErr.Param)
			assert.NotEmpty(t, apiErr.Message)
			assert.Contains(t, apiErr.Message, tc.msgHas)
			assert.NotContains(t, apiErr.RawJSON(), backendKey, "secrets never reach the client")
			assert.Equal(t, "application/json", apiErr.Response.Header.Get("Content-Type"))
			assert.NotEmpty(t, apiErr.Response.Header.Get("X-Request-Id"))
			if tc.retryAfter != "" {
				assert.Equal(t, tc.retryAfter, apiErr.Response.Header.Get("Retry-After"))
			}
		})
	}
	assert.EqualValues(t, 1, badRequestCalls.Load(), "a 400 is not retried on the next deployment")
}

func TestFallback(t *testing.T) {
	second := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "event-stream") {
			writeSSE(w, chunk("m", `{"content":"streamed by the second"}`, "stop"), usageChunk("m", 1, 1))
			return
		}
		writeJSON(w, 200, chatCompletion("m", "answered by the second", 1, 1, 0))
	})
	limited := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		writeJSON(w, 429, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`)
	})
	// A stream whose headers come at once but whose first event never does.
	stalled := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	base, _ := startGateway(t, gatewayConfig(t, "",
		route{name: "after429", backends: []string{limited.URL + "/v1", second.URL + "/v1"}},
		route{name: "afterdown", backends: []string{deadUpstream(t), second.URL + "/v1"}},
		route{name: "afterstall", backends: []string{stalled.URL + "/v1", second.URL + "/v1"}},
	))
	client := sdk(base)
	params := func(model string) openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	}

	for _, model := range []string{"after429", "afterdown"} {
		t.Run(model+"/json", func(t *testing.T) {
			var resp *http.Response
			got, err := client.Chat.Completions.New(context.Background(), params(model), option.WithResponseInto(&resp))
			require.NoError(t, err)
			assert.Equal(t, "answered by the second", got.Choices[0].Message.Content)
			assert.Equal(t, "2", resp.Header.Get("X-Switchyard-Attempts"))
			assert.Equal(t, "b1", resp.Header.Get("X-Switchyard-Backend"))
		})
	}
	for _, model := range []string{"after429", "afterdown", "afterstall"} {
		t.Run(model+"/stream", func(t *testing.T) {
			var resp *http.Response
			stream := client.Chat.Completions.NewStreaming(context.Background(), params(model), option.WithResponseInto(&resp))
			acc := openai.ChatCompletionAccumulator{}
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			require.NoError(t, stream.Err())
			assert.Equal(t, "streamed by the second", acc.Choices[0].Message.Content)
			assert.Equal(t, "2", resp.Header.Get("X-Switchyard-Attempts"))
		})
	}
}

func TestStreamErrorBeforeFirstByteIsJSON(t *testing.T) {
	limited := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		writeJSON(w, 429, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`)
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "limited", backends: []string{limited.URL + "/v1"}}))
	stream := sdk(base).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "limited", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	assert.False(t, stream.Next())
	var apiErr *openai.Error
	require.ErrorAs(t, stream.Err(), &apiErr)
	assert.Equal(t, 429, apiErr.StatusCode)
	assert.Equal(t, "rate_limit_exceeded", apiErr.Code)
	assert.Equal(t, "2", apiErr.Response.Header.Get("Retry-After"))
}

func TestStreamFailureAfterFirstByteIsNotRetried(t *testing.T) {
	var secondCalls atomic.Int32
	second := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { secondCalls.Add(1) })
	// One event, then silence past the between-chunks timeout.
	stalls := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "data: "+chunk("m", `{"content":"partial"}`, "")+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{stalls.URL + "/v1", second.URL + "/v1"}}))
	stream := sdk(base).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	assert.Equal(t, "partial", acc.Choices[0].Message.Content)
	require.Error(t, stream.Err())
	assert.Contains(t, stream.Err().Error(), "upstream_timeout", "the failure arrives as an error event")
	assert.Zero(t, secondCalls.Load(), "never retried after the first byte")
}

func TestAuthHeaders(t *testing.T) {
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{"http://127.0.0.1:1/v1"}}))
	for _, tc := range []struct {
		header, value string
		status        int
	}{
		{"Authorization", "Bearer " + testKey, 200},
		{"Authorization", "bearer " + testKey, 200},
		{"api-key", testKey, 200},
		{"x-api-key", testKey, 200},
		{"Authorization", "Basic " + testKey, 401},
		{"Authorization", "Basic Zm9vOmJhcg==", 401},
		{"Authorization", "Bearer " + testKey + "x", 401},
		{"", "", 401},
	} {
		t.Run(tc.header+" "+tc.value, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+"/models", nil)
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.status == 401 {
				assert.Contains(t, string(body), `"code":"invalid_api_key"`)
			}
		})
	}
}

func TestKeyRestrictedToModels(t *testing.T) {
	cfg := gatewayConfig(t, "", route{name: "open", backends: []string{"http://127.0.0.1:1/v1"}}, route{name: "secret", backends: []string{"http://127.0.0.1:1/v1"}})
	cfg.Keys[0].Models = []string{"open"}
	base, _ := startGateway(t, cfg)
	client := sdk(base)
	page, err := client.Models.List(context.Background())
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	assert.Equal(t, "open", page.Data[0].ID)

	_, err = client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "secret", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 404, apiErr.StatusCode, "a model the key may not use looks like one that does not exist")
}

func TestUnknownPath(t *testing.T) {
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{"http://127.0.0.1:1/v1"}}))
	err := sdk(base).Post(context.Background(), "nothing/here", nil, nil, option.WithRequestBody("application/json", []byte(`{}`)))
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.Equal(t, "unknown_url", apiErr.Code)
}

// When every deployment fails, the error is the deciding one (here the
// last: 500), and its message names each deployment tried and how it
// failed, for JSON requests and streams.
func TestErrorNamesEveryDeploymentTried(t *testing.T) {
	overloaded := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, `{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}`)
	})
	broken := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, `{"error":{"message":"boom","type":"server_error"}}`)
	})
	down := "http://127.0.0.1:1" // connection refused
	cfg := gatewayConfig(t, "", route{name: "chat", upstream: "m", backends: []string{overloaded.URL + "/v1", down, broken.URL + "/v1"}})
	base, _ := startGateway(t, cfg)
	for _, stream := range []bool{false, true} {
		var resp *http.Response
		err := sdk(base).Post(context.Background(), "chat/completions", map[string]any{
			"model": "chat", "stream": stream, "messages": []map[string]any{{"role": "user", "content": "hi"}},
		}, nil, option.WithResponseInto(&resp))
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 500, apiErr.StatusCode)
		assert.Equal(t, "upstream_error", apiErr.Code)
		assert.Equal(t, "3", resp.Header.Get("X-Switchyard-Attempts"))
		assert.Regexp(t, `Tried 3 deployments: b0 \(m\) failed with 503 \w+; b1 \(m\) failed with 502 upstream_unavailable; b2 \(m\) failed with 500 upstream_error\.$`, apiErr.Message)
		assert.NotContains(t, apiErr.Message, backendKey)
	}

}

// Deployments out of rotation (after repeated failures) are named as
// skipped when the ones tried fail.
func TestErrorNamesDeploymentsSkipped(t *testing.T) {
	overloaded := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, `{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}`)
	})
	var calls atomic.Int32
	flaky := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 { // one success keeps it in rotation
			writeJSON(w, 200, chatCompletion("m", "ok", 1, 1, 0))
			return
		}
		writeJSON(w, 500, `{"error":{"message":"boom","type":"server_error"}}`)
	})
	cfg := gatewayConfig(t, "", route{name: "chat", upstream: "m", backends: []string{overloaded.URL + "/v1", "http://127.0.0.1:1", flaky.URL + "/v1"}})
	base, _ := startGateway(t, cfg)
	ask := func() error {
		_, err := sdk(base, option.WithMaxRetries(0)).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		return err
	}
	require.Error(t, ask())   // b0, b1, b2 fail once
	require.NoError(t, ask()) // b0, b1 twice; b2 answers
	require.Error(t, ask())   // b0, b1 a third time: out of rotation
	var apiErr *openai.Error
	require.ErrorAs(t, ask(), &apiErr)
	assert.Equal(t, 500, apiErr.StatusCode)
	assert.Regexp(t, `Tried 1 deployment: b2 \(m\) failed with 500 upstream_error\. Skipped, out of rotation after repeated failures: b0 \(m\), b1 \(m\)\.$`, apiErr.Message)
}
