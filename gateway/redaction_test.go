package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/policies"
)

var placeholderRE = regexp.MustCompile(`\[[A-Z_]+_[0-9]+\]`)

// echoPlaceholders is a proprietary upstream that answers with the
// placeholders it was sent, as a model asked to repeat them would: JSON,
// or a stream split at split bytes of the answer.
func echoPlaceholders(t *testing.T, split *atomic.Int64) *policyBackend {
	b := &policyBackend{name: "openai", kind: "proprietary", jurisdiction: "US", price: "{input_per_mtok: 1, output_per_mtok: 2}"}
	b.up = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		var req struct {
			Stream   bool `json:"stream"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		raw, _ := json.Marshal(b.up.received()[len(b.up.received())-1].Body)
		require.NoError(t, json.Unmarshal(raw, &req))
		ph := placeholderRE.FindAllString(req.Messages[len(req.Messages)-1].Content, -1)
		answer := "Noted: " + strings.Join(ph, " and ") + "."
		if !req.Stream {
			body := chatCompletion("m", answer, 10, 5, 0)
			// The same values in a tool call's arguments.
			args, _ := json.Marshal(map[string]string{"to": strings.Join(ph, ",")})
			body = strings.Replace(body, `"refusal":null`, `"refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send","arguments":`+string(mustJSON(string(args)))+`}}]`, 1)
			writeJSON(w, 200, body)
			return
		}
		k := int(split.Load())
		writeSSE(w,
			chunk("m", `{"role":"assistant","content":`+string(mustJSON(answer[:k]))+`}`, ""),
			chunk("m", `{"content":`+string(mustJSON(answer[k:]))+`}`, ""),
			chunk("m", `{}`, "stop"),
		)
	})
	return b
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

const redactPrompt = "Write to jane.doe@bank.de and charge 4532 - 0736 - 2915 - 0489 for the order."

func TestRedactionIsRestoredInJSON(t *testing.T) {
	var split atomic.Int64
	up := echoPlaceholders(t, &split)
	base, _ := policyGateway(t, "policy: {audit: none}\n", up)
	got, _, err := ask(t, base, "sk-redact", redactPrompt)
	require.NoError(t, err)
	sent := bodiesSent(up)
	assert.Contains(t, sent, "[EMAIL_1]")
	assert.Contains(t, sent, "[CREDIT_CARD_1]")
	assert.NotContains(t, sent, "jane.doe")
	assert.NotContains(t, sent, "0736")
	assert.Equal(t, "Noted: jane.doe@bank.de and 4532 - 0736 - 2915 - 0489.", got.Choices[0].Message.Content)
	var args map[string]string
	require.NoError(t, json.Unmarshal([]byte(got.Choices[0].Message.ToolCalls[0].Function.Arguments), &args))
	assert.Equal(t, "jane.doe@bank.de,4532 - 0736 - 2915 - 0489", args["to"])
}

// A placeholder split between two chunks at every byte offset of the
// answer still comes back whole, through the real SDK's stream reader.
func TestRedactionIsRestoredInStreamsSplitAnywhere(t *testing.T) {
	var split atomic.Int64
	up := echoPlaceholders(t, &split)
	base, _ := policyGateway(t, "policy: {audit: none}\n", up)
	client := sdk(base, option.WithAPIKey("sk-redact"))
	answer := "Noted: [EMAIL_1] and [CREDIT_CARD_1]."
	want := "Noted: jane.doe@bank.de and 4532 - 0736 - 2915 - 0489."
	for k := 0; k <= len(answer); k++ {
		split.Store(int64(k))
		st := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(redactPrompt)},
		})
		var acc openai.ChatCompletionAccumulator
		for st.Next() {
			acc.AddChunk(st.Current())
		}
		require.NoError(t, st.Err(), "split at %d", k)
		require.Equal(t, want, acc.Choices[0].Message.Content, "split at %d", k)
		require.Equal(t, "stop", acc.Choices[0].FinishReason)
	}
	assert.NotContains(t, bodiesSent(up), "jane.doe")
}

// A team's output cap rewrites the body; redaction still masks every value
// (it reads the body as the client sent it, and the cap is applied after).
func TestRedactionWithAnOutputCap(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"routing.rego", "data.json"} {
		raw, err := fs.ReadFile(policies.Shipped(), name)
		require.NoError(t, err)
		if name == "data.json" {
			raw = []byte(strings.Replace(string(raw), `"teams": {`, `"teams": {"t": {"max_output_tokens": 512},`, 1))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), raw, 0o644))
	}
	var split atomic.Int64
	up := echoPlaceholders(t, &split)
	base, _ := policyGateway(t, "policy: {audit: none, bundle: "+dir+"}\n", up)
	// max_tokens before the messages: capping it moves every byte after it.
	for _, max := range []int{1000000, 100000, 100} {
		req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions",
			strings.NewReader(fmt.Sprintf(`{"model":"chat","max_tokens":%d,"messages":[{"role":"user","content":"my email is jane@bank.de"}],"user":"x"}`, max)))
		req.Header.Set("Authorization", "Bearer sk-redact")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var out openai.ChatCompletion
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "Noted: jane@bank.de.", out.Choices[0].Message.Content)
	}
	for _, r := range up.up.received() {
		assert.LessOrEqual(t, r.Body["max_tokens"], 512.0)
		assert.NotContains(t, fmt.Sprint(r.Body["messages"]), "jane@bank.de")
	}
}
