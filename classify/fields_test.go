package classify

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Requests with every field of OpenAI's chat, legacy completions and
// embeddings APIs (messages of every role, content parts of every type,
// tools, legacy functions, schemas, prediction, audio, metadata…).
var everyField = []string{
	`{"model":"gpt-4o","messages":[
	  {"role":"developer","content":"d","name":"n"},
	  {"role":"system","content":[{"type":"text","text":"s"}],"name":"n"},
	  {"role":"user","name":"n","content":[{"type":"text","text":"t"},
	    {"type":"image_url","image_url":{"url":"https://x.example/a.png?q=1","detail":"high"}},
	    {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},
	    {"type":"file","file":{"file_data":"data:text/plain;base64,aGk=","file_id":"file-1","filename":"f.txt"}}]},
	  {"role":"assistant","content":"a","refusal":"r","name":"n","audio":{"id":"audio_1"},
	    "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\":\"y\"}"}},
	      {"id":"call_2","type":"custom","custom":{"name":"c","input":"i"}}],
	    "function_call":{"name":"f","arguments":"{}"}},
	  {"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"r"}]},
	  {"role":"function","name":"f","content":"c"}],
	 "tools":[{"type":"function","function":{"name":"f","description":"d","strict":true,
	   "parameters":{"type":"object","properties":{"p":{"type":"string","description":"d","enum":["e"],"default":"v","examples":["x"]}},"required":["p"]}}},
	   {"type":"custom","custom":{"name":"c","description":"d","format":{"type":"grammar","grammar":{"definition":"g","syntax":"lark"}}}}],
	 "tool_choice":{"type":"function","function":{"name":"f"}},
	 "functions":[{"name":"f","description":"d","parameters":{"type":"object"}}],"function_call":{"name":"f"},
	 "response_format":{"type":"json_schema","json_schema":{"name":"s","description":"d","strict":true,"schema":{"type":"object","title":"t"}}},
	 "prediction":{"type":"content","content":"p"},"audio":{"voice":"alloy","format":"mp3"},"modalities":["text"],
	 "metadata":{"k":"v"},"user":"u","safety_identifier":"s","prompt_cache_key":"p","service_tier":"auto","store":true,
	 "stop":["s"],"seed":7,"logit_bias":{"50256":-100},"max_completion_tokens":100,"n":1,"temperature":1,"top_p":1,
	 "reasoning_effort":"low","verbosity":"low","stream":false,"stream_options":{"include_usage":true},
	 "web_search_options":{"search_context_size":"low","user_location":{"type":"approximate","approximate":{"city":"c","country":"GB","region":"r","timezone":"Europe/London"}}}}`,
	`{"model":"gpt-3.5-turbo-instruct","prompt":["p"],"suffix":"s","echo":false,"stop":"s","user":"u","best_of":1,"logprobs":0,"max_tokens":16}`,
	`{"model":"text-embedding-3-small","input":["i"],"user":"u","dimensions":256,"encoding_format":"float"}`,
}

// leaves lists the path of every string, number and object key of v.
func leaves(v any, path string, out *[]string) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			*out = append(*out, "key:"+join(k))
			leaves(c, join(k), out)
		}
	case []any:
		for i, c := range x {
			leaves(c, join(strconv.Itoa(i)), out)
		}
	case string, json.Number:
		*out = append(*out, path)
	}
}

// plant replaces the leaf (or key) at path with value.
func plant(v any, path []string, key bool, value string) any {
	switch x := v.(type) {
	case map[string]any:
		c := x[path[0]]
		if len(path) == 1 && key {
			delete(x, path[0])
			x[value] = c
			return x
		}
		if len(path) == 1 {
			x[path[0]] = value
			return x
		}
		x[path[0]] = plant(c, path[1:], key, value)
	case []any:
		i, _ := strconv.Atoi(path[0])
		if len(path) == 1 {
			x[i] = value
			return x
		}
		x[i] = plant(x[i], path[1:], key, value)
	}
	return v
}

func decodeAny(t *testing.T, s string) any {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}

// TestEveryFieldIsScanned walks every field of the request types: a value
// planted in any string, number or object key is found, at its path, and
// redacted out of the body. No field is exempt by its name.
func TestEveryFieldIsScanned(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	n := 0
	for _, doc := range everyField {
		var paths []string
		leaves(decodeAny(t, doc), "", &paths)
		for _, p := range paths {
			key := len(p) > 4 && p[:4] == "key:"
			path := p
			if key {
				path = p[4:]
			}
			value := "ssn 123-45-6789"
			if key {
				value = "jane@bank.de"
			}
			body, err := json.Marshal(plant(decodeAny(t, doc), splitPath(path), key, value))
			require.NoError(t, err)
			f := c.ScanRequest(body)
			found := false
			for _, d := range f.Detections() {
				if !d.Weak && d.Key == key && (d.Path == path || (key && d.Path == join(parentPath(path), "<EMAIL>"))) {
					found = true
				}
			}
			require.True(t, found, "%s: nothing found in %s: %+v", p, body, f.Detections())
			out, _, err := (&Redactor{}).Body(body, f)
			require.NoError(t, err)
			require.True(t, json.Valid(out))
			require.NotContains(t, string(out), "6789", p)
			require.NotContains(t, string(out), "jane@bank.de", p)
			n++
		}
	}
	t.Logf("%d fields and keys planted and found", n)
}

func splitPath(p string) []string {
	var out []string
	last := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			out = append(out, p[last:i])
			last = i + 1
		}
	}
	return append(out, p[last:])
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' {
			return p[:i]
		}
	}
	return ""
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
