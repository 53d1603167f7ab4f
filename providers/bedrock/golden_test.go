package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cases")

// stockResponse answers Converse for cases that only check the request.
const stockResponse = `{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn",
"usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}`

// sigV4 is the Authorization header the SDK writes for the fake keys.
var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=AKID/\d{8}/` + testRegion +
	`/bedrock/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`)

// streamCase is a case's stream.json: the events Bedrock streams, and how
// many bytes of the encoded body to cut off the end.
type streamCase struct {
	Events []streamEvent `json:"events"`
	Cut    int           `json:"cut,omitempty"`
}

// TestGolden runs every case in testdata/cases. A case is a directory:
//
//	request.json                  the client's OpenAI request (input)
//	converse_request.golden.json  the Converse request the SDK sent
//	converse_response.json        Bedrock's Converse answer (input; optional)
//	response.golden.json          the OpenAI answer and usage
//	stream.json                   Bedrock's ConverseStream events (input; optional)
//	stream.golden.json            the OpenAI chunks and how the stream ended
//
// go test -run TestGolden -update rewrites the golden files.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/cases/*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			reqBody := readFile(t, dir, "request.json")
			converseResp, hasResp := optionalFile(t, dir, "converse_response.json")
			if !hasResp {
				converseResp = []byte(stockResponse)
			}
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				if filepath.Base(r.URL.Path) == "converse-stream" {
					var sc streamCase
					require.NoError(t, json.Unmarshal(readFile(t, dir, "stream.json"), &sc))
					frames := encodeStream(t, sc.Events)
					writeStream(w, frames[:len(frames)-sc.Cut])
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(converseResp)
			})
			c := f.client(t)

			req := chatRequest(string(reqBody))
			resp, err := c.Do(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, string(reqBody), string(req.Body), "the client's body is not modified")
			reqs := f.requests()
			require.Len(t, reqs, 1)
			checkSigned(t, reqs[0], "converse")
			golden(t, dir, "converse_request.golden.json", indent(t, reqs[0].Body))
			if hasResp {
				var body any
				require.NoError(t, json.Unmarshal(resp.Body, &body))
				golden(t, dir, "response.golden.json", marshal(t, map[string]any{"body": body, "usage": resp.Usage}))
			}

			if _, ok := optionalFile(t, dir, "stream.json"); !ok {
				return
			}
			s, err := c.Stream(context.Background(), chatRequest(string(reqBody)))
			require.NoError(t, err)
			defer s.Close()
			evs, end := collect(t, s)
			reqs = f.requests()
			require.Len(t, reqs, 2)
			checkSigned(t, reqs[1], "converse-stream")
			require.JSONEq(t, string(reqs[0].Body), string(reqs[1].Body), "Converse and ConverseStream get the same request")
			golden(t, dir, "stream.golden.json", marshal(t, streamView(t, evs, end)))
		})
	}
}

// checkSigned checks the path and the SigV4 signature of a captured
// request.
func checkSigned(t *testing.T, r captured, op string) {
	t.Helper()
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "/model/"+testModel+"/"+op, r.Path)
	require.Equal(t, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/"+op, r.RawPath, "the model id is one escaped path segment")
	require.Regexp(t, sigV4, r.Auth)
	require.Contains(t, r.Auth, "SignedHeaders=")
	require.Contains(t, r.Auth, "x-amz-security-token", "the session token is signed")
	require.NotEmpty(t, r.AmzDate)
	require.Equal(t, "application/json", r.ContentType)
}

// streamView is what a stream golden records: each chunk, the usage the
// gateway reads from it, and how the stream ended.
func streamView(t *testing.T, evs []providers.Event, end error) map[string]any {
	t.Helper()
	var chunks []map[string]any
	for _, ev := range evs {
		var data map[string]any
		require.NoError(t, json.Unmarshal(ev.Data, &data), "every chunk is JSON: %s", ev.Data)
		// The envelope is the same in every chunk: checked here, left out
		// of the golden file.
		require.Equal(t, "chatcmpl-"+testRequestID, data["id"])
		require.Equal(t, "chat.completion.chunk", data["object"])
		require.EqualValues(t, testNow.Unix(), data["created"])
		require.Equal(t, testModel, data["model"])
		for _, k := range []string{"id", "object", "created", "model", "system_fingerprint"} {
			delete(data, k)
		}
		chunk := map[string]any{"data": data}
		if ev.Usage != nil {
			chunk["usage"], chunk["usage_only"] = ev.Usage, ev.UsageOnly
		}
		chunks = append(chunks, chunk)
	}
	out := map[string]any{"chunks": chunks}
	if errors.Is(end, io.EOF) {
		out["end"] = "EOF"
	} else {
		out["end"] = viewError(t, end)
	}
	return out
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return b
}

func optionalFile(t *testing.T, dir, name string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false
	}
	require.NoError(t, err)
	return b, true
}

// golden compares got with a golden file, or rewrites it under -update.
func golden(t *testing.T, dir, name string, got []byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test -run TestGolden -update")
	require.Equal(t, string(want), string(got), "%s differs; run go test -run TestGolden -update and review the diff", path)
}

// indent pretty-prints JSON, keeping its key order.
func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, b, "", "  "), "not JSON: %s", b)
	out.WriteByte('\n')
	return out.Bytes()
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return out.Bytes()
}
