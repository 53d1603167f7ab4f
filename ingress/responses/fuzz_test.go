package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/switchyard/switchyard/providers"
)

// FuzzParse: any body is parsed or refused with a 400 *Error, never a
// panic; what is accepted translates to a valid chat body, with valid
// items.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hi"}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"https://x/y.png"}]}],"stream":true}`,
		`{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"x"}],
			"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"n","schema":{}}},"metadata":{"a":"b"},"max_output_tokens":16}`,
		`{"model":"m","input":[{"type":"reasoning"},{"type":"item_reference","id":"x"}]}`,
		`{"model":"m","input":[],"instructions":"x"}`,
		`[]`, `null`, `{"model":null}`, "{\"model\":\"m\",\"input\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Code == "" || e.Message == "" {
				t.Fatalf("Parse error %#v is not a 400 *Error", err)
			}
			return
		}
		items, err := r.InputItems()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if !json.Valid(it) {
				t.Fatalf("invalid item %s", it)
			}
		}
		chat, err := r.ToChat(items)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("ToChat error %v is not an *Error", err)
			}
			return
		}
		if !json.Valid(chat) {
			t.Fatalf("invalid chat body %s", chat)
		}
		body, output, err := FromChat(r, "resp_1", 1, []byte(`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`), nil)
		if err != nil || !json.Valid(body) || len(output) != 1 {
			t.Fatalf("FromChat: %v %s", err, body)
		}
	})
}

// FuzzStream: any sequence of chunks (split from the input at newlines)
// never panics, and the output is well-formed SSE: "event: <type>",
// "data: <JSON object with that type and the next sequence number>", a
// blank line; the last event is terminal.
func FuzzStream(f *testing.F) {
	f.Add([]byte(`{"choices":[{"delta":{"content":"Hel"}}]}`+"\n"+`{"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}`), uint8(0))
	f.Add([]byte(`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}}]}`+"\n"+
		`{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g"}}]}}]}`+"\n"+
		`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]}`+"\n"+
		`{"choices":[{"delta":{"content":"x","refusal":"y"},"finish_reason":"length"}],"usage":{"prompt_tokens":1}}`), uint8(1))
	f.Add([]byte(`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"1"}},{"id":"z"}]}}]}`+"\nnot json\n{}"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		r, err := Parse([]byte(`{"model":"m","input":"hi","stream":true,"tools":[{"type":"function","name":"f"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		s := NewStream(r, "resp_1", 1)
		var out bytes.Buffer
		if mode&1 == 0 {
			out.Write(s.Start())
		}
		for _, c := range bytes.Split(data, []byte("\n")) {
			var u *providers.Usage
			if len(c)%3 == 0 {
				u = &providers.Usage{PromptTokens: int64(len(c)), CompletionTokens: 1}
			}
			b, _ := s.Chunk(c, u)
			out.Write(b)
		}
		if mode&2 == 0 {
			events, resp, output := s.End(nil)
			out.Write(events)
			if !json.Valid(resp) {
				t.Fatalf("End response is not JSON: %s", resp)
			}
			for _, it := range output {
				if !json.Valid(it) {
					t.Fatalf("output item is not JSON: %s", it)
				}
			}
		} else {
			out.Write(s.Fail("server_error", "x"))
		}
		checkSSE(t, out.Bytes())
	})
}

// checkSSE checks the stream's framing and sequence numbers, and that it
// ends with exactly one terminal event.
func checkSSE(t *testing.T, b []byte) {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n\n")) {
		t.Fatalf("the stream does not end with a blank line: %q", b)
	}
	events := bytes.Split(bytes.TrimSuffix(b, []byte("\n\n")), []byte("\n\n"))
	terminal := 0
	for i, ev := range events {
		lines := bytes.Split(ev, []byte("\n"))
		if len(lines) != 2 || !bytes.HasPrefix(lines[0], []byte("event: ")) || !bytes.HasPrefix(lines[1], []byte("data: ")) {
			t.Fatalf("event %d is not two lines, event and data: %q", i, ev)
		}
		typ := string(lines[0][len("event: "):])
		var head struct {
			Type           string `json:"type"`
			SequenceNumber *int   `json:"sequence_number"`
		}
		data := lines[1][len("data: "):]
		if err := json.Unmarshal(data, &head); err != nil || head.Type != typ || head.SequenceNumber == nil || *head.SequenceNumber != i {
			t.Fatalf("event %d (%s): bad data %s", i, typ, data)
		}
		switch typ {
		case "response.completed", "response.incomplete", "response.failed":
			terminal++
			if i != len(events)-1 {
				t.Fatalf("terminal event %s at %d of %d", typ, i, len(events))
			}
		}
	}
	if terminal != 1 {
		t.Fatalf("%d terminal events", terminal)
	}
}
