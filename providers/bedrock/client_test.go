package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no region", Options{AccessKeyID: "A", SecretAccessKey: "S"}, "region"},
		{"key without secret", Options{Region: "us-east-1", AccessKeyID: "A"}, "secret"},
		{"secret without key", Options{Region: "us-east-1", SecretAccessKey: "S"}, "access key"},
		{"token without keys", Options{Region: "us-east-1", SessionToken: "T"}, "access key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.o)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// isolateAWSEnv points the default credential chain at nothing but what the
// test sets.
func isolateAWSEnv(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"} {
		t.Setenv(k, "")
	}
}

func defaultChainClient(t *testing.T, f *fakeBedrock) *Client {
	t.Helper()
	c, err := New(context.Background(), Options{Options: upstream.Options{Backend: "bedrock-test"}, Region: testRegion, BaseURL: f.srv.URL})
	require.NoError(t, err)
	return c
}

func TestDefaultCredentialChain(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET")
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { _, _ = io.WriteString(w, stockResponse) })
	_, err := defaultChainClient(t, f).Do(context.Background(), chatRequest(helloBody))
	require.NoError(t, err)
	require.Regexp(t, `^AWS4-HMAC-SHA256 Credential=ENVKEY/\d{8}/us-west-2/bedrock/aws4_request, `, f.requests()[0].Auth)
}

func TestStaticKeysWinOverBearerToken(t *testing.T) {
	t.Setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key")
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { _, _ = io.WriteString(w, stockResponse) })
	_, err := f.client(t).Do(context.Background(), chatRequest(helloBody))
	require.NoError(t, err)
	require.Regexp(t, sigV4, f.requests()[0].Auth)
}

func TestNoCredentials(t *testing.T) {
	isolateAWSEnv(t)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { _, _ = io.WriteString(w, stockResponse) })
	c := defaultChainClient(t, f)
	_, err := c.Do(context.Background(), chatRequest(helloBody))
	require.Equal(t, errorView{Status: 502, Type: "api_error", Code: "upstream_auth_failed",
		Message: `backend "bedrock-test": the gateway has no usable AWS credentials`, Retryable: true}, viewError(t, err))
	_, err = c.Stream(context.Background(), chatRequest(helloBody))
	require.Equal(t, "upstream_auth_failed", viewError(t, err).Code)
	require.Empty(t, f.requests(), "nothing unsigned is sent")
}

// TestRefusedRequests are requests Converse cannot express: a 400 naming
// the parameter, and nothing sent.
func TestRefusedRequests(t *testing.T) {
	for _, tc := range []struct {
		name, body, param, msg string
	}{
		{"image url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`,
			"messages[0].content[0].image_url.url", "cannot fetch image URLs"},
		{"image type", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`,
			"messages[0].content[0].image_url.url", `not "image/bmp"`},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}]},{"role":"user","content":"x"}]}`,
			"messages[0].content[0]", "only text in system"},
		{"arguments not JSON", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}`,
			"messages[1].tool_calls[0].function.arguments", "not a JSON value"},
		{"tool call without id", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
			"messages[1].tool_calls[0].id", "id of every tool call"},
		{"json_object", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
			"response_format.type", "json_schema"},
		{"tool_choice without tools", `{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`,
			"tool_choice", "needs tools"},
		{"only system messages", `{"messages":[{"role":"system","content":"x"}]}`, "messages", "at least one"},
		{"n > 1", `{"messages":[{"role":"user","content":"x"}],"n":2}`, "n", "one choice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { t.Error("nothing is sent") })
			c := f.client(t)
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = c.Stream(context.Background(), chatRequest(tc.body))
				} else {
					_, err = c.Do(context.Background(), chatRequest(tc.body))
				}
				var pe *providers.Error
				require.ErrorAs(t, err, &pe)
				require.Equal(t, 400, pe.Status)
				require.Equal(t, "invalid_request_error", pe.Type)
				require.Equal(t, tc.param, pe.Param)
				require.Contains(t, pe.Message, tc.msg)
				require.False(t, pe.Retryable)
			}
		})
	}
}

func TestUnsupportedOperation(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { t.Error("nothing is sent") })
	c := f.client(t)
	for _, op := range []providers.Operation{providers.OpEmbeddings, providers.OpCompletion} {
		req := &providers.Request{Operation: op, Model: testModel, Body: []byte(`{"input":"x"}`)}
		_, err := c.Do(context.Background(), req)
		require.Equal(t, errorView{Status: 400, Type: "invalid_request_error", Code: "unsupported_operation",
			Message: `backend "bedrock-test" (Bedrock) serves chat completions only, not ` + string(op)}, viewError(t, err))
		_, err = c.Stream(context.Background(), req)
		require.Equal(t, "unsupported_operation", viewError(t, err).Code)
	}
}

func TestResponseIDFallsBackToTheGatewayID(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Del("X-Amzn-Requestid")
		_, _ = io.WriteString(w, stockResponse)
	})
	resp, err := f.client(t).Do(context.Background(), chatRequest(helloBody))
	require.NoError(t, err)
	var body struct{ ID string }
	require.NoError(t, json.Unmarshal(resp.Body, &body))
	require.Equal(t, "chatcmpl-gw-1", body.ID)
}

func TestNotAConverseAnswer(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"html", `<html>hello</html>`},
		{"no output", `{"stopReason":"end_turn"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { _, _ = io.WriteString(w, tc.body) })
			_, err := f.client(t).Do(context.Background(), chatRequest(helloBody))
			got := viewError(t, err)
			require.Equal(t, 502, got.Status)
			require.Equal(t, "upstream_unavailable", got.Code)
			require.True(t, got.Retryable)
		})
	}
}

func TestStreamAnsweredWithJSON(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, stockResponse)
	})
	s, err := f.client(t).Stream(context.Background(), chatRequest(helloBody))
	require.NoError(t, err)
	defer s.Close()
	evs, err := collect(t, s)
	require.Empty(t, evs)
	got := viewError(t, err)
	require.Equal(t, 502, got.Status)
	require.Equal(t, "upstream_unavailable", got.Code)
	require.Contains(t, got.Message, "broken event stream")
	require.True(t, got.Retryable)
}

func TestTimeouts(t *testing.T) {
	start := encodeStream(t, []streamEvent{{Event: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)}})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/converse"):
			// Nothing before the first-byte timeout.
		case strings.Contains(string(body), "silent"):
			w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		default:
			writeStream(w, start)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	c := f.client(t, 300*time.Millisecond, 200*time.Millisecond)

	_, err := c.Do(context.Background(), chatRequest(helloBody))
	got := viewError(t, err)
	require.Equal(t, 504, got.Status)
	require.Equal(t, "upstream_timeout", got.Code)
	require.Contains(t, got.Message, providers.ErrFirstByteTimeout.Error())

	// Stalled after the first event: the between-chunks timeout.
	s, err := c.Stream(context.Background(), chatRequest(helloBody))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Recv()
	require.NoError(t, err)
	_, err = s.Recv()
	got = viewError(t, err)
	require.Equal(t, 504, got.Status, "%+v %v", got, err)
	require.Contains(t, got.Message, providers.ErrBetweenChunksTimeout.Error())

	// Headers but no event: the first-byte timeout, from the first Recv.
	silent, err := c.Stream(context.Background(), chatRequest(`{"messages":[{"role":"user","content":"silent"}]}`))
	require.NoError(t, err)
	defer silent.Close()
	_, err = silent.Recv()
	got = viewError(t, err)
	require.Equal(t, 504, got.Status)
	require.Contains(t, got.Message, providers.ErrFirstByteTimeout.Error())
}

func TestCloseUnblocksRecv(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err := f.client(t).Stream(context.Background(), chatRequest(helloBody))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	select {
	case err := <-done:
		require.Error(t, err)
		require.False(t, errors.Is(err, io.EOF), "a closed stream is not a complete one")
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
}

func TestCallerCancel(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.client(t).Do(ctx, chatRequest(helloBody))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, providers.IsRetryable(err), "the caller leaving is not a reason to try elsewhere")
}

func TestDoBetweenChunksTimeout(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"output":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	_, err := f.client(t, 2*time.Second, 150*time.Millisecond).Do(context.Background(), chatRequest(helloBody))
	got := viewError(t, err)
	require.Equal(t, 504, got.Status, "%v", err)
	require.Contains(t, got.Message, providers.ErrBetweenChunksTimeout.Error(), "the headers count as progress")
}

// TestRequestBodyHidesWriterTo guards the fix for smithy-go closing the
// request body while net/http may still be reading it: the transport must
// see a plain reader, whose Read after Close is a clean EOF.
func TestRequestBodyHidesWriterTo(t *testing.T) {
	var sawWriterTo, sawBody bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sawBody = r.Body != nil
		_, sawWriterTo = r.Body.(io.WriterTo)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}}, nil
	})}
	req, err := http.NewRequest(http.MethodPost, "http://bedrock.invalid/", io.NopCloser(strings.NewReader("body")))
	require.NoError(t, err)
	_, isWT := req.Body.(io.WriterTo)
	require.True(t, isWT, "the test body offers WriteTo")
	resp, err := sdkHTTP{hc: hc}.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.True(t, sawBody)
	require.False(t, sawWriterTo)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestConcurrentStreams runs streams side by side on one client, as the
// gateway does; under -race it guards the per-stream protocol.
func TestConcurrentStreams(t *testing.T) {
	var events []streamEvent
	require.NoError(t, json.Unmarshal([]byte(`[
		{"event":"messageStart","payload":{"role":"assistant"}},
		{"event":"contentBlockDelta","payload":{"contentBlockIndex":0,"delta":{"text":"one"}}},
		{"event":"contentBlockDelta","payload":{"contentBlockIndex":0,"delta":{"text":"two"}}},
		{"event":"contentBlockDelta","payload":{"contentBlockIndex":0,"delta":{"text":"three"}}},
		{"event":"messageStop","payload":{"stopReason":"end_turn"}},
		{"event":"metadata","payload":{"usage":{"inputTokens":3,"outputTokens":3,"totalTokens":6}}}]`), &events))
	body := encodeStream(t, events)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		for i := 0; i < len(body); i += 7 { // small writes: the decoders interleave
			_, _ = w.Write(body[i:min(i+7, len(body))])
			w.(http.Flusher).Flush()
		}
	})
	c := f.client(t)
	errs := make(chan error, 16)
	for i := 0; i < cap(errs); i++ {
		go func() {
			s, err := c.Stream(context.Background(), chatRequest(helloBody))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			var text strings.Builder
			for {
				ev, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					errs <- err
					return
				}
				var chunk struct {
					Choices []struct{ Delta struct{ Content string } }
				}
				_ = json.Unmarshal(ev.Data, &chunk)
				for _, ch := range chunk.Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			if text.String() != "onetwothree" {
				errs <- errors.New("garbled stream: " + text.String())
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < cap(errs); i++ {
		require.NoError(t, <-errs)
	}
}

func TestConcurrentDo(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if strings.Contains(r.URL.Path, "fail") {
			w.Header().Set("X-Amzn-Errortype", "ThrottlingException")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"slow down"}`)
			return
		}
		_, _ = io.WriteString(w, stockResponse)
	})
	c := f.client(t)
	errs := make(chan error, 16)
	for i := 0; i < cap(errs); i++ {
		go func() {
			req := chatRequest(helloBody)
			if i%2 == 1 {
				req.Model = "fail"
				_, err := c.Do(context.Background(), req)
				if viewErr := (*providers.Error)(nil); !errors.As(err, &viewErr) || viewErr.Status != 429 {
					errs <- errors.New("want a 429")
					return
				}
				errs <- nil
				return
			}
			_, err := c.Do(context.Background(), req)
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		require.NoError(t, <-errs)
	}
}
