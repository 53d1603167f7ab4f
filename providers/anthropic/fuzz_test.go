package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

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

// FuzzNativeStream feeds arbitrary bytes to the native stream: it must not
// panic, every event must be JSON and marked Native, and the stream must
// end with io.EOF or a *providers.Error.
func FuzzNativeStream(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("event: future\ndata: {\"type\":\"future\"}\n\nevent: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{}}}\n\n"))
	f.Add([]byte("data: {\"type\":\"ping\"}\n\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add([]byte("data: null\n\ndata: []\n\ndata: \"x\"\n\n"))
	c := testClient(Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		s := c.newNativeStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(body)))
		defer s.Close()
		// Each event takes at least one byte of input.
		for n := 0; n < len(body)+2; n++ {
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
			if !ev.Native || !json.Valid(ev.Data) {
				t.Fatalf("event not native JSON: %q", ev.Data)
			}
		}
		t.Fatalf("the stream did not end")
	})
}

// FuzzNativeBody: whatever the client sent, the body sent upstream is a
// JSON object with the model and stream written once each, and every
// other top-level member as the client wrote it, in its order.
func FuzzNativeBody(f *testing.F) {
	f.Add([]byte(nativeBodyJSON), true)
	f.Add([]byte(`{}`), false)
	f.Add([]byte(` {"stream":1 , "model" :null}`), true)
	f.Add([]byte(`{"mod\u0065l":"a","x":{"model":1}}`), false)
	f.Add([]byte(`[]`), false)
	f.Fuzz(func(t *testing.T, in []byte, stream bool) {
		orig := bytes.Clone(in)
		out, err := nativeBody(in, "claude-x", stream)
		if !bytes.Equal(orig, in) {
			t.Fatal("the input was modified")
		}
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Status != 400 {
				t.Fatalf("refused with %v, not a 400", err)
			}
			return
		}
		if !json.Valid(out) || !gjson.ParseBytes(out).IsObject() {
			t.Fatalf("not a JSON object: %q", out)
		}
		others := func(b []byte) (rest []string, model, streams []string) {
			gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "model":
					model = append(model, v.Str)
				case "stream":
					streams = append(streams, v.Raw)
				default:
					rest = append(rest, k.Raw+":"+v.Raw)
				}
				return true
			})
			return
		}
		restIn, _, _ := others(in)
		restOut, model, streams := others(out)
		if !slices.Equal(restIn, restOut) {
			t.Fatalf("members changed: %q -> %q", restIn, restOut)
		}
		if !slices.Equal(model, []string{"claude-x"}) {
			t.Fatalf("model is %q", model)
		}
		switch {
		case stream && !slices.Equal(streams, []string{"true"}),
			!stream && len(streams) > 0 && !slices.Equal(streams, []string{"false"}):
			t.Fatalf("stream is %q for a stream=%v call", streams, stream)
		}
	})
}
