package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
)

// The fixtures, and the documentation page each follows, are listed in
// testdata/SOURCES.md.

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedNow is the creation time of every golden response.
var fixedNow = time.Unix(1767225600, 0)

func testClient(o Options) *Client {
	if o.Backend == "" {
		o.Backend = "anthropic"
	}
	c := New(o)
	c.now = func() time.Time { return fixedNow }
	return c
}

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test -update")
	require.Equal(t, string(want), string(got))
}

func indent(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, data, "", "  "))
	buf.WriteByte('\n')
	return buf.Bytes()
}

// cases lists the fixtures in dir whose names end in suffix.
func cases(t *testing.T, dir, suffix string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"+suffix))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for i, p := range paths {
		paths[i] = strings.TrimSuffix(p, suffix)
	}
	return paths
}

// TestGoldenRequests: OpenAI request in, Messages API request out.
func TestGoldenRequests(t *testing.T) {
	c := testClient(Options{})
	for _, base := range cases(t, "requests", ".openai.json") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(base + ".openai.json")
			require.NoError(t, err)
			stream := gjson.GetBytes(in, "stream").Bool()
			body, err := c.body(&providers.Request{Operation: providers.OpChat, Model: "claude-sonnet-4-5", Body: in, Stream: stream}, stream)
			require.NoError(t, err)
			golden(t, base+".anthropic.json", indent(t, body))
		})
	}
}

// TestGoldenResponses: Messages API response in, chat completion out.
func TestGoldenResponses(t *testing.T) {
	for _, base := range cases(t, "responses", ".anthropic.json") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(base + ".anthropic.json")
			require.NoError(t, err)
			r, err := parseResponse(in, fixedNow.Unix())
			require.NoError(t, err)
			pr := r.ProviderResponse()
			require.NotNil(t, pr.Usage)
			require.Equal(t, gjson.GetBytes(pr.Body, "usage.prompt_tokens").Int(), pr.Usage.PromptTokens)
			golden(t, base+".openai.json", indent(t, pr.Body))
		})
	}
}

// TestGoldenStreams: Messages API event stream in, one chunk per line out;
// a stream that fails ends with an {"error":...} line.
func TestGoldenStreams(t *testing.T) {
	c := testClient(Options{})
	for _, base := range cases(t, "streams", ".sse") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(base + ".sse")
			require.NoError(t, err)
			s := c.newStream(c.Start(context.Background()), io.NopCloser(bytes.NewReader(in)))
			defer s.Close()
			var out bytes.Buffer
			for {
				ev, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					var pe *providers.Error
					require.ErrorAs(t, err, &pe)
					line, _ := json.Marshal(map[string]any{"error": map[string]any{"status": pe.Status, "type": pe.Type,
						"code": pe.Code, "message": pe.Message, "retryable": pe.Retryable}})
					out.Write(line)
					out.WriteByte('\n')
					_, again := s.Recv()
					require.Equal(t, err, again, "the error is sticky")
					break
				}
				require.True(t, json.Valid(ev.Data))
				if ev.UsageOnly {
					require.NotNil(t, ev.Usage)
					require.Equal(t, gjson.GetBytes(ev.Data, "usage.prompt_tokens").Int(), ev.Usage.PromptTokens)
				}
				out.Write(ev.Data)
				out.WriteByte('\n')
			}
			golden(t, base+".chunks.jsonl", out.Bytes())
		})
	}
}
