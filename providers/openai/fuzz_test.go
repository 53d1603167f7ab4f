package openai

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/switchyard/switchyard/internal/sse"
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
		s := &stream{c: c, a: c.Start(context.Background()), body: io.NopCloser(bytes.NewReader(body)), r: sse.NewReader(bytes.NewReader(body))}
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
