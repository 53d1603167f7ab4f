package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// serve starts an upstream speaking h and a Client for it.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return testClient(Options{BaseURL: srv.URL + "/", APIKey: "sk-ant-test", Beta: []string{"prompt-caching-2024-07-31", "fine-grained-tool-streaming-2025-05-14"},
		Options: upstream.Options{Backend: "anthropic", ConnectTimeout: time.Second, FirstByteTimeout: 500 * time.Millisecond, BetweenChunksTimeout: 200 * time.Millisecond}})
}

func chatReq(stream bool) *providers.Request {
	body := `{"model":"alias","messages":[{"role":"user","content":"hi"}],"temperature":0.2}`
	if stream {
		body = `{"model":"alias","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	}
	return &providers.Request{Operation: providers.OpChat, Model: "claude-sonnet-4-5", Stream: stream, Body: []byte(body), RequestID: "req-1"}
}

func fixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestRequestHeaders: the path, the headers and the body the upstream gets,
// for Do and for Stream.
func TestRequestHeaders(t *testing.T) {
	type seen struct {
		method, path string
		header       http.Header
		body         []byte
	}
	var mu sync.Mutex
	var got []seen
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Clone(), b})
		mu.Unlock()
		if gjson.GetBytes(b, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.Write(fixture(t, "testdata/streams/text.sse"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(fixture(t, "testdata/responses/prompt_cache.anthropic.json"))
	})

	req := chatReq(false)
	resp, err := c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, &providers.Usage{PromptTokens: 189907, CompletionTokens: 393, CachedTokens: 1800, CacheWriteTokens: 188086}, resp.Usage)
	require.Equal(t, "chatcmpl-msg_01Cache", gjson.GetBytes(resp.Body, "id").Str)
	require.Contains(t, string(req.Body), `"alias"`, "the caller's body is not modified in place")

	s, err := c.Stream(context.Background(), chatReq(true))
	require.NoError(t, err)
	var last providers.Event
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		last = ev
	}
	require.NoError(t, s.Close())
	require.True(t, last.UsageOnly)
	require.Equal(t, &providers.Usage{PromptTokens: 25, CompletionTokens: 15}, last.Usage)

	require.Len(t, got, 2)
	for i, g := range got {
		require.Equal(t, http.MethodPost, g.method)
		require.Equal(t, "/v1/messages", g.path)
		require.Equal(t, "sk-ant-test", g.header.Get("X-Api-Key"))
		require.Equal(t, "2023-06-01", g.header.Get("Anthropic-Version"))
		require.Equal(t, "prompt-caching-2024-07-31,fine-grained-tool-streaming-2025-05-14", g.header.Get("Anthropic-Beta"))
		require.Equal(t, "application/json", g.header.Get("Content-Type"))
		require.Empty(t, g.header.Get("Authorization"), "Anthropic takes the key as x-api-key only")
		require.Equal(t, "req-1", g.header.Get("X-Request-Id"))
		require.Equal(t, "claude-sonnet-4-5", gjson.GetBytes(g.body, "model").Str)
		require.Equal(t, int64(DefaultMaxTokens), gjson.GetBytes(g.body, "max_tokens").Int())
		require.Equal(t, i == 1, gjson.GetBytes(g.body, "stream").Bool())
	}
	require.Equal(t, "text/event-stream", got[1].header.Get("Accept"))
}

func TestOptionsDefaults(t *testing.T) {
	c := New(Options{DefaultMaxTokens: 77, Version: "2099-01-01"})
	require.Equal(t, "https://api.anthropic.com/v1/messages", c.url)
	require.Equal(t, "2099-01-01", c.o.Version)
	body, err := c.body(chatReq(false), false)
	require.NoError(t, err)
	require.Equal(t, int64(77), gjson.GetBytes(body, "max_tokens").Int())
	require.Equal(t, DefaultVersion, New(Options{}).o.Version)
}

// TestStatusMapping: error responses, for Do and for Stream.
func TestStatusMapping(t *testing.T) {
	errBody := func(typ, msg string) string {
		return `{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		header map[string]string
		want   providers.Error
	}{
		{"400 invalid request", 400, errBody("invalid_request_error", "messages: roles must alternate between \\\"user\\\" and \\\"assistant\\\""), nil,
			providers.Error{Status: 400, Type: "invalid_request_error", Code: "invalid_request_error", Message: `messages: roles must alternate between "user" and "assistant"`}},
		{"401 becomes upstream_auth_failed", 401, errBody("authentication_error", "invalid x-api-key sk-ant-test"), nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_auth_failed", Message: `backend "anthropic" refused the gateway's credentials (status 401)`, Retryable: true}},
		{"403 permission", 403, errBody("permission_error", "Your API key does not have permission"), nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_auth_failed", Message: `backend "anthropic" refused the gateway's credentials (status 403)`, Retryable: true}},
		{"404 model not found", 404, errBody("not_found_error", "model: claude-nope"), nil,
			providers.Error{Status: 404, Type: "invalid_request_error", Code: "not_found_error", Message: "model: claude-nope", Retryable: true}},
		{"413 too large", 413, errBody("request_too_large", "Request exceeds the maximum allowed number of bytes."), nil,
			providers.Error{Status: 413, Type: "invalid_request_error", Code: "request_too_large", Message: "Request exceeds the maximum allowed number of bytes."}},
		{"429 keeps Retry-After", 429, errBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), map[string]string{"Retry-After": "17"},
			providers.Error{Status: 429, Type: "rate_limit_error", Code: "rate_limit_error", Message: "Number of request tokens has exceeded your per-minute rate limit", RetryAfter: "17", Retryable: true}},
		{"500 api error", 500, errBody("api_error", "Internal server error"), nil,
			providers.Error{Status: 500, Type: "api_error", Code: "api_error", Message: "Internal server error", Retryable: true}},
		{"529 overloaded", 529, errBody("overloaded_error", "Overloaded"), map[string]string{"Retry-After": "3"},
			providers.Error{Status: 529, Type: "api_error", Code: "overloaded_error", Message: "Overloaded", RetryAfter: "3", Retryable: true}},
		{"502 from a proxy, not JSON", 502, `<html>bad gateway</html>`, nil,
			providers.Error{Status: 502, Type: "api_error", Code: "upstream_error", Message: `backend "anthropic" answered 502 Bad Gateway`, Retryable: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
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
				require.Equal(t, tc.want, got)
				require.NotContains(t, pe.Message, "sk-ant")
			}
		})
	}
}

// TestStreamErrorEvents: an error event maps to the status Anthropic gives
// its type.
func TestStreamErrorEvents(t *testing.T) {
	for _, tc := range []struct {
		typ       string
		status    int
		retryable bool
	}{
		{"overloaded_error", 529, true},
		{"api_error", 500, true},
		{"rate_limit_error", 429, true},
		{"timeout_error", 504, true},
		{"invalid_request_error", 400, false},
		{"brand_new_error", 502, true},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\""+tc.typ+"\",\"message\":\"boom\"}}\n\n")
			})
			s, err := c.Stream(context.Background(), chatReq(true))
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Recv()
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.status, pe.Status)
			require.Equal(t, tc.typ, pe.Code)
			require.Equal(t, "boom", pe.Message)
			require.Equal(t, tc.retryable, pe.Retryable)
		})
	}
}

func TestBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		stream                  bool
		msg                     string
	}{
		{"not JSON", "application/json", "<html>proxy error</html>", false, "not a Messages API message"},
		{"not a message", "application/json", `{"type":"completion"}`, false, "not a Messages API message"},
		{"stream answered with JSON", "application/json", `{"type":"message"}`, true, "instead of an event stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				io.WriteString(w, tc.body)
			})
			var err error
			if tc.stream {
				_, err = c.Stream(context.Background(), chatReq(true))
			} else {
				_, err = c.Do(context.Background(), chatReq(false))
			}
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, 502, pe.Status)
			require.True(t, pe.Retryable)
			require.Contains(t, pe.Message, tc.msg)
		})
	}
}

// TestStreamProtocolErrors: streams the Messages API does not send.
func TestStreamProtocolErrors(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n"
	for _, tc := range []struct{ name, body, msg string }{
		{"delta before message_start", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n", "before message_start"},
		{"data not JSON", start + "event: content_block_delta\ndata: {oops\n\n", "not a JSON object"},
		{"known event with a bad shape", start + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":\"zero\"}\n\n", "cannot be read"},
		{"second message_start", start + start, "second message_start"},
		{"empty body", "", "before message_stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testClient(Options{})
			s := c.newStream(c.Start(context.Background()), io.NopCloser(strings.NewReader(tc.body)))
			defer s.Close()
			var err error
			for err == nil {
				_, err = s.Recv()
			}
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, 502, pe.Status)
			require.True(t, pe.Retryable)
			require.Contains(t, pe.Message, tc.msg)
		})
	}
}

// TestStreamToolArguments: the pieces of a tool call's arguments add up to
// the input Anthropic streamed.
func TestStreamToolArguments(t *testing.T) {
	c := testClient(Options{})
	s := c.newStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(fixture(t, "testdata/streams/parallel_tool_calls.sse"))))
	defer s.Close()
	args := map[int]string{}
	names := map[int]string{}
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		gjson.GetBytes(ev.Data, "choices.0.delta.tool_calls").ForEach(func(_, tc gjson.Result) bool {
			i := int(tc.Get("index").Int())
			args[i] += tc.Get("function.arguments").Str
			if n := tc.Get("function.name").Str; n != "" {
				names[i] = n
			}
			return true
		})
	}
	require.Equal(t, map[int]string{0: "get_weather", 1: "get_weather", 2: "get_time"}, names)
	require.JSONEq(t, `{"location":"Paris"}`, args[0])
	require.JSONEq(t, `{"location":"Tokyo"}`, args[1])
	require.JSONEq(t, `{}`, args[2])
}

func TestStreamTimeoutAndClose(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err := c.Stream(context.Background(), chatReq(true))
	require.NoError(t, err)
	_, err = s.Recv()
	require.NoError(t, err, "the role chunk")
	_, err = s.Recv()
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 504, pe.Status)
	require.Contains(t, pe.Message, providers.ErrBetweenChunksTimeout.Error())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	// Close from another goroutine unblocks a Recv.
	c2 := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err = c2.Stream(context.Background(), chatReq(true))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := s.Recv(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
}

func TestCallerCancel(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Do(ctx, chatReq(false))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, providers.IsRetryable(err))
}

// TestRefusedRequests: what the Messages API cannot express is a 400
// before anything is sent.
func TestRefusedRequests(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("nothing is sent") })
	for _, tc := range []struct {
		name  string
		op    providers.Operation
		body  string
		code  string
		param string
	}{
		{"embeddings", providers.OpEmbeddings, `{"input":"x"}`, "unsupported_operation", ""},
		{"completions", providers.OpCompletion, `{"prompt":"x"}`, "unsupported_operation", ""},
		{"arguments not JSON", providers.OpChat, `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}`,
			"invalid_request", "messages[1].tool_calls[0].function.arguments"},
		{"arguments not an object", providers.OpChat, `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"[1,2]"}}]}]}`,
			"invalid_request", "messages[1].tool_calls[0].function.arguments"},
		{"arguments null", providers.OpChat, `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"null"}}]}]}`,
			"invalid_request", "messages[1].tool_calls[0].function.arguments"},
		{"only a system message", providers.OpChat, `{"messages":[{"role":"system","content":"x"}]}`, "invalid_request", "messages"},
		{"image in a system message", providers.OpChat, `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"x"}]}`,
			"invalid_request", "messages[0].content[0]"},
		{"json_object", providers.OpChat, `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`, "invalid_request", "response_format"},
		{"n > 1", providers.OpChat, `{"messages":[{"role":"user","content":"x"}],"n":2}`, "invalid_request", "n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &providers.Request{Operation: tc.op, Model: "claude", Body: []byte(tc.body)}
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = c.Stream(context.Background(), req)
				} else {
					_, err = c.Do(context.Background(), req)
				}
				var pe *providers.Error
				require.ErrorAs(t, err, &pe)
				require.Equal(t, 400, pe.Status)
				require.Equal(t, "invalid_request_error", pe.Type)
				require.Equal(t, tc.code, pe.Code)
				require.Equal(t, tc.param, pe.Param)
				require.False(t, pe.Retryable)
			}
		})
	}
}

// TestToolResultImages: a tool message with an image becomes a tool_result
// of blocks; tool results lead their user turn.
func TestToolResultImages(t *testing.T) {
	c := testClient(Options{})
	body, err := c.body(&providers.Request{Operation: providers.OpChat, Model: "claude", Body: []byte(`{"messages":[
		{"role":"user","content":"draw"},
		{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"render","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"t1","content":[{"type":"text","text":"here"},{"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lGODlhAQABAAAAACw="}}]}
	]}`)}, false)
	require.NoError(t, err)
	var got struct {
		Messages []json.RawMessage `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Messages, 3)
	require.JSONEq(t, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
		{"type":"text","text":"here"},
		{"type":"image","source":{"type":"base64","media_type":"image/gif","data":"R0lGODlhAQABAAAAACw="}}]}]}`, string(got.Messages[2]))
}
