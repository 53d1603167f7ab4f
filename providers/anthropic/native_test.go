package anthropic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/retry"
)

// nativeBodyJSON is a Claude Code style request: system blocks and a tool
// with cache_control, a thinking block with its signature, a
// redacted_thinking block, a field this package does not know, "stream"
// in the middle, and whitespace of its own.
const nativeBodyJSON = `{"model": "claude-sonnet-4-5-alias",
  "max_tokens": 32000,
  "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
  "thinking": {"type": "enabled", "budget_tokens": 31999},
  "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
  "stream": true,
  "messages": [
    {"role": "user", "content": [{"type": "text", "text": "hi \u00e9", "cache_control": {"type": "ephemeral"}}]},
    {"role": "assistant", "content": [
      {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAhIM"},
      {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
      {"type": "text", "text": "Hello"}]},
    {"role": "user", "content": "and now?"}
  ],
  "metadata": {"user_id": "u-1", "model": "not this one"},
  "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}
}`

func nativeReq(stream bool) *providers.Request {
	return &providers.Request{Operation: providers.OpChat, Model: "claude-sonnet-4-5-20250929", Stream: stream,
		Body:      []byte(`{"model":"alias","messages":[{"role":"user","content":"translated"}]}`),
		RequestID: "req-1",
		Native: &providers.Native{Format: providers.FormatAnthropicMessages, Body: []byte(nativeBodyJSON),
			Beta: []string{"interleaved-thinking-2025-05-14", "prompt-caching-2024-07-31", " context-1m-2025-08-07 , interleaved-thinking-2025-05-14"}}}
}

type recorded struct {
	header http.Header
	body   []byte
}

// record starts an upstream that records what it gets and answers with
// the JSON or the event stream in the given fixtures.
func record(t *testing.T, jsonFixture, sseFixture string) (*Client, func() []recorded) {
	t.Helper()
	var mu sync.Mutex
	var got []recorded
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, recorded{r.Header.Clone(), b})
		mu.Unlock()
		if gjson.GetBytes(b, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.Write(fixture(t, sseFixture))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(fixture(t, jsonFixture))
	})
	return c, func() []recorded { mu.Lock(); defer mu.Unlock(); return got }
}

func TestSpeaksNative(t *testing.T) {
	c := testClient(Options{})
	require.True(t, c.SpeaksNative(providers.FormatAnthropicMessages))
	require.False(t, c.SpeaksNative("openai.responses"))
	require.False(t, c.SpeaksNative(""))
}

// drain reads s to its end: the events, and the error it ended with
// (nil for io.EOF).
func drain(t *testing.T, s providers.Stream) ([]providers.Event, error) {
	t.Helper()
	var evs []providers.Event
	for range 10000 {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			_, again := s.Recv()
			require.Equal(t, err, again, "the end is sticky")
			return evs, err
		}
		ev.Data = bytes.Clone(ev.Data) // valid until the next Recv only
		evs = append(evs, ev)
	}
	t.Fatal("the stream did not end")
	return nil, nil
}

// sseData is the data of every event in an SSE fixture, in order.
func sseData(t *testing.T, b []byte) [][]byte {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(b))
	var out [][]byte
	for {
		ev, err := r.Next()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			return out
		}
		out = append(out, bytes.Clone(ev.Data))
	}
}

// TestNativeRequest: what the upstream gets for a native request, for Do
// and for Stream: the client's bytes with model (and stream) rewritten,
// the backend's headers, and the client's beta features added to the
// backend's.
func TestNativeRequest(t *testing.T) {
	c, got := record(t, "testdata/responses/prompt_cache.anthropic.json", "testdata/streams/text.sse")
	_, err := c.Do(context.Background(), nativeReq(false))
	require.NoError(t, err)
	req := nativeReq(true)
	s, err := c.Stream(context.Background(), req)
	require.NoError(t, err)
	_, err = drain(t, s)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.Equal(t, nativeBodyJSON, string(req.Native.Body), "the caller's body is not modified in place")

	withModel := strings.Replace(nativeBodyJSON, `"model": "claude-sonnet-4-5-alias"`, `"model": "claude-sonnet-4-5-20250929"`, 1)
	want := []string{
		strings.Replace(withModel, `"stream": true`, `"stream": false`, 1),
		withModel,
	}
	rec := got()
	require.Len(t, rec, 2)
	for i, g := range rec {
		require.Equal(t, want[i], string(g.body), "byte for byte")
		require.Equal(t, "sk-ant-test", g.header.Get("X-Api-Key"))
		require.Equal(t, "2023-06-01", g.header.Get("Anthropic-Version"))
		require.Equal(t, "prompt-caching-2024-07-31,fine-grained-tool-streaming-2025-05-14,interleaved-thinking-2025-05-14,context-1m-2025-08-07",
			g.header.Get("Anthropic-Beta"))
		require.Len(t, g.header.Values("Anthropic-Beta"), 1)
		require.Equal(t, "application/json", g.header.Get("Content-Type"))
		require.Equal(t, "req-1", g.header.Get("X-Request-Id"))
		require.Empty(t, g.header.Get("Authorization"))
	}
	require.Equal(t, "application/json", rec[0].header.Get("Accept"))
	require.Equal(t, "text/event-stream", rec[1].header.Get("Accept"))
}

// TestNativeOnlyForItsFormat: a request without Native, or with a format
// the client does not speak, is translated as before, with the backend's
// beta values only.
func TestNativeOnlyForItsFormat(t *testing.T) {
	c, got := record(t, "testdata/responses/text.anthropic.json", "testdata/streams/text.sse")
	plain := nativeReq(false)
	plain.Native = nil
	other := nativeReq(false)
	other.Native.Format = "openai.responses"
	for _, req := range []*providers.Request{plain, other} {
		resp, err := c.Do(context.Background(), req)
		require.NoError(t, err)
		require.False(t, resp.Native)
		require.Equal(t, "chat.completion", gjson.GetBytes(resp.Body, "object").Str)
	}
	for _, g := range got() {
		require.JSONEq(t, `[{"role":"user","content":[{"type":"text","text":"translated"}]}]`, gjson.GetBytes(g.body, "messages").Raw)
		require.Equal(t, "prompt-caching-2024-07-31,fine-grained-tool-streaming-2025-05-14", g.header.Get("Anthropic-Beta"))
	}
}

// TestNativeDo: the message comes back as Anthropic sent it, with the
// usage normalised as the translating path does.
func TestNativeDo(t *testing.T) {
	c, _ := record(t, "testdata/responses/prompt_cache.anthropic.json", "")
	resp, err := c.Do(context.Background(), nativeReq(false))
	require.NoError(t, err)
	require.True(t, resp.Native)
	require.Equal(t, string(fixture(t, "testdata/responses/prompt_cache.anthropic.json")), string(resp.Body))
	require.Equal(t, &providers.Usage{PromptTokens: 21 + 1800 + 188086, CompletionTokens: 393, CachedTokens: 1800, CacheWriteTokens: 188086}, resp.Usage)

	// The same usage as the translating path reports for the same message.
	plain := nativeReq(false)
	plain.Native = nil
	tr, err := c.Do(context.Background(), plain)
	require.NoError(t, err)
	require.Equal(t, tr.Usage, resp.Usage)
}

func TestNativeDoBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		usage      *providers.Usage
		msg        string
	}{
		{"no usage", `{"type":"message","id":"m","content":[]}`, nil, ""},
		{"partial usage", `{"type":"message","usage":{"input_tokens":3}}`, &providers.Usage{PromptTokens: 3}, ""},
		{"not JSON", `<html>proxy error</html>`, nil, "not a Messages API message"},
		{"not a message", `{"type":"completion"}`, nil, "not a Messages API message"},
		{"usage of the wrong shape", `{"type":"message","usage":{"input_tokens":"many"}}`, nil, "not a Messages API message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tc.body)
			})
			resp, err := c.Do(context.Background(), nativeReq(false))
			if tc.msg == "" {
				require.NoError(t, err)
				require.Equal(t, tc.body, string(resp.Body))
				require.Equal(t, tc.usage, resp.Usage)
				return
			}
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, 502, pe.Status)
			require.True(t, pe.Retryable)
			require.Contains(t, pe.Message, tc.msg)
		})
	}
}

// TestNativeStream: every event's data is relayed in order, pings and
// unknown events included, with the running usage on message_start and
// message_delta.
func TestNativeStream(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		usage   map[int]providers.Usage // by event index
	}{
		{"prompt_cache", map[int]providers.Usage{
			0: {PromptTokens: 21 + 1800 + 188086, CompletionTokens: 1, CachedTokens: 1800, CacheWriteTokens: 188086},
			5: {PromptTokens: 21 + 1800 + 188086, CompletionTokens: 393, CachedTokens: 1800, CacheWriteTokens: 188086},
		}},
		{"text", map[int]providers.Usage{0: {PromptTokens: 25, CompletionTokens: 1}, 6: {PromptTokens: 25, CompletionTokens: 15}}},
		{"thinking_and_unknown_events", map[int]providers.Usage{0: {PromptTokens: 50, CompletionTokens: 1}, 9: {PromptTokens: 50, CompletionTokens: 30}}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			path := "testdata/streams/" + tc.fixture + ".sse"
			c, _ := record(t, "", path)
			s, err := c.Stream(context.Background(), nativeReq(true))
			require.NoError(t, err)
			defer s.Close()
			evs, err := drain(t, s)
			require.NoError(t, err)
			want := sseData(t, fixture(t, path))
			require.Len(t, evs, len(want))
			for i, ev := range evs {
				require.True(t, ev.Native)
				require.False(t, ev.UsageOnly)
				require.Equal(t, string(want[i]), string(ev.Data), "event %d", i)
				if u, ok := tc.usage[i]; ok {
					require.Equal(t, &u, ev.Usage, "event %d", i)
				} else {
					require.Nil(t, ev.Usage, "event %d", i)
				}
			}
			require.Equal(t, "message_stop", gjson.GetBytes(evs[len(evs)-1].Data, "type").Str)
			_, err = s.Recv()
			require.ErrorIs(t, err, io.EOF, "io.EOF again after the end")
		})
	}
}

// TestNativeStreamUsageRepeated: newer API versions repeat the input and
// cache counts in message_delta; the latest count wins.
func TestNativeStreamUsageRepeated(t *testing.T) {
	body := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":5,\"cache_creation_input_tokens\":3,\"output_tokens\":9}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	c := testClient(Options{})
	s := c.newNativeStream(c.Start(context.Background()), io.NopCloser(strings.NewReader(body)))
	evs, err := drain(t, s)
	require.NoError(t, err)
	require.Len(t, evs, 4)
	require.Equal(t, &providers.Usage{PromptTokens: 15, CompletionTokens: 1, CachedTokens: 5}, evs[0].Usage)
	require.Equal(t, &providers.Usage{PromptTokens: 15, CompletionTokens: 7, CachedTokens: 5}, evs[1].Usage)
	require.Equal(t, &providers.Usage{PromptTokens: 20, CompletionTokens: 9, CachedTokens: 5, CacheWriteTokens: 3}, evs[2].Usage)
	require.Nil(t, evs[3].Usage)
}

// TestNativeStreamFixtures: over every stream fixture, the native stream
// relays each event's data in order, and ends as the translating stream
// does: io.EOF, or the very same error.
func TestNativeStreamFixtures(t *testing.T) {
	c := testClient(Options{})
	paths, err := filepath.Glob("testdata/streams/*.sse")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in := fixture(t, path)
			tr := c.newStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(in)))
			defer tr.Close()
			_, trErr := drain(t, tr)
			ns := c.newNativeStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(in)))
			defer ns.Close()
			evs, err := drain(t, ns)
			require.Equal(t, trErr, err)
			all := sseData(t, in)
			if err == nil {
				require.Len(t, evs, len(all))
			}
			for i, ev := range evs {
				require.Equal(t, string(all[i]), string(ev.Data))
				require.True(t, ev.Native)
			}
		})
	}
}

// TestNativeStreamErrors: an error event mid-stream, and streams the
// Messages API does not send, end the native stream with the translating
// stream's error; before message_start, the first Recv returns it, so the
// router can still fall back.
func TestNativeStreamErrors(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n"
	ping := "event: ping\ndata: {\"type\":\"ping\"}\n\n"
	future := "event: future\ndata: {\"type\":\"future\",\"x\":1}\n\n"
	overloaded := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	for _, tc := range []struct {
		name, body string
		events     int // relayed before the error
		status     int
		msg        string
	}{
		{"error event mid-stream", start + ping + overloaded, 2, 529, "Overloaded"},
		{"error event first", overloaded, 0, 529, "Overloaded"},
		{"error after a ping", ping + overloaded, 0, 529, "Overloaded"},
		{"error after an unknown event", future + overloaded, 0, 529, "Overloaded"},
		{"end after an unknown event", future, 0, 502, "before message_stop"},
		{"empty body", "", 0, 502, "before message_stop"},
		{"cut short", start + ping, 2, 502, "before message_stop"},
		{"delta before message_start", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n", 0, 502, "before message_start"},
		{"data not JSON", start + "event: content_block_delta\ndata: {oops\n\n", 1, 502, "not a JSON object"},
		{"message_delta of a bad shape", start + "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"x\"}}\n\n", 1, 502, "cannot be read"},
		{"message_start of a bad shape", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":[]}\n\n", 0, 502, "cannot be read"},
		{"second message_start", start + start, 1, 502, "second message_start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testClient(Options{})
			s := c.newNativeStream(c.Start(context.Background()), io.NopCloser(strings.NewReader(tc.body)))
			defer s.Close()
			evs, err := drain(t, s)
			require.Len(t, evs, tc.events)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.status, pe.Status)
			require.True(t, pe.Retryable)
			require.Contains(t, pe.Message, tc.msg)
		})
	}
}

// TestNativeStreamEarlyEvents: pings before message_start are dropped,
// unknown events before it are held back and relayed in order just before
// it, so the first Recv is message_start's or an error.
func TestNativeStreamEarlyEvents(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":1}}}\n\n"
	body := "event: ping\ndata: {\"type\":\"ping\"}\n\n" +
		"event: future\ndata: {\"type\":\"future\",\"n\":1}\n\n" +
		"event: future\ndata: {\"type\":\"future\",\"n\":2}\n\n" +
		start +
		"event: ping\ndata: {\"type\":\"ping\"}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	c := testClient(Options{})
	s := c.newNativeStream(c.Start(context.Background()), io.NopCloser(strings.NewReader(body)))
	evs, err := drain(t, s)
	require.NoError(t, err)
	var types []string
	for _, ev := range evs {
		types = append(types, gjson.GetBytes(ev.Data, "type").Str+gjson.GetBytes(ev.Data, "n").Raw)
	}
	require.Equal(t, []string{"future1", "future2", "message_start", "ping", "message_stop"}, types)
	require.NotNil(t, evs[2].Usage)

	many := strings.Repeat("event: future\ndata: {\"type\":\"future\"}\n\n", maxEarlyEvents+1) + start
	s = c.newNativeStream(c.Start(context.Background()), io.NopCloser(strings.NewReader(many)))
	_, err = s.Recv()
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.Contains(t, pe.Message, "before message_start")
}

// TestNativeStatusErrors: error statuses map as on the translating path,
// for Do and Stream.
func TestNativeStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		typ    string
		header string
	}{
		{429, "rate_limit_error", "17"},
		{529, "overloaded_error", "3"},
		{500, "api_error", ""},
		{401, "authentication_error", ""},
		{400, "invalid_request_error", ""},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"type":"error","error":{"type":"`+tc.typ+`","message":"no"}}`)
			})
			plain := nativeReq(false)
			plain.Native = nil
			_, want := c.Do(context.Background(), plain)
			require.Error(t, want)
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = c.Stream(context.Background(), nativeReq(true))
				} else {
					_, err = c.Do(context.Background(), nativeReq(false))
				}
				require.Equal(t, want, err)
			}
		})
	}
}

// TestNativeRetried: behind the retry wrapper, a 529 is retried with the
// same native request, and the wrapper still speaks natively.
func TestNativeRetried(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var bodies []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			w.WriteHeader(529)
			io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
			return
		}
		w.Write(fixture(t, "testdata/responses/text.anthropic.json"))
	})
	p := retry.Wrap(c, retry.Policy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond})
	ns, ok := p.(providers.NativeSpeaker)
	require.True(t, ok)
	require.True(t, ns.SpeaksNative(providers.FormatAnthropicMessages))
	resp, err := p.Do(context.Background(), nativeReq(false))
	require.NoError(t, err)
	require.True(t, resp.Native)
	require.Len(t, bodies, 2)
	require.Equal(t, bodies[0], bodies[1])
	require.Equal(t, "claude-sonnet-4-5-20250929", gjson.Get(bodies[1], "model").Str)
}

func TestNativeBody(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		stream   bool
		want     string
		param    string // a refusal's param; "-" for a refusal without one
	}{
		{"replaced in place", `{"max_tokens":1,"model":"a","stream":false,"x":[1]}`, true, `{"max_tokens":1,"model":"m","stream":true,"x":[1]}`, ""},
		{"stream set false", `{"model":"a","stream":true}`, false, `{"model":"m","stream":false}`, ""},
		{"stream of another type", `{"model":"a","stream":"yes"}`, false, `{"model":"m","stream":false}`, ""},
		{"whitespace kept", " \n{ \"model\" :\t\"a\" , \"stream\" : true }\n", true, " \n{ \"model\" :\t\"m\" , \"stream\" : true }\n", ""},
		{"model inserted", `{"max_tokens":1}`, false, `{"model":"m","max_tokens":1}`, ""},
		{"model and stream inserted", `{"max_tokens":1}`, true, `{"model":"m","stream":true,"max_tokens":1}`, ""},
		{"stream inserted", `{"messages":[],"model":"a"}`, true, `{"stream":true,"messages":[],"model":"m"}`, ""},
		{"empty object", `{}`, true, `{"model":"m","stream":true}`, ""},
		{"empty object, not streaming", ` { } `, false, ` {"model":"m" } `, ""},
		{"model of another type", `{"model":{"id":"a"}}`, false, `{"model":"m"}`, ""},
		{"nested model untouched", `{"metadata":{"model":"x"},"tools":[{"model":"y"}],"model":"a"}`, false, `{"metadata":{"model":"x"},"tools":[{"model":"y"}],"model":"m"}`, ""},
		{"escaped key", `{"mod\u0065l":"a"}`, false, `{"mod\u0065l":"m"}`, ""},
		{"strings that look like members", `{"system":"\"model\":\"z\"","model":"a"}`, false, `{"system":"\"model\":\"z\"","model":"m"}`, ""},
		{"model repeated", `{"model":"a","messages":[],"model":"opus"}`, false, "", "model"},
		{"model repeated, escaped", `{"model":"a","mod\u0065l":"opus"}`, false, "", "model"},
		{"stream repeated", `{"stream":false,"stream":true}`, true, "", "stream"},
		{"not JSON", `{"model":"a"`, false, "", "-"},
		{"an array", `[{"model":"a"}]`, false, "", "-"},
		{"a string", `"{}"`, false, "", "-"},
		{"empty", ``, false, "", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got, err := nativeBody(in, "m", tc.stream)
			require.Equal(t, tc.in, string(in), "the input is not modified")
			if tc.param != "" {
				var pe *providers.Error
				require.ErrorAs(t, err, &pe)
				require.Equal(t, 400, pe.Status)
				require.Equal(t, "invalid_request_error", pe.Type)
				require.False(t, pe.Retryable)
				if tc.param != "-" {
					require.Equal(t, tc.param, pe.Param)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}

	got, err := nativeBody([]byte(`{"model":"a"}`), "we\"ird</model>\u2028", false)
	require.NoError(t, err)
	require.Equal(t, "we\"ird</model>\u2028", gjson.GetBytes(got, "model").Str)
}

func TestMergeBetas(t *testing.T) {
	got, err := mergeBetas(nil, nil)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = mergeBetas([]string{"a", "b,c"}, []string{" c ", "d,,a", "", "e"})
	require.NoError(t, err)
	require.Equal(t, "a,b,c,d,e", got)
	got, err = mergeBetas([]string{"a\nb"}, []string{"x"})
	require.NoError(t, err)
	require.Equal(t, "x", got, "a bad configured value is skipped")
	_, err = mergeBetas([]string{"a"}, []string{"x\r\nX-Evil: 1"})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 400, pe.Status)
	require.Equal(t, "anthropic-beta", pe.Param)
}

// TestNativeRefusedBeforeSending: a native request that cannot be sent is
// a 400, and nothing reaches the upstream.
func TestNativeRefusedBeforeSending(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("nothing is sent") })
	for _, mut := range []func(*providers.Request){
		func(r *providers.Request) { r.Native.Body = []byte(`{"model":"a","model":"b"}`) },
		func(r *providers.Request) { r.Native.Body = []byte(`not json`) },
		func(r *providers.Request) { r.Native.Beta = []string{"a\nb"} },
	} {
		for _, stream := range []bool{false, true} {
			req := nativeReq(stream)
			mut(req)
			var err error
			if stream {
				_, err = c.Stream(context.Background(), req)
			} else {
				_, err = c.Do(context.Background(), req)
			}
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, 400, pe.Status)
			require.False(t, pe.Retryable)
		}
	}
}

// TestNativeStreamTimeout: the between-chunks timeout applies as on the
// translating path.
func TestNativeStreamTimeout(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err := c.Stream(context.Background(), nativeReq(true))
	require.NoError(t, err)
	ev, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, "message_start", gjson.GetBytes(ev.Data, "type").Str)
	_, err = s.Recv()
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 504, pe.Status)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
}
