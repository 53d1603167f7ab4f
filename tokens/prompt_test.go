package tokens

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The example of OpenAI's cookbook "How to count tokens with tiktoken",
// section 6; the API counted 129 prompt tokens for gpt-3.5-turbo, gpt-4
// and gpt-4-0613, and 124 for gpt-4o and gpt-4o-mini.
const cookbookChat = `{"model":"gpt-4o","messages":[
{"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
{"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
{"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
{"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
{"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
{"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}],
"temperature":0,"max_tokens":1}`

// Section 7: with tools, the API counted 105 prompt tokens for
// gpt-3.5-turbo and gpt-4, and 101 for gpt-4o and gpt-4o-mini.
const cookbookTools = `{"model":"gpt-4o","messages":[
{"role":"system","content":"You are a helpful assistant that can answer to questions about the weather."},
{"role":"user","content":"What's the weather like in San Francisco?"}],
"tools":[{"type":"function","function":{"name":"get_current_weather","description":"Get the current weather in a given location",
"parameters":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
"unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},"required":["location"]}}}],
"temperature":0}`

func TestCookbook(t *testing.T) {
	for _, tc := range []struct {
		enc   Encoding
		body  string
		want  int64
		exact bool
	}{
		{Cl100kBase, cookbookChat, 129, true},
		{O200kBase, cookbookChat, 124, true},
		{Cl100kBase, cookbookTools, 105, false},
		{O200kBase, cookbookTools, 101, false},
	} {
		got := Prompt(tc.enc, OpChat, []byte(tc.body))
		switch {
		case tc.exact && got != tc.want:
			t.Errorf("%v: %d prompt tokens, OpenAI counted %d", tc.enc, got, tc.want)
		case !tc.exact && (got < tc.want || got > 2*tc.want):
			t.Errorf("%v: %d prompt tokens, OpenAI counted %d", tc.enc, got, tc.want)
		}
		t.Logf("%v: %d (OpenAI: %d)", tc.enc, got, tc.want)
		if a := Prompt(Approx, OpChat, []byte(tc.body)); a < tc.want {
			t.Errorf("Approx: %d < %d", a, tc.want)
		}
	}
}

// perByte is a toy encoding for checking what Prompt counts: a token per
// byte.
var perByte = Func(func(s string) int { return len(s) })

func TestChat(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int64
	}{
		{"empty", `{}`, 3},
		{"no messages", `{"messages":[]}`, 3},
		{"string", `{"messages":[{"role":"user","content":"hello"}]}`, 3 + 4 + 5 + 3},
		{"name", `{"messages":[{"role":"user","name":"bob","content":"hi"}]}`, 3 + 4 + 3 + 1 + 2 + 3},
		{"escaped", `{"messages":[{"role":"user","content":"a\"b\u00e9"}]}`, 3 + 4 + 5 + 3},
		{"null content", `{"messages":[{"role":"assistant","content":null}]}`, 3 + 9 + 0 + 3},
		{"parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"abc"},{"type":"text","text":"de"}]}]}`, 3 + 4 + 5 + 3},
		{"image high", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, 3 + 4 + ImageTokens + 3},
		{"image low", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]}]}`, 3 + 4 + ImageLowTokens + 3},
		{"audio", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"` + strings.Repeat("A", 3998) + `","format":"mp3"}}]}]}`, 3 + 4 + 16 + 3},
		{"audio wav", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"` + strings.Repeat("A", 3998) + `","format":"wav"}}]}]}`, 3 + 4 + 2 + 3},
		{"file", `{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"` + strings.Repeat("A", 398) + `"}}]}]}`, 3 + 4 + 75 + 5 + 3},
		{"tool calls", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"call_1","content":"42"}]}`,
			3 + 9 + 3 + 1 + 7 + 6 + 3 + 4 + 6 + 2 + 3},
		{"legacy function call", `{"messages":[{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`, 3 + 9 + 1 + 2 + 3},
		{"refusal", `{"messages":[{"role":"assistant","refusal":"no"}]}`, 3 + 9 + 2 + 3},
		{"tools", `{"messages":[],"tools":[{"type":"function"}]}`, 3 + 21},
		{"functions", `{"messages":[],"functions":[{"name":"f"}]}`, 3 + 14},
		{"json schema", `{"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, 3 + 12},
		{"json object", `{"messages":[],"response_format":{"type":"json_object"}}`, 3},
		{"tool choice", `{"messages":[],"tool_choice":{"type":"function","function":{"name":"f"}}}`, 3 + 43},
		{"tool choice auto", `{"messages":[],"tool_choice":"auto"}`, 3},
		{"parameters ignored", `{"model":"gpt-4o","temperature":0.5,"max_tokens":9,"user":"u","metadata":{"k":"v"},"messages":[]}`, 3},
	} {
		if got := Prompt(perByte, OpChat, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// Fields Prompt does not know count by Approx.
	body := `{"messages":[{"role":"user","content":[{"type":"video","video":{"frames":12}}],"extra":"some client text"}]}`
	want := int64(3+4+3) + int64(Approx.Count(`{"type":"video","video":{"frames":12}}`)+Approx.Count(`"some client text"`))
	if got := Prompt(perByte, OpChat, []byte(body)); got != want {
		t.Errorf("unknown fields: %d, want %d", got, want)
	}
}

func TestCompletionEmbeddings(t *testing.T) {
	for _, tc := range []struct {
		op, body string
		want     int64
	}{
		{OpCompletion, `{"prompt":"hello"}`, 5},
		{OpCompletion, `{"prompt":["ab","cde"],"suffix":"xy"}`, 7},
		{OpCompletion, `{"prompt":[1,2,3,4]}`, 4},
		{OpCompletion, `{"prompt":[[1,2],[3],"ab"]}`, 5},
		{OpCompletion, `{"prompt":null}`, 0},
		{OpCompletion, `{}`, 0},
		{OpEmbeddings, `{"input":"hello world","model":"text-embedding-3-small"}`, 11},
		{OpEmbeddings, `{"input":["a","bb",[7,8,9]]}`, 6},
		{OpEmbeddings, `{"input":[[[1,2,3]]]}`, int64(Approx.Count(`[1,2,3]`))},
	} {
		if got := Prompt(perByte, tc.op, []byte(tc.body)); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.op, tc.body, got, tc.want)
		}
	}
	if got, want := Prompt(O200kBase, OpEmbeddings, []byte(`{"input":"tiktoken is great!"}`)), int64(6); got != want {
		t.Errorf("o200k embeddings: %d, want %d", got, want)
	}
	if got, want := Prompt(perByte, "images", []byte(`{"prompt":"a cat"}`)), int64(Approx.Count(`{"prompt":"a cat"}`)); got != want {
		t.Errorf("unknown operation: %d, want %d", got, want)
	}
}

// TestExactBytes checks that past ExactBytes of text Prompt counts by
// Approx, and still over-estimates.
func TestExactBytes(t *testing.T) {
	var calls, counted int
	spy := Func(func(s string) int { calls++; counted += len(s); return O200kBase.Count(s) })
	b, err := os.ReadFile("testdata/corpus/english.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var msgs []map[string]string
	for len(msgs)*len(text) < 3*ExactBytes {
		msgs = append(msgs, map[string]string{"role": "user", "content": text})
	}
	body, _ := json.Marshal(map[string]any{"messages": msgs})
	got := Prompt(spy, OpChat, body)
	if counted > ExactBytes {
		t.Errorf("counted %d bytes exactly, more than %d", counted, ExactBytes)
	}
	exact := int64(3)
	for range msgs {
		exact += 3 + 1 + int64(O200kBase.Count(text))
	}
	if got < exact || got > 2*exact {
		t.Errorf("%d tokens; exactly %d", got, exact)
	}
	t.Logf("%d bytes: %d tokens, exactly %d (%d strings counted exactly)", len(body), got, exact, calls)
}

func TestNoPanic(t *testing.T) {
	deep := strings.Repeat("[", 1<<20)
	for _, body := range []string{
		"", "null", "[]", `"x"`, "{", "}", `{"messages":`, `{"messages":{}}`, `{"messages":"x"}`,
		`{"messages":[1,"x",null,[]]}`, `{"messages":[{"content":{"a":1}}]}`, `{"messages":[{"content":[1,[],null]}]}`,
		`{"messages":[{"tool_calls":"x","role":7}]}`, `{"prompt":` + deep, `{"input":` + deep, `{"messages":` + deep,
		`{"messages":[{"content":` + deep, "\xff\xfe", `{"prompt":"\ud800"}`,
	} {
		for _, op := range []string{OpChat, OpCompletion, OpEmbeddings, "other"} {
			for _, enc := range []Encoding{O200kBase, Approx} {
				if n := Prompt(enc, op, []byte(body)); n < 0 {
					t.Errorf("%s %.40q: %d", op, body, n)
				}
			}
		}
	}
}

func FuzzPrompt(f *testing.F) {
	for _, s := range []string{
		cookbookChat, cookbookTools, `{"prompt":[[1,2],"ab"],"suffix":"x"}`, `{"input":["a",[1]]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x","detail":"low"}},{"type":"input_audio","input_audio":{"data":"AAAA"}}]}]}`,
		`{"messages":[{"role":"user","content":" \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n \n x"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range []string{OpChat, OpCompletion, OpEmbeddings} {
			for _, enc := range []Encoding{O200kBase, Approx} {
				if n := Prompt(enc, op, []byte(body)); n < 0 {
					t.Fatalf("%s: %d", op, n)
				}
			}
		}
		// At most a token a byte, or 3 for a stray byte the tokenizer reads
		// as U+FFFD, plus one a cut of a long whitespace run.
		if n := O200kBase.Count(body); n < 0 || n > 4*len(body) {
			t.Fatalf("o200k: %d tokens for %d bytes", n, len(body))
		}
	})
}
