package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/localengine/gguf"
)

var (
	localModelOnce sync.Once
	localModelPath string
	localModelErr  error
)

// localLibOrSkip returns the llama.cpp library directory, or skips the
// test when the libraries are absent (.ci/run always fetches them).
func localLibOrSkip(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(localengine.LibEnv)
	if dir == "" {
		dir = filepath.Join("..", localengine.DefaultLibDir)
	}
	if _, err := localengine.Open(dir); err != nil {
		if os.Getenv("SWITCHYARD_REQUIRE_LLAMA") == "1" {
			t.Fatalf("llama.cpp libraries required (SWITCHYARD_REQUIRE_LLAMA=1) but not loadable: %v", err)
		}
		t.Skipf("llama.cpp libraries not available: %v", err)
	}
	return dir
}

// localModel is a generated tiny model with a long training context, so a
// long generation can hold a slot while a test fills the queue.
func localModel(t *testing.T) string {
	t.Helper()
	localModelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gateway-local")
		if err != nil {
			localModelErr = err
			return
		}
		localModelPath = filepath.Join(dir, "tiny.gguf")
		shape := gguf.Tiny
		shape.Context = 8192
		localModelErr = gguf.GenerateFile(localModelPath, shape, 7)
	})
	require.NoError(t, localModelErr)
	return localModelPath
}

// localConfig serves the model "chat" from the local engine first and the
// given OpenAI-compatible upstream second, and "embed" from an embedding
// model.
func localConfig(t *testing.T, libDir, fallback string, slots, queue int) *config.Config {
	t.Helper()
	path := localModel(t)
	y := fmt.Sprintf(`
server: {listen: 127.0.0.1:0, shutdown_timeout: 5s, stream_keepalive: 50ms}
log: {level: error}
policy: {audit: none}
local_engine:
  lib_dir: %s
  models:
    - {name: tiny, path: %s, context: 8192, slots: %d, queue: %d}
    - {name: tiny-embed, path: %s, context: 512, embeddings: true}
backends:
  - {name: local, kind: local, price: {input_per_mtok: 0, output_per_mtok: 0}}
  - {name: cloud, kind: selfhosted, base_url: %s, api_key: %s, price: {input_per_mtok: 1, output_per_mtok: 2}}
models:
  - name: chat
    deployments:
      - {backend: local, model: tiny}
      - {backend: cloud, model: upstream-model}
  - name: embed
    deployments:
      - {backend: local, model: tiny-embed}
keys:
  - {id: test, sha256: %s, tenant: acme, team: search}
`, libDir, path, slots, queue, path, fallback, backendKey, gateway.HashKey(testKey))
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err, y)
	return cfg
}

func TestLocalEngineThroughTheSDK(t *testing.T) {
	lib := localLibOrSkip(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		t.Error("the fallback must not be called while the local engine has room")
	})
	base, _ := startGateway(t, localConfig(t, lib, up.URL+"/v1", 4, 8))
	client := sdk(base)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:       "chat",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("Say hello")},
		MaxTokens:   openai.Int(12),
		Temperature: openai.Float(0),
	}

	var resp *http.Response
	got, err := client.Chat.Completions.New(ctx, params, option.WithResponseInto(&resp))
	require.NoError(t, err)
	require.Len(t, got.Choices, 1)
	assert.NotEmpty(t, got.Choices[0].Message.Content)
	assert.Equal(t, "length", got.Choices[0].FinishReason)
	assert.EqualValues(t, 12, got.Usage.CompletionTokens)
	assert.Greater(t, got.Usage.PromptTokens, int64(5))
	assert.Equal(t, "local", resp.Header.Get("X-Switchyard-Backend"))
	assert.Equal(t, "local", resp.Header.Get("X-Switchyard-Backend-Kind"))
	assert.Equal(t, "tiny", resp.Header.Get("X-Switchyard-Model"))

	// Streamed, the same greedy answer arrives in chunks, with usage.
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	var usage openai.CompletionUsage
	chunks := 0
	finish := ""
	for stream.Next() {
		c := stream.Current()
		chunks++
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if c.Usage.TotalTokens > 0 {
			usage = c.Usage
		}
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, got.Choices[0].Message.Content, text.String())
	assert.Equal(t, "length", finish)
	assert.Greater(t, chunks, 3)
	assert.Equal(t, got.Usage.CompletionTokens, usage.CompletionTokens)
	assert.Equal(t, got.Usage.PromptTokens, usage.PromptTokens)

	// Completions and embeddings.
	cmp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:     "chat",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(5), Temperature: openai.Float(0),
	})
	require.NoError(t, err)
	assert.EqualValues(t, 5, cmp.Usage.CompletionTokens)
	assert.NotEmpty(t, cmp.Choices[0].Text)

	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "another text"}},
	})
	require.NoError(t, err)
	require.Len(t, emb.Data, 2)
	assert.Len(t, emb.Data[0].Embedding, gguf.Tiny.Embd)
	assert.NotEqual(t, emb.Data[0].Embedding, emb.Data[1].Embedding)
	assert.Greater(t, emb.Usage.PromptTokens, int64(2))
}

func TestLocalEngineErrors(t *testing.T) {
	lib := localLibOrSkip(t)
	base, _ := startGateway(t, localConfig(t, lib, "http://127.0.0.1:1/v1", 2, 2))
	client := sdk(base)
	ctx := context.Background()

	// A prompt longer than the context window: 400 context_length_exceeded,
	// and no fallback (another deployment would not fit it either).
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "chat",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("word ", 10000))},
		MaxTokens: openai.Int(10),
	})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode)
	assert.Equal(t, "context_length_exceeded", apiErr.Code)
	assert.Equal(t, "invalid_request_error", apiErr.Type)
	assert.Contains(t, apiErr.Message, "maximum context length is 8192 tokens")

	// Parameters the engine cannot honour are refused, not ignored.
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		N:        openai.Int(2),
	})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode)
	assert.Equal(t, "n", apiErr.Param)
}

// A full local queue is a retryable 503: the router falls back to the next
// deployment, and the client sees the fallback's answer.
func TestLocalEngineFullQueueFallsBack(t *testing.T) {
	lib := localLibOrSkip(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("upstream-model", "from the fallback", 10, 3, 0))
	})
	cfg := localConfig(t, lib, up.URL+"/v1", 1, 1)
	pool := localengine.OpenPool(cfg.LocalEngine.LibDir, []localengine.Spec{{Name: "tiny", Path: localModel(t), Context: 8192, Slots: 1, Queue: 1}}, nil)
	t.Cleanup(func() { pool.Close() })
	base, _ := startGatewayWith(t, cfg, gateway.Options{Version: "test", LocalEngine: pool})
	m, err := pool.Model("tiny")
	require.NoError(t, err)

	// One long generation holds the only slot, one more waits in the queue.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold, err := m.Generate(ctx, localengine.Request{Prompt: "hold", MaxTokens: 8000})
	require.NoError(t, err)
	_, err = hold.Next()
	require.NoError(t, err)
	_, err = m.Generate(ctx, localengine.Request{Prompt: "wait", MaxTokens: 10})
	require.NoError(t, err)

	var resp *http.Response
	got, err := sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithResponseInto(&resp))
	require.NoError(t, err)
	assert.Equal(t, "from the fallback", got.Choices[0].Message.Content)
	assert.Equal(t, "cloud", resp.Header.Get("X-Switchyard-Backend"))
	assert.Equal(t, "2", resp.Header.Get("X-Switchyard-Attempts"))
	assert.Len(t, up.received(), 1)
}
