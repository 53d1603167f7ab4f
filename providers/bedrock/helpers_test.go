package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

const (
	testModel     = "anthropic.claude-3-5-sonnet-20240620-v1:0"
	testRequestID = "7f3c2d1e-5a4b-4c3d-9e8f-0a1b2c3d4e5f"
	testRegion    = "us-west-2"
)

var testNow = time.Unix(1700000000, 0)

// captured is one request the fake Bedrock received.
type captured struct {
	Method, Path, RawPath, Auth, ContentType, AmzDate string
	Body                                              []byte
}

// fakeBedrock is an httptest server standing in for Bedrock; handle
// answers, every request is recorded.
type fakeBedrock struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []captured
	handle func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeBedrock {
	t.Helper()
	f := &fakeBedrock{handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, captured{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
			Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"),
			AmzDate: r.Header.Get("X-Amz-Date"), Body: body})
		f.mu.Unlock()
		w.Header().Set("X-Amzn-Requestid", testRequestID)
		f.handle(w, r, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBedrock) requests() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.reqs...)
}

// client is a Client with static fake credentials pointed at the fake.
func (f *fakeBedrock) client(t *testing.T, timeouts ...time.Duration) *Client {
	t.Helper()
	o := upstream.Options{Backend: "bedrock-test", ConnectTimeout: time.Second}
	if len(timeouts) == 2 {
		o.FirstByteTimeout, o.BetweenChunksTimeout = timeouts[0], timeouts[1]
	}
	c, err := New(context.Background(), Options{Options: o, Region: testRegion, BaseURL: f.srv.URL,
		AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN"})
	require.NoError(t, err)
	c.now = func() time.Time { return testNow }
	return c
}

func chatRequest(body string) *providers.Request {
	return &providers.Request{Operation: providers.OpChat, Model: testModel, Body: []byte(body), RequestID: "gw-1"}
}

// streamEvent is one message of a fake event stream, as a test case
// describes it.
type streamEvent struct {
	// Event is the :event-type of an event message.
	Event string `json:"event,omitempty"`
	// Exception is the :exception-type of an exception message.
	Exception string          `json:"exception,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// encodeStream writes events as an AWS event stream, framed by the SDK's
// own encoder.
func encodeStream(t testing.TB, events []streamEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, ev := range events {
		var msg eventstream.Message
		if ev.Exception != "" {
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
			msg.Headers.Set(":exception-type", eventstream.StringValue(ev.Exception))
		} else {
			msg.Headers.Set(":event-type", eventstream.StringValue(ev.Event))
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		}
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Payload = ev.Payload
		require.NoError(t, enc.Encode(&buf, msg))
	}
	return buf.Bytes()
}

// writeStream answers with an event stream body.
func writeStream(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// collect reads a stream to its end: the events' data and the final error.
func collect(t *testing.T, s providers.Stream) ([]providers.Event, error) {
	t.Helper()
	var evs []providers.Event
	for i := 0; i < 1000; i++ {
		ev, err := s.Recv()
		if err != nil {
			return evs, err
		}
		ev.Data = append([]byte(nil), ev.Data...)
		evs = append(evs, ev)
	}
	t.Fatal("the stream did not end")
	return nil, nil
}

// errorView is the part of a *providers.Error a test compares.
type errorView struct {
	Status     int    `json:"status"`
	Type       string `json:"type"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter string `json:"retry_after,omitempty"`
	Retryable  bool   `json:"retryable"`
}

func viewError(t *testing.T, err error) errorView {
	t.Helper()
	var pe *providers.Error
	require.True(t, errors.As(err, &pe), "want a *providers.Error, got %T: %v", err, err)
	return errorView{Status: pe.Status, Type: pe.Type, Code: pe.Code, Message: pe.Message, RetryAfter: pe.RetryAfter, Retryable: pe.Retryable}
}
