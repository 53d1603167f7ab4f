package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// FuzzStream feeds arbitrary bytes to the stream as ConverseStream's body:
// the stream never panics and always ends, with io.EOF or an error.
func FuzzStream(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/cases/*/stream.json")
	for _, path := range seeds {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var sc streamCase
		if err := json.Unmarshal(raw, &sc); err != nil {
			f.Fatal(err)
		}
		f.Add(encodeStream(f, sc.Events))
	}
	f.Add([]byte{})
	f.Add([]byte("{\"output\":{}}"))
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

	var body []byte
	c, err := New(context.Background(), Options{Region: testRegion, BaseURL: "http://bedrock.invalid",
		AccessKeyID: "AKID", SecretAccessKey: "SECRET",
		Options: upstream.Options{Backend: "fuzz", FirstByteTimeout: 5 * time.Second, BetweenChunksTimeout: 5 * time.Second,
			Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: http.StatusOK, Request: r, Body: io.NopCloser(bytes.NewReader(body)),
					Header: http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}}}, nil
			})}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body = data
		s, err := c.Stream(context.Background(), chatRequest(helloBody))
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		defer s.Close()
		for i := 0; ; i++ {
			if i > 10*len(data)+10 {
				t.Fatal("the stream does not end")
			}
			ev, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("want a *providers.Error, got %T: %v", err, err)
				}
				return
			}
			if !json.Valid(ev.Data) {
				t.Fatalf("chunk is not JSON: %q", ev.Data)
			}
		}
	})
}
