package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard/switchyard/providers"
)

// FuzzStream feeds random bytes as the event stream: the stream never
// panics, every event is JSON, and it ends with io.EOF or a
// *providers.Error.
func FuzzStream(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stream", "*.sse"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("data: {\"error\":{\"code\":7}}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":null}}]},\"finishReason\":\"STOP\"}]}\n\n"))
	f.Add([]byte("data: null\n\ndata: []\n\n"))
	f.Add([]byte(""))
	c := testClient(nil)
	req := &providers.Request{Operation: providers.OpChat, Model: "m", Stream: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := c.newStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(data)), req)
		defer s.Close()
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatalf("no end after %d events", i)
			}
			ev, err := s.Recv()
			if err != nil {
				var pe *providers.Error
				if !errors.Is(err, io.EOF) && !errors.As(err, &pe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				if _, again := s.Recv(); again == nil {
					t.Fatal("Recv after the end returned an event")
				}
				return
			}
			if !json.Valid(ev.Data) {
				t.Fatalf("event is not JSON: %q", ev.Data)
			}
		}
	})
}
