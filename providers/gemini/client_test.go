package gemini

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

const testKey = "AIza-test-key"

func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return testClient(srv)
}

func chatReq(stream bool) *providers.Request {
	return &providers.Request{Operation: providers.OpChat, Model: "gemini-2.5-flash", Stream: stream, RequestID: "req-9",
		Body: []byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}],"stream":` + fmt.Sprint(stream) + `}`)}
}

func embedReq(body string) *providers.Request {
	return &providers.Request{Operation: providers.OpEmbeddings, Model: "gemini-embedding-001", Body: []byte(body)}
}

const okResponse = `{"candidates":[{"content":{"parts":[{"text":"hello"}],"role":"model"},"finishReason":"STOP"}],
	"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"totalTokenCount":4},"modelVersion":"gemini-2.5-flash","responseId":"r1"}`

const okStream = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hel\"}],\"role\":\"model\"}}]}\r\n\r\n" +
	"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1,\"cachedContentTokenCount\":2}}\r\n\r\n"

// request is what the test server saw.
type request struct {
	path, query, uri, key, accept, requestID string
	body                                     []byte
}

func TestURLsAndAuth(t *testing.T) {
	var mu sync.Mutex
	var got []request
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.URL.Path, r.URL.RawQuery, r.RequestURI, r.Header.Get("x-goog-api-key"),
			r.Header.Get("Accept"), r.Header.Get("X-Request-Id"), b})
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, okStream)
		case strings.HasSuffix(r.URL.Path, ":embedContent"):
			io.WriteString(w, `{"embedding":{"values":[0.5]}}`)
		default:
			io.WriteString(w, okResponse)
		}
	})

	resp, err := c.Do(context.Background(), chatReq(false))
	require.NoError(t, err)
	assert.Equal(t, &providers.Usage{PromptTokens: 3, CompletionTokens: 1}, resp.Usage)
	assert.Equal(t, "hello", gjson.GetBytes(resp.Body, "choices.0.message.content").Str)

	s, err := c.Stream(context.Background(), chatReq(true))
	require.NoError(t, err)
	var events []providers.Event
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		events = append(events, ev)
	}
	require.NoError(t, s.Close())
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	assert.True(t, last.UsageOnly)
	assert.Equal(t, &providers.Usage{PromptTokens: 3, CompletionTokens: 1, CachedTokens: 2}, last.Usage)

	_, err = c.Do(context.Background(), embedReq(`{"input":"x"}`))
	require.NoError(t, err)

	require.Len(t, got, 3)
	assert.Equal(t, "/v1beta/models/gemini-2.5-flash:generateContent", got[0].path)
	assert.Equal(t, "", got[0].query)
	assert.Equal(t, "application/json", got[0].accept)
	assert.Equal(t, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", got[1].path)
	assert.Equal(t, "alt=sse", got[1].query)
	assert.Equal(t, "text/event-stream", got[1].accept)
	assert.Equal(t, "/v1beta/models/gemini-embedding-001:embedContent", got[2].path)
	for _, r := range got {
		assert.Equal(t, testKey, r.key, "the key travels in x-goog-api-key")
		assert.NotContains(t, r.uri, testKey, "the key is never in the URL")
		assert.NotContains(t, r.uri, "key=")
	}
	for _, r := range got[:2] {
		assert.False(t, gjson.GetBytes(r.body, "model").Exists(), "the model is in the path, not the body")
	}
	assert.Equal(t, "models/gemini-embedding-001", gjson.GetBytes(got[2].body, "model").Str)
	assert.Equal(t, "req-9", got[0].requestID)
	assert.False(t, gjson.GetBytes(got[0].body, "stream").Exists(), "the body is Gemini's, not the client's")
	assert.Equal(t, "hi", gjson.GetBytes(got[0].body, "contents.0.parts.0.text").Str)
}

func TestModelPaths(t *testing.T) {
	for model, want := range map[string]string{
		"gemini-2.5-flash":        "/v1beta/models/gemini-2.5-flash:generateContent",
		"models/gemini-2.5-flash": "/v1beta/models/gemini-2.5-flash:generateContent",
		"tunedModels/my-tune-7":   "/v1beta/tunedModels/my-tune-7:generateContent",
		"odd name?":               "/v1beta/models/odd%20name%3F:generateContent",
	} {
		var path string
		c := serve(t, func(w http.ResponseWriter, r *http.Request) {
			path = r.URL.EscapedPath()
			io.WriteString(w, okResponse)
		})
		req := chatReq(false)
		req.Model = model
		_, err := c.Do(context.Background(), req)
		require.NoError(t, err)
		assert.Equal(t, want, path, model)
	}
}

func TestDefaultBaseURL(t *testing.T) {
	c := New(Options{})
	assert.Equal(t, "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent", c.modelURL("m", "generateContent"))
}

func TestStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		want       providers.Error
		wantHidden string
	}{
		{"400 invalid argument", 400,
			`{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified\n","status":"INVALID_ARGUMENT"}}`, nil,
			providers.Error{Status: 400, Type: "invalid_request_error", Code: "invalid_argument", Message: "* GenerateContentRequest.contents: contents is not specified\n"}, ""},
		{"400 API_KEY_INVALID is the gateway's credentials", 400,
			`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`, nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_auth_failed", Message: `backend "gemini" refused the gateway's credentials (status 400)`, Retryable: true}, "API key"},
		{"403 permission denied", 403,
			`{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}`, nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_auth_failed", Message: `backend "gemini" refused the gateway's credentials (status 403)`, Retryable: true}, "API Key"},
		{"429 resource exhausted keeps Retry-After", 429,
			`{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`, map[string]string{"Retry-After": "12"},
			providers.Error{Status: 429, Type: "rate_limit_error", Code: "resource_exhausted", Message: "Resource has been exhausted (e.g. check quota).", RetryAfter: "12", Retryable: true}, ""},
		{"429 RetryInfo gives the delay", 429,
			`{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.5s"}]}}`, nil,
			providers.Error{Status: 429, Type: "rate_limit_error", Code: "resource_exhausted", Message: "You exceeded your current quota.", RetryAfter: "37", Retryable: true}, ""},
		{"404 model not found", 404,
			`{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}`, nil,
			providers.Error{Status: 404, Type: "invalid_request_error", Code: "not_found", Message: "models/gemini-9 is not found for API version v1beta", Retryable: true}, ""},
		{"500 internal", 500,
			`{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`, nil,
			providers.Error{Status: 500, Type: "api_error", Code: "internal", Message: "An internal error has occurred.", Retryable: true}, ""},
		{"503 unavailable", 503,
			`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`, map[string]string{"Retry-After": "3"},
			providers.Error{Status: 503, Type: "api_error", Code: "unavailable", Message: "The model is overloaded. Please try again later.", RetryAfter: "3", Retryable: true}, ""},
		{"error wrapped in an array", 400,
			`[{"error":{"code":400,"message":"bad","status":"FAILED_PRECONDITION"}}]`, nil,
			providers.Error{Status: 400, Type: "invalid_request_error", Code: "failed_precondition", Message: "bad"}, ""},
		{"502 html from a proxy", 502, `<html>Bad Gateway</html>`, nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_error", Message: `backend "gemini" answered 502 Bad Gateway`, Retryable: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			for _, call := range []string{"do", "stream", "embed"} {
				var err error
				switch call {
				case "do":
					_, err = c.Do(context.Background(), chatReq(false))
				case "stream":
					_, err = c.Stream(context.Background(), chatReq(true))
				case "embed":
					_, err = c.Do(context.Background(), embedReq(`{"input":["a","b"]}`))
				}
				var pe *providers.Error
				require.ErrorAs(t, err, &pe, call)
				got := *pe
				got.Err = nil
				assert.Equal(t, tc.want, got, call)
				if tc.wantHidden != "" {
					assert.NotContains(t, pe.Message, tc.wantHidden, call)
				}
			}
		})
	}
}

func TestUnsupportedOperations(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no call expected") })
	req := &providers.Request{Operation: providers.OpCompletion, Model: "m", Body: []byte(`{"prompt":"x"}`)}
	for _, call := range []func() error{
		func() error { _, err := c.Do(context.Background(), req); return err },
		func() error { _, err := c.Stream(context.Background(), req); return err },
		func() error { _, err := c.Stream(context.Background(), embedReq(`{"input":"x"}`)); return err },
	} {
		var pe *providers.Error
		require.ErrorAs(t, call(), &pe)
		assert.Equal(t, 400, pe.Status)
		assert.Equal(t, "unsupported_operation", pe.Code)
		assert.False(t, pe.Retryable)
	}
}

func TestInvalidRequests(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no call expected") })
	for _, tc := range []struct{ name, body, param string }{
		{"not json", `{`, ""},
		{"image in a system message", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, "messages[0].content[0]"},
		{"named tool that is not sent", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, "tool_choice"},
		{"named tool without tools", `{"messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, "tool_choice"},
		{"seed beyond 32 bits", `{"messages":[{"role":"user","content":"hi"}],"seed":9999999999}`, "seed"},
		{"bad response format", `{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"yaml"}}`, "response_format.type"},
		{"schema not an object", `{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":[1]}}}`, "response_format.json_schema.schema"},
		{"empty messages content", `{"messages":[{"role":"user","content":""}]}`, "messages"},
		{"n > 1", `{"messages":[{"role":"user","content":"hi"}],"n":2}`, "n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := chatReq(false)
			req.Body = []byte(tc.body)
			_, err := c.Do(context.Background(), req)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, 400, pe.Status)
			assert.Equal(t, tc.param, pe.Param)
		})
	}
	for _, tc := range []struct{ name, body, param string }{
		{"empty input", `{"input":[]}`, "input"},
		{"empty string", `{"input":["a",""]}`, "input"},
		{"missing input", `{}`, "input"},
		{"token ids", `{"input":[1,2,3]}`, "input"},
		{"number", `{"input":3}`, "input"},
		{"encoding", `{"input":"a","encoding_format":"int8"}`, "encoding_format"},
		{"dimensions", `{"input":"a","dimensions":0}`, "dimensions"},
	} {
		t.Run("embeddings "+tc.name, func(t *testing.T) {
			_, err := c.Do(context.Background(), embedReq(tc.body))
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, 400, pe.Status)
			assert.Equal(t, tc.param, pe.Param)
		})
	}
}

func TestSystemOnlyConversation(t *testing.T) {
	out, err := chatBody([]byte(`{"messages":[{"role":"system","content":"Say hi."}]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"contents":[{"role":"user","parts":[{"text":"Say hi."}]}]}`, string(out))
}

func TestCallerBodyUntouched(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, okResponse) })
	req := chatReq(false)
	before := string(req.Body)
	_, err := c.Do(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, before, string(req.Body))
}

func TestEmbeddingsBatches(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		assert.True(t, strings.HasSuffix(r.URL.Path, "/models/gemini-embedding-001:batchEmbedContents"), r.URL.Path)
		var b batchEmbedRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&b))
		mu.Lock()
		sizes = append(sizes, len(b.Requests))
		mu.Unlock()
		var resp embedResponse
		for _, q := range b.Requests {
			var n float64
			fmt.Sscan(q.Content.Parts[0].Text, &n)
			resp.Embeddings = append(resp.Embeddings, contentEmbedding{Values: []float64{n}})
			assert.Equal(t, 8, q.OutputDimensionality)
		}
		json.NewEncoder(w).Encode(resp)
	})
	inputs := make([]string, 250)
	for i := range inputs {
		inputs[i] = fmt.Sprint(i)
	}
	body, _ := json.Marshal(map[string]any{"input": inputs, "dimensions": 8})
	resp, err := c.Do(context.Background(), embedReq(string(body)))
	require.NoError(t, err)
	assert.Equal(t, []int{100, 100, 50}, sizes)
	data := gjson.GetBytes(resp.Body, "data").Array()
	require.Len(t, data, 250)
	for i, d := range data {
		require.Equal(t, int64(i), d.Get("index").Int())
		require.Equal(t, float64(i), d.Get("embedding.0").Num)
	}
	assert.True(t, resp.Usage.Estimated)
	assert.Equal(t, resp.Usage.PromptTokens, gjson.GetBytes(resp.Body, "usage.prompt_tokens").Int())
}

func TestStreamNotEventStream(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, okResponse)
	})
	_, err := c.Stream(context.Background(), chatReq(true))
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 502, pe.Status)
	assert.True(t, pe.Retryable)
}

func TestNotJSON(t *testing.T) {
	for _, body := range []string{"<html>proxy error</html>", `{"candidates":[]}`, `{"error":{"code":500,"message":"boom","status":"INTERNAL"}}`} {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
		_, err := c.Do(context.Background(), chatReq(false))
		var pe *providers.Error
		require.ErrorAs(t, err, &pe, body)
		assert.True(t, pe.Retryable, body)
		assert.GreaterOrEqual(t, pe.Status, 500, body)
	}
}

func TestTimeouts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		if strings.Contains(r.URL.Path, "stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\n\n")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL, Options: upstream.Options{Backend: "gemini",
		FirstByteTimeout: 300 * time.Millisecond, BetweenChunksTimeout: 200 * time.Millisecond}})

	_, err := c.Do(context.Background(), chatReq(false))
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 504, pe.Status)

	s, err := c.Stream(context.Background(), chatReq(true))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Recv() // role
	require.NoError(t, err)
	_, err = s.Recv() // text
	require.NoError(t, err)
	_, err = s.Recv()
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 504, pe.Status)
	assert.Contains(t, pe.Message, providers.ErrBetweenChunksTimeout.Error())
}

func TestStreamCloseUnblocksRecv(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s, err := testClient(srv).Stream(context.Background(), chatReq(true))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice is fine")
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Recv still blocked after Close")
	}
}

func TestToolParameters(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no properties", `{"type":"object","properties":{}}`, `null`},
		{"empty schema", `{}`, `null`},
		{"boolean schema", `true`, `null`},
		{"untyped properties", `{"properties":{"a":{"type":"string"}}}`, `{"type":"object","properties":{"a":{"type":"string"}}}`},
		{"several types", `{"type":"object","properties":{"v":{"type":["string","integer","null"]}}}`,
			`{"type":"object","properties":{"v":{"anyOf":[{"type":"string"},{"type":"integer"}],"nullable":true}}}`},
		{"unresolvable ref", `{"type":"object","properties":{"x":{"$ref":"https://example.com/s.json","description":"d"}}}`,
			`{"type":"object","properties":{"x":{"type":"object","description":"d"}}}`},
		{"numeric enum dropped", `{"type":"object","properties":{"n":{"type":"integer","enum":[1,2]}}}`,
			`{"type":"object","properties":{"n":{"type":"integer"}}}`},
		{"allOf merged", `{"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"properties":{"b":{"type":"number","format":"double"}},"required":["b","a"]}]}`,
			`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number","format":"double"}},"required":["a","b"]}`},
		{"tuple items", `{"type":"object","properties":{"p":{"type":"array","items":[{"type":"number"},{"type":"number"}]}}}`,
			`{"type":"object","properties":{"p":{"type":"array","items":{"type":"number"}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := toolParameters([]byte(tc.in))
			require.NoError(t, err)
			b, _ := json.Marshal(got)
			assert.JSONEq(t, tc.want, string(b))
		})
	}
	_, err := toolParameters([]byte(`{`))
	assert.Error(t, err)
	_, err = toolParameters([]byte(`"x"`))
	assert.Error(t, err)
}
