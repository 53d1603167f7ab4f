package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
)

// streamThenWait is an upstream that sends one chunk and then waits for
// release (sending the rest) or for the gateway to cancel it (reporting
// the moment on canceled).
func streamThenWait(release <-chan struct{}, canceled chan<- time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.Write([]byte("data: " + chunk("m", `{"role":"assistant","content":"first"}`, "") + "\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
			w.Write([]byte("data: " + chunk("m", `{"content":" second"}`, "stop") + "\n\n"))
			w.Write([]byte("data: " + usageChunk("m", 3, 2) + "\n\ndata: [DONE]\n\n"))
		case <-r.Context().Done():
			canceled <- time.Now()
		}
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	canceled := make(chan time.Time, 1)
	up := newUpstream(t, streamThenWait(nil, canceled))
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	// Long upstream timeouts, so only the client's departure can cancel.
	cfg.Backends[0].Timeouts.FirstByte = time.Minute
	cfg.Backends[0].Timeouts.BetweenChunks = time.Minute
	cfg.Server.StreamKeepalive = config.DefaultStreamKeepalive
	base, _ := startGateway(t, cfg)

	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions",
		strings.NewReader(`{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	// A transport of its own, so closing the body really closes the socket.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "first")

	left := time.Now()
	resp.Body.Close()
	select {
	case at := <-canceled:
		t.Logf("upstream saw the cancellation %v after the client left", at.Sub(left))
	case <-time.After(time.Second):
		t.Fatal("upstream was not canceled within 1s of the client disconnecting")
	}
}

func TestGracefulShutdownFinishesStreams(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, streamThenWait(release, make(chan time.Time, 1)))
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Backends[0].Timeouts.BetweenChunks = time.Minute
	base, srv := startGateway(t, cfg)

	stream := sdk(base).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	acc := openai.ChatCompletionAccumulator{}
	require.True(t, stream.Next())
	acc.AddChunk(stream.Current())

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	require.Eventually(t, srv.Draining, time.Second, time.Millisecond)
	select {
	case err := <-shutdown:
		t.Fatalf("shutdown returned (%v) while a stream was in flight", err)
	default:
	}

	close(release)
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, "first second", acc.Choices[0].Message.Content)
	require.NoError(t, <-shutdown, "shutdown completes once the stream is done")
}
