package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

func serveResponses(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(Options{BaseURL: srv.URL + "/v1", APIKey: "sk-up", Responses: ResponsesOn, Options: upstream.Options{Backend: "up",
		ConnectTimeout: time.Second, FirstByteTimeout: 500 * time.Millisecond, BetweenChunksTimeout: 200 * time.Millisecond}})
}

func responsesReq(stream bool) *providers.Request {
	body := `{"model":"alias","input":"hi","reasoning":{"effort":"low"},"x_future":[1,2],"store":false}`
	if stream {
		body = `{"model":"alias","input":"hi","stream":true,"store":false}`
	}
	return &providers.Request{Operation: providers.OpChat, Model: "gpt-4.1", Stream: stream,
		Body:   []byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}]}`),
		Native: &providers.Native{Format: providers.FormatOpenAIResponses, Body: []byte(body)}}
}

const responseJSON = `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","output":[],` +
	`"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":5,"total_tokens":35}}`

func TestResponsesNative(t *testing.T) {
	var path string
	var sent []byte
	c := serveResponses(t, func(w http.ResponseWriter, r *http.Request) {
		path, sent = r.URL.Path, mustRead(r)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, responseJSON)
	})
	require.True(t, c.SpeaksNative(providers.FormatOpenAIResponses))
	assert.False(t, c.SpeaksNative(providers.FormatAnthropicMessages))
	assert.False(t, New(Options{BaseURL: "http://x"}).SpeaksNative(providers.FormatOpenAIResponses), "only when the upstream serves it")

	res, err := c.Do(context.Background(), responsesReq(false))
	require.NoError(t, err)
	assert.Equal(t, "/v1/responses", path)
	assert.Equal(t, "gpt-4.1", gjson.GetBytes(sent, "model").Str)
	assert.Equal(t, "low", gjson.GetBytes(sent, "reasoning.effort").Str)
	assert.Equal(t, "[1,2]", gjson.GetBytes(sent, "x_future").Raw, "members unknown here pass")
	assert.True(t, res.Native)
	assert.JSONEq(t, responseJSON, string(res.Body))
	assert.Equal(t, &providers.Usage{PromptTokens: 30, CompletionTokens: 5, CachedTokens: 10}, res.Usage)

	// Without Native (a fallback's translation), chat completions.
	req := responsesReq(false)
	req.Native = nil
	res, err = c.Do(context.Background(), req)
	require.NoError(t, err)
	assert.False(t, res.Native)
	assert.Equal(t, "/v1/chat/completions", path)
	assert.Equal(t, "gpt-4.1", gjson.GetBytes(sent, "model").Str)
	assert.Equal(t, "hi", gjson.GetBytes(sent, "messages.0.content").Str)
}

func TestResponsesNativeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		msg        string
	}{
		{"not a response", `{"object":"chat.completion"}`, 502, "not a Responses API response"},
		{"failed", `{"object":"response","status":"failed","error":{"code":"server_error","message":"the model crashed"}}`, 502, "the model crashed"},
		{"rate limited", `{"object":"response","status":"failed","error":{"code":"rate_limit_exceeded","message":"slow down"}}`, 429, "slow down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serveResponses(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
			_, err := c.Do(context.Background(), responsesReq(false))
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.status, pe.Status)
			assert.Contains(t, pe.Message, tc.msg)
		})
	}
}

// event is one Responses SSE event.
func event(typ, rest string) string {
	return "event: " + typ + "\ndata: {\"type\":\"" + typ + "\"" + rest + "}\n\n"
}

func TestResponsesNativeStream(t *testing.T) {
	created := event("response.created", `,"sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[]}`)
	delta := event("response.output_text.delta", `,"sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"hi"`)
	completed := event("response.completed", `,"sequence_number":2,"response":`+responseJSON)
	for _, tc := range []struct {
		name   string
		body   string
		events int // read before the end
		status int // 0: a clean end
		msg    string
	}{
		{"complete", created + delta + completed, 3, 0, ""},
		{"complete with [DONE]", created + delta + completed + "data: [DONE]\n\n", 3, 0, ""},
		{"incomplete", created + event("response.incomplete", `,"sequence_number":1,"response":`+responseJSON), 2, 0, ""},
		{"cut before the end", created + delta, 2, 502, "before response.completed"},
		{"error event", created + event("error", `,"sequence_number":1,"code":"server_error","message":"boom"`), 1, 502, "boom"},
		{"failed", created + event("response.failed", `,"sequence_number":1,"response":{"status":"failed","error":{"code":"server_error","message":"crashed"}}`), 1, 502, "crashed"},
		{"event before created", delta + created, 0, 502, "before response.created"},
		{"two created", created + created, 1, 502, "second response.created"},
		{"not JSON", created + "data: {nope\n\n", 1, 502, "not a Responses API event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serveResponses(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, tc.body)
			})
			s, err := c.Stream(context.Background(), responsesReq(true))
			require.NoError(t, err)
			defer s.Close()
			var usage *providers.Usage
			for i := range tc.events {
				ev, err := s.Recv()
				require.NoError(t, err, "event %d", i)
				assert.True(t, ev.Native)
				if ev.Usage != nil {
					usage = ev.Usage
				}
			}
			_, err = s.Recv()
			if tc.status == 0 {
				require.ErrorIs(t, err, io.EOF)
				assert.Equal(t, &providers.Usage{PromptTokens: 30, CompletionTokens: 5, CachedTokens: 10}, usage)
				return
			}
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.status, pe.Status)
			assert.Contains(t, pe.Message, tc.msg)
			_, again := s.Recv()
			assert.True(t, errors.Is(again, err) || strings.Contains(again.Error(), tc.msg), "the end is sticky")
		})
	}
}

// A probing client sends the native request until the upstream shows it
// has no /responses; that request and every later one are translated.
func TestResponsesProbe(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				paths = append(paths, r.URL.Path)
				if r.URL.Path == "/v1/responses" {
					w.WriteHeader(status)
					io.WriteString(w, `{"detail":"Not Found"}`)
					return
				}
				answerChat(w, r)
			}))
			t.Cleanup(srv.Close)
			c := New(Options{BaseURL: srv.URL + "/v1", Responses: ResponsesProbe, Options: upstream.Options{Backend: "up"}})
			require.True(t, c.SpeaksNative(providers.FormatOpenAIResponses))

			res, err := c.Do(context.Background(), responsesReq(false))
			require.NoError(t, err)
			assert.False(t, res.Native, "translated")
			assert.Equal(t, []string{"/v1/responses", "/v1/chat/completions"}, paths)
			assert.False(t, c.SpeaksNative(providers.FormatOpenAIResponses), "learned")

			paths = nil
			s, err := c.Stream(context.Background(), responsesReq(true))
			require.NoError(t, err)
			ev, err := s.Recv()
			require.NoError(t, err)
			assert.False(t, ev.Native)
			s.Close()
			assert.Equal(t, []string{"/v1/chat/completions"}, paths, "straight to chat completions")
		})
	}

	// Other failures are the upstream's, not a missing endpoint.
	c := serveResponses(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	c.o.Responses = ResponsesProbe
	_, err := c.Do(context.Background(), responsesReq(false))
	require.Error(t, err)
	assert.True(t, c.SpeaksNative(providers.FormatOpenAIResponses))

	// A stream whose first attempt finds no /responses is translated too.
	var streamPaths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streamPaths = append(streamPaths, r.URL.Path)
		if r.URL.Path == "/v1/responses" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[]}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	c = New(Options{BaseURL: srv.URL + "/v1", Responses: ResponsesProbe, Options: upstream.Options{Backend: "up"}})
	s, err := c.Stream(context.Background(), responsesReq(true))
	require.NoError(t, err)
	s.Close()
	assert.Equal(t, []string{"/v1/responses", "/v1/chat/completions"}, streamPaths)
}

// An upstream that answers every path alike (a chat completion, or chat
// chunks for a stream) is learned not to serve /responses as well; one
// that answered there once is not probed again.
func TestResponsesProbeCatchAll(t *testing.T) {
	for _, stream := range []bool{false, true} {
		var paths []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			paths = append(paths, r.URL.Path)
			answerChat(w, r)
		}))
		t.Cleanup(srv.Close)
		c := New(Options{BaseURL: srv.URL + "/v1", Responses: ResponsesProbe, Options: upstream.Options{Backend: "up"}})
		if stream {
			s, err := c.Stream(context.Background(), responsesReq(true))
			require.NoError(t, err)
			ev, err := s.Recv()
			require.NoError(t, err)
			assert.False(t, ev.Native)
			s.Close()
		} else {
			res, err := c.Do(context.Background(), responsesReq(false))
			require.NoError(t, err)
			assert.False(t, res.Native)
		}
		assert.Equal(t, []string{"/v1/responses", "/v1/chat/completions"}, paths, "stream %v", stream)
		assert.False(t, c.SpeaksNative(providers.FormatOpenAIResponses))
	}

	// Once it answered natively, a later 404 is only an error.
	n := 0
	c := serveResponses(t, func(w http.ResponseWriter, r *http.Request) {
		if n++; n > 1 {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		io.WriteString(w, responseJSON)
	})
	c.o.Responses = ResponsesProbe
	_, err := c.Do(context.Background(), responsesReq(false))
	require.NoError(t, err)
	_, err = c.Do(context.Background(), responsesReq(false))
	require.Error(t, err)
	assert.True(t, c.SpeaksNative(providers.FormatOpenAIResponses))
}

// answerChat answers as a chat-completions server does, a stream when the
// request accepts one: what a server without the Responses API sends back
// whatever the path.
func answerChat(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") == "text/event-stream" {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
}
