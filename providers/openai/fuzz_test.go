package openai

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// FuzzStream feeds arbitrary bytes to the stream reader as the SSE body:
// it must not panic and must end with io.EOF or a *providers.Error.
func FuzzStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("event: error\ndata: {\"error\":{\"message\":\"x\",\"code\":503}}\n\n"))
	f.Add([]byte("data: {\"error\":\"boom\"}\n\n"))
	f.Add([]byte(": keep-alive\n\ndata: partial"))
	c := New(Options{BaseURL: "http://unused", Options: upstream.Options{Backend: "fuzz"}})
	f.Fuzz(func(t *testing.T, body []byte) {
		s := c.newStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(body)))
		defer s.Close()
		for n := 0; n <= len(body)+1; n++ {
			_, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("the stream ended with %T %v, not a *providers.Error", err, err)
				}
				return
			}
		}
		t.Fatalf("the stream did not end")
	})
}

// FuzzResponsesStream feeds arbitrary bytes to the native Responses stream
// reader: it must not panic, must end with io.EOF or a *providers.Error,
// and io.EOF only after a terminal event.
func FuzzResponsesStream(f *testing.F) {
	f.Add([]byte("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n" +
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n" +
		"data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"))
	f.Add([]byte("data: {\"type\":\"response.created\"}\n\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"x\"}\n\n"))
	f.Add([]byte("data: {\"type\":\"response.created\"}\n\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"rate_limit_exceeded\"}}}\n\n"))
	f.Add([]byte("data: [DONE]\n\ndata: {\"type\":\"\"}\n\n"))
	c := New(Options{BaseURL: "http://unused", Responses: ResponsesOn, Options: upstream.Options{Backend: "fuzz"}})
	f.Fuzz(func(t *testing.T, body []byte) {
		s := c.newResponsesStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(body)))
		defer s.Close()
		terminal := false
		for n := 0; n <= len(body)+1; n++ {
			ev, err := s.Recv()
			if errors.Is(err, io.EOF) {
				if !terminal {
					t.Fatalf("io.EOF before a terminal event")
				}
				return
			}
			if err != nil {
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("the stream ended with %T %v, not a *providers.Error", err, err)
				}
				return
			}
			if !ev.Native {
				t.Fatalf("an event not marked native")
			}
			typ := gjson.GetBytes(ev.Data, "type").Str
			terminal = typ == "response.completed" || typ == "response.incomplete"
		}
		t.Fatalf("the stream did not end")
	})
}
