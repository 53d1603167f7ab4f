package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/router"
)

// hangingUpstream reports each request's arrival on arrived and the moment
// the gateway canceled it on canceled. When stream is set it sends headers
// first, as a streaming server that is still prefilling does.
func hangingUpstream(arrived chan<- struct{}, canceled chan<- time.Time, stream bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		arrived <- struct{}{}
		<-r.Context().Done()
		canceled <- time.Now()
	}
}

func TestClientLeavesBeforeFirstByte(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "stream"}[stream]
		t.Run(name, func(t *testing.T) {
			arrived, canceled := make(chan struct{}, 1), make(chan time.Time, 1)
			up := newUpstream(t, hangingUpstream(arrived, canceled, stream))
			var fallbackCalls atomic.Int32
			fallback := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fallbackCalls.Add(1) })
			cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1", fallback.URL + "/v1"}})
			cfg.Backends[0].Timeouts.FirstByte = time.Minute
			base, _ := startGateway(t, cfg)

			body := `{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `}`
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			// Leave as often as it takes to make a deployment unhealthy,
			// had departures counted against it.
			for range router.FailureThreshold {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testKey)
				errc := make(chan error, 1)
				go func() {
					resp, err := (&http.Client{Transport: tr}).Do(req)
					if err == nil {
						resp.Body.Close()
					}
					errc <- err
				}()
				<-arrived
				left := time.Now()
				cancel() // the client gives up and closes its connection
				require.ErrorIs(t, <-errc, context.Canceled)

				select {
				case at := <-canceled:
					t.Logf("upstream canceled %v after the client left", at.Sub(left))
				case <-time.After(time.Second):
					t.Fatal("upstream still running 1s after the client left")
				}
			}
			assert.Zero(t, fallbackCalls.Load(), "nobody is waiting: no fallback")

			// The deployment is not blamed for the client leaving.
			resp, err := http.Get(strings.TrimSuffix(base, "/v1") + "/readyz")
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.NotContains(t, string(b), `"healthy":false`)
		})
	}
}

func TestStreamErrorEvents(t *testing.T) {
	midError := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: "+chunk("m", `{"content":"partial"}`, "")+"\n\n")
		io.WriteString(w, `data: {"error":{"message":"CUDA out of memory","type":"server_error","code":500}}`+"\n\n")
	})
	cut := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: "+chunk("m", `{"content":"partial"}`, "")+"\n\n")
	})
	firstError := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"error":{"message":"overloaded","type":"server_error","code":503}}`+"\n\n")
	})
	ok := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, chunk("m", `{"content":"from the fallback"}`, "stop"), usageChunk("m", 2, 3))
	})
	base, _ := startGateway(t, gatewayConfig(t, "",
		route{name: "mid", backends: []string{midError.URL + "/v1", ok.URL + "/v1"}},
		route{name: "cut", backends: []string{cut.URL + "/v1", ok.URL + "/v1"}},
		route{name: "first", backends: []string{firstError.URL + "/v1", ok.URL + "/v1"}},
	))

	for _, tc := range []struct{ model, code, msg string }{
		{"mid", "upstream_error", "CUDA out of memory"},
		{"cut", "upstream_unavailable", "without [DONE]"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			stream := sdk(base).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model: tc.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			})
			acc := openai.ChatCompletionAccumulator{}
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			assert.Equal(t, "partial", acc.Choices[0].Message.Content)
			require.Error(t, stream.Err(), "the SDK raises the error event")
			assert.Contains(t, stream.Err().Error(), tc.msg)
			assert.Contains(t, stream.Err().Error(), tc.code)

			lines := readRawStream(t, base, `{"model":"`+tc.model+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			assert.NotContains(t, lines, "data: [DONE]", "a failed stream does not claim to be complete")
			cost := costOf(t, lines)
			assert.EqualValues(t, 1, cost["completion_tokens"], "what was streamed is billed: one chunk, estimated")
			assert.Equal(t, true, cost["usage_estimated"])
			assert.NotEqual(t, "0", cost["cost_usd"])
		})
	}

	t.Run("error as the first event falls back", func(t *testing.T) {
		stream := sdk(base).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model: "first", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		acc := openai.ChatCompletionAccumulator{}
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, "from the fallback", acc.Choices[0].Message.Content)
	})
}

func TestShutdownDeadlineEndsStreamsWithAnError(t *testing.T) {
	arrived, canceled := make(chan struct{}, 1), make(chan time.Time, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: "+chunk("m", `{"content":"partial"}`, "")+"\n\n")
		w.(http.Flusher).Flush()
		arrived <- struct{}{}
		<-r.Context().Done()
		canceled <- time.Now()
	})
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Backends[0].Timeouts.BetweenChunks = time.Minute
	base, srv := startGateway(t, cfg)

	stream := sdk(base).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	require.True(t, stream.Next())
	<-arrived

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := srv.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request outlived the shutdown deadline")
	}

	for stream.Next() {
	}
	require.Error(t, stream.Err())
	assert.Contains(t, stream.Err().Error(), "server_shutting_down")
}

// A Serve that starts after Shutdown began (a process told to stop while
// starting) returns at once and closes its listener, rather than serving
// on or hanging.
func TestServeAfterShutdownReturns(t *testing.T) {
	srv, err := gateway.New(gatewayConfig(t, "", route{name: "chat", backends: []string{deadUpstream(t)}}), gateway.Options{})
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(context.Background()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, gateway.ErrServerClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	assert.Error(t, err, "the listener is closed")
}

func TestReadTimeoutDropsSlowClients(t *testing.T) {
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{"http://127.0.0.1:1/v1"}})
	cfg.Server.ReadTimeout = 200 * time.Millisecond
	base, _ := startGateway(t, cfg)
	conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(base, "/v1"), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n") // and never the rest
	require.NoError(t, err)

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the gateway kept a half-sent request open past its read timeout")
	}
}

func TestAuthOtherSchemeThenKeyHeader(t *testing.T) {
	base, _ := startGateway(t, gatewayConfig(t, "", route{name: "chat", backends: []string{"http://127.0.0.1:1/v1"}}))
	req, _ := http.NewRequest(http.MethodGet, base+"/models", nil)
	req.Header.Set("Authorization", "Basic Zm9vOmJhcg==") // set by a proxy in front, say
	req.Header.Set("x-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

// slowUpstream answers after delay: an upstream that takes its time, not a
// test waiting for an outcome.
func slowUpstream(delay time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, 200, chatCompletion("m", "worth the wait", 1, 1, 0))
	}
}

func TestAnswerSlowerThanWriteTimeoutIsDelivered(t *testing.T) {
	up := newUpstream(t, slowUpstream(900*time.Millisecond))
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Backends[0].Timeouts.FirstByte = 10 * time.Second
	cfg.Server.WriteTimeout = 300 * time.Millisecond // bounds the client's reading, not the upstream's thinking
	base, _ := startGateway(t, cfg)
	got, err := sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	require.NoError(t, err)
	assert.Equal(t, "worth the wait", got.Choices[0].Message.Content)
}

func TestClientLeavingIsSeenAfterReadTimeout(t *testing.T) {
	arrived, canceled := make(chan struct{}, 1), make(chan time.Time, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// The upstream takes longer than the gateway's read timeout before
		// the client gives up.
		<-time.After(600 * time.Millisecond)
		hangingUpstream(arrived, canceled, false)(w, r)
	})
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Backends[0].Timeouts.FirstByte = time.Minute
	cfg.Server.ReadTimeout = 250 * time.Millisecond
	base, _ := startGateway(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := sdk(base).Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		errc <- err
	}()
	<-arrived
	cancel()
	<-errc
	select {
	case <-canceled:
	case <-time.After(time.Second):
		t.Fatal("a client leaving after the read timeout went unnoticed")
	}
}

func TestContinueOnAConnectionIdleLongerThanWriteTimeout(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("m", "hi", 1, 1, 0))
	})
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Server.WriteTimeout = 300 * time.Millisecond
	base, _ := startGateway(t, cfg)
	conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(base, "/v1"), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	body := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
	head := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", testKey, len(body))

	_, err = io.WriteString(conn, head+"\r\n"+body)
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	// The connection idles past the last response's write deadline; the
	// "100 Continue" of the next request must still go out.
	<-time.After(900 * time.Millisecond)
	_, err = io.WriteString(conn, head+"Expect: 100-continue\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
}

// A connection that sends nothing is closed at read_timeout, without an
// access-log line: there was no request.
func TestReadTimeoutOnASilentConnectionIsNotARequest(t *testing.T) {
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{"http://127.0.0.1:1/v1"}})
	cfg.Server.ReadTimeout = 200 * time.Millisecond
	cfg.Server.IdleTimeout = 300 * time.Millisecond
	var logs syncBuffer
	base, _ := startGatewayWith(t, cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	addr := strings.TrimPrefix(strings.TrimSuffix(base, "/v1"), "http://")
	closed := func(send string) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		if send != "" {
			_, err = io.WriteString(conn, send)
			require.NoError(t, err)
		}
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = io.ReadAll(conn) // until the gateway closes it
		require.NoError(t, err)
	}
	closed("") // within read_timeout, not never
	assert.NotContains(t, logs.String(), `"status":408`, "a silent connection is not a request")
	closed("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") // answered, then idle until idle_timeout
	assert.NotContains(t, logs.String(), `"status":408`)
}
