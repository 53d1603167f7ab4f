package gateway_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/localengine/gguf"
)

var updateGolden = flag.Bool("update", false, "rewrite the gateway's golden files")

// claudeCodeSession is a request shaped like Claude Code's: a long system
// prompt in blocks with cache_control, twenty tools, a tool_use and
// tool_result turn, metadata, streaming; sent with Claude Code's headers.
func claudeCodeSession(model string) []byte {
	var sys strings.Builder
	sys.WriteString("You are Claude Code, Anthropic's official CLI for Claude.\n")
	for i := range 60 {
		fmt.Fprintf(&sys, "Rule %d: keep answers short, use the tools to read and edit files, never guess file contents, and explain each change in one sentence.\n", i+1)
	}
	type tool struct {
		Name        string         `json:"name"`
		Description string         `json:"description"`
		InputSchema map[string]any `json:"input_schema"`
	}
	names := []string{"Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit",
		"WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand", "ListMcpResources", "ReadMcpResource", "AskUser"}
	var tools []tool
	for _, n := range names {
		tools = append(tools, tool{Name: n, Description: "The " + n + " tool. Use it when the task needs " + strings.ToLower(n) + ".",
			InputSchema: map[string]any{"type": "object", "properties": map[string]any{
				"path":    map[string]any{"type": "string", "description": "absolute path"},
				"command": map[string]any{"type": "string"},
			}, "required": []string{"path"}, "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"}})
	}
	body := map[string]any{
		"model": model, "max_tokens": 32000, "stream": true, "temperature": 1,
		"metadata": map[string]any{"user_id": "user_abc_account_def_session_123"},
		"system": []map[string]any{
			{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": map[string]any{"type": "ephemeral"}},
			{"type": "text", "text": sys.String(), "cache_control": map[string]any{"type": "ephemeral"}},
		},
		"tools": tools,
		"messages": []map[string]any{
			{"role": "user", "content": []map[string]any{
				{"type": "text", "text": "<system-reminder>This is a reminder.</system-reminder>"},
				{"type": "text", "text": "What does main.go do?", "cache_control": map[string]any{"type": "ephemeral"}},
			}},
			{"role": "assistant", "content": []map[string]any{
				{"type": "text", "text": "Let me read it."},
				{"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": map[string]any{"path": "/repo/main.go"}},
			}},
			{"role": "user", "content": []map[string]any{
				{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "package main\n\nfunc main() { println(\"hi\") }\n"},
			}},
		},
	}
	b, _ := json.Marshal(body)
	return b
}

// postClaudeCode sends the session as Claude Code does and returns the
// status and the raw body.
func postClaudeCode(t *testing.T, base string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/messages", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14")
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-app", "cli")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

// accumulateClaude decodes an Anthropic SSE body with the SDK's decoder and
// accumulator.
func accumulateClaude(t *testing.T, raw []byte) anthropic.Message {
	t.Helper()
	res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(raw))}
	stream := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(res), nil)
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	return msg
}

// volatile matches the ids a run makes up; keepalive the comments a slow
// machine adds.
var (
	volatile  = regexp.MustCompile(`"(msg|toolu|call)_[A-Za-z0-9_]+"`)
	keepalive = regexp.MustCompile(`(?m)^: keep-alive\n\n`)
)

// stable is an SSE body with its made-up ids and keep-alives normalised.
func stable(raw []byte) []byte {
	return volatile.ReplaceAll(keepalive.ReplaceAll(raw, nil), []byte(`"${1}_X"`))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "claudecode", name)
	if *updateGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./gateway -run ClaudeCode -update")
	assert.Equal(t, string(want), string(got), "%s differs (go test ./gateway -run ClaudeCode -update rewrites it)", name)
}

// A Claude-Code-shaped session through the gateway to an OpenAI-compatible
// upstream: what the upstream receives and what the client gets back are
// recorded as golden files.
func TestClaudeCodeSessionToAnOpenAICompatibleUpstream(t *testing.T) {
	var sent []byte
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		sent, _ = json.MarshalIndent(decodeJSON(t, r.Body), "", "  ")
		writeSSE(w,
			chunk("up", `{"role":"assistant","content":"It prints "}`, ""),
			chunk("up", `{"content":"\"hi\". Let me check the tests."}`, ""),
			chunk("up", `{"tool_calls":[{"index":0,"id":"call_7","type":"function","function":{"name":"Glob","arguments":""}}]}`, ""),
			chunk("up", `{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":\"/repo\","}}]}`, ""),
			chunk("up", `{"tool_calls":[{"index":0,"function":{"arguments":"\"command\":\"*_test.go\"}"}}]}`, "tool_calls"),
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"up","choices":[],"usage":{"prompt_tokens":2100,"completion_tokens":31,"total_tokens":2131,"prompt_tokens_details":{"cached_tokens":2000}}}`)
	})
	base := responsesGateway(t, up)
	status, raw := postClaudeCode(t, base, claudeCodeSession("chat"))
	require.Equal(t, 200, status, "%s", raw)

	msg := accumulateClaude(t, raw)
	require.Len(t, msg.Content, 2)
	assert.Equal(t, `It prints "hi". Let me check the tests.`, msg.Content[0].Text)
	assert.Equal(t, "Glob", msg.Content[1].Name)
	assert.JSONEq(t, `{"path":"/repo","command":"*_test.go"}`, string(msg.Content[1].Input))
	assert.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
	assert.EqualValues(t, 100, msg.Usage.InputTokens)
	assert.EqualValues(t, 2000, msg.Usage.CacheReadInputTokens)
	assert.EqualValues(t, 31, msg.Usage.OutputTokens)

	golden(t, "upstream_request.json", append(sent, '\n'))
	golden(t, "client_stream.sse", stable(raw))
}

func decodeJSON(t *testing.T, r io.Reader) any {
	t.Helper()
	var v any
	require.NoError(t, json.NewDecoder(r).Decode(&v))
	return v
}

// The same session to the embedded engine: twenty tools rendered into the
// prompt, the tool_result turn as a tool response, streamed back as
// Anthropic events the SDK accumulates, with the engine's exact usage.
func TestClaudeCodeSessionToTheLocalEngine(t *testing.T) {
	lib := localLibOrSkip(t)
	path := filepath.Join(t.TempDir(), "tiny-32k.gguf")
	shape := gguf.Tiny
	shape.Context = 32768
	require.NoError(t, gguf.GenerateFile(path, shape, 11))
	y := fmt.Sprintf(`
server: {listen: 127.0.0.1:0, shutdown_timeout: 5s, stream_keepalive: 50ms}
log: {level: error}
policy: {audit: none}
local_engine:
  lib_dir: %s
  models:
    - {name: tiny, path: %s, context: 32768, slots: 1}
backends:
  - {name: local, kind: local}
models:
  - {name: chat, deployments: [{backend: local, model: tiny}]}
keys:
  - {id: test, sha256: %s, tenant: acme, team: search}
`, lib, path, gateway.HashKey(testKey))
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	base, _ := startGateway(t, cfg)

	session := claudeCodeSession("chat")
	session, err = sjsonSet(session, "max_tokens", 24)
	require.NoError(t, err)
	status, raw := postClaudeCode(t, base, session)
	require.Equal(t, 200, status, "%s", raw)
	msg := accumulateClaude(t, raw)
	assert.Contains(t, []anthropic.StopReason{anthropic.StopReasonEndTurn, anthropic.StopReasonMaxTokens, anthropic.StopReasonToolUse}, msg.StopReason)
	assert.NotEmpty(t, msg.Content)
	assert.Greater(t, msg.Usage.InputTokens, int64(4000), "the system prompt, twenty tools and the turns were evaluated")
	assert.Positive(t, msg.Usage.OutputTokens)
	assert.LessOrEqual(t, msg.Usage.OutputTokens, int64(24))
	assert.Contains(t, string(raw), "x-switchyard-cost", "billed")
}

// sjsonSet sets a top-level member of a JSON object.
func sjsonSet(body []byte, key string, v any) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	m[key] = v
	return json.Marshal(m)
}
