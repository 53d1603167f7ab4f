package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/switchyard/switchyard/providers/chatwire"
)

func seeds(f *testing.F, pattern string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParse: Parse never panics; it refuses with a 400 *Error, or accepts a
// request whose chat body the gateway's translating providers read.
func FuzzParse(f *testing.F) {
	seeds(f, "requests/*.messages.json")
	f.Add([]byte(validRequest))
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA\nAA"}}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":1e3,"messages":[{"role":"user","content":""}],"tools":[{"name":"a","input_schema":{}}],"tool_choice":{"type":"tool","name":"a"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (*Request, error){Parse, ParseCountTokens} {
			r, err := parse(body)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Type != TypeInvalidRequest || e.Message == "" {
					t.Fatalf("Parse failed with %#v", err)
				}
				continue
			}
			chat, err := r.ToChat()
			if err != nil {
				t.Fatalf("ToChat: %v", err)
			}
			if _, err := chatwire.ParseRequest(chat); err != nil {
				t.Fatalf("chatwire refuses the translation %s: %v", chat, err)
			}
		}
	})
}

// FuzzStream: any sequence of chunks (one per line) translates without
// panicking into well-formed SSE that the Anthropic SDK accumulates: a
// complete message, or, when a chunk is refused, the events so far and an
// error event.
func FuzzStream(f *testing.F) {
	seeds(f, "streams/*.chunks.jsonl")
	f.Add([]byte(`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}` + "\n" +
		`{"choices":[{"delta":{"content":"x","tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}`))
	f.Add([]byte(`{"choices":[{"delta":{"tool_calls":[{"index":-3,"id":"a","function":{"name":"f","arguments":{"a":1}}},{"id":"b"}]}}]}`))
	f.Add([]byte(`{"choices":[{"index":1,"delta":{"content":"other choice"}},{"delta":{"refusal":"no"},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":-5}}`))
	f.Add([]byte("\x00\n[]\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStream("m", "msg_fuzz")
		var out []byte
		failed := false
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			ev, err := s.Chunk(line, nil)
			out = append(out, ev...)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Chunk failed with %T %v", err, err)
				}
				out = append(out, s.Fail(e.Type, e.Message)...)
				failed = true
				break
			}
		}
		out = append(out, s.End(nil)...)
		evs, err := parseSSE(out)
		if err != nil {
			t.Fatalf("malformed SSE: %v\n%s", err, out)
		}
		if failed {
			if len(evs) == 0 || evs[len(evs)-1].name != "error" {
				t.Fatalf("a failed stream must end with an error event:\n%s", out)
			}
			// What came before the error accumulates.
			before := out[:bytes.LastIndex(out, []byte("event: error\n"))]
			if _, _, err := accumulate(before); err != nil {
				t.Fatalf("the SDK did not accumulate the events before the error: %v\n%s", err, before)
			}
			return
		}
		msg, stopped, err := accumulate(out)
		if err != nil || !stopped {
			t.Fatalf("the SDK did not accumulate the stream (stopped %v): %v\n%s", stopped, err, out)
		}
		for _, b := range msg.Content {
			if b.Type == "tool_use" && !json.Valid(b.Input) {
				t.Fatalf("tool_use input is not JSON: %s", b.Input)
			}
		}
		var last anthropic.Message
		if err := json.Unmarshal(evs[0].data, &struct {
			Message *anthropic.Message `json:"message"`
		}{&last}); err != nil || last.ID != "msg_fuzz" {
			t.Fatalf("message_start does not decode: %v", err)
		}
	})
}

// FuzzFromChat: any completion translates without panicking, into a
// message the SDK reads.
func FuzzFromChat(f *testing.F) {
	seeds(f, "responses/*.chat.json")
	f.Add([]byte(`{"choices":[{"message":{"tool_calls":[{"function":{"arguments":"\"\\\"x\\\"\""}}]}}]}`))
	f.Add([]byte(`{"error":{"message":"boom"}}`))
	f.Fuzz(func(t *testing.T, chat []byte) {
		out, err := FromChat(chat, "m", nil)
		if err != nil {
			return
		}
		var msg anthropic.Message
		if err := json.Unmarshal(out, &msg); err != nil {
			t.Fatalf("the SDK cannot read %s: %v", out, err)
		}
		for _, b := range msg.Content {
			if b.Type == "tool_use" && !bytes.HasPrefix(b.Input, []byte("{")) {
				t.Fatalf("tool_use input is not an object: %s", b.Input)
			}
		}
	})
}
