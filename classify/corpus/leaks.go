package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
)

// Strings returns every string of a JSON document, object keys included,
// decoded; a string that is itself a JSON object or array (tool-call
// arguments, a JSON tool result) adds its own strings too. A gzip-compressed
// body is decompressed first.
func Strings(body []byte) ([]string, error) {
	body, err := gunzipIfNeeded(body)
	if err != nil {
		return nil, err
	}
	return jsonStrings(body, true)
}

func jsonStrings(body []byte, nested bool) ([]string, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	var out []string
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				out = append(out, k)
				walk(e, depth)
			}
		case []any:
			for _, e := range x {
				walk(e, depth)
			}
		case string:
			out = append(out, x)
			if s := strings.TrimSpace(x); nested && depth < 4 && (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) {
				var inner any
				if json.Unmarshal([]byte(s), &inner) == nil {
					walk(inner, depth+1)
				}
			}
		}
	}
	walk(v, 0)
	return out, nil
}

func gunzipIfNeeded(body []byte) ([]byte, error) {
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		return body, nil
	}
	r, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Leaks returns the forbidden strings found in a body an upstream
// received: in its raw bytes or in any of its decoded strings (see
// Strings). Compare decoded strings, not only bytes: JSON escapes a PEM
// key's newlines, and a gateway may re-encode a body differently.
func Leaks(body []byte, forbidden []string) []string {
	raw, err := gunzipIfNeeded(body)
	if err != nil {
		raw = body
	}
	strs, _ := jsonStrings(raw, true)
	var out []string
	for _, f := range forbidden {
		if f == "" {
			continue
		}
		found := bytes.Contains(raw, []byte(f))
		for _, s := range strs {
			if found {
				break
			}
			found = strings.Contains(s, f)
		}
		if found {
			out = append(out, f)
		}
	}
	return out
}
