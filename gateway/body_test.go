package gateway_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gzipped(t *testing.T, b []byte) []byte {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return z.Bytes()
}

func postEncoded(t *testing.T, base, key, enc string, body []byte) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", enc)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// A compressed body is scanned as the JSON it holds: the card inside a
// gzip or deflate body stays local, and the upstream receives plain JSON.
func TestCompressedBodiesAreScanned(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS, vllm)
	body := []byte(`{"model":"chat","messages":[{"role":"user","content":"charge 4111 1111 1111 1111"}]}`)

	status, out := postEncoded(t, base, "sk-plain", "gzip", gzipped(t, body))
	require.Equal(t, 200, status, out)
	var d bytes.Buffer
	fw, _ := flate.NewWriter(&d, flate.BestSpeed)
	fw.Write(body)
	fw.Close()
	status, out = postEncoded(t, base, "sk-plain", "deflate", d.Bytes())
	require.Equal(t, 200, status, out)

	assert.Zero(t, openaiUS.calls.Load())
	require.Len(t, vllm.up.received(), 2)
	for _, r := range vllm.up.received() {
		assert.Empty(t, r.Header.Get("Content-Encoding"))
		assert.Contains(t, bodiesSent(vllm), "4111 1111 1111 1111")
	}
}

func TestCompressedBodiesAreBounded(t *testing.T) {
	vllm := newPolicyBackend(t, "vllm", "selfhosted", "EU")
	base, _ := policyGateway(t, "policy: {audit: none}\n", vllm)
	// 9 MiB of JSON compresses to a few KiB and expands past the default
	// 8 MiB limit: refused, not decompressed without end.
	big := []byte(`{"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("a", 9<<20) + `"}]}`)
	status, out := postEncoded(t, base, "sk-plain", "gzip", gzipped(t, big))
	assert.Equal(t, 413, status)
	assert.Equal(t, "request_too_large", out["error"].(map[string]any)["code"])

	status, out = postEncoded(t, base, "sk-plain", "gzip", []byte("not gzip"))
	assert.Equal(t, 400, status)
	assert.Equal(t, "invalid_body_encoding", out["error"].(map[string]any)["code"])

	status, out = postEncoded(t, base, "sk-plain", "br", []byte("x"))
	assert.Equal(t, 415, status)
	assert.Equal(t, "unsupported_content_encoding", out["error"].(map[string]any)["code"])
	assert.Zero(t, vllm.calls.Load())
}

// Headers the client chooses reach the upstream only scanned: an
// X-Request-Id that holds an email is replaced by one of the gateway's,
// and the client's tracestate is not forwarded.
func TestClientHeadersDoNotCarryData(t *testing.T) {
	openaiUS := newPolicyBackend(t, "openai", "proprietary", "US")
	base, _ := policyGateway(t, "policy: {audit: none}\n", openaiUS)
	send := func(id string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-plain")
		req.Header.Set("X-Request-Id", id)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		req.Header.Set("tracestate", "vendor=jane.doe@bank.de")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		return resp
	}
	resp := send("jane.doe@bank.de")
	assert.NotEqual(t, "jane.doe@bank.de", resp.Header.Get("X-Request-Id"))
	resp = send("order-7731-retry-2")
	assert.Equal(t, "order-7731-retry-2", resp.Header.Get("X-Request-Id"), "a clean id is kept")
	for _, r := range openaiUS.up.received() {
		assert.Contains(t, r.Header.Get("Traceparent"), "4bf92f3577b34da6a3ce929d0e0e4736", "the trace goes on upstream")
		for name, values := range r.Header {
			for _, v := range values {
				assert.NotContains(t, v, "jane.doe", name)
			}
		}
	}
}
