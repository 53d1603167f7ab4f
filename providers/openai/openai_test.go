package openai

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(Options{BaseURL: srv.URL + "/v1", APIKey: "sk-up", Options: upstream.Options{Backend: "up",
		ConnectTimeout: time.Second, FirstByteTimeout: 500 * time.Millisecond, BetweenChunksTimeout: 200 * time.Millisecond}})
}

func chatReq(stream bool) *providers.Request {
	return &providers.Request{Operation: providers.OpChat, Model: "real-model", Stream: stream,
		Body: []byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}],"temperature":0.2}`)}
}

func TestStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		want       providers.Error
		wantHidden string // must not appear in the message
	}{
		{"openai 400", 400, `{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`, nil,
			providers.Error{Status: 400, Type: "invalid_request_error", Code: "invalid_value", Param: "temperature", Message: "bad temperature"}, ""},
		{"vllm flat shape", 400, `{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}`, nil,
			providers.Error{Status: 400, Type: "BadRequestError", Code: "upstream_error", Message: "max_tokens too large"}, ""},
		{"ollama string error", 404, `{"error":"model \"x\" not found, try pulling it first"}`, nil,
			providers.Error{Status: 404, Type: "invalid_request_error", Code: "upstream_error", Message: `model "x" not found, try pulling it first`, Retryable: true}, ""},
		{"invalid_api_key under another status", 400, `{"error":{"message":"Incorrect API key provided: sk-up***","code":"invalid_api_key"}}`, nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_auth_failed", Message: `backend "up" refused the gateway's credentials (status 400)`, Retryable: true}, "sk-up"},
		{"fastapi detail", 422, `{"detail":"Unprocessable"}`, nil,
			providers.Error{Status: 422, Type: "invalid_request_error", Code: "upstream_error", Message: "Unprocessable"}, ""},
		{"429 keeps Retry-After", 429, `{"error":{"message":"slow down","type":"tokens","code":"rate_limit_exceeded"}}`, map[string]string{"Retry-After": "12"},
			providers.Error{Status: 429, Type: "tokens", Code: "rate_limit_exceeded", Message: "slow down", RetryAfter: "12", Retryable: true}, ""},
		{"429 without body", 429, ``, nil,
			providers.Error{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: `backend "up" answered 429 Too Many Requests`, Retryable: true}, ""},
		{"503 plain text", 503, `upstream overloaded`, nil,
			providers.Error{Status: 503, Type: "api_error", Code: "upstream_error", Message: `backend "up" answered 503 Service Unavailable`, Retryable: true}, ""},
		{"529 overloaded", 529, `{"error":{"message":"Overloaded","type":"overloaded_error"}}`, nil,
			providers.Error{Status: 529, Type: "overloaded_error", Code: "upstream_error", Message: "Overloaded", Retryable: true}, ""},
		{"401 hides the upstream message", 401, `{"error":{"message":"Incorrect API key provided: sk-up","code":"invalid_api_key"}}`, nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_auth_failed", Message: `backend "up" refused the gateway's credentials (status 401)`, Retryable: true}, "sk-up"},
		{"408 is a timeout", 408, ``, nil,
			providers.Error{Status: 504, Type: "api_error", Code: "upstream_timeout", Message: `backend "up" answered 408 Request Timeout`, Retryable: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = c.Stream(context.Background(), chatReq(true))
				} else {
					_, err = c.Do(context.Background(), chatReq(false))
				}
				var pe *providers.Error
				require.ErrorAs(t, err, &pe)
				got := *pe
				got.Err = nil
				assert.Equal(t, tc.want, got)
				if tc.wantHidden != "" {
					assert.NotContains(t, pe.Message, tc.wantHidden)
				}
			}
		})
	}
}

func TestRequestRewrite(t *testing.T) {
	var got [][]byte
	var auth []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, b)
		auth = append(auth, r.Header.Get("Authorization"))
		if gjson.GetBytes(b, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\ndata: [DONE]\n\n")
			return
		}
		io.WriteString(w, `{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}`)
	})
	req := chatReq(false)
	resp, err := c.Do(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, &providers.Usage{PromptTokens: 5, CompletionTokens: 7}, resp.Usage)
	assert.Equal(t, "real-model", gjson.GetBytes(got[0], "model").Str)
	assert.Equal(t, 0.2, gjson.GetBytes(got[0], "temperature").Num)
	assert.False(t, gjson.GetBytes(got[0], "stream_options").Exists())
	assert.Contains(t, string(req.Body), `"alias"`, "the caller's body is not modified in place")

	sreq := chatReq(true)
	sreq.Body = []byte(`{"model":"alias","stream":true,"messages":[]}`)
	s, err := c.Stream(context.Background(), sreq)
	require.NoError(t, err)
	defer s.Close()
	ev, err := s.Recv()
	require.NoError(t, err)
	assert.Nil(t, ev.Usage)
	ev, err = s.Recv()
	require.NoError(t, err)
	assert.True(t, ev.UsageOnly)
	assert.Equal(t, &providers.Usage{PromptTokens: 3, CompletionTokens: 1, CachedTokens: 2}, ev.Usage)
	_, err = s.Recv()
	assert.ErrorIs(t, err, io.EOF)
	assert.True(t, gjson.GetBytes(got[1], "stream_options.include_usage").Bool(), "usage is always requested")
	assert.Equal(t, []string{"Bearer sk-up", "Bearer sk-up"}, auth)
}

func TestTimeouts(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if gjson.GetBytes(mustRead(r), "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[]}\n\n")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	_, err := c.Do(context.Background(), chatReq(false))
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 504, pe.Status)
	assert.Contains(t, pe.Message, providers.ErrFirstByteTimeout.Error())

	req := chatReq(true)
	req.Body = []byte(`{"stream":true}`)
	s, err := c.Stream(context.Background(), req)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Recv()
	require.NoError(t, err)
	_, err = s.Recv()
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 504, pe.Status)
	assert.Contains(t, pe.Message, providers.ErrBetweenChunksTimeout.Error())
}

func TestNotJSON(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>proxy error</html>") })
	_, err := c.Do(context.Background(), chatReq(false))
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 502, pe.Status)
	assert.True(t, pe.Retryable)
}

func TestStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"error event mid-stream", "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"server_error\",\"code\":500}}\n\n",
			500, "upstream_error", "CUDA out of memory"},
		{"error event without a code", "data: {\"choices\":[]}\n\nevent: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n",
			502, "upstream_error", "boom"},
		{"end without [DONE]", "data: {\"choices\":[]}\n\n",
			502, "upstream_unavailable", "without [DONE]"},
		{"cut inside an event", "data: {\"choices\":[]}\n\ndata: {\"choi",
			502, "upstream_unavailable", "without [DONE]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, tc.body)
			})
			s, err := c.Stream(context.Background(), chatReq(true))
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Recv()
			require.NoError(t, err, "the first event is fine")
			_, err = s.Recv()
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.status, pe.Status)
			assert.Equal(t, tc.code, pe.Code)
			assert.Contains(t, pe.Message, tc.msg)
			assert.True(t, pe.Retryable)
		})
	}
}

func TestStreamAnsweredWithJSON(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[]}`)
	})
	_, err := c.Stream(context.Background(), chatReq(true))
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 502, pe.Status)
	assert.Contains(t, pe.Message, "instead of an event stream")
}

func TestCallerCancel(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Do(ctx, chatReq(false))
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, providers.IsRetryable(err), "the caller leaving is not a reason to try elsewhere")
}

func mustRead(r *http.Request) []byte { b, _ := io.ReadAll(r.Body); return b }
