package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// Golden files: go test ./providers/gemini/ -run Golden -update rewrites
// them. testdata/SOURCES.md names the documentation page each fixture
// follows.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedNow is the clock of every golden test.
var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// inputs lists a testdata folder's fixtures (not the goldens).
func inputs(t *testing.T, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		if !strings.Contains(f, ".golden.") {
			out = append(out, f)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// goldenPath is the golden file beside a fixture.
func goldenPath(fixture, ext string) string {
	return strings.TrimSuffix(fixture, filepath.Ext(fixture)) + ".golden" + ext
}

// checkGolden compares got with the golden file, or rewrites it under
// -update. JSON is compared as JSON; JSON lines line by line.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run with -update")
	if strings.HasSuffix(path, ".jsonl") {
		wl, gl := lines(want), lines(got)
		require.Len(t, gl, len(wl), "got:\n%s", got)
		for i := range wl {
			require.JSONEq(t, wl[i], gl[i], "line %d", i+1)
		}
		return
	}
	require.JSONEq(t, string(want), string(got))
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func pretty(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, b, "", "  "))
	out.WriteByte('\n')
	return out.Bytes()
}

// errorJSON is how goldens record an error.
func errorJSON(err error) map[string]any {
	var pe *providers.Error
	if errors.As(err, &pe) {
		m := map[string]any{"status": pe.Status, "type": pe.Type, "code": pe.Code, "message": pe.Message, "retryable": pe.Retryable}
		if pe.Param != "" {
			m["param"] = pe.Param
		}
		if pe.RetryAfter != "" {
			m["retry_after"] = pe.RetryAfter
		}
		return map[string]any{"error": m}
	}
	return map[string]any{"error": map[string]any{"message": err.Error()}}
}

// testClient is a Client on srv (nil: an unroutable URL) with a fixed
// clock.
func testClient(srv *httptest.Server) *Client {
	base := "http://127.0.0.1:1/v1beta"
	if srv != nil {
		base = srv.URL + "/v1beta"
	}
	c := New(Options{BaseURL: base, APIKey: "AIza-test-key", Options: upstream.Options{Backend: "gemini",
		ConnectTimeout: time.Second, FirstByteTimeout: 2 * time.Second, BetweenChunksTimeout: time.Second}})
	c.now = func() time.Time { return fixedNow }
	return c
}

func TestRequestGolden(t *testing.T) {
	for _, f := range inputs(t, "request", ".json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			require.NoError(t, err)
			out, err := chatBody(body)
			var got []byte
			if err != nil {
				got = pretty(t, errorJSON(err))
			} else {
				got = pretty(t, json.RawMessage(out))
			}
			checkGolden(t, goldenPath(f, ".json"), got)
		})
	}
}

func TestResponseGolden(t *testing.T) {
	c := testClient(nil)
	for _, f := range inputs(t, "response", ".json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			r, err := c.parseResponse(data, &providers.Request{Operation: providers.OpChat, Model: "gemini-upstream", RequestID: "req-1"})
			var got []byte
			if err != nil {
				got = pretty(t, errorJSON(err))
			} else {
				pr := r.ProviderResponse()
				got = pretty(t, map[string]any{"body": json.RawMessage(pr.Body), "usage": pr.Usage})
			}
			checkGolden(t, goldenPath(f, ".json"), got)
		})
	}
}

func TestStreamGolden(t *testing.T) {
	for _, f := range inputs(t, "stream", ".sse") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sse, err := os.ReadFile(f)
			require.NoError(t, err)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write(sse)
			}))
			defer srv.Close()
			s, err := testClient(srv).Stream(context.Background(), &providers.Request{Operation: providers.OpChat,
				Model: "gemini-upstream", Stream: true, RequestID: "req-1", Body: []byte(`{"messages":[{"role":"user","content":"hi"}],"stream":true}`)})
			require.NoError(t, err)
			defer s.Close()
			var out bytes.Buffer
			for {
				ev, err := s.Recv()
				if err != nil {
					end := map[string]any{"end": "EOF"}
					if !errors.Is(err, io.EOF) {
						end = errorJSON(err)
					}
					b, _ := json.Marshal(end)
					out.Write(b)
					out.WriteByte('\n')
					break
				}
				out.Write(ev.Data)
				out.WriteByte('\n')
			}
			checkGolden(t, goldenPath(f, ".jsonl"), out.Bytes())
		})
	}
}

// embeddingCase is an embeddings fixture: the client's request and the
// answers the upstream gives, in order.
type embeddingCase struct {
	Request  json.RawMessage   `json:"request"`
	Upstream []json.RawMessage `json:"upstream"`
}

func TestEmbeddingsGolden(t *testing.T) {
	for _, f := range inputs(t, "embeddings", ".json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			var tc embeddingCase
			require.NoError(t, json.Unmarshal(data, &tc))
			var mu sync.Mutex
			var calls []map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, map[string]any{"path": r.URL.Path, "body": json.RawMessage(body)})
				if n := len(calls); n <= len(tc.Upstream) {
					w.Write(tc.Upstream[n-1])
					return
				}
				w.WriteHeader(http.StatusInternalServerError)
			}))
			defer srv.Close()
			resp, err := testClient(srv).Do(context.Background(), &providers.Request{Operation: providers.OpEmbeddings,
				Model: "gemini-embedding-001", Body: tc.Request, RequestID: "req-1"})
			got := map[string]any{"upstream_requests": calls}
			if err != nil {
				got["response"] = errorJSON(err)
			} else {
				got["response"] = json.RawMessage(resp.Body)
				got["usage"] = resp.Usage
			}
			checkGolden(t, goldenPath(f, ".json"), pretty(t, got))
		})
	}
}

// The request goldens must parse with chatwire, as the gateway does.
func TestRequestFixturesParse(t *testing.T) {
	for _, f := range inputs(t, "request", ".json") {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = chatwire.ParseRequest(body)
		require.NoError(t, err, f)
	}
}
