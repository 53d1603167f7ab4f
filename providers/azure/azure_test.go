package azure

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

func TestAzureURLAndAuth(t *testing.T) {
	type seen struct {
		path, query, apiKey, auth string
		body                      []byte
	}
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.Path, r.URL.RawQuery, r.Header.Get("api-key"), r.Header.Get("Authorization"), b}
		if r.URL.Path == "/openai/deployments/gpt-4o prod/chat/completions" && string(b) != "" && r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`)
	}))
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL + "/openai", APIKey: "az-key", APIVersion: "2024-10-21",
		Options: upstream.Options{Backend: "azure", FirstByteTimeout: time.Second}})

	resp, err := c.Do(context.Background(), &providers.Request{Operation: providers.OpChat, Model: "gpt-4o prod",
		Body: []byte(`{"model":"public","messages":[{"role":"user","content":"hi"}]}`)})
	require.NoError(t, err)
	require.EqualValues(t, 3, resp.Usage.PromptTokens)
	s := <-got
	require.Equal(t, "/openai/deployments/gpt-4o prod/chat/completions", s.path)
	require.Equal(t, "api-version=2024-10-21", s.query)
	require.Equal(t, "az-key", s.apiKey)
	require.Empty(t, s.auth, "Azure takes api-key, never a bearer token")

	st, err := c.Stream(context.Background(), &providers.Request{Operation: providers.OpChat, Model: "gpt-4o prod", Stream: true,
		Body: []byte(`{"model":"public","messages":[{"role":"user","content":"hi"}],"stream":true}`)})
	require.NoError(t, err)
	defer st.Close()
	ev, err := st.Recv()
	require.NoError(t, err)
	require.Contains(t, string(ev.Data), `"hi"`)
	<-got

	_, err = c.Do(context.Background(), &providers.Request{Operation: providers.OpEmbeddings, Model: "emb",
		Body: []byte(`{"input":"hi"}`)})
	require.NoError(t, err)
	require.Equal(t, "/openai/deployments/emb/embeddings", (<-got).path)
}
