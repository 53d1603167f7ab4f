package classify

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Field is one piece of text in an OpenAI request body and the entities
// found in it. Path is the body's JSON path to it (gjson/sjson syntax).
type Field struct {
	Path  string
	Text  string
	Spans []Span
}

// Findings are the entities in one request.
type Findings struct {
	Fields []Field // only fields with at least one entity
}

// Counts tallies the entities by label; nil when there are none.
func (f Findings) Counts() map[string]int {
	var all []Span
	for _, fl := range f.Fields {
		all = append(all, fl.Spans...)
	}
	return Counts(all)
}

// Labels is the sorted set of labels found.
func (f Findings) Labels() []string {
	return slices.Sorted(maps.Keys(f.Counts()))
}

// ScanRequest classifies every string in a request body, wherever it is:
// message contents and text parts, names, tool definitions and tool-call
// arguments, response-format schemas, prompts, embedding inputs, user ids.
// Scanning everything, rather than the fields known today, means a field
// the API adds tomorrow cannot carry data past the policy. Only values that
// are not text are skipped: model and ids, role and type tags, and inline
// image, audio and file data.
func (c *Classifier) ScanRequest(body []byte) Findings {
	var f Findings
	c.walk(gjson.ParseBytes(body), "", &f)
	return f
}

// notText are keys whose string values are identifiers or binary data.
var notText = map[string]bool{
	"model": true, "role": true, "type": true, "id": true, "tool_call_id": true,
	"object": true, "encoding_format": true, "detail": true, "format": true,
	"url": true, "data": true, "file_data": true, "file_id": true,
}

func (c *Classifier) walk(v gjson.Result, path string, f *Findings) {
	switch {
	case v.IsObject():
		v.ForEach(func(k, child gjson.Result) bool {
			if child.Type == gjson.String && notText[k.Str] {
				return true
			}
			c.walk(child, joinPath(path, escapePathKey(k.Str)), f)
			return true
		})
	case v.IsArray():
		v.ForEach(func(i, child gjson.Result) bool {
			c.walk(child, joinPath(path, i.String()), f)
			return true
		})
	case v.Type == gjson.String && v.Str != "":
		if spans := c.Find(v.Str); len(spans) > 0 {
			f.Fields = append(f.Fields, Field{Path: path, Text: v.Str, Spans: spans})
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// escapePathKey escapes the characters gjson and sjson give meaning to.
func escapePathKey(k string) string {
	if !strings.ContainsAny(k, ".*?|#@!\\:") {
		return k
	}
	var b strings.Builder
	for _, r := range k {
		if strings.ContainsRune(".*?|#@!\\:", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Redactor replaces entities with typed placeholders, [EMAIL_1],
// [CREDIT_CARD_2], numbering each distinct value once per request so that
// the model still sees which mentions are the same. Use one per request.
type Redactor struct {
	// Labels selects what to mask; nil masks every label.
	Labels map[string]bool
	seen   map[string]string
	next   map[string]int
}

// Placeholder is the text an entity is replaced with.
func (r *Redactor) placeholder(label, value string) string {
	if r.seen == nil {
		r.seen, r.next = map[string]string{}, map[string]int{}
	}
	key := label + "\x00" + value
	if p, ok := r.seen[key]; ok {
		return p
	}
	r.next[label]++
	p := "[" + label + "_" + strconv.Itoa(r.next[label]) + "]"
	r.seen[key] = p
	return p
}

// Text returns text with the selected spans masked.
func (r *Redactor) Text(text string, spans []Span) string {
	var b strings.Builder
	last := 0
	for _, s := range spans {
		if r.Labels != nil && !r.Labels[s.Label] {
			continue
		}
		b.WriteString(text[last:s.Start])
		b.WriteString(r.placeholder(s.Label, text[s.Start:s.End]))
		last = s.End
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// Body returns a copy of body with the selected entities in f masked, and
// how many were masked per label.
func (r *Redactor) Body(body []byte, f Findings) ([]byte, map[string]int, error) {
	masked := map[string]int{}
	out := body
	for _, fl := range f.Fields {
		red := r.Text(fl.Text, fl.Spans)
		if red == fl.Text {
			continue
		}
		for _, s := range fl.Spans {
			if r.Labels == nil || r.Labels[s.Label] {
				masked[s.Label]++
			}
		}
		var err error
		if out, err = sjson.SetBytes(out, fl.Path, red); err != nil {
			return nil, nil, fmt.Errorf("redacting %s: %w", fl.Path, err)
		}
	}
	return out, masked, nil
}
