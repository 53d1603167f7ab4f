package localengine

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func testProvider(t *testing.T, specs ...Spec) *Provider {
	t.Helper()
	m := loadTiny(t, Spec{Slots: 2})
	pool := &Pool{Runtime: testRT, models: map[string]*Model{"tiny": m}, errs: map[string]error{"broken": errors.New("model file: missing")}}
	for _, s := range specs {
		pool.models[s.Name] = loadTinyNamed(t, s)
	}
	p := NewProvider(pool)
	p.now = func() time.Time { return time.Unix(1795000000, 0) }
	return p
}

func loadTinyNamed(t *testing.T, s Spec) *Model {
	t.Helper()
	s.Path = tinyPath(t)
	m, err := runtimeOrSkip(t).Load(s)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

var textField = regexp.MustCompile(`"(content|text)":("(?:[^"\\]|\\.)+")`)

var ids = regexp.MustCompile(`"(chatcmpl|cmpl)-[0-9a-f]{24}"`)

// golden compares got with testdata/name, ids masked; -update rewrites it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = ids.ReplaceAll(got, []byte(`"$1-ID"`))
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update", t.Name())
	require.Equal(t, string(want), string(got))
}

// The wire format of every operation, as golden files: what an OpenAI
// SDK parses.
func TestProviderWireFormat(t *testing.T) {
	p := testProvider(t, Spec{Name: "tiny-embed", Embeddings: true})
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		op     providers.Operation
		model  string
		body   string
		stream bool
	}{
		{"chat.json", providers.OpChat, "tiny", `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"Say "},{"type":"text","text":"hello"}]}],"max_tokens":6,"temperature":0}`, false},
		{"chat_stream.txt", providers.OpChat, "tiny", `{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":6,"temperature":0,"stream":true}`, true},
		{"chat_stop.json", providers.OpChat, "tiny", `{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":6,"temperature":0,"stop":"a"}`, false},
		{"completion.json", providers.OpCompletion, "tiny", `{"prompt":"Once upon a time","max_tokens":5,"temperature":0}`, false},
		{"completion_stream.txt", providers.OpCompletion, "tiny", `{"prompt":["Once upon a time"],"max_tokens":5,"temperature":0,"stream":true}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &providers.Request{Operation: tc.op, Model: tc.model, Body: []byte(tc.body), Stream: tc.stream}
			if !tc.stream {
				resp, err := p.Do(ctx, req)
				require.NoError(t, err)
				require.True(t, json.Valid(resp.Body))
				golden(t, tc.name, resp.Body)
				return
			}
			s, err := p.Stream(ctx, req)
			require.NoError(t, err)
			defer s.Close()
			// Chunk boundaries depend on how fast the reader is (text is
			// coalesced for a slow one), so text chunks are masked and
			// collapsed; the text itself is compared with Do's.
			var out, text strings.Builder
			prev := ""
			for {
				ev, err := s.Recv()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				require.True(t, json.Valid(ev.Data), "%s", ev.Data)
				line := string(ev.Data)
				if m := textField.FindStringSubmatch(line); m != nil {
					var s string
					require.NoError(t, json.Unmarshal([]byte(m[2]), &s))
					text.WriteString(s)
					line = textField.ReplaceAllString(line, `"$1":"<text>"`)
				}
				if ev.UsageOnly {
					require.NotNil(t, ev.Usage)
					line = "usage-only " + line
				}
				if line != prev {
					out.WriteString(line + "\n")
				}
				prev = line
			}
			golden(t, tc.name, []byte(out.String()))
			req.Stream = false
			resp, err := p.Do(ctx, req)
			require.NoError(t, err)
			var whole struct {
				Choices []struct {
					Text    string `json:"text"`
					Message struct {
						Content string `json:"content"`
					} `json:"message"`
				} `json:"choices"`
			}
			require.NoError(t, json.Unmarshal(resp.Body, &whole))
			require.Equal(t, whole.Choices[0].Text+whole.Choices[0].Message.Content, text.String(), "the chunks make the whole answer")
		})
	}

	// Embeddings: float and base64 say the same thing.
	body := func(format string) []byte {
		return []byte(`{"input":["hello world","hello"],"encoding_format":"` + format + `"}`)
	}
	rf, err := p.Do(ctx, &providers.Request{Operation: providers.OpEmbeddings, Model: "tiny-embed", Body: body("float")})
	require.NoError(t, err)
	rb, err := p.Do(ctx, &providers.Request{Operation: providers.OpEmbeddings, Model: "tiny-embed", Body: body("base64")})
	require.NoError(t, err)
	var ef struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
			Index     int       `json:"index"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(rf.Body, &ef))
	require.Len(t, ef.Data, 2)
	require.Len(t, ef.Data[1].Embedding, 64)
	require.Equal(t, 1, ef.Data[1].Index)
	var norm float64
	for _, f := range ef.Data[0].Embedding {
		norm += float64(f) * float64(f)
	}
	require.InDelta(t, 1, norm, 1e-4, "unit length, as OpenAI's")
	require.EqualValues(t, ef.Usage.PromptTokens, rf.Usage.PromptTokens)
	require.Equal(t, ef.Usage.PromptTokens, ef.Usage.TotalTokens)
	require.Positive(t, ef.Usage.PromptTokens)
	require.Contains(t, string(rb.Body), `"embedding":"`)
}

func TestProviderRefusesWhatItCannotDo(t *testing.T) {
	p := testProvider(t, Spec{Name: "tiny-embed", Embeddings: true})
	ctx := context.Background()
	for _, tc := range []struct {
		name, model, body string
		op                providers.Operation
		status            int
		code, param       string
		retryable         bool
	}{
		{"bad json", "tiny", `{"messages":`, providers.OpChat, 400, "invalid_request", "", false},
		{"no messages", "tiny", `{"messages":[]}`, providers.OpChat, 400, "invalid_request", "messages", false},
		{"image part", "tiny", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, providers.OpChat, 400, "invalid_request", "messages[0].content[0].type", false},
		{"n=2", "tiny", `{"messages":[{"role":"user","content":"hi"}],"n":2}`, providers.OpChat, 400, "invalid_request", "n", false},
		{"custom tools", "tiny", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"custom","custom":{"name":"f"}}]}`, providers.OpChat, 400, "invalid_request", "tools[0].type", false},
		{"tool_choice of no tool", "tiny", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, providers.OpChat, 400, "invalid_request", "tool_choice", false},
		{"deprecated functions", "tiny", `{"messages":[{"role":"user","content":"hi"}],"functions":[{"name":"f"}]}`, providers.OpChat, 400, "invalid_request", "functions", false},
		{"tools for a completion", "tiny", `{"prompt":"hi","tools":[{"type":"function","function":{"name":"f"}}]}`, providers.OpCompletion, 400, "invalid_request", "tools", false},
		{"tool section too long", "tiny", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"` + strings.Repeat("word ", 300) + `"}}]}`, providers.OpChat, 400, "context_length_exceeded", "messages", false},
		{"temperature", "tiny", `{"messages":[{"role":"user","content":"hi"}],"temperature":3}`, providers.OpChat, 400, "invalid_request", "temperature", false},
		{"five stops", "tiny", `{"messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}`, providers.OpChat, 400, "invalid_request", "stop", false},
		{"max_tokens 0", "tiny", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}`, providers.OpChat, 400, "invalid_request", "max_tokens", false},
		{"too long", "tiny", `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 400) + `"}]}`, providers.OpChat, 400, "context_length_exceeded", "messages", false},
		{"two prompts", "tiny", `{"prompt":["a","b"]}`, providers.OpCompletion, 400, "invalid_request", "prompt", false},
		{"embeddings from a chat model", "tiny", `{"input":"hi"}`, providers.OpEmbeddings, 400, "unsupported_operation", "model", false},
		{"chat with an embedding model", "tiny-embed", `{"messages":[{"role":"user","content":"hi"}]}`, providers.OpChat, 400, "unsupported_operation", "model", false},
		{"huge max_tokens", "tiny", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775807}`, providers.OpChat, 400, "context_length_exceeded", "messages", false},
		{"completion too long", "tiny", `{"prompt":"` + strings.Repeat("word ", 400) + `"}`, providers.OpCompletion, 400, "context_length_exceeded", "prompt", false},
		{"logprobs asked", "tiny", `{"prompt":"hi","logprobs":5}`, providers.OpCompletion, 400, "invalid_request", "logprobs", false},
		{"token-array input", "tiny-embed", `{"input":[[1,2,3]]}`, providers.OpEmbeddings, 400, "invalid_request", "input", false},
		{"NUL in a message", "tiny", `{"messages":[{"role":"user","content":"a\u0000b"}]}`, providers.OpChat, 400, "invalid_request", "", false},
		{"NUL in a prompt", "tiny", `{"prompt":"a\u0000b"}`, providers.OpCompletion, 400, "invalid_request", "", false},
		{"model not loaded", "broken", `{"messages":[{"role":"user","content":"hi"}]}`, providers.OpChat, 503, "model_not_loaded", "", true},
		{"unknown model", "nope", `{"messages":[{"role":"user","content":"hi"}]}`, providers.OpChat, 503, "model_not_loaded", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Do(ctx, &providers.Request{Operation: tc.op, Model: tc.model, Body: []byte(tc.body)})
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.status, pe.Status, pe.Message)
			require.Equal(t, tc.code, pe.Code)
			require.Equal(t, tc.param, pe.Param)
			require.Equal(t, tc.retryable, pe.Retryable)
			require.NotEmpty(t, pe.Message)
			switch tc.name {
			case "embeddings from a chat model":
				require.Contains(t, pe.Message, `local model "tiny" generates text: it serves /v1/chat/completions`)
			case "chat with an embedding model":
				require.Contains(t, pe.Message, `local model "tiny-embed" is an embedding model: it serves only /v1/embeddings`)
			}
		})
	}
}

func TestProviderAcceptsNeutralLogprobs(t *testing.T) {
	p := testProvider(t)
	for _, lp := range []string{"null", "false", "0"} {
		_, err := p.Do(context.Background(), &providers.Request{Operation: providers.OpCompletion, Model: "tiny",
			Body: []byte(`{"prompt":"hi","max_tokens":2,"logprobs":` + lp + `}`)})
		require.NoError(t, err, lp)
	}
}
