package mock

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(t *testing.T, srv *httptest.Server, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestCompletion(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	resp := post(t, srv, `{"model":"m\"1","messages":[{"role":"user","content":"hi"}]}`)
	var c struct {
		Object  string
		Model   string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Object != "chat.completion" || c.Model != `m"1` || len(c.Choices) != 1 ||
		c.Choices[0].Message.Role != "assistant" || len(strings.Fields(c.Choices[0].Message.Content)) != 40 ||
		c.Choices[0].FinishReason != "stop" || c.Usage.TotalTokens != 52 {
		t.Fatalf("unexpected completion %+v", c)
	}
	if n := resp.ContentLength; n < 500 || n > 700 {
		t.Errorf("completion is %d bytes, want about 600", n)
	}
}

func TestStream(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	for _, usage := range []bool{false, true} {
		body := `{"model":"m","stream":true}`
		if usage {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`
		}
		resp := post(t, srv, body)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events = append(events, line)
			}
		}
		want := streamEvents + 1
		if usage {
			want++
		}
		if len(events) != want || events[len(events)-1] != "[DONE]" {
			t.Fatalf("usage %v: %d events, last %q", usage, len(events), events[len(events)-1])
		}
		for i, e := range events[:len(events)-1] {
			var c struct {
				Object  string
				Choices []struct {
					Delta        struct{ Role, Content string }
					FinishReason *string `json:"finish_reason"`
				}
				Usage *struct {
					TotalTokens int `json:"total_tokens"`
				}
			}
			if err := json.Unmarshal([]byte(e), &c); err != nil || c.Object != "chat.completion.chunk" {
				t.Fatalf("event %d %q: %v", i, e, err)
			}
			switch {
			case i == streamEvents:
				if len(c.Choices) != 0 || c.Usage == nil || c.Usage.TotalTokens != 52 {
					t.Errorf("usage chunk %q", e)
				}
			case i == 0 && c.Choices[0].Delta.Role != "assistant",
				i > 0 && i < streamEvents-1 && c.Choices[0].Delta.Content == "",
				i == streamEvents-1 && (c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "stop"):
				t.Errorf("event %d unexpected: %q", i, e)
			}
		}
	}
}
