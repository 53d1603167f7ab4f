package anthropic

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

// FuzzStream feeds arbitrary bytes to the stream decoder as the event
// stream body: it must not panic, every chunk must be JSON, and the stream
// must end with io.EOF or a *providers.Error.
func FuzzStream(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add([]byte("data: {\"type\":\"content_block_stop\",\"index\":-1}\n\n"))
	f.Add([]byte("data: null\n\ndata: []\n\ndata: \"x\"\n\n"))
	c := testClient(Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		s := c.newStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(body)))
		defer s.Close()
		// Each event read yields at most two chunks, and each chunk needs
		// at least one byte of input (plus the role, finish and usage).
		for n := 0; n < 2*len(body)+8; n++ {
			ev, err := s.Recv()
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
			if !json.Valid(ev.Data) {
				t.Fatalf("chunk is not JSON: %q", ev.Data)
			}
		}
		t.Fatalf("the stream did not end")
	})
}
